// End-to-end: files in messages, avatars and server icons. Ann uploads an avatar (shown from media); she drags a
// photo into a server's channel (edge 1); Bob (edge 2) sees its space kept, then the image, and
// opens it in the lightbox; once Ann deletes the message, someone who kept the image's URL gets
// nothing. Ann sends a voice message: both see its duration once media has read it. Ann pastes
// a link to a local fixture site (which media's test-only allowance lets it fetch): both see its
// preview card, its image served by media; Ann removes it for both. Ann
// crops and uploads a server icon and a new avatar (zoom, drag, arrow keys): Bob sees the icon in
// his rail and the avatar on her messages and in the member list at once, each 256 px and of the
// part she chose. Real services
// (e2e/services.mjs, media included).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { deflateSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { api, dropPhotoAndSend, inOneServer, launch, person, screenshot, signUp } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const T = 15_000;

let services;
let browser;
let ann;
let bob;

/**
 * A `width` by `height` PNG, made here (no image library in the tests): one colour, or the
 * colour `columns(x)` gives each column.
 */
function png(width, height, columns = () => [51, 102, 153]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const pixels = Array.from({ length: width }, (_, x) => columns(x)).flat();
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(pixels)]);
  const raw = Buffer.concat(Array(height).fill(row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The fixture site: a page with OpenGraph tags and its image. Counts what it serves. */
let site;
let siteHits = 0;
async function startSite() {
  const cover = png(120, 60);
  const server = createServer((req, res) => {
    siteHits += 1;
    if (req.url === '/cover.png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(cover);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head>
      <meta property="og:title" content="Fixture Site Title">
      <meta property="og:description" content="What the fixture page is about">
      <meta property="og:site_name" content="Fixture">
      <meta property="og:image" content="/cover.png">
      </head><body>fixture</body></html>`);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, addr: `127.0.0.1:${server.address().port}` };
}

before(async () => {
  site = await startSite();
  services = await new Services({ mediaArgs: ['--unfurl-allow-address', site.addr] }).start();
  browser = await launch();
  ann = await person(browser, services, { name: 'ann', edge: 'edge1' });
  bob = await person(browser, services, { name: 'bob', edge: 'edge2' });
});

after(async () => {
  for (const p of [ann, bob]) if (p?.errors.length) console.error(`${p.name}: page errors`, p.errors);
  await browser?.close();
  await services?.stop();
  site?.server.close();
});

describe('files in messages', () => {
  test('ann drags a photo in, bob sees it and opens it; deleted, its URL gives nothing', async () => {
    await signUp(ann, ANN, 'Ann');
    await signUp(bob, BOB, 'Bob');

    // Ann's avatar: an image uploaded to media, squared there, shown from media.
    await ann.page.getByRole('button', { name: 'Profile and settings' }).click();
    const pixel = Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
      'base64',
    );
    await ann.page
      .getByLabel('Avatar image')
      .setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: pixel });
    await ann.page
      .getByRole('dialog', { name: 'Crop your avatar' })
      .getByRole('button', { name: 'Apply' })
      .click();
    await ann.page.getByRole('button', { name: 'Remove the avatar (on save)' }).waitFor({ timeout: T });
    await ann.page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
    await ann.page.waitForFunction(
      (media) =>
        [...document.querySelectorAll('.avatar img')].some(
          (img) => img.src.startsWith(`${media}/avatars/`) && img.complete && img.naturalWidth === 256,
        ),
      services.mediaUrl,
      { timeout: T },
    );
    const { channel, ownerToken: annToken } = await inOneServer(services, [ann, ANN], [bob, BOB], 'Photos');

    // A 320 by 200 photo, dropped on the composer.
    await dropPhotoAndSend(ann, 'photo.png', 320, 200, { timeout: T });

    // Bob: the image's box is its own shape from the start, then the image shows in it.
    const shown = bob.page.locator('[role="log"] .attachment-image');
    await shown.waitFor({ timeout: T });
    const box = await shown.boundingBox();
    assert.ok(box && Math.round(box.width) === 320 && Math.round(box.height) === 200, JSON.stringify(box));
    await bob.page.waitForFunction(
      () => {
        const img = document.querySelector('[role="log"] .attachment-image img');
        return img && img.complete && img.naturalWidth > 0;
      },
      null,
      { timeout: T },
    );
    await shown.click();
    const lightbox = bob.page.getByRole('dialog');
    await lightbox.getByRole('heading', { name: 'photo.png' }).waitFor({ timeout: T });
    await bob.page.waitForFunction(
      () => {
        const img = document.querySelector('dialog .lightbox img');
        return img && img.complete && img.naturalWidth === 320;
      },
      null,
      { timeout: T },
    );
    await screenshot(bob.page, 'attachments-lightbox');
    const url = await lightbox.locator('.lightbox img').getAttribute('src');
    await lightbox.getByRole('button', { name: 'Close' }).click();

    // Anyone holding the URL gets the photo while the message exists, and nothing once deleted.
    assert.equal((await fetch(url)).status, 200);
    const id = await bob.page
      .locator('[role="log"] article[data-message-id]')
      .last()
      .getAttribute('data-message-id');
    const edge = `http://127.0.0.1:${services.ports.edge1}`;
    await api(
      services,
      annToken,
      'DELETE',
      `${edge}/api/v1/channels/${channel}/messages/${id}`,
      undefined,
      204,
    );
    const deadline = Date.now() + T;
    let status = 200;
    while (Date.now() < deadline && status !== 404) {
      status = (await fetch(url)).status;
      if (status !== 404) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 404, 'the deleted photo is still served');
    for (const p of [ann, bob]) assert.deepEqual(p.csp, [], `${p.name}: CSP violations`);
  });
  test('ann sends a voice message; both see its duration on its card and can play it', async () => {
    // The first test left both in the server's channel. 2.5 s of Opus (media's test fixture).
    const voice = readFileSync(new URL('../../media/tests/fixtures/voice.ogg', import.meta.url));
    await ann.page
      .locator('.composer input[type="file"]')
      .setInputFiles({ name: 'voice.ogg', mimeType: 'audio/ogg', buffer: voice });
    await ann.page.getByLabel('Files to send').getByText('voice.ogg').waitFor({ timeout: T });
    await ann.page.locator('.composer textarea').press('Enter');
    await ann.page.getByLabel('Files to send').waitFor({ state: 'detached', timeout: T });
    for (const p of [ann, bob]) {
      const card = p.page.locator('[role="log"] .attachment-file').filter({ hasText: 'voice.ogg' });
      await card.waitFor({ timeout: T });
      // Its duration arrives with processing's MESSAGE_UPDATE, beside its size.
      await card
        .locator('.attachment-duration')
        .getByText('0:02')
        .waitFor({ timeout: T * 2 });
      await card.getByText('2.0 KB').waitFor({ timeout: T });
      // Its player loads nothing until asked; asked, it reads the recording from media (the
      // page's policy lets it) and knows its length.
      const player = card.locator('audio.attachment-player');
      assert.equal(await player.getAttribute('preload'), 'none');
      const seconds = await player.evaluate(
        (audio) =>
          new Promise((resolve, reject) => {
            audio.addEventListener('loadedmetadata', () => resolve(audio.duration), { once: true });
            audio.addEventListener('error', () => reject(new Error(`media error ${audio.error?.code}`)), {
              once: true,
            });
            audio.load();
          }),
      );
      assert.ok(seconds > 2 && seconds < 3, `the player's duration: ${seconds}`);
    }
    await screenshot(bob.page, 'attachments-voice');
    for (const p of [ann, bob]) assert.deepEqual(p.csp, [], `${p.name}: CSP violations`);
  });
  test('ann pastes a link; both see its preview card, and ann removes it for both', async () => {
    // The first test left both in the server's channel.
    const composer = ann.page.locator('.composer textarea');
    const link = `http://${site.addr}/article`;
    await composer.fill(`have a look: ${link}`);
    await composer.press('Enter');
    for (const p of [ann, bob]) {
      const card = p.page.locator('[role="log"] .embed').last();
      await card.getByText('Fixture Site Title').waitFor({ timeout: T * 2 });
      await card.getByText('What the fixture page is about').waitFor({ timeout: T });
      await card.getByText('Fixture', { exact: true }).waitFor({ timeout: T });
      // The image is media's copy, its box reserved at its shape (120 by 60) before it loads.
      const img = card.locator('.embed-image img');
      const src = await img.getAttribute('src');
      assert.ok(src.startsWith(`${services.mediaUrl}/attachments/`), src);
      const box = await card.locator('.embed-image').boundingBox();
      assert.ok(box && Math.round(box.width) === 120 && Math.round(box.height) === 60, JSON.stringify(box));
      await p.page.waitForFunction(
        () => {
          const shown = [...document.querySelectorAll('[role="log"] .embed-image img')].pop();
          return shown && shown.complete && shown.naturalWidth === 120;
        },
        null,
        { timeout: T },
      );
    }
    await screenshot(bob.page, 'link-preview');
    // Viewing it did not reach the site: media fetched the page and its image, once each.
    assert.equal(siteHits, 2);

    // Bob sees no remove button on ann's message; ann removes the preview, and it goes for both.
    const bobCard = bob.page.locator('[role="log"] article').last();
    assert.equal(await bobCard.getByRole('button', { name: 'Remove embeds' }).count(), 0);
    await ann.page
      .locator('[role="log"] article')
      .last()
      .getByRole('button', { name: 'Remove embeds' })
      .click();
    for (const p of [ann, bob]) {
      await p.page.getByText('Fixture Site Title').waitFor({ state: 'detached', timeout: T });
    }
    for (const p of [ann, bob]) assert.deepEqual(p.csp, [], `${p.name}: CSP violations`);
  });
  test('ann crops a server icon and an avatar; bob sees both, 256 px, of what she chose', async () => {
    // A 600 by 300 image, red but for its last 100 columns, which are blue: only a selection
    // zoomed in (narrower than 150 px) and moved to the right edge is all blue.
    const picture = png(600, 300, (x) => (x >= 500 ? [30, 60, 220] : [220, 40, 40]));
    const file = { name: 'picture.png', mimeType: 'image/png', buffer: picture };
    const media = services.mediaUrl;

    /** Zooms in with the slider and out a little with the wheel, then moves to the right edge. */
    const cropRight = async (dialog) => {
      const selection = dialog.getByLabel('Selection');
      await selection.waitFor({ timeout: T });
      const zoom = dialog.getByLabel('Zoom');
      await zoom.focus();
      await zoom.press('End');
      assert.equal(await zoom.inputValue(), '4');
      const box = await dialog.locator('.crop-stage').boundingBox();
      await ann.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await ann.page.mouse.wheel(0, 100);
      await ann.page.waitForFunction(
        () => Number(document.querySelector('input[name="crop-zoom"]')?.value) < 4,
        null,
        { timeout: T },
      );
      // Drag the image left (the selection goes right), then the arrow keys the rest of the way.
      await ann.page.mouse.down();
      await ann.page.mouse.move(box.x + box.width / 2 - 400, box.y + box.height / 2, { steps: 10 });
      await ann.page.mouse.up();
      await selection.focus();
      for (let i = 0; i < 120; i++) await selection.press('ArrowLeft');
    };

    /** The image at `url`: its size and the colour of its centre and corners (in bob's page). */
    const look = (url) =>
      bob.page.evaluate(async (u) => {
        const bitmap = await createImageBitmap(await (await fetch(u)).blob());
        const canvas = document.createElement('canvas');
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
        const g = canvas.getContext('2d');
        g.drawImage(bitmap, 0, 0);
        const at = (x, y) => [...g.getImageData(x, y, 1, 1).data.slice(0, 3)];
        const w = bitmap.width - 1;
        const h = bitmap.height - 1;
        return {
          width: bitmap.width,
          height: bitmap.height,
          pixels: [at(w / 2, h / 2), at(2, 2), at(w - 2, h - 2)],
        };
      }, url);
    const blue = ([r, g, b]) => b > 180 && r < 80 && g < 100;

    // The server icon, from the server's settings.
    const rail = (p) => p.page.getByRole('navigation', { name: 'Servers' });
    await ann.page.getByRole('button', { name: 'Server settings' }).click();
    await ann.page.getByLabel('Server icon').setInputFiles(file);
    const iconCrop = ann.page.getByRole('dialog', { name: 'Crop the server icon' });
    await cropRight(iconCrop);
    await iconCrop.getByRole('button', { name: 'Apply' }).click();
    await iconCrop.waitFor({ state: 'detached', timeout: T });
    await ann.page.getByRole('button', { name: 'Remove the icon (on save)' }).waitFor({ timeout: T });
    await screenshot(ann.page, 'server-icon-settings');
    await ann.page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
    let icon;
    for (const p of [ann, bob]) {
      const img = rail(p).getByRole('link', { name: 'Photos' }).locator('img');
      await img.waitFor({ timeout: T });
      icon = await img.getAttribute('src');
      assert.ok(icon.startsWith(`${media}/icons/`), icon);
      await p.page.waitForFunction(
        (src) =>
          [...document.querySelectorAll('nav .guild-icon img')].some(
            (i) => i.src === src && i.complete && i.naturalWidth === 256,
          ),
        icon,
        { timeout: T },
      );
    }
    const seen = await look(icon);
    assert.equal(seen.width, 256);
    assert.equal(seen.height, 256);
    assert.ok(seen.pixels.every(blue), `the icon is the blue part: ${JSON.stringify(seen.pixels)}`);

    // Bob has the server's member list open (loaded before her change, so it must follow it).
    const members = bob.page.getByRole('button', { name: 'Members' });
    if ((await members.getAttribute('aria-pressed')) !== 'true') await members.click();
    await bob.page.locator(`aside.members li[data-user="${ANN}"]`).waitFor({ timeout: T });

    // The avatar (its button is on the home view): "Cancel" uploads nothing; then cropped the
    // same way and applied.
    await rail(ann).getByRole('link', { name: 'Direct messages' }).click();
    await ann.page.getByRole('button', { name: 'Profile and settings' }).click();
    const profile = ann.page.getByRole('dialog', { name: 'Your profile' });
    const before = await profile.locator('.avatar img').getAttribute('src');
    await profile.getByLabel('Avatar image').setInputFiles(file);
    const avatarCrop = ann.page.getByRole('dialog', { name: 'Crop your avatar' });
    await avatarCrop.getByLabel('Selection').waitFor({ timeout: T });
    await avatarCrop.getByRole('button', { name: 'Cancel' }).click();
    await avatarCrop.waitFor({ state: 'detached', timeout: T });
    assert.equal(await profile.locator('.avatar img').getAttribute('src'), before);
    await profile.getByLabel('Avatar image').setInputFiles(file);
    await cropRight(avatarCrop);
    await avatarCrop.getByRole('button', { name: 'Apply' }).click();
    await avatarCrop.waitFor({ state: 'detached', timeout: T });
    await profile.getByRole('status').getByText('Saved.').waitFor({ timeout: T });
    const avatar = await profile.locator('.avatar img').getAttribute('src');
    assert.ok(avatar !== before && avatar.startsWith(`${media}/avatars/`), avatar);
    await profile.getByRole('button', { name: 'Close' }).click();

    // Bob sees it at once, on her messages and in the member list; then she writes again.
    for (const where of ['[role="log"]', `aside.members li[data-user="${ANN}"]`]) {
      await bob.page.waitForFunction(
        ([scope, src]) =>
          [...document.querySelectorAll(`${scope} .avatar img`)].some(
            (i) => i.src === src && i.complete && i.naturalWidth === 256,
          ),
        [where, avatar],
        { timeout: T },
      );
    }
    await rail(ann).getByRole('link', { name: 'Photos' }).click();
    const composer = ann.page.getByPlaceholder('Message #general');
    await composer.fill('a new look');
    await composer.press('Enter');
    const message = bob.page.locator('[role="log"] article', { hasText: 'a new look' });
    await message.waitFor({ timeout: T });
    const face = await look(avatar);
    assert.equal(face.width, 256);
    assert.equal(face.height, 256);
    assert.ok(blue(face.pixels[0]), `the avatar is the blue part: ${JSON.stringify(face.pixels)}`);
    await screenshot(bob.page, 'avatar-and-icon');
    for (const p of [ann, bob]) assert.deepEqual(p.csp, [], `${p.name}: CSP violations`);
  });
});
