// End-to-end: Web Push in headless Chromium against real services (e2e/services.mjs, notify
// included). Bob is away; Ann mentions him; a push is delivered to Bob's service worker through
// the DevTools protocol (ServiceWorker.deliverPushMessage: Chromium's real push service needs
// Google's servers), the notification it shows is checked, and opening it leads to the channel at
// the message. The sending side (encryption, VAPID, who is pushed) is notify's integration tests'.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, person, screenshot } from './browser.mjs';
import { Services } from './services.mjs';

const PASSWORD = 'correct horse battery';
const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const T = 15_000;

let services;
let browser;
let bob;

async function rest(method, url, token, body) {
  const res = await fetch(url, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function signUp(username) {
  const body = await rest('POST', `${services.origin}/api/v1/auth/sign-up`, null, {
    username,
    password: PASSWORD,
  });
  return { id: body.user.id, token: body.access_token };
}

/** Polls `check` until it returns something truthy. */
async function eventually(what, check) {
  const until = Date.now() + 30_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < until, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  services = await new Services().start();
  browser = await launch();
  bob = await person(browser, services, { name: 'bob', edge: 'edge1' });
});

after(async () => {
  await browser?.close();
  await services?.stop();
});

test('a push reaches the service worker, shows a notification, and opens the channel at the message', async () => {
  const ann = await signUp(ANN);
  const bobUser = await signUp(BOB);
  const guild = await rest('POST', `${services.origin}/api/v1/guilds`, ann.token, { name: 'Club' });
  const general = guild.channels[0].id;
  const invite = await rest('POST', `${services.origin}/api/v1/guilds/${guild.id}/invites`, ann.token, {});
  await rest('POST', `${services.origin}/api/v1/invites/${invite.code}`, bobUser.token);

  // Bob signs in, allows notifications; the page registers its service worker.
  await bob.context.grantPermissions(['notifications'], { origin: services.origin });
  await bob.page.goto('/');
  await bob.page.getByLabel('Username').fill(BOB);
  await bob.page.getByLabel('Password').fill(PASSWORD);
  await bob.page.getByRole('button', { name: 'Sign in' }).click();
  await bob.page.getByRole('navigation', { name: 'Channels and direct messages' }).waitFor({ timeout: T });
  const cdp = await bob.context.newCDPSession(bob.page);
  const registrations = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
  await cdp.send('ServiceWorker.enable');
  await bob.page.evaluate(async () => {
    await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    await navigator.serviceWorker.ready;
  });
  const registration = await eventually('the service worker registration', () =>
    registrations.find((r) => r.scopeURL === `${services.origin}/` && !r.isDeleted),
  );

  // Bob goes away (his page leaves Natter); Ann mentions him.
  await bob.page.goto('about:blank');
  const edge = `http://127.0.0.1:${services.ports.edge1}`;
  const message = await rest('POST', `${edge}/api/v1/channels/${general}/messages`, ann.token, {
    content: `<@${bobUser.id}> the budget is due`,
  });

  // What notify sends, encrypted, is what the browser hands its worker decrypted.
  const payload = {
    channel_id: general,
    guild_id: guild.id,
    message_id: message.id,
    author_id: ann.id,
    author: ANN,
    body: message.content,
    count: 1,
  };
  await cdp.send('ServiceWorker.deliverPushMessage', {
    origin: `${services.origin}/`,
    registrationId: registration.registrationId,
    data: JSON.stringify(payload),
  });

  await bob.page.goto('/');
  const shown = await eventually('the notification', () =>
    bob.page.evaluate(async () => {
      const reg = await navigator.serviceWorker.ready;
      const all = await reg.getNotifications();
      return all.length ? all.map((n) => ({ title: n.title, body: n.body, data: n.data })) : null;
    }),
  );
  assert.equal(shown.length, 1);
  assert.equal(shown[0].title, ANN);
  assert.match(shown[0].body, /the budget is due/);
  const url = shown[0].data.url;
  assert.equal(url, `/channels/${guild.id}/${general}/${message.id}`);

  // Opening it (what the worker's notificationclick does) shows the channel with the message.
  await bob.page.goto(url);
  await bob.page.getByText('the budget is due').first().waitFor({ timeout: T });
  await screenshot(bob.page, 'push-opened');
  assert.deepEqual(bob.errors, []);
});
