// End-to-end: search in a server, in headless Chromium against real services (e2e/services.mjs,
// the search service included). Ann said something about the budget long ago (400 messages
// back, beyond what the channel loads by scrolling); Bob searches "from:ann budget", sees the hit
// with its context, and jumps to it: the channel opens at that message (history `around=` it),
// highlighted, and "Jump to present" takes him back. A reply's preview jumps the same way.
// Run with `npm run e2e -- e2e/search.e2e.mjs`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, inviteLink, joinByLink, launch, person, screenshot, signInToken, signUp } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const SERVER = 'Budget club';
const T = 30_000;
const FILLER = 400;

let services;
let browser;
let ann;
let bob;

const messages = (p) => p.page.locator('[role="log"] article');
const message = (p, text) => messages(p).filter({ hasText: text });

/** Posts through edge 1's REST API, as a script would: quicker than typing 400 messages. */
async function post(accessToken, channel, content, extra = {}) {
  const edge = `http://127.0.0.1:${services.ports.edge1}`;
  return api(services, accessToken, 'POST', `${edge}/api/v1/channels/${channel}/messages`, {
    content,
    ...extra,
  });
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

describe('search', () => {
  let general;
  let budget;

  test('Ann makes a server, Bob joins, and Ann talks a lot', async () => {
    await Promise.all([signUp(ann, ANN, 'Ann', { timeout: T }), signUp(bob, BOB, 'Bob', { timeout: T })]);
    await ann.page.getByRole('button', { name: 'Add a server' }).click();
    await ann.page.getByLabel('Server name').fill(SERVER);
    await ann.page.getByRole('button', { name: 'Create server' }).click();
    await ann.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    general = /#\/c\/(\d+)/.exec(ann.page.url())[1];
    await joinByLink(bob, await inviteLink(ann, { timeout: T }), SERVER, { timeout: T });

    const annToken = await signInToken(services, ANN);
    budget = await post(annToken, general, 'The budget for the trip is 300 euros');
    await post(annToken, general, 'right after the budget line, the context');
    for (let i = 0; i < FILLER; i++) await post(annToken, general, `filler ${i}`);
    await post(annToken, general, 'replying to the budget', { message_reference: { message_id: budget.id } });
    await message(bob, 'replying to the budget').waitFor({ timeout: T });
  });

  test('Bob searches "from:ann budget" and jumps to the hit, far back in history', async () => {
    const box = bob.page.getByRole('search').getByLabel('Search this server');
    const results = bob.page.getByRole('dialog', { name: 'Search results' });
    // The index commits within a second or so of the message: search until it is there.
    const deadline = Date.now() + T;
    for (;;) {
      await box.fill(`from:${ANN} budget trip`);
      await box.press('Enter');
      const hit = results.locator('.search-hit').filter({ hasText: 'The budget for the trip' });
      try {
        await hit.waitFor({ timeout: 3_000 });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
    }
    await results.getByText('1 result').waitFor({ timeout: T });
    // The hit comes with the message after it as context.
    await results.locator('.search-context').filter({ hasText: 'right after the budget line' }).waitFor();
    await screenshot(bob.page, 'search-results');
    await results.getByRole('button', { name: /Jump to Ann's message/ }).click();
    const target = message(bob, 'The budget for the trip');
    await target.and(bob.page.locator('.flash')).waitFor({ timeout: T });
    // The channel opened at the message: far older than what is held by scrolling.
    assert.equal(await message(bob, 'filler 399').count(), 0, 'a window around the hit, not the present');
    await screenshot(bob.page, 'search-jump');
    // Back to the present.
    await bob.page.getByRole('button', { name: 'Jump to present' }).click();
    await message(bob, 'replying to the budget').waitFor({ timeout: T });
  });

  test("a reply's preview of a message far back opens the channel there", async () => {
    const reply = message(bob, 'replying to the budget');
    await reply.getByRole('button', { name: /Reply to Ann/ }).click();
    await message(bob, 'The budget for the trip').and(bob.page.locator('.flash')).waitFor({ timeout: T });
  });

  test('filters that name no one say so', async () => {
    const box = bob.page.getByRole('search').getByLabel('Search this server');
    await box.fill('from:nobody_here budget');
    await box.press('Enter');
    await bob.page
      .getByRole('dialog', { name: 'Search results' })
      .getByText('no one called nobody_here')
      .waitFor();
  });
});
