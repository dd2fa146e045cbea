// End-to-end: two people in two browser contexts, each on a different edge, against real
// services (e2e/services.mjs) and the real local stack. Run with `npm run e2e` (see e2e/run.mjs).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, PASSWORD, people, person, screenshot, signUp } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const T = 15_000;
/** Messages in the long channel; NATTER_E2E_LONG_CHANNEL=500 for a quick run. */
const LONG = Number(process.env.NATTER_E2E_LONG_CHANNEL ?? 10_000);

let services;
let browser;
let ann;
let bob;
/** The long channel, seeded in the background from the start (see `startLongChannel`). */
let long;

const messages = (p) => p.page.locator('[role="log"] article');
const message = (p, text) => messages(p).filter({ hasText: text });
const composer = (p) => p.page.locator('.composer textarea');
const sidebarLink = (p, name) => p.page.getByRole('navigation').getByRole('link', { name: new RegExp(name) });

async function ready(p) {
  await p.page.locator('.banner').waitFor({ state: 'detached', timeout: T });
}

async function send(p, text) {
  await composer(p).fill(text);
  await composer(p).press('Enter');
}

/** How many times each text shows in the list (to prove nothing is doubled). */
async function counts(p, texts) {
  const all = await p.page.locator('[role="log"] article .content').allInnerTexts();
  return Object.fromEntries(texts.map((t) => [t, all.filter((x) => x.trim() === t).length]));
}

function readyFrame(p) {
  return p.frames.find((f) => f.t === 'READY')?.d;
}

/** A REST call as the holder of `token`: the parsed body, after checking the status. */
async function api(token, method, url, body, status = 200) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, status, `${method} ${url}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Sam makes the long channel through the API and writes its `LONG` lines in a browser context of
 * his own through one socket on edge 1, as a client sends: MESSAGE_SEND, and each stored message
 * comes back to him as MESSAGE_CREATE. At most 16 are on their way at once: more only queue in
 * the edge, whose queue for a client that falls 1,024 events behind is full (close 4009). He
 * starts before the first test and writes while the others chat (nobody else is in the channel
 * yet); the test that scrolls it awaits `done`, then Sam adds Ann. (One REST request per line
 * costs the edge a membership check at auth and took minutes, and the requests queued behind
 * them slowed everything the others did meanwhile.)
 */
async function startLongChannel() {
  const token = await signInQuietly('sign-up', 201);
  const channel = await api(
    token,
    'POST',
    `${services.origin}/api/v1/channels`,
    { name: 'long-history' },
    201,
  );
  const context = await browser.newContext({ baseURL: services.origin });
  const page = await context.newPage();
  await page.goto('/'); // the page's origin, which the edge accepts sockets from
  const done = page
    .evaluate(
      ({ url, token, channel, count, inFlight }) =>
        new Promise((resolve, reject) => {
          const started = performance.now();
          const ws = new WebSocket(url);
          let sent = 0;
          let stored = 0;
          let heartbeat;
          const send = () => {
            const i = sent++;
            const d = { channel_id: channel, content: `line ${i}`, nonce: `seed-${i}` };
            ws.send(JSON.stringify({ op: 20, d }));
          };
          ws.onmessage = (e) => {
            const { op, t, d } = JSON.parse(e.data);
            if (op === 10) {
              const beat = () => ws.send(JSON.stringify({ op: 1, d: null }));
              heartbeat = setInterval(beat, d.heartbeat_interval / 2);
              ws.send(JSON.stringify({ op: 2, d: { token } }));
            } else if (t === 'READY') {
              send(); // the first alone, so it is the oldest
            } else if (t === 'MESSAGE_CREATE' && d.channel_id === channel) {
              stored += 1;
              if (stored === count) {
                clearInterval(heartbeat);
                ws.close();
                resolve((performance.now() - started) / 1000);
              }
              while (sent < count && sent - stored < inFlight) send();
            } else if (op === 25 || op === 7 || op === 9) {
              reject(new Error(`op ${op} after ${stored} of ${count}: ${JSON.stringify(d)}`));
            }
          };
          ws.onclose = (e) => {
            clearInterval(heartbeat);
            if (stored < count) reject(new Error(`closed (${e.code}) after ${stored} of ${count}`));
          };
        }),
      { url: services.edgeUrl('edge1'), token, channel: channel.id, count: LONG, inFlight: 16 },
    )
    .finally(() => context.close());
  done.catch(() => {}); // reported by the test that awaits it, not as an unhandled rejection
  return { id: channel.id, done };
}

/** Sam's access token from a sign-up, or a fresh one (a token lasts 15 minutes) from a sign-in. */
async function signInQuietly(how = 'sign-in', status = 200) {
  const res = await fetch(`${services.origin}/api/v1/auth/${how}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      username: `sam_${suffix}`,
      password: PASSWORD,
      ...(how === 'sign-up' && { display_name: 'Sam' }),
    }),
  });
  const body = await res.text();
  assert.equal(res.status, status, body);
  return JSON.parse(body).access_token;
}

