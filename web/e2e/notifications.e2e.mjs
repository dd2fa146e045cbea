// End-to-end: notifications in the web client, in headless Chromium against real services
// (e2e/services.mjs, notify included). Ann mentions Bob while Bob's tab is in the background: a
// desktop notification comes, the tab's title and favicon show the unread count, and Bob's "@"
// inbox lists the mention; clicking it opens the channel at the message. Bob mutes the channel
// from its bell menu; Ann's next message raises no desktop notification. Ann edits a mention of
// Bob into a message and out again: his inbox follows, and the edit notifies nobody. Headless Chromium shows
// no desktop notifications and cannot hide a tab, so the page's Notification is a recorder and
// the tab's visibility is set by hand (both before the app loads, through an init script).
// Run with `npm run e2e -- e2e/notifications.e2e.mjs`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { inviteLink, joinByLink, launch, person, screenshot, signUp } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const SERVER = 'Budget club';
const T = 30_000;

let services;
let browser;
let ann;
let bob;

const messages = (p) => p.page.locator('[role="log"] article');
const message = (p, text) => messages(p).filter({ hasText: text });
const composer = (p) => p.page.locator('.composer textarea');
const channelList = (p) => p.page.getByRole('navigation', { name: `${SERVER} channels` });

async function send(p, text) {
  await composer(p).fill(text);
  await composer(p).press('Enter');
}

/** Edits `p`'s last message to `text`: up in the empty composer, as in Discord. */
async function editLast(p, text) {
  await composer(p).focus();
  await composer(p).press('ArrowUp');
  const box = p.page.getByRole('textbox', { name: 'Edit message' });
  await box.fill(text);
  await box.press('Enter');
  await box.waitFor({ state: 'detached', timeout: T });
}

async function myId(p) {
  return p.page.evaluate(() => JSON.parse(localStorage.getItem('natter.session')).user.id);
}

/** Puts Bob's tab in the background (or back), as switching tabs would. */
async function hidden(p, yes) {
  await p.page.evaluate((h) => window.__setHidden(h), yes);
}

/** The desktop notifications the page has made so far. */
async function notes(p) {
  return p.page.evaluate(() => window.__notes.map((n) => ({ title: n.title, body: n.body })));
}

