// End-to-end: moderation people can reach, in headless Chromium against real services
// (e2e/services.mjs). Ann owns a group channel; from its member list she makes Bob a moderator,
// Bob deletes Carol's message from its menu (after confirming; Carol deletes her own at once with
// Shift held), and Ann removes Carol after confirming: Carol's page
// tells her she was removed, rather than let the channel vanish. Clicking Ann's name shows Bob her
// profile card with the server they share. Run with `npm run e2e -- e2e/moderation.e2e.mjs`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, joinByInvite, launch, people, person, screenshot, signUp, tokenOf } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const CAROL = `carol_${suffix}`;
const SERVER = 'Walkers';
const CHANNEL = 'walks';
const T = 15_000;

let services;
let browser;
let ann;
let bob;
let carol;

const messages = (p) => p.page.locator('[role="log"] article');
const message = (p, text) => messages(p).filter({ hasText: text });
const composer = (p) => p.page.locator('.composer textarea');
const sidebar = (p) => p.page.getByRole('navigation', { name: 'Channels and direct messages' });
const channelLink = (p) => sidebar(p).getByRole('link', { name: new RegExp(`^#?${CHANNEL}`) });
const members = (p) => p.page.getByRole('complementary', { name: 'Members' });
const row = (p, username) => members(p).locator(`li[data-user="${username}"]`);

async function send(p, text) {
  await composer(p).fill(text);
  await composer(p).press('Enter');
  await message(p, text).waitFor({ timeout: T });
}

/** Opens the member list, if shut. */
async function openMembers(p) {
  if (!(await members(p).isVisible())) await p.page.getByRole('button', { name: 'Members' }).click();
  await members(p).waitFor({ timeout: T });
}

/** Picks an item of a member's menu ("⋯" in their row of the member list). */
async function fromMemberMenu(p, username, displayName, item) {
  await openMembers(p);
  await row(p, username)
    .getByRole('button', { name: `Options for ${displayName}` })
    .click({ timeout: T });
  await p.page
    .getByRole('menu', { name: `Options for ${displayName}` })
    .getByRole('menuitem', { name: item })
    .click({ timeout: T });
}

before(async () => {
  services = await new Services().start();
  browser = await launch();
  ann = await person(browser, services, { name: 'ann', edge: 'edge1' });
  bob = await person(browser, services, { name: 'bob', edge: 'edge2' });
  carol = await person(browser, services, { name: 'carol', edge: 'edge1' });
});

after(async () => {
  for (const p of [ann, bob, carol]) if (p?.errors.length) console.error(`${p.name}: page errors`, p.errors);
  await browser?.close();
  await services?.stop();
});

