// End-to-end: a server (guild) as its owner and a member use it, each on a different edge, in
// headless Chromium against real services (e2e/services.mjs). Ann makes a server, a role and a
// channel only that role may view, and an invite; Bob joins by the link and does not see the
// channel until Ann gives him the role (live, no reload); a time-out closes his composer; a kick
// (asked first: Cancel and Escape change nothing) removes him and tells him so; he comes back by
// the link; a ban takes the server from his rail; the audit log shows it all. Run with `npm run e2e`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  inviteLink as makeInviteLink,
  joinByLink,
  launch,
  people,
  person,
  screenshot,
  signUp,
} from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const SERVER = 'Book club';
const T = 15_000;

let services;
let browser;
let ann;
let bob;
let inviteLink;

const composer = (p) => p.page.locator('.composer textarea');
const rail = (p) => p.page.getByRole('navigation', { name: 'Servers' });
const channelList = (p) => p.page.getByRole('navigation', { name: `${SERVER} channels` });
/** A channel's link by its name (then, maybe, its unread badge). */
const channelLink = (p, name) => channelList(p).getByRole('link', { name: new RegExp(`^${name}( |$)`) });
const dialog = (p) => p.page.getByRole('dialog');

/** Opens the member list (if shut) and the moderation dialog for Bob. */
async function manageBob() {
  const members = ann.page.getByRole('complementary', { name: 'Members' });
  if (!(await members.isVisible())) await ann.page.getByRole('button', { name: 'Members' }).click();
  await members
    .locator(`[data-user="${BOB}"]`)
    .getByRole('button', { name: 'Manage Bob' })
    .click({ timeout: T });
  await dialog(ann).getByRole('heading', { name: 'Manage Bob' }).waitFor({ timeout: T });
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

describe('a server, its roles, its invite and its moderators', () => {
  test('Ann makes a server, a "mods" role, a channel only mods may view, and an invite', async () => {
    await Promise.all([signUp(ann, ANN, 'Ann'), signUp(bob, BOB, 'Bob')]);

    await ann.page.getByRole('button', { name: 'Add a server' }).click();
    await ann.page.getByLabel('Server name').fill(SERVER);
    await ann.page.getByRole('button', { name: 'Create server' }).click();
    await ann.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    await rail(ann).getByRole('link', { name: SERVER }).waitFor();

    // The role: hoisted, coloured, no permissions of its own.
    await ann.page.getByRole('button', { name: 'Server settings' }).click();
    await dialog(ann).getByRole('tab', { name: 'Roles' }).click();
    await dialog(ann).getByRole('button', { name: 'Create role' }).click();
    await dialog(ann).getByLabel('Role name').fill('mods');
    await dialog(ann).getByLabel('Colour').fill('#e91e63');
    await dialog(ann).getByLabel('Show members separately').check();
    await dialog(ann).getByRole('button', { name: 'Save role' }).click();
    await dialog(ann).getByRole('status').filter({ hasText: 'Saved.' }).waitFor({ timeout: T });
    await dialog(ann).getByRole('button', { name: 'mods', exact: true }).waitFor();
    await screenshot(ann.page, 'guild-roles');
    await dialog(ann).getByRole('button', { name: 'Close' }).click();

    // The private channel.
    await channelList(ann).getByRole('button', { name: 'Create a channel' }).click();
    await dialog(ann).getByLabel('Channel name').fill('mods-only');
    await dialog(ann)
      .getByLabel(/^Private/)
      .check();
    await dialog(ann).getByLabel('mods').check();
    await dialog(ann).getByRole('button', { name: 'Create channel' }).click();
    await ann.page.getByRole('heading', { name: 'mods-only' }).waitFor({ timeout: T });
    await composer(ann).fill('only for the mods');
    await composer(ann).press('Enter');

    // The invite.
    inviteLink = await makeInviteLink(ann);
    assert.match(inviteLink, /\/invite\/[A-Za-z0-9]{10}$/);
  });

  test('Bob opens the invite link, sees a preview, joins, and does not see the private channel', async () => {
    await bob.page.goto(inviteLink);
    const card = bob.page.getByLabel('Invite');
    await card.getByRole('heading', { name: SERVER }).waitFor({ timeout: T });
    await card.getByText('1 member').waitFor();
    await screenshot(bob.page, 'guild-invite');
    await card.getByRole('button', { name: `Join ${SERVER}` }).click();
    await bob.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    assert.equal(new URL(bob.page.url()).pathname, '/');
    await channelLink(bob, 'general').waitFor();
    assert.equal(await channelLink(bob, 'mods-only').count(), 0);
    // Nothing of it reached him either: no frame named the channel.
    assert.ok(!JSON.stringify(bob.frames).includes('mods-only'));
    assert.ok(!JSON.stringify(bob.frames).includes('only for the mods'));
    await composer(bob).fill('hello from bob');
    await composer(bob).press('Enter');
    await ann.page
      .getByRole('navigation', { name: `${SERVER} channels` })
      .getByRole('link', { name: 'general' })
      .click();
    await ann.page
      .locator('[role="log"] article')
      .filter({ hasText: 'hello from bob' })
      .waitFor({ timeout: T });
  });

  test('Ann gives Bob "mods": the channel appears on his screen without a reload', async () => {
    const readies = bob.frames.filter((f) => f.t === 'READY').length;
    await manageBob();
    await dialog(ann).getByLabel('mods').check();
    await dialog(ann).getByRole('status').filter({ hasText: 'Roles saved' }).waitFor({ timeout: T });
    await dialog(ann).getByRole('button', { name: 'Close' }).click();
    // The member list shows him under the hoisted role, in its colour.
    const group = ann.page
      .getByRole('complementary', { name: 'Members' })
      .getByRole('region', { name: /^mods/ });
    await group.locator(`[data-user="${BOB}"]`).waitFor({ timeout: T });
    const color = await group
      .locator(`[data-user="${BOB}"] .member-name`)
      .evaluate((e) => getComputedStyle(e).color);
    assert.equal(color, 'rgb(233, 30, 99)');
    await screenshot(ann.page, 'guild-members');

    await channelLink(bob, 'mods-only').click({ timeout: T });
    await bob.page.getByRole('heading', { name: 'mods-only' }).waitFor({ timeout: T });
    // Its history is readable at once.
    await bob.page
      .locator('[role="log"] article')
      .filter({ hasText: 'only for the mods' })
      .waitFor({ timeout: T });
    assert.equal(bob.frames.filter((f) => f.t === 'READY').length, readies, 'no new session: no reload');
  });

  test('Ann times Bob out: his composer is disabled and says until when', async () => {
    await channelLink(bob, 'general').click();
    await bob.page.getByRole('heading', { name: 'general' }).waitFor({ timeout: T });
    await manageBob();
    await dialog(ann)
      .getByLabel(/^Reason/)
      .fill('cool down');
    await dialog(ann).getByLabel('Time out for').selectOption({ label: '10 minutes' });
    await dialog(ann).getByRole('button', { name: 'Time out', exact: true }).click();
    await dialog(ann).getByRole('status').filter({ hasText: 'Bob is timed out' }).waitFor({ timeout: T });
    await dialog(ann).getByRole('button', { name: 'Close' }).click();

    await bob.page.waitForFunction(
      () => document.querySelector('.composer textarea')?.disabled === true,
      null,
      { timeout: T },
    );
    const placeholder = await composer(bob).getAttribute('placeholder');
    assert.match(placeholder, /^You are timed out until .+ \((9|10):\d\d left\)/);
    await screenshot(bob.page, 'guild-timed-out');
    // He still reads: Ann's message arrives.
    await composer(ann).fill('you can still read this');
    await composer(ann).press('Enter');
    await bob.page
      .locator('[role="log"] article')
      .filter({ hasText: 'you can still read this' })
      .waitFor({ timeout: T });
  });

  test('Ann kicks Bob, asked first: Cancel changes nothing; confirmed, he is gone and told', async () => {
    const members = ann.page.getByRole('complementary', { name: 'Members' });
    await manageBob();
    await dialog(ann).getByRole('button', { name: 'Kick Bob' }).click();
    const confirm = ann.page.getByRole('dialog', { name: 'Kick Bob?' });
    await confirm.getByText(`Bob leaves ${SERVER} and is told so.`).waitFor({ timeout: T });
    // Focus starts on Cancel: a stray Enter does nothing.
    assert.equal(
      await confirm.getByRole('button', { name: 'Cancel' }).evaluate((b) => b === document.activeElement),
      true,
    );
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached', timeout: T });
    // Only the question closed: Bob's dialog is still open, and Bob still in the server.
    await dialog(ann).getByRole('heading', { name: 'Manage Bob' }).waitFor();
    // Escape cancels too.
    await dialog(ann).getByRole('button', { name: 'Kick Bob' }).click();
    await confirm.waitFor({ timeout: T });
    await ann.page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'detached', timeout: T });
    await dialog(ann).getByRole('heading', { name: 'Manage Bob' }).waitFor();
    await members.locator(`[data-user="${BOB}"]`).waitFor();
    assert.equal(await rail(bob).getByRole('link', { name: SERVER }).count(), 1);

    await dialog(ann).getByRole('button', { name: 'Kick Bob' }).click();
    await confirm.getByLabel(/^Reason for the kick/).fill('too loud');
    await screenshot(ann.page, 'guild-kick-confirm');
    await confirm.getByRole('button', { name: 'Kick Bob' }).click();
    await confirm.waitFor({ state: 'detached', timeout: T });
    await dialog(ann).getByRole('heading', { name: 'Manage Bob' }).waitFor({ state: 'detached', timeout: T });
    await members.locator(`[data-user="${BOB}"]`).waitFor({ state: 'detached', timeout: T });
    await rail(bob).getByRole('link', { name: SERVER }).waitFor({ state: 'detached', timeout: T });
    await bob.page
      .getByRole('alert')
      .filter({ hasText: `You were removed from ${SERVER}.` })
      .waitFor({ timeout: T });
  });

  test('Bob comes back by the invite link', async () => {
    await joinByLink(bob, inviteLink, SERVER, { timeout: T });
    await ann.page
      .getByRole('complementary', { name: 'Members' })
      .locator(`[data-user="${BOB}"]`)
      .waitFor({ timeout: T });
  });

  test('Ann bans Bob, asked first: the server disappears from his rail, and he is told', async () => {
    await manageBob();
    await dialog(ann).getByRole('button', { name: 'Ban Bob' }).click();
    const confirm = ann.page.getByRole('dialog', { name: 'Ban Bob?' });
    await confirm.getByLabel(/^Reason for the ban/).fill('spam');
    await confirm.getByLabel('Delete message history').selectOption({ label: 'Previous hour' });
    // Nothing happened yet.
    assert.equal(await rail(bob).getByRole('link', { name: SERVER }).count(), 1);
    await confirm.getByRole('button', { name: 'Ban Bob' }).click();
    await rail(bob).getByRole('link', { name: SERVER }).waitFor({ state: 'detached', timeout: T });
    await bob.page
      .getByRole('alert')
      .filter({ hasText: `You were banned from ${SERVER}.` })
      .waitFor({ timeout: T });
    assert.equal(await channelLink(bob, 'general').count(), 0);
    await screenshot(bob.page, 'guild-banned');
    // His hour of messages went with him.
    await ann.page
      .locator('[role="log"] article')
      .filter({ hasText: 'hello from bob' })
      .waitFor({ state: 'detached', timeout: T });
  });

  test('the audit log shows the role, the channel, the invite, the role given, the time-out, the kick and the ban', async () => {
    await ann.page.getByRole('button', { name: 'Server settings' }).click();
    await dialog(ann).getByRole('tab', { name: 'Audit log' }).click();
    const log = dialog(ann).getByRole('list', { name: 'Audit log' });
    for (const [action, text] of [
      [30, 'Ann created a role'],
      [10, 'Ann created a channel'],
      [40, 'Ann created an invite'],
      [25, 'Ann changed the roles of Bob'],
      [24, 'Ann updated member Bob'],
      [20, 'Ann kicked Bob'],
      [22, 'Ann banned Bob'],
    ])
      await log
        .locator(`li[data-action="${action}"]`)
        .filter({ hasText: text })
        .first()
        .waitFor({ timeout: T });
    await log.locator('li[data-action="24"]').filter({ hasText: 'Reason: cool down' }).waitFor();
    await log.locator('li[data-action="20"]').filter({ hasText: 'Reason: too loud' }).waitFor();
    await log.locator('li[data-action="22"]').filter({ hasText: 'Reason: spam' }).waitFor();
    await screenshot(ann.page, 'guild-audit-log');
    // Filtered to bans: only the ban.
    await dialog(ann).getByLabel('Action').selectOption({ label: 'banned' });
    await log.locator('li[data-action="30"]').waitFor({ state: 'detached', timeout: T });
    await log.locator('li[data-action="22"]').waitFor({ timeout: T });
    assert.deepEqual(await log.locator('li').evaluateAll((ls) => ls.map((l) => l.dataset.action)), ['22']);
    // And the bans list has him.
    await dialog(ann).getByRole('tab', { name: 'Bans' }).click();
    await dialog(ann)
      .getByRole('list', { name: 'Bans' })
      .locator(`[data-user="${BOB}"]`)
      .waitFor({ timeout: T });
  });

  test('nothing in all of this tripped the Content-Security-Policy', () => {
    for (const p of people) assert.deepEqual(p.csp, [], `${p.name}: no CSP violations`);
    for (const p of people) assert.deepEqual(p.errors, [], `${p.name}: no page errors`);
  });
});
