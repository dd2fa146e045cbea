// End-to-end: a conversation in a server, two people on two edges, in headless Chromium against
// real services (e2e/services.mjs): Bob replies to Ann's message and she jumps to the original
// from its preview; both react and watch the count move; Ann pins a message and Bob finds it in
// the pins; Bob's mention of Ann raises her badges on the channel and the server and highlights
// the message; Markdown and a code block render while raw HTML and script stay text; the owner
// deletes Bob's message from the menu. Run with `npm run e2e -- e2e/conversation.e2e.mjs`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { inviteLink, joinByLink, launch, person, screenshot, signUp } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const SERVER = 'Talk club';
const T = 15_000;

let services;
let browser;
let ann;
let bob;

const messages = (p) => p.page.locator('[role="log"] article');
const message = (p, text) => messages(p).filter({ hasText: text });
const composer = (p) => p.page.locator('.composer textarea');
const rail = (p) => p.page.getByRole('navigation', { name: 'Servers' });
const channelList = (p) => p.page.getByRole('navigation', { name: `${SERVER} channels` });
const channelLink = (p, name) => channelList(p).getByRole('link', { name: new RegExp(`^${name}( |$)`) });

async function send(p, text) {
  await composer(p).fill(text);
  await composer(p).press('Enter');
}

/** Opens a message's menu ("…" on hover) and picks an item. */
async function fromMenu(p, text, item) {
  await message(p, text).first().hover();
  await message(p, text).first().getByRole('button', { name: 'More actions' }).click();
  await p.page.getByRole('menu', { name: 'Message actions' }).getByRole('menuitem', { name: item }).click();
}

async function myId(p) {
  return p.page.evaluate(() => JSON.parse(localStorage.getItem('natter.session')).user.id);
}

before(async () => {
  services = await new Services().start();
  browser = await launch();
  ann = await person(browser, services, { name: 'ann', edge: 'edge1' });
  bob = await person(browser, services, { name: 'bob', edge: 'edge2' });
});

after(async () => {
  for (const p of [ann, bob]) if (p?.errors.length) console.error(`${p.name}: page errors`, p.errors);
  await browser?.close();
  await services?.stop();
});

describe('replies, reactions, pins, mentions and formatting', () => {
  test('Ann makes a server and Bob joins it by an invite', async () => {
    await Promise.all([signUp(ann, ANN, 'Ann', { timeout: T }), signUp(bob, BOB, 'Bob', { timeout: T })]);
    await ann.page.getByRole('button', { name: 'Add a server' }).click();
    await ann.page.getByLabel('Server name').fill(SERVER);
    await ann.page.getByRole('button', { name: 'Create server' }).click();
    await ann.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    await joinByLink(bob, await inviteLink(ann, { timeout: T }), SERVER, { timeout: T });
  });

  test('Bob replies to Ann, and Ann jumps from the preview to the original', async () => {
    await send(ann, 'Lunch at noon?');
    await message(bob, 'Lunch at noon?').waitFor({ timeout: T });
    await fromMenu(bob, 'Lunch at noon?', 'Reply');
    await bob.page.getByRole('status').filter({ hasText: 'Replying to' }).waitFor({ timeout: T });
    await send(bob, 'Yes, the usual place');
    const reply = message(ann, 'Yes, the usual place');
    await reply.waitFor({ timeout: T });
    const preview = reply.getByRole('button', { name: /Reply to Ann/ });
    await preview.waitFor({ timeout: T });
    assert.match(await preview.innerText(), /Lunch at noon\?/);
    await preview.click();
    await message(ann, 'Lunch at noon?').and(ann.page.locator('.flash')).waitFor({ timeout: T });
    await screenshot(ann.page, 'conversation-reply');
  });

  test('both react and see the count change live', async () => {
    await fromMenu(ann, 'Lunch at noon?', 'React 👍');
    const bobs = message(bob, 'Lunch at noon?').getByRole('button', { name: '👍 1' });
    await bobs.waitFor({ timeout: T });
    await bobs.click();
    await message(ann, 'Lunch at noon?').getByRole('button', { name: '👍 2' }).waitFor({ timeout: T });
    await message(bob, 'Lunch at noon?').getByRole('button', { name: '👍 2' }).waitFor({ timeout: T });
  });

  test('Ann pins a message and Bob finds it in the pins', async () => {
    await fromMenu(ann, 'Lunch at noon?', 'Pin message');
    await bob.page.locator('.system-message').filter({ hasText: 'pinned' }).waitFor({ timeout: T });
    await bob.page.getByRole('button', { name: 'Pinned messages' }).click();
    const pins = bob.page.getByRole('dialog', { name: 'Pinned messages' });
    await pins.getByText('Lunch at noon?').waitFor({ timeout: T });
    await bob.page.getByRole('button', { name: 'Close pins' }).click();
  });

  test("Bob's mention of Ann raises her badges and highlights the message", async () => {
    const annId = await myId(ann);
    // Ann looks elsewhere (her direct messages), so general stays unread for her.
    await rail(ann).getByRole('link', { name: 'Direct messages' }).click();
    await send(bob, `<@${annId}> are you coming?`);
    await rail(ann).getByRole('link', { name: SERVER }).getByLabel('1 mentions').waitFor({ timeout: T });
    await rail(ann).getByRole('link', { name: SERVER }).click();
    await channelList(ann).waitFor({ timeout: T });
    // Opening the server opens general, which reads it; the badge was there until then.
    const mentioned = message(ann, 'are you coming?');
    await mentioned.and(ann.page.locator('[data-mentioned="true"]')).waitFor({ timeout: T });
    assert.equal(await mentioned.locator('.mention.me').innerText(), '@Ann');
    await channelLink(ann, 'general').getByLabel('1 mentions').waitFor({ state: 'detached', timeout: T });
  });

  test('Markdown and a code block render; raw HTML and script stay text', async () => {
    await composer(bob).fill('**bold move**\n```rust\nfn main() {}\n```');
    await composer(bob).press('Enter');
    const formatted = message(ann, 'bold move');
    await formatted.locator('strong', { hasText: 'bold move' }).waitFor({ timeout: T });
    await formatted.locator('pre code.language-rust .hljs-keyword', { hasText: 'fn' }).waitFor();
    const raw = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">';
    await send(bob, raw);
    const shown = message(ann, 'window.pwned = 1');
    await shown.waitFor({ timeout: T });
    assert.match(await shown.locator('.content').innerText(), /<script>window\.pwned = 1<\/script><img/);
    assert.equal(await shown.locator('script, img').count(), 0);
    assert.equal(await ann.page.evaluate(() => window.pwned), undefined);
    await screenshot(ann.page, 'conversation-formatting');
  });

  test("the owner deletes Bob's message from the menu, after confirming", async () => {
    await fromMenu(ann, 'are you coming?', 'Delete message');
    await ann.page
      .getByRole('dialog', { name: 'Delete this message?' })
      .getByRole('button', { name: 'Delete message' })
      .click({ timeout: T });
    await message(bob, 'are you coming?').waitFor({ state: 'detached', timeout: T });
    await message(ann, 'are you coming?').waitFor({ state: 'detached', timeout: T });
  });
});