describe('moderation from the member list, and profile cards', () => {
  test('Ann has a server and a group channel with Bob and Carol in both', async () => {
    await Promise.all([signUp(ann, ANN, 'Ann'), signUp(bob, BOB, 'Bob'), signUp(carol, CAROL, 'Carol')]);
    const annToken = await tokenOf(ann);
    const guild = await api(services, annToken, 'POST', '/api/v1/guilds', { name: SERVER });
    for (const p of [bob, carol]) {
      const token = await tokenOf(p);
      await joinByInvite(services, annToken, guild.id, token);
      await api(services, token, 'PATCH', '/api/v1/users/@me/settings', {
        allow_channel_adds_from: 'everyone',
      });
    }
    const channel = await api(services, annToken, 'POST', '/api/v1/channels', { name: CHANNEL });
    for (const username of [BOB, CAROL])
      await api(services, annToken, 'POST', `/api/v1/channels/${channel.id}/members`, { username });
    for (const p of [ann, bob, carol]) {
      await channelLink(p).click({ timeout: T });
      await p.page.getByRole('heading', { name: CHANNEL }).waitFor({ timeout: T });
    }
  });

  test('menus offer only what each may do', async () => {
    // Bob, a plain member, may not make anyone a moderator or remove anyone.
    await openMembers(bob);
    await row(bob, CAROL).getByRole('button', { name: 'Options for Carol' }).click({ timeout: T });
    const menu = bob.page.getByRole('menu', { name: 'Options for Carol' });
    await menu.getByRole('menuitem', { name: 'Block' }).waitFor({ timeout: T });
    assert.equal(await menu.getByRole('menuitem', { name: 'Make moderator' }).count(), 0);
    assert.equal(await menu.getByRole('menuitem', { name: 'Remove from channel' }).count(), 0);
    await bob.page.keyboard.press('Escape');
  });

  test('Ann makes Bob a moderator from the member list', async () => {
    await fromMemberMenu(ann, BOB, 'Bob', 'Make moderator');
    await row(ann, BOB).locator('.role', { hasText: 'moderator' }).waitFor({ timeout: T });
    // Bob's own list says so too, live.
    await row(bob, BOB).locator('.role', { hasText: 'moderator' }).waitFor({ timeout: T });
    await screenshot(ann.page, 'moderation-made-moderator');
  });

  test("Bob deletes Carol's message from its menu, after confirming", async () => {
    await send(carol, 'buy cheap watches here');
    const spam = message(bob, 'buy cheap watches here');
    await spam.waitFor({ timeout: T });
    const fromMenu = async () => {
      await spam.hover();
      await spam.getByRole('button', { name: 'More actions' }).click();
      await bob.page
        .getByRole('menu', { name: 'Message actions' })
        .getByRole('menuitem', { name: 'Delete message' })
        .click();
    };
    await fromMenu();
    const confirm = bob.page.getByRole('dialog', { name: 'Delete this message?' });
    await confirm.getByText('buy cheap watches here').waitFor({ timeout: T });
    // Cancel deletes nothing.
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached', timeout: T });
    await fromMenu();
    // Escape neither.
    await confirm.waitFor({ timeout: T });
    await bob.page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'detached', timeout: T });
    await message(carol, 'buy cheap watches here').waitFor();
    await fromMenu();
    await confirm.getByRole('button', { name: 'Delete message' }).click();
    for (const p of [ann, bob, carol])
      await message(p, 'buy cheap watches here').waitFor({ state: 'detached', timeout: T });
  });

  test('Carol deletes her own message with Shift held: at once, without a question', async () => {
    await send(carol, 'wrong channel, sorry');
    const oops = message(carol, 'wrong channel, sorry');
    await oops.hover();
    await oops.getByRole('button', { name: 'Delete message' }).click({ modifiers: ['Shift'] });
    for (const p of [ann, bob, carol])
      await message(p, 'wrong channel, sorry').waitFor({ state: 'detached', timeout: T });
    assert.equal(await carol.page.getByRole('dialog').count(), 0);
  });

  test('Ann removes Carol after confirming, and Carol is told', async () => {
    await fromMemberMenu(ann, CAROL, 'Carol', 'Remove from channel');
    const confirm = ann.page.getByRole('dialog', { name: 'Remove Carol?' });
    await confirm.waitFor({ timeout: T });
    // Nothing happens until she confirms.
    assert.equal(await row(ann, CAROL).count(), 1);
    await confirm.getByRole('button', { name: 'Remove Carol' }).click();
    await row(ann, CAROL).waitFor({ state: 'detached', timeout: T });
    await carol.page
      .getByRole('alert')
      .filter({ hasText: `You were removed from #${CHANNEL} by Ann.` })
      .waitFor({ timeout: T });
    await channelLink(carol).waitFor({ state: 'detached', timeout: T });
    await screenshot(carol.page, 'moderation-removed');
  });

  test("clicking Ann's name shows her profile card with the server they share", async () => {
    await send(ann, 'see you Tuesday');
    await message(bob, 'see you Tuesday')
      .getByRole('button', { name: 'Ann', exact: true })
      .click({ timeout: T });
    const card = bob.page.getByRole('dialog', { name: 'Profile of Ann' });
    await card.waitFor({ timeout: T });
    await card.getByText(`@${ANN}`).waitFor();
    await card.getByRole('region', { name: 'Mutual servers' }).getByText(SERVER).waitFor({ timeout: T });
    await card
      .getByRole('region', { name: 'Mutual channels' })
      .getByText(`#${CHANNEL}`)
      .waitFor({ timeout: T });
    await screenshot(bob.page, 'moderation-profile-card');
    await card.getByRole('button', { name: 'Close profile' }).click();
    // The member list opens the same card.
    await openMembers(bob);
    await row(bob, ANN).getByRole('button', { name: /^Ann/ }).click();
    await bob.page.getByRole('dialog', { name: 'Profile of Ann' }).getByText(SERVER).waitFor({ timeout: T });
  });

  test('nothing in all of this tripped the Content-Security-Policy', () => {
    for (const p of people) assert.deepEqual(p.csp, [], `${p.name}: no CSP violations`);
    for (const p of people) assert.deepEqual(p.errors, [], `${p.name}: no page errors`);
  });
});
