// End-to-end: the web client as a person uses it, and how auth serves it. Sends leave in the order
// typed even when the edge says slow down; fast scrolling reaches a channel's first message; the
// phone drawer closes; Do Not Disturb silences notifications; dialogs give focus back; and the page
// is served compressed, cached and under a strict Content-Security-Policy that normal use never
// trips. Ann's edge keeps the production send rate (5 messages per 5 s per channel).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, PASSWORD, people, person, screenshot, signUp } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const T = 15_000;

let services;
let browser;
let ann;
let bob;

const messages = (p) => p.page.locator('[role="log"] article');
const message = (p, text) => messages(p).filter({ hasText: text });
const content = (p, text) => p.page.locator('[role="log"] article .content', { hasText: text });
const composer = (p) => p.page.locator('.composer textarea');
const nav = (p) => p.page.getByRole('navigation', { name: 'Channels and direct messages' });
const sidebarLink = (p, name) => nav(p).getByRole('link', { name: new RegExp(name) });
const focused = (p) =>
  p.page.evaluate(
    () => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.tagName,
  );

const open = (name, options = {}) => person(browser, services, { name, ...options });

async function setStatus(p, label) {
  await p.page.getByRole('button', { name: 'Profile and settings' }).click();
  await p.page.getByLabel('Status').selectOption(label);
  await p.page.getByRole('button', { name: 'Save profile' }).click();
  await p.page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor({ timeout: T });
  await p.page.getByRole('button', { name: 'Close' }).click();
}

