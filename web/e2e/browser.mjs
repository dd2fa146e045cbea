// Debian's Chromium driven by playwright-core (its own browser download cannot work here), and
// the steps every e2e file shares: signing up and in, REST calls that set the stage, invites.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach } from 'node:test';
import { chromium } from 'playwright-core';

const CANDIDATES = [process.env.NATTER_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
  Boolean,
);

export async function launch() {
  const executablePath = CANDIDATES.find((p) => existsSync(p));
  if (!executablePath)
    throw new Error('no Chromium: run web/e2e/install-chromium.sh (apt-get install chromium)');
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
      // Hidden tabs must keep their timers, or heartbeats stall in background contexts.
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
      // Voice: a fake microphone and camera (a beep and a test pattern), allowed without a prompt,
      // and audio that plays without a gesture.
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** Everyone `person` made in this test file, so a last test can look at all of them. */
export const people = [];

/**
 * A person in their own browser context (own storage, own socket). `edge` pins which edge
 * discovery prefers for them, so two people can be made to talk across edges; when that edge is
 * gone, discovery's own answer is used.
 */
export async function person(browser, services, { name, edge, viewport = { width: 1280, height: 800 } }) {
  const context = await browser.newContext({ viewport, baseURL: services.origin });
  await context.route('**/api/v1/gateway', async (route) => {
    const res = await route.fetch();
    if (!res.ok()) return route.fulfill({ response: res });
    const body = await res.json();
    const urls = [body.url, ...body.alternatives];
    const preferred = edge ? services.edgeUrl(edge) : null;
    const ordered =
      preferred && urls.includes(preferred) ? [preferred, ...urls.filter((u) => u !== preferred)] : urls;
    await route.fulfill({ json: { ...body, url: ordered[0], alternatives: ordered.slice(1) } });
  });
  // Every Content-Security-Policy violation the page reports, across reloads: normal use must
  // cause none (the policy is strict, so anything it blocks is a bug in the client or the policy).
  const csp = [];
  await context.exposeBinding('__natterCspViolation', (_source, v) => void csp.push(v));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__natterCspViolation({
        directive: e.effectiveDirective,
        blocked: e.blockedURI,
        sample: e.sample,
        source: `${e.sourceFile}:${e.lineNumber}`,
      }),
    );
  });
  const page = await context.newPage();
  const errors = [];
  // The client asks in its own dialogs: a browser confirm() or prompt() is a bug (one left
  // unconverted). Alerts (a failure the client has no better place for) are accepted.
  page.on('dialog', (d) => {
    if (d.type() === 'confirm' || d.type() === 'prompt')
      errors.push(new Error(`a browser ${d.type()}(): ${d.message()}`));
    void d.accept();
  });
  const frames = [];
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      try {
        frames.push(JSON.parse(f.payload));
      } catch {
        // binary or not JSON
      }
    });
  });
  page.on('pageerror', (e) => errors.push(e));
  // The REST answers the page got (the last 40 kept, small JSON bodies with them): a step that
  // waits for what a request should bring shows what it brought.
  const responses = [];
  page.on('response', async (r) => {
    const url = new URL(r.url());
    if (!url.pathname.startsWith('/api/')) return;
    const at = new Date().toISOString();
    let body;
    const type = r.headers()['content-type'] ?? '';
    if (type.includes('json') && Number(r.headers()['content-length'] ?? 0) <= 4096) {
      body = await r.text().catch(() => undefined);
    }
    responses.push({
      at,
      method: r.request().method(),
      url: `${url.host}${url.pathname}${url.search}`,
      status: r.status(),
      body,
    });
    if (responses.length > 40) responses.shift();
  });
  const p = { name, context, page, frames, errors, csp, responses };
  people.push(p);
  return p;
}