before(async () => {
  services = await new Services().start();
  browser = await launch();
  long = await startLongChannel();
  ann = await person(browser, services, { name: 'ann', edge: 'edge1' });
  bob = await person(browser, services, { name: 'bob', edge: 'edge2' });
});

after(async () => {
  for (const p of [ann, bob]) if (p?.errors.length) console.error(`${p.name}: page errors`, p.errors);
  await browser?.close();
  await services?.stop();
});

describe('two people on two edges', () => {
  test('sign up (Ann with the keyboard alone) and land in the app', async () => {
    await ann.page.goto('/');
    await screenshot(ann.page, 'sign-in');
    // Keyboard only: Tab to the link, Enter, then type and tab through the form.
    const kb = ann.page.keyboard;
    for (let i = 0; i < 10; i++) {
      await kb.press('Tab');
      if ((await ann.page.evaluate(() => document.activeElement?.textContent)) === 'Create an account') break;
    }
    await kb.press('Enter');
    await ann.page.getByLabel('Username').focus();
    await kb.type(ANN);
    await kb.press('Tab');
    await kb.type('Ann');
    await kb.press('Tab');
    await kb.type(PASSWORD);
    await kb.press('Enter');
    await ann.page.getByRole('navigation', { name: 'Channels and direct messages' }).waitFor({ timeout: T });
    await signUp(bob, BOB, 'Bob');
    await Promise.all([ready(ann), ready(bob)]);
    // They really are on different edges.
    assert.ok(ann.frames.some((f) => f.t === 'READY'));
    const annEdge = await ann.page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .map((e) => e.name)
        .filter((n) => n.includes('/gateway')),
    );
    assert.ok(annEdge.length > 0);
  });

  test('a channel is made, Bob lets Ann add him, and they chat in real time', async () => {
    await ann.page.getByRole('button', { name: 'Create a channel' }).click();
    await ann.page.getByLabel('Name').fill('general');
    await ann.page.getByLabel('Topic').fill('Everything and nothing');
    await ann.page.getByRole('button', { name: 'Create channel' }).click();
    await ann.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    await ann.page.getByRole('button', { name: 'Channel settings' }).click();
    await ann.page.getByLabel('Username to add').fill(BOB);
    await ann.page.getByRole('button', { name: 'Add', exact: true }).click();
    // By default only people who share a channel with Bob may add him: Ann is told so.
    await ann.page
      .getByRole('dialog')
      .getByRole('alert')
      .filter({ hasText: 'does not accept channel adds from you' })
      .waitFor({ timeout: T });
    // Bob lets anyone add him, in his privacy settings; then Ann can.
    await bob.page.getByRole('button', { name: 'Privacy' }).click();
    await bob.page.getByLabel('Who can add me to channels').selectOption('everyone');
    await bob.page.getByRole('button', { name: 'Save privacy settings' }).click();
    await bob.page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor({ timeout: T });
    await screenshot(bob.page, 'privacy');
    await bob.page.getByRole('button', { name: 'Close' }).click();
    await ann.page.getByRole('button', { name: 'Add', exact: true }).click();
    await ann.page.getByRole('dialog').getByText(`@${BOB}`).waitFor({ timeout: T });
    await ann.page.getByRole('button', { name: 'Close' }).click();

    // Bob sees the channel appear without reloading, and opens it.
    await sidebarLink(bob, 'general').click({ timeout: T });
    await bob.page.getByRole('heading', { name: 'general' }).waitFor();

    await send(ann, 'hello bob, see https://example.com');
    await message(bob, 'hello bob').waitFor({ timeout: T });
    await send(bob, 'hi ann!');
    await message(ann, 'hi ann!').waitFor({ timeout: T });
    // The sender's copy is confirmed (not pending) and links are links.
    await message(ann, 'hello bob').and(ann.page.locator('[data-delivery="sent"]')).waitFor({ timeout: T });
    assert.equal(
      await message(bob, 'hello bob').getByRole('link').getAttribute('href'),
      'https://example.com/',
    );
    await send(ann, '<b>not bold</b>');
    await message(bob, '<b>not bold</b>').waitFor({ timeout: T });
    assert.equal(await bob.page.locator('[role="log"] b').count(), 0);
  });

  test('typing shows to the other person', async () => {
    // The edge passes on one typing notice per person per channel per 5 s, and Bob's last one
    // (while he wrote his reply) may be recent: keep typing, as a person would, until it shows.
    const shown = ann.page.getByText('Bob is typing…');
    await composer(bob).click();
    for (let i = 0; i < 60 && !(await shown.isVisible()); i++) {
      await bob.page.keyboard.type('a');
      await bob.page.waitForTimeout(200);
    }
    await shown.waitFor({ timeout: 1000 });
    await screenshot(ann.page, 'chat-typing');
    await composer(bob).fill('');
  });

  test('presence and status show on avatars and in the member list', async () => {
    await ann.page.getByRole('button', { name: 'Members' }).click();
    const bobRow = ann.page.locator(`.members li[data-user="${BOB}"]`);
    await bobRow.locator('.presence-dot.online').waitFor({ timeout: T });
    // Bob sets "do not disturb"; Ann sees it live.
    await bob.page.getByRole('button', { name: 'Profile and settings' }).click();
    await bob.page.getByLabel('Status').selectOption('dnd');
    await bob.page.getByLabel('Bio').fill('Writing a novel');
    await bob.page.getByRole('button', { name: 'Save profile' }).click();
    await bob.page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor({ timeout: T });
    await bob.page.getByRole('button', { name: 'Close' }).click();
    await bobRow.locator('.presence-dot.dnd').waitFor({ timeout: T });
    await screenshot(ann.page, 'chat-members');
    await ann.page.getByRole('button', { name: 'Members' }).click();
  });

  test('someone who closes the app shows offline', async (t) => {
    if (!readyFrame(ann)?.presences)
      return t.skip('live presence (PRESENCE_UPDATE) is not on this backend yet');
    const carol = await person(browser, services, { name: 'carol' });
    await signUp(carol, `carol_${suffix}`, 'Carol');
    await ann.page.getByRole('button', { name: 'Start a direct message' }).click();
    await ann.page.getByLabel('Username').fill(`carol_${suffix}`);
    await ann.page.getByRole('button', { name: 'Open conversation' }).click();
    await ann.page.getByRole('button', { name: 'Members' }).click();
    const row = ann.page.locator(`.members li[data-user="carol_${suffix}"]`);
    // A DM Ann opened shows Carol's presence only once Carol opens it too: looking at it does.
    await row.locator('.presence-dot.offline').waitFor({ timeout: T });
    await sidebarLink(carol, 'Ann').click({ timeout: T });
    await row.locator('.presence-dot.online').waitFor({ timeout: T });
    await carol.context.close();
    await row.locator('.presence-dot.offline').waitFor({ timeout: 60_000 });
    await sidebarLink(ann, 'general').click();
  });

  test('unread badges count messages in channels not open, and clear on opening', async () => {
    // Ann makes a second channel and looks at it; Bob writes in general.
    await ann.page.getByRole('button', { name: 'Create a channel' }).click();
    await ann.page.getByLabel('Name').fill('random');
    await ann.page.getByRole('button', { name: 'Create channel' }).click();
    await ann.page.getByRole('heading', { name: 'random' }).waitFor({ timeout: T });
    await send(bob, 'unread one');
    await send(bob, 'unread two');
    const badge = sidebarLink(ann, 'general').locator('.badge');
    await ann.page.waitForFunction(
      () => document.querySelector('a.unread .badge')?.textContent === '2',
      null,
      { timeout: T },
    );
    assert.equal(await badge.getAttribute('aria-label'), '2 unread');
    await screenshot(ann.page, 'unread-badges');
    await sidebarLink(ann, 'general').click();
    await message(ann, 'unread two').waitFor({ timeout: T });
    await badge.waitFor({ state: 'detached', timeout: T });
  });

  test('edit and delete show for everyone', async (t) => {
    await send(ann, 'a typo in thsi one');
    await message(ann, 'thsi').and(ann.page.locator('[data-delivery="sent"]')).waitFor({ timeout: T });
    await message(bob, 'thsi').waitFor({ timeout: T });
    // Up in the empty composer edits one's last message, as in Discord.
    await composer(ann).focus();
    await composer(ann).press('ArrowUp');
    const box = ann.page.getByRole('textbox', { name: 'Edit message' });
    await box.fill('a typo in this one');
    await box.press('Enter');
    await message(bob, 'a typo in this one').getByText('(edited)').waitFor({ timeout: T });
    await message(ann, 'a typo in this one').hover();
    await message(ann, 'a typo in this one').getByRole('button', { name: 'Delete message' }).click();
    await ann.page
      .getByRole('dialog', { name: 'Delete this message?' })
      .getByRole('button', { name: 'Delete message' })
      .click({ timeout: T });
    await message(bob, 'a typo in this one').waitFor({ state: 'detached', timeout: T });
    await message(ann, 'a typo in this one').waitFor({ state: 'detached', timeout: T });
  });

  test('a reload keeps the session and shows the history', async (t) => {
    await bob.page.reload();
    await ready(bob);
    await bob.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    for (const text of ['hello bob', 'hi ann!', 'unread two'])
      await message(bob, text).waitFor({ timeout: T });
    assert.deepEqual(await counts(bob, ['hi ann!', 'unread one', 'unread two']), {
      'hi ann!': 1,
      'unread one': 1,
      'unread two': 1,
    });
  });

  test('an edge killed mid-conversation loses and doubles nothing', async () => {
    // Bob is on edge 2. Kill it as abruptly as a crash, and keep talking.
    const bobFramesBefore = bob.frames.length;
    services.kill('edge2', 'SIGKILL');
    await bob.page
      .getByText('Connection lost. Reconnecting…')
      .waitFor({ timeout: T })
      .catch(() => {});
    await screenshot(bob.page, 'reconnecting');
    await send(ann, 'during the outage 1');
    await send(bob, 'bob while disconnected');
    await send(ann, 'during the outage 2');
    await ready(bob);
    await send(ann, 'after the outage');
    const texts = [
      'during the outage 1',
      'during the outage 2',
      'after the outage',
      'bob while disconnected',
    ];
    for (const text of texts) {
      await message(bob, text).waitFor({ timeout: T });
      await message(ann, text).waitFor({ timeout: T });
    }
    await message(ann, 'bob while disconnected')
      .and(ann.page.locator('[data-delivery="sent"]'))
      .waitFor({ timeout: T });
    await message(bob, 'bob while disconnected')
      .and(bob.page.locator('[data-delivery="sent"]'))
      .waitFor({ timeout: T });
    const expected = Object.fromEntries(texts.map((t) => [t, 1]));
    assert.deepEqual(await counts(bob, texts), expected);
    assert.deepEqual(await counts(ann, texts), expected);
    // It came back through the other edge, resuming (or identifying afresh and filling the gap).
    const after = bob.frames.slice(bobFramesBefore);
    assert.ok(
      after.some((f) => f.t === 'RESUMED' || f.t === 'READY'),
      'a new session or a resume',
    );
    await screenshot(ann.page, 'chat');
  });

  test('a DM shows "seen" once the other person has read it', async (t) => {
    await ann.page.getByRole('button', { name: 'Start a direct message' }).click();
    await ann.page.getByLabel('Username').fill(BOB);
    await ann.page.getByRole('button', { name: 'Open conversation' }).click();
    await ann.page.locator('.channel-title', { hasText: 'Bob' }).waitFor({ timeout: T });
    // Bob sees the DM appear and opens it; Ann's message then arrives live.
    await sidebarLink(bob, 'Ann').click({ timeout: T });
    await bob.page.locator('.channel-title', { hasText: 'Ann' }).waitFor({ timeout: T });
    await send(ann, 'psst, a secret');
    await message(ann, 'psst').and(ann.page.locator('[data-delivery="sent"]')).waitFor({ timeout: T });
    await message(bob, 'psst').waitFor({ timeout: T });
    await message(ann, 'psst').getByText('Seen').waitFor({ timeout: T });
    await screenshot(ann.page, 'dm-seen');
  });

  test('a DM to a hidden tab raises a desktop notification', async () => {
    // Headless tabs are never hidden and have no notification centre: stand both in, in the page.
    await ann.page.evaluate(() => {
      window.__notes = [];
      window.Notification = class {
        static permission = 'granted';
        constructor(title, options) {
          window.__notes.push({ title, body: options.body });
        }
      };
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await send(bob, 'are you there?');
    await ann.page.waitForFunction(() => window.__notes.length > 0, null, { timeout: T });
    assert.deepEqual(await ann.page.evaluate(() => window.__notes), [
      { title: 'Bob', body: 'are you there?' },
    ]);
    await ann.page.evaluate(() => {
      delete document.visibilityState;
      document.dispatchEvent(new Event('visibilitychange'));
    });
  });

  test(`a channel of ${LONG} messages scrolls back to its beginning, virtualised`, async () => {
    const N = LONG;
    const waited = Date.now();
    const took = await long.done;
    console.log(
      `  Sam wrote ${N} messages in ${took.toFixed(1)} s, in the background (${((Date.now() - waited) / 1000).toFixed(1)} s waited for here)`,
    );
    // Ann lets anyone add her (a stranger may not, by default), and Sam adds her.
    const annToken = await ann.page.evaluate(() => JSON.parse(localStorage.getItem('natter.session')).access);
    await api(annToken, 'PATCH', `${services.origin}/api/v1/users/@me/settings`, {
      allow_channel_adds_from: 'everyone',
    });
    const sam = await signInQuietly();
    const channel = `${services.origin}/api/v1/channels/${long.id}`;
    await api(sam, 'POST', `${channel}/members`, { username: ANN }, 201);

    await sidebarLink(ann, 'long-history').click({ timeout: T });
    const log = ann.page.locator('[role="log"]');
    await ann.page.waitForFunction(
      () => Number(document.querySelector('[role="log"]')?.dataset.count) >= 50,
      null,
      { timeout: T },
    );
    // Scroll back page by page as a reader would, timing every frame while it happens and
    // counting the rows in the DOM at every frame.
    await ann.page.evaluate(() => {
      const w = window;
      w.__frames = [];
      w.__maxRows = 0;
      let last = performance.now();
      const tick = (now) => {
        w.__frames.push(now - last);
        w.__maxRows = Math.max(w.__maxRows, document.querySelectorAll('.vrow').length);
        last = now;
        if (!w.__stopFrames) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const started = Date.now();
    // Until the oldest line is rendered (the virtualised list renders only rows near the view),
    // which the page itself watches for while the wheel turns.
    let reached = false;
    const first = message(ann, 'line 0')
      .waitFor({ timeout: 180_000 })
      .catch(async () => {
        const count = await log.getAttribute('data-count');
        assert.fail(`the first line did not show within 3 minutes (${count} of ${N} loaded)`);
      })
      .finally(() => (reached = true));
    await log.hover();
    while (!reached) {
      await ann.page.mouse.wheel(0, -1500);
      await ann.page.waitForTimeout(30);
    }
    await first;
    const stats = await ann.page.evaluate(() => {
      window.__stopFrames = true;
      const f = window.__frames.slice(1).sort((a, b) => a - b);
      return {
        frames: f.length,
        p50: f[Math.floor(f.length * 0.5)],
        p95: f[Math.floor(f.length * 0.95)],
        maxRows: window.__maxRows,
      };
    });
    const { maxRows } = stats;
    const count = Number(await log.getAttribute('data-count'));
    console.log(
      `  scrolled back through ${count} messages in ${((Date.now() - started) / 1000).toFixed(1)} s; at most ${maxRows} rows in the DOM; frame p50 ${stats.p50.toFixed(1)} ms, p95 ${stats.p95.toFixed(1)} ms over ${stats.frames} frames`,
    );
    assert.equal(count, N, 'every message once');
    // Smoothness is what virtualising buys, and it is checked as such: a bounded number of rows
    // in the DOM however long the channel. The frame times above are a figure, not a test (a
    // loaded machine makes any bound on them flaky).
    assert.ok(maxRows < 120, `virtualised: ${maxRows} rows in the DOM`);
    await log.evaluate((el) => (el.scrollTop = 0));
    await ann.page.getByText('This is the beginning of the channel.').waitFor();
    await screenshot(ann.page, 'long-history');
    // Scrolled far up, a new message does not move the view; a button offers the way down.
    const edge = `http://127.0.0.1:${services.ports.edge1}`;
    await api(sam, 'POST', `${edge}/api/v1/channels/${long.id}/messages`, { content: 'the newest line' });
    await ann.page.getByRole('button', { name: 'New messages below' }).click({ timeout: T });
    await message(ann, 'the newest line').waitFor({ timeout: T });
    await message(ann, 'line 0').waitFor({ state: 'detached' });
  });

  test('a channel is renamed, loses a member, is left by another after asking, and is deleted by its owner', async () => {
    await sidebarLink(ann, 'random').click();
    await ann.page.getByRole('button', { name: 'Channel settings' }).click();
    const dialog = ann.page.getByRole('dialog');
    await dialog.getByLabel('Name', { exact: true }).fill('off-topic');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.getByLabel('Username to add').fill(BOB);
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await sidebarLink(bob, 'off-topic').waitFor({ timeout: T });
    await dialog.getByRole('button', { name: `Remove ${BOB}` }).click();
    const remove = ann.page.getByRole('dialog', { name: 'Remove Bob?' });
    await remove.getByRole('button', { name: 'Remove Bob' }).click();
    await remove.waitFor({ state: 'detached', timeout: T });
    await sidebarLink(bob, 'off-topic').waitFor({ state: 'detached', timeout: T });
    // Added again, Bob leaves by himself: he is asked first, and Cancel keeps him in.
    await dialog.getByLabel('Username to add').fill(BOB);
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await sidebarLink(bob, 'off-topic').click({ timeout: T });
    await bob.page.getByRole('button', { name: 'Channel settings' }).click();
    const bobs = bob.page.getByRole('dialog', { name: 'Channel settings: off-topic' });
    const leave = bob.page.getByRole('dialog', { name: 'Leave #off-topic?' });
    await bobs.getByRole('button', { name: 'Leave channel' }).click();
    await leave.getByRole('button', { name: 'Cancel' }).click();
    await leave.waitFor({ state: 'detached', timeout: T });
    assert.equal(await sidebarLink(bob, 'off-topic').count(), 1);
    await bobs.getByRole('button', { name: 'Leave channel' }).click();
    await leave.getByRole('button', { name: 'Leave channel' }).click();
    await sidebarLink(bob, 'off-topic').waitFor({ state: 'detached', timeout: T });
    await ann.page.getByRole('heading', { name: 'Members (1)' }).waitFor({ timeout: T });
    await dialog.getByRole('button', { name: 'Delete channel' }).click();
    await ann.page
      .getByRole('dialog', { name: 'Delete #off-topic?' })
      .getByRole('button', { name: 'Delete channel' })
      .click();
    await sidebarLink(ann, 'off-topic').waitFor({ state: 'detached', timeout: T });
    await ann.page.getByText('Pick a conversation').waitFor({ timeout: T });
  });

  test('a new display name shows on old messages for everyone', async () => {
    await sidebarLink(bob, 'general').click();
    await bob.page.getByRole('button', { name: 'Profile and settings' }).click();
    await bob.page.getByLabel('Display name').fill('Robert');
    await bob.page.getByRole('button', { name: 'Save profile' }).click();
    await bob.page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor({ timeout: T });
    await bob.page.getByRole('button', { name: 'Close' }).click();
    await sidebarLink(ann, 'general').click();
    await message(ann, 'hi ann!').getByText('Robert').waitFor({ timeout: T });
  });

  test('blocking someone hides their messages until shown, and unblocking brings them back', async () => {
    await sidebarLink(bob, 'general').click();
    await ann.page.getByRole('button', { name: 'Members' }).click();
    await ann.page.getByRole('button', { name: 'Options for Robert' }).click();
    await ann.page.getByRole('menuitem', { name: 'Block' }).click();
    await ann.page.locator(`.members li[data-user="${BOB}"]`).getByText('(blocked)').waitFor({ timeout: T });
    await send(bob, 'a word from someone blocked');
    // Ann sees that a message came, not what it says, until she asks to see it.
    const last = ann.page.locator('.blocked-row').last();
    await last.filter({ hasText: '1 blocked message' }).waitFor({ timeout: T });
    assert.equal(await message(ann, 'a word from someone blocked').count(), 0);
    assert.equal(await message(ann, 'bob while disconnected').count(), 0);
    await screenshot(ann.page, 'blocked-message');
    await last.getByRole('button', { name: 'Show' }).click();
    await message(ann, 'a word from someone blocked').waitFor({ timeout: T });
    // Unblocked in the privacy settings: everything he wrote shows again.
    await ann.page.getByRole('button', { name: 'Privacy' }).click();
    await ann.page.getByRole('button', { name: `Unblock ${BOB}` }).click();
    await ann.page.getByText('You block nobody.').waitFor({ timeout: T });
    await ann.page.getByRole('button', { name: 'Close' }).click();
    await message(ann, 'bob while disconnected').waitFor({ timeout: T });
    assert.equal(await ann.page.locator('.blocked-row').count(), 0);
    await ann.page.getByRole('button', { name: 'Members' }).click();
  });

  test('signing out ends the session, and a reload stays signed out', async () => {
    await bob.page.getByRole('button', { name: 'Profile and settings' }).click();
    await bob.page.getByRole('button', { name: 'Sign out' }).click();
    await bob.page.getByRole('heading', { name: 'Welcome back' }).waitFor({ timeout: T });
    await bob.page.reload();
    await bob.page.getByRole('heading', { name: 'Welcome back' }).waitFor({ timeout: T });
    assert.equal(await bob.page.evaluate(() => localStorage.getItem('natter.session')), null);
  });

  test('works at phone width', async () => {
    const phone = await person(browser, services, { name: 'phone', viewport: { width: 390, height: 844 } });
    await phone.page.goto('/');
    await phone.page.getByRole('button', { name: 'Sign in' }).waitFor();
    await phone.page.getByLabel('Username').fill(ANN);
    await phone.page.getByLabel('Password').fill(PASSWORD);
    await phone.page.getByRole('button', { name: 'Sign in' }).click();
    await sidebarLink(phone, 'general').click({ timeout: T });
    await phone.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    await send(phone, 'from my phone');
    await message(ann, 'from my phone').waitFor({ timeout: T });
    await message(phone, 'after the outage').waitFor({ timeout: T });
    const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no sideways scrolling (page is ${width}px wide)`);
    await screenshot(phone.page, 'phone');
    await phone.page.getByRole('button', { name: 'Show channels' }).click();
    await sidebarLink(phone, 'general').waitFor();
    await phone.context.close();
  });

  test('nothing in all of this tripped the Content-Security-Policy', () => {
    for (const p of people) assert.deepEqual(p.csp, [], `${p.name}: no CSP violations`);
  });
});