/** Posts through the edge's REST route (edge 1, which allows fast sends), as the page's user. */
async function seed(p, channelId, count) {
  const token = await tokenOf(p);
  const edge = `http://127.0.0.1:${services.ports.edge1}`;
  const post = async (i) => {
    const res = await fetch(`${edge}/api/v1/channels/${channelId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: `line ${i}`, nonce: `seed-${channelId}-${i}` }),
    });
    assert.equal(res.status, 200, await res.text());
  };
  // The first alone, so it is the oldest; the rest 16 at a time.
  await post(0);
  let next = 1;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) await post(next++);
    }),
  );
}

const tokenOf = (p) => p.page.evaluate(() => JSON.parse(localStorage.getItem('natter.session')).access);

/**
 * Lets anyone add `p` to channels, through the REST API: by default only people who share a
 * channel may, and the privacy dialog that changes it is chat.e2e.mjs's to test, not this file's.
 */
async function letAnyoneAdd(p) {
  const res = await fetch(`${services.origin}/api/v1/users/@me/settings`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${await tokenOf(p)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ allow_channel_adds_from: 'everyone' }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** A channel made through the REST API: it shows in the sidebar, its messages are not loaded. */
async function createChannelQuietly(p, name) {
  const res = await fetch(`${services.origin}/api/v1/channels`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await tokenOf(p)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, body);
  return JSON.parse(body).id;
}

async function createChannel(p, name) {
  await p.page.getByRole('button', { name: 'Create a channel' }).click();
  await p.page.getByLabel('Name').fill(name);
  await p.page.getByRole('button', { name: 'Create channel' }).click();
  await p.page.getByRole('heading', { name }).waitFor({ timeout: T });
  return /#\/c\/(\d+)/.exec(p.page.url())[1];
}

before(async () => {
  // Ann's edge limits sends as production does (its default, written out): a burst of five
  // messages per channel, then one a second.
  services = await new Services({ edgeEnv: { edge2: { NATTER_SEND_RATE: '5/5s' } } }).start();
  browser = await launch();
  ann = await open('ann', { edge: 'edge2' });
  bob = await open('bob', { edge: 'edge1' });
  await Promise.all([signUp(ann, ANN, 'Ann'), signUp(bob, BOB, 'Bob')]);
  await letAnyoneAdd(bob);
});

after(async () => {
  for (const p of people) if (p.errors.length) console.error(`${p.name}: page errors`, p.errors);
  await browser?.close();
  await services?.stop();
});

describe('the web client as a person uses it', () => {
  test('a dialog gives focus back to what opened it, closed by its button or by Escape', async () => {
    await createChannel(ann, 'orderly');
    await ann.page.getByRole('button', { name: 'Channel settings' }).click();
    const dialog = ann.page.getByRole('dialog');
    await dialog.getByLabel('Username to add').fill(BOB);
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.getByText(`@${BOB}`).waitFor({ timeout: T });
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await focused(ann), 'Channel settings');

    await ann.page.getByRole('button', { name: 'Profile and settings' }).click();
    await dialog.waitFor();
    await ann.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await focused(ann), 'Profile and settings');
  });

  test('eight messages typed quickly leave in the order typed, and the client says to slow down', async () => {
    await sidebarLink(bob, 'orderly').click({ timeout: T });
    await bob.page.getByRole('heading', { name: 'orderly' }).waitFor();
    const texts = Array.from({ length: 8 }, (_, i) => `quick ${i + 1} of 8`);
    const notice = 'You are sending messages too quickly';
    // Whether the client ever says so, however briefly.
    await ann.page.evaluate((text) => {
      window.__slowDownSeen = false;
      new MutationObserver(() => {
        const statuses = [...document.querySelectorAll('[role="status"]')];
        if (statuses.some((el) => el.textContent?.includes(text))) window.__slowDownSeen = true;
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    }, notice);
    // Typed in the page, 150 ms apart on the page's own clock, through the composer's handlers (a
    // change, then Enter): a loaded machine cannot slow the typing down below the edge's limit.
    await composer(ann).focus();
    await ann.page.evaluate(async (texts) => {
      const box = document.querySelector('.composer textarea');
      const setValue = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
      for (const text of texts) {
        setValue.call(box, text);
        box.dispatchEvent(new Event('input', { bubbles: true }));
        box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
        await new Promise((r) => setTimeout(r, 150));
      }
    }, texts);
    await screenshot(ann.page, 'slow-down');
    for (const text of texts) {
      await message(ann, text).and(ann.page.locator('[data-delivery="sent"]')).waitFor({ timeout: 30_000 });
      await message(bob, text).waitFor({ timeout: T });
    }
    const shown = async (p) =>
      (await messages(p).locator('.content').allInnerTexts()).filter((x) => x.startsWith('quick '));
    // Bob's list is in stored (id) order: what everyone sees, for good.
    assert.deepEqual(await shown(bob), texts);
    assert.deepEqual(await shown(ann), texts);
    await bob.page.reload();
    await message(bob, texts[7]).waitFor({ timeout: T });
    assert.deepEqual(await shown(bob), texts);
    // The edge allows five at once: the sixth was refused, and the client said so while it waited.
    const refused = ann.frames.filter((f) => f.op === 25 && f.d?.code === 'rate_limited');
    assert.ok(refused.length > 0, 'the edge refused some (else this test proves nothing)');
    assert.ok(await ann.page.evaluate(() => window.__slowDownSeen), `"${notice}" was shown`);
    await ann.page.getByText(notice).waitFor({ state: 'detached', timeout: T });
  });

  test('scrolling up fast through 300 messages reaches the first one', async () => {
    const N = 300;
    const id = await createChannelQuietly(ann, 'fast-scroll');
    await seed(ann, id, N);
    await sidebarLink(ann, 'fast-scroll').click({ timeout: T });
    const log = ann.page.locator('[role="log"]');
    await ann.page.waitForFunction(
      () => Number(document.querySelector('[role="log"]')?.dataset.count) >= 50,
      null,
      { timeout: T },
    );
    // A fling to the top: 400 px a frame (24,000 px/s), never pausing for a page to land. Slow
    // scrolling always worked; this once left the list at the top of the second page for good.
    await log.evaluate((el) => {
      window.__fling = true;
      const step = () => {
        el.scrollTop -= 400;
        if (window.__fling) requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    });
    try {
      await content(ann, /^line 0$/).waitFor({ timeout: 30_000 });
    } catch {
      const count = await log.getAttribute('data-count');
      assert.fail(`the first message never showed: stuck with ${count} of ${N} loaded`);
    } finally {
      await ann.page.evaluate(() => (window.__fling = false));
    }
    assert.equal(Number(await log.getAttribute('data-count')), N, 'every message once');
    await ann.page.getByText('This is the beginning of the channel.').waitFor();
  });

  test('at phone width the channel drawer closes: same channel, close button, Escape, outside', async () => {
    const phone = await open('phone', { viewport: { width: 390, height: 844 } });
    await phone.page.goto('/');
    await phone.page.getByLabel('Username').fill(ANN);
    await phone.page.getByLabel('Password').fill(PASSWORD);
    await phone.page.getByRole('button', { name: 'Sign in' }).click();
    await sidebarLink(phone, 'orderly').click({ timeout: T });
    await phone.page.getByRole('heading', { name: 'orderly' }).waitFor({ timeout: T });
    await nav(phone).waitFor({ state: 'hidden' });
    const menu = phone.page.getByRole('button', { name: 'Show channels' });

    await menu.click();
    await nav(phone).waitFor();
    await phone.page.waitForFunction(
      () => getComputedStyle(document.querySelector('.sidebar')).transform === 'none',
    );
    await screenshot(phone.page, 'phone-drawer');
    await sidebarLink(phone, 'orderly').click(); // the channel already open
    await nav(phone).waitFor({ state: 'hidden', timeout: T });

    await menu.click();
    await nav(phone).waitFor();
    await phone.page.keyboard.press('Escape');
    await nav(phone).waitFor({ state: 'hidden', timeout: T });
    assert.equal(await focused(phone), 'Show channels');

    await menu.click();
    await nav(phone).waitFor();
    await phone.page.getByRole('button', { name: 'Close channels' }).click();
    await nav(phone).waitFor({ state: 'hidden', timeout: T });

    await menu.click();
    await nav(phone).waitFor();
    await phone.page.mouse.click(385, 420); // the strip of conversation beside the drawer
    await nav(phone).waitFor({ state: 'hidden', timeout: T });

    // Another channel still opens from the drawer.
    await menu.click();
    await sidebarLink(phone, 'fast-scroll').click();
    await phone.page.getByRole('heading', { name: 'fast-scroll' }).waitFor({ timeout: T });
    await nav(phone).waitFor({ state: 'hidden', timeout: T });
    await phone.context.close();
  });

  test('no desktop notification for a DM while Do Not Disturb', async () => {
    // Headless tabs are never hidden and have no notification centre: stand both in, in the page.
    await ann.page.evaluate(() => {
      window.__notes = [];
      window.Notification = class {
        static permission = 'granted';
        constructor(title, options) {
          window.__notes.push({ title, body: options.body });
        }
      };
    });
    await setStatus(ann, 'dnd');
    await ann.page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await bob.page.getByRole('button', { name: 'Start a direct message' }).click();
    await bob.page.getByLabel('Username').fill(ANN);
    await bob.page.getByRole('button', { name: 'Open conversation' }).click();
    await bob.page.locator('.channel-title', { hasText: 'Ann' }).waitFor({ timeout: T });
    await composer(bob).fill('are you busy?');
    await composer(bob).press('Enter');
    // It reached Ann (her unread badge), and raised nothing.
    await sidebarLink(ann, 'Bob').locator('.badge').waitFor({ timeout: T });
    assert.deepEqual(await ann.page.evaluate(() => window.__notes), []);

    // Back online, the next DM does notify: the stand-in works.
    await ann.page.evaluate(() => {
      delete document.visibilityState;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await setStatus(ann, 'online');
    await ann.page.evaluate(() =>
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' }),
    );
    await composer(bob).fill('now?');
    await composer(bob).press('Enter');
    await ann.page.waitForFunction(() => window.__notes.length > 0, null, { timeout: T });
    assert.deepEqual(await ann.page.evaluate(() => window.__notes), [{ title: 'Bob', body: 'now?' }]);
    await ann.page.evaluate(() => {
      delete document.visibilityState;
      document.dispatchEvent(new Event('visibilitychange'));
    });
  });
});

describe('how auth serves the client', () => {
  const get = (path, headers = {}) => fetch(services.origin + path, { headers, redirect: 'manual' });

  test('compressed as the browser asks, hashed assets cached for good, the page never', async () => {
    const page = await get('/', { 'accept-encoding': 'br, gzip' });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-encoding'), 'br');
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    const html = await page.text();
    const script = /<script[^>]+src="([^"]+\.js)"/.exec(html)[1];
    assert.match(script, /^\/assets\//);
    for (const [accept, encoding] of [
      ['br, gzip', 'br'],
      ['gzip', 'gzip'],
      ['identity', null],
    ]) {
      const res = await get(script, { 'accept-encoding': accept });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-encoding'), encoding, `for Accept-Encoding: ${accept}`);
      assert.match(res.headers.get('vary') ?? '', /accept-encoding/i);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.ok((await res.text()).length > 10_000, 'the whole script');
    }
  });

  test('a real icon at /favicon.ico, a 404 for a missing file, the page for client routes', async () => {
    const icon = await get('/favicon.ico');
    assert.equal(icon.status, 200);
    assert.match(icon.headers.get('content-type'), /icon/);
    assert.deepEqual([...new Uint8Array(await icon.arrayBuffer()).slice(0, 4)], [0, 0, 1, 0]);
    for (const path of ['/assets/missing.js', '/robots.txt']) {
      const res = await get(path);
      assert.equal(res.status, 404, path);
      assert.equal((await res.json()).code, 'not_found');
    }
    const route = await get('/c/123');
    assert.equal(route.status, 200);
    assert.match(await route.text(), /<div id="root">/);
  });

  test('the page carries a strict Content-Security-Policy, and normal use trips none of it', async () => {
    const csp = (await get('/')).headers.get('content-security-policy');
    assert.ok(csp, 'a Content-Security-Policy header');
    const directives = Object.fromEntries(
      csp.split(';').map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name, values];
      }),
    );
    assert.deepEqual(directives['script-src'], ["'self'"]);
    assert.deepEqual(directives['style-src'], ["'self'"]);
    assert.deepEqual(directives['object-src'], ["'none'"]);
    assert.deepEqual(directives['base-uri'], ["'none'"]);
    assert.deepEqual(directives['frame-ancestors'], ["'none'"]);
    for (const edge of ['edge1', 'edge2']) {
      const port = services.ports[edge];
      for (const origin of [`http://127.0.0.1:${port}`, `ws://127.0.0.1:${port}`])
        assert.ok(directives['connect-src'].includes(origin), `connect-src allows ${origin}`);
    }
    assert.ok(!/unsafe-(inline|eval)/.test(csp), csp);
    for (const p of people) assert.deepEqual(p.csp, [], `${p.name}: no CSP violations`);
  });

  test('an injected inline script and code from a string are blocked', async () => {
    // What a script injected into the page would try: an inline <script>, and code built from a
    // string once this evaluation is over (DevTools allows eval inside its own evaluations).
    const outcome = await ann.page.evaluate(async () => {
      const s = document.createElement('script');
      s.textContent = 'window.__injected = true';
      document.body.append(s);
      setTimeout('window.__fromString = true', 0);
      await new Promise((r) => setTimeout(r, 200));
      return { inline: window.__injected === true, fromString: window.__fromString === true };
    });
    assert.deepEqual(outcome, { inline: false, fromString: false });
    await ann.page.waitForTimeout(200); // violation reports are delivered asynchronously
    const blocked = ann.csp.map((v) => v.blocked);
    assert.ok(blocked.includes('inline') && blocked.includes('eval'), JSON.stringify(ann.csp));
  });
});