// A step that fails leaves evidence of what each person saw: a screenshot of every page, and the
// gateway frames and REST answers it last received with its page errors (web/e2e/out/failures/). A step that
// passes on a rerun leaves the failure explained, or at least narrowed.
afterEach(async (t) => {
  if (t.passed) return;
  const dir = new URL('./out/failures/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  const step = t.name.replace(/[^\w-]+/g, '-').slice(0, 80);
  for (const p of people) {
    const file = join(dir, `${step}.${p.name}`);
    try {
      await p.page.screenshot({ path: `${file}.png`, timeout: 5_000 });
    } catch (e) {
      console.log(`# no screenshot of ${p.name}'s page: ${e.message}`);
    }
    const frames = p.frames.slice(-60).map((f) => ({ op: f.op, t: f.t, s: f.s, d: f.d }));
    const errors = p.errors.map((e) => String(e.stack ?? e));
    const { responses } = p;
    writeFileSync(`${file}.json`, JSON.stringify({ url: p.page.url(), errors, frames, responses }, null, 1));
  }
  console.log(`# step failed: each page's screenshot, last gateway frames and REST answers in ${dir}`);
});

export async function screenshot(page, name) {
  const dir = new URL('./out/screenshots/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
}

/** Everyone's password in e2e tests. */
export const PASSWORD = 'correct horse battery';

/** How long a step may take on a loaded machine, unless a file says otherwise. */
const T = 15_000;

/** `p` signs up through the page, and is in once the app is connected (its banner gone). */
export async function signUp(p, username, displayName, { timeout = T } = {}) {
  await p.page.goto('/');
  await p.page.getByRole('button', { name: 'Create an account' }).click();
  await p.page.getByLabel('Username').fill(username);
  await p.page.getByLabel('Display name').fill(displayName);
  await p.page.getByLabel('Password').fill(PASSWORD);
  await p.page.getByRole('button', { name: 'Sign up' }).click();
  await p.page.getByRole('navigation', { name: 'Channels and direct messages' }).waitFor({ timeout });
  await p.page.locator('.banner').waitFor({ state: 'detached', timeout });
}

/** `p` signs in through the page as `username` (made earlier). */
export async function signIn(p, username, { timeout = T } = {}) {
  await p.page.goto('/');
  await p.page.getByLabel('Username').fill(username);
  await p.page.getByLabel('Password').fill(PASSWORD);
  await p.page.getByRole('button', { name: 'Sign in' }).click();
  await p.page.getByRole('navigation', { name: 'Channels and direct messages' }).waitFor({ timeout });
}

/**
 * A REST call, as a script would make it (setting the stage; what is tested is done through the
 * page). `path` is under the origin (`/api/v1/…`) or a full URL (an edge's); the answer must have
 * `status`, or any 2xx when none is given. Returns the parsed body, or null when there is none.
 */
export async function api(services, token, method, path, body, status) {
  const url = /^https?:/.test(path) ? path : `${services.origin}${path}`;
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (status === undefined) assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  else assert.equal(res.status, status, `${method} ${path}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** An access token of `username`'s, from a sign-in of its own. */
export async function signInToken(services, username) {
  const r = await api(services, null, 'POST', '/api/v1/auth/sign-in', {
    username,
    password: PASSWORD,
  });
  return r.access_token;
}

/** An account made by REST: its id, username and an access token. */
export async function signUpByApi(services, username, displayName) {
  const r = await api(services, null, 'POST', '/api/v1/auth/sign-up', {
    username,
    password: PASSWORD,
    display_name: displayName,
  });
  return { id: r.user.id, username, token: r.access_token };
}

/** The access token `p`'s page holds. */
export async function tokenOf(p) {
  return p.page.evaluate(() => JSON.parse(localStorage.getItem('natter.session')).access);
}

/** The one holding `joinerToken` joins `guildId` by a fresh invite of `ownerToken`'s (REST). */
export async function joinByInvite(services, ownerToken, guildId, joinerToken) {
  const invite = await api(services, ownerToken, 'POST', `/api/v1/guilds/${guildId}/invites`, {});
  await api(services, joinerToken, 'POST', `/api/v1/invites/${invite.code}`);
}

/**
 * `owner` (a page, and its username) makes a server called `name` over REST, `joiner` joins it by
 * an invite, and both pages open its #general, ready to write. Returns the channel's id and the
 * owner's token.
 */
export async function inOneServer(
  services,
  [owner, ownerName],
  [joiner, joinerName],
  name,
  { timeout = T } = {},
) {
  const ownerToken = await signInToken(services, ownerName);
  const joinerToken = await signInToken(services, joinerName);
  const guild = await api(services, ownerToken, 'POST', '/api/v1/guilds', { name }, 201);
  const channel = guild.channels[0].id;
  await joinByInvite(services, ownerToken, guild.id, joinerToken);
  for (const p of [owner, joiner]) {
    await p.page.goto(`/#/c/${channel}`);
    await p.page.locator('.composer textarea').waitFor({ timeout });
  }
  return { channel, ownerToken };
}

/** Through `p`'s page: a day-long invite link to the open server. */
export async function inviteLink(p, { timeout = T } = {}) {
  await p.page.getByRole('button', { name: 'Invite people' }).click();
  const dialog = p.page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Create a link for a day' }).click();
  const field = dialog.getByLabel('Invite link');
  await field.waitFor({ timeout });
  const link = await field.inputValue();
  await dialog.getByRole('button', { name: 'Close' }).click();
  return link;
}

/**
 * `p` drops a `width` by `height` PNG named `name` (drawn in the page) on the composer and sends
 * it, waiting until the files have left the composer.
 */
export async function dropPhotoAndSend(p, name, width, height, { timeout = T } = {}) {
  const dropped = await p.page.evaluateHandle(
    async ([name, width, height]) => {
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      const g = canvas.getContext('2d');
      g.fillStyle = '#3a7';
      g.fillRect(0, 0, width, height);
      const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
      const transfer = new DataTransfer();
      transfer.items.add(new File([blob], name, { type: 'image/png' }));
      return transfer;
    },
    [name, width, height],
  );
  await p.page.locator('.composer').dispatchEvent('drop', { dataTransfer: dropped });
  await p.page.getByLabel('Files to send').getByText(name).waitFor({ timeout });
  await p.page.locator('.composer textarea').press('Enter');
  await p.page.getByLabel('Files to send').waitFor({ state: 'detached', timeout });
}

/**
 * Through `p`'s page: opens an invite link and joins `server`, landing in its #general, connected.
 * Opening the link loads the page anew; the invite works over REST while the gateway still
 * connects, so it waits for the "Connecting" banner to go as `signUp` does: a step after it that
 * expects a message live (a notification, say) would otherwise find it in READY instead.
 */
export async function joinByLink(p, link, server, { timeout = T } = {}) {
  await p.page.goto(link);
  await p.page.getByRole('button', { name: `Join ${server}` }).click({ timeout });
  await p.page.getByRole('heading', { name: 'general' }).waitFor({ timeout });
  await p.page.locator('.banner').waitFor({ state: 'detached', timeout });
}