before(async () => {
  services = await new Services().start();
  browser = await launch();
  ann = await person(browser, services, { name: 'ann', edge: 'edge1' });
  bob = await person(browser, services, { name: 'bob', edge: 'edge2' });
  await bob.context.addInitScript(() => {
    window.__notes = [];
    window.Notification = class {
      static permission = 'granted';
      static requestPermission = async () => 'granted';
      constructor(title, options = {}) {
        this.title = title;
        this.body = options.body ?? '';
        this.onclick = null;
        window.__notes.push(this);
      }
      close() {}
    };
    let isHidden = false;
    Object.defineProperty(document, 'visibilityState', {
      configurable: true,
      get: () => (isHidden ? 'hidden' : 'visible'),
    });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => isHidden });
    window.__setHidden = (h) => {
      isHidden = h;
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
});

after(async () => {
  for (const p of [ann, bob]) if (p?.errors.length) console.error(`${p.name}: page errors`, p.errors);
  await browser?.close();
  await services?.stop();
});

describe('notifications', () => {
  test('Ann makes a server and Bob joins it by an invite', async () => {
    await Promise.all([signUp(ann, ANN, 'Ann', { timeout: T }), signUp(bob, BOB, 'Bob', { timeout: T })]);
    await ann.page.getByRole('button', { name: 'Add a server' }).click();
    await ann.page.getByLabel('Server name').fill(SERVER);
    await ann.page.getByRole('button', { name: 'Create server' }).click();
    await ann.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    await joinByLink(bob, await inviteLink(ann, { timeout: T }), SERVER, { timeout: T });
  });

  test("Ann mentions Bob while his tab is hidden: a desktop notification, the tab's count and the inbox", async () => {
    const bobId = await myId(bob);
    await hidden(bob, true);
    await send(ann, `<@${bobId}> the budget is due`);
    await message(ann, 'the budget is due')
      .waitFor({ timeout: T })
      .catch(async (e) => {
        await screenshot(ann.page, 'notifications-ann-failed');
        await screenshot(bob.page, 'notifications-bob-failed');
        throw e;
      });
    await message(bob, 'the budget is due')
      .waitFor({ timeout: T })
      .catch(async (e) => {
        await screenshot(bob.page, 'notifications-bob-failed');
        throw e;
      });
    await bob.page.waitForFunction(() => window.__notes.length >= 1, null, { timeout: T });
    const [first] = await notes(bob);
    assert.equal(first.title, `Ann in #general (${SERVER})`);
    assert.match(first.body, /the budget is due/);

    // The tab says it: "(1) Natter" and a badge drawn on the favicon.
    await bob.page.waitForFunction(() => document.title === '(1) Natter', null, { timeout: T });
    await bob.page.locator('html[data-unread-badge="1"]').waitFor({ state: 'attached', timeout: T });
    const icon = await bob.page.locator('link[rel~="icon"]').first().getAttribute('href');
    assert.match(icon, /^blob:/);

    // A plain message notifies too (a small server's default is all messages).
    await send(ann, 'and the receipts');
    await bob.page.waitForFunction(() => window.__notes.length >= 2, null, { timeout: T });
    await bob.page.waitForFunction(() => document.title === '(2) Natter', null, { timeout: T });

    // The "@" inbox lists the mention (notify writes it a moment later; the list looks again).
    await bob.page.getByRole('button', { name: 'Mentions inbox' }).click();
    const inbox = bob.page.getByRole('dialog', { name: 'Recent mentions' });
    const entry = inbox.locator('.inbox-entry').filter({ hasText: 'the budget is due' });
    await entry.waitFor({ timeout: T });
    assert.match(await entry.innerText(), /Ann/);
    assert.match(await entry.innerText(), new RegExp(`#general · ${SERVER}`));
    assert.match(await entry.innerText(), /@bob_/, 'the mention shows by name');
    await screenshot(bob.page, 'notifications-inbox');

    // Clicking it opens the channel at the message (highlighted, as a jump does).
    await entry.getByRole('button', { name: /the budget is due/ }).click();
    await inbox.waitFor({ state: 'detached', timeout: T });
    await message(bob, 'the budget is due').and(bob.page.locator('.flash')).waitFor({ timeout: T });

    // Back in the tab: the channel is read, the count and the badge go, and so does the entry.
    await hidden(bob, false);
    await bob.page.waitForFunction(() => document.title === 'Natter', null, { timeout: T });
    await bob.page.locator('html[data-unread-badge]').waitFor({ state: 'detached', timeout: T });
    await bob.page.getByRole('button', { name: 'Mentions inbox' }).click();
    await inbox.getByText('Nothing needs you').waitFor({ timeout: T });
    await inbox.getByRole('button', { name: 'Close' }).click();
  });

  test("Bob mutes the channel from its bell; Ann's next message raises no desktop notification", async () => {
    await bob.page.getByRole('button', { name: 'Notification settings', exact: true }).click();
    const bell = bob.page.getByRole('dialog', { name: 'Notifications: #general' });
    await bell.getByRole('button', { name: 'Mute #general for 1 hour' }).click();
    await bell.getByText(/^Muted until/).waitFor({ timeout: T });
    await bell.getByRole('button', { name: 'Close' }).click();
    // The channel looks muted in the list.
    await channelList(bob)
      .locator('.channel-link.is-muted')
      .filter({ hasText: 'general' })
      .waitFor({ timeout: T });
    await screenshot(bob.page, 'notifications-muted');

    const before = (await notes(bob)).length;
    await hidden(bob, true);
    await send(ann, 'anyone for lunch?');
    await message(bob, 'anyone for lunch?').waitFor({ timeout: T });
    // The message has been handled (it counts as unread in the hidden tab), and told nobody.
    await bob.page.waitForFunction(() => document.title === '(1) Natter', null, { timeout: T });
    assert.equal((await notes(bob)).length, before, 'a muted channel raised a desktop notification');

    // Unmuted from the bell again, the next one notifies.
    await hidden(bob, false);
    await bob.page.getByRole('button', { name: 'Notification settings', exact: true }).click();
    await bell.getByRole('button', { name: 'Unmute #general' }).click();
    await bell.getByRole('button', { name: /Mute #general for 1 hour/ }).waitFor({ timeout: T });
    await bell.getByRole('button', { name: 'Close' }).click();
    await hidden(bob, true);
    await send(ann, 'lunch is at one');
    await bob.page.waitForFunction((n) => window.__notes.length > n, before, { timeout: T });
    await hidden(bob, false);
    assert.deepEqual(bob.errors, []);
    assert.deepEqual(ann.errors, []);
  });

  test('Ann edits a mention of Bob in and out: his inbox follows, and the edit notifies nobody', async () => {
    const bobId = await myId(bob);
    await hidden(bob, true);
    const before = (await notes(bob)).length;
    await send(ann, 'the minutes are up');
    await message(bob, 'the minutes are up').waitFor({ timeout: T });
    await bob.page.waitForFunction((n) => window.__notes.length > n, before, { timeout: T });
    const told = (await notes(bob)).length;

    // Up in the empty composer edits one's last message: now it mentions Bob.
    await editLast(ann, `<@${bobId}> the minutes are up, read them`);
    await message(bob, 'read them').getByText('(edited)').waitFor({ timeout: T });
    await bob.page.getByRole('button', { name: 'Mentions inbox' }).click();
    const inbox = bob.page.getByRole('dialog', { name: 'Recent mentions' });
    const entry = inbox.locator('.inbox-entry').filter({ hasText: 'read them' });
    await entry.waitFor({ timeout: T });
    assert.match(await entry.innerText(), /@bob_/, 'the mention shows by name');
    assert.equal((await notes(bob)).length, told, 'an edit raised a desktop notification');

    // Edited again, the mention gone: the entry leaves, here at once and on the server.
    await editLast(ann, 'the minutes are up, no rush');
    await entry.waitFor({ state: 'detached', timeout: T });
    await inbox.getByRole('button', { name: 'Close' }).click();
    await bob.page.getByRole('button', { name: 'Mentions inbox' }).click();
    await inbox.getByText('Nothing needs you').waitFor({ timeout: T });
    await inbox.getByRole('button', { name: 'Close' }).click();
    await hidden(bob, false);
    assert.deepEqual(bob.errors, []);
    assert.deepEqual(ann.errors, []);
  });
});
