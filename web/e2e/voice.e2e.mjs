// End-to-end: voice through the stack's LiveKit, in headless Chromium with fake media. Ann and
// Bob (on different edges) join a server's voice channel: each page's WebRTC stats show audio
// bytes arriving from the other and growing, and each sees the other in the channel list. Carol,
// whom an overwrite denies CONNECT, is refused with a clear message. Closing Bob's page takes him
// off Ann's list. In their DM, a call rings and connects through TURN; hung up, it leaves how long
// it lasted; declined, "Missed call from Ann" for both. Run with `npm run e2e -- e2e/voice.e2e.mjs`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, joinByInvite, launch, person, screenshot, signIn, signUpByApi } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const T = 30_000;

let services;
let browser;
let ann;
let bob;
let carol;
let guild;
let lounge;
/** Ann's and Bob's pages in their DM (the relayed call's). */
let dmPages;
const ids = {};
const accounts = {};

/** An account for `name` (ann, bob…), made by REST, remembered in `ids` and `accounts`. */
async function signUp(name) {
  const account = await signUpByApi(services, `${name}_${suffix}`, name[0].toUpperCase() + name.slice(1));
  ids[name] = account.id;
  accounts[name] = account;
  return account;
}

/** Every RTCPeerConnection the page makes, kept for its stats. */
async function watchPeerConnections(p) {
  await p.context.addInitScript(() => {
    const Original = window.RTCPeerConnection;
    window.__pcs = [];
    function Wrapped(...args) {
      const pc = new Original(...args);
      window.__pcs.push(pc);
      return pc;
    }
    Wrapped.prototype = Original.prototype;
    Object.setPrototypeOf(Wrapped, Original);
    window.RTCPeerConnection = Wrapped;
  });
}

/** Audio bytes this page has received over WebRTC, across its connections. */
function inboundAudioBytes(p) {
  return inbound(p, 'audio', 'bytesReceived');
}

/** Video frames this page has decoded. */
function framesDecoded(p) {
  return inbound(p, 'video', 'framesDecoded');
}

function inbound(p, kind, field) {
  return p.page.evaluate(
    async ([kind, field]) => {
      let total = 0;
      for (const pc of window.__pcs ?? []) {
        if (pc.connectionState === 'closed') continue;
        const stats = await pc.getStats();
        stats.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === kind) total += s[field] ?? 0;
        });
      }
      return total;
    },
    [kind, field],
  );
}

/** The types of the ICE candidates this page's selected candidate pairs use locally. */
function selectedLocalCandidates(p) {
  return p.page.evaluate(async () => {
    const types = [];
    for (const pc of window.__pcs ?? []) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      const byId = new Map();
      stats.forEach((s) => byId.set(s.id, s));
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = byId.get(s.selectedCandidatePairId);
          const local = pair && byId.get(pair.localCandidateId);
          if (local) types.push(local.candidateType);
        }
      });
    }
    return types;
  });
}

async function until(what, check, timeout = T, every = 250) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

async function openLounge(p) {
  await p.page.goto(`/#/c/${lounge}`);
  await p.page.getByRole('region', { name: 'Voice channel lounge' }).waitFor({ timeout: T });
}

before(async () => {
  services = await new Services().start();
  browser = await launch();
  const a = await signUp('ann');
  const b = await signUp('bob');
  const c = await signUp('carol');
  const made = await api(services, a.token, 'POST', '/api/v1/guilds', { name: 'Band' });
  guild = made.id;
  for (const who of [b, c]) await joinByInvite(services, a.token, guild, who.token);
  const channel = await api(services, a.token, 'POST', `/api/v1/guilds/${guild}/channels`, {
    name: 'lounge',
    kind: 'voice',
    // Carol may see the channel, not connect to it.
    permission_overwrites: [{ id: ids.carol, type: 1, deny: String(1 << 20) }],
  });
  lounge = channel.id;
  ann = await person(browser, services, { name: 'ann', edge: 'edge1' });
  bob = await person(browser, services, { name: 'bob', edge: 'edge2' });
  carol = await person(browser, services, { name: 'carol', edge: 'edge1' });
  for (const p of [ann, bob]) await watchPeerConnections(p);
  await signIn(ann, a.username, { timeout: T });
  await signIn(bob, b.username, { timeout: T });
  await signIn(carol, c.username, { timeout: T });
});

after(async () => {
  await browser?.close();
  await services?.stop();
});

describe('voice', () => {
  test('ann and bob join a voice channel and hear each other', async () => {
    await openLounge(ann);
    await ann.page.getByRole('button', { name: 'Join voice' }).click();
    await ann.page.locator('[data-call-status="connected"]').waitFor({ timeout: T });
    // Bob joins a call already going: from his click to the first audio bytes from ann is the
    // join time people feel (printed for docs/BENCHMARKS.md, never asserted).
    await openLounge(bob);
    const clicked = Date.now();
    await bob.page.getByRole('button', { name: 'Join voice' }).click();
    await until('bob receiving audio', async () => (await inboundAudioBytes(bob)) > 0, T, 20);
    console.log(`voice join time: click to first audio bytes from ann ${Date.now() - clicked} ms`);
    await bob.page.locator('[data-call-status="connected"]').waitFor({ timeout: T });
    // Each sees the other in the channel list, live.
    await ann.page.locator(`.voice-members [data-voice-user="${ids.bob}"]`).first().waitFor({ timeout: T });
    await bob.page.locator(`.voice-members [data-voice-user="${ids.ann}"]`).first().waitFor({ timeout: T });
    // Audio arrives from the other, and keeps arriving.
    for (const p of [ann, bob]) {
      await until(`${p.name} receiving audio`, async () => (await inboundAudioBytes(p)) > 0);
      const first = await inboundAudioBytes(p);
      await until(`${p.name}'s audio growing`, async () => (await inboundAudioBytes(p)) > first + 1000);
    }
    await screenshot(ann.page, 'voice-call');
  });

  test('bob turns on his camera and ann decodes his video', async () => {
    await bob.page.getByRole('button', { name: 'Camera' }).click();
    await until("ann decoding bob's camera", async () => (await framesDecoded(ann)) > 10);
    await ann.page.getByRole('region', { name: 'Voice channel lounge' }).locator('video').first().waitFor({
      timeout: T,
    });
  });

  test('ann shares her screen and bob decodes it', async () => {
    await ann.page.getByRole('button', { name: 'Share screen' }).click();
    await ann.page.getByRole('button', { name: 'Stop sharing' }).waitFor({ timeout: T });
    await until("bob decoding ann's screen", async () => (await framesDecoded(bob)) > 10);
  });

  test('carol, without CONNECT, is refused with a clear message', async () => {
    await openLounge(carol);
    await carol.page.getByRole('button', { name: 'Join voice' }).click();
    const alert = carol.page.getByRole('alert');
    await alert.waitFor({ timeout: T });
    assert.match(await alert.innerText(), /CONNECT/);
  });

  test("closing bob's page takes him off ann's list", async () => {
    await bob.context.close();
    await ann.page
      .locator(`.voice-members [data-voice-user="${ids.bob}"]`)
      .first()
      .waitFor({ state: 'detached', timeout: T });
    assert.equal(ann.csp.length, 0, JSON.stringify(ann.csp));
  });

  test('a DM call rings and connects with ICE forced through TURN', async () => {
    await ann.page.getByRole('button', { name: 'Leave' }).click();
    const dm = await api(services, accounts.ann.token, 'POST', '/api/v1/users/@me/dms', {
      username: accounts.bob.username,
    });
    await api(services, accounts.bob.token, 'POST', '/api/v1/users/@me/dms', {
      username: accounts.ann.username,
    });
    const relayed = [];
    for (const name of ['ann', 'bob']) {
      const p = await person(browser, services, {
        name: `${name}-relay`,
        edge: name === 'ann' ? 'edge1' : 'edge2',
      });
      await watchPeerConnections(p);
      await p.context.addInitScript(() => localStorage.setItem('natter.voice.relay', '1'));
      await signIn(p, accounts[name].username, { timeout: T });
      await p.page.goto(`/#/c/${dm.id}`);
      relayed.push(p);
    }
    const [a, b] = relayed;
    await a.page.getByRole('button', { name: 'Start a call' }).click({ timeout: T });
    await a.page.locator('[data-call-status="connected"]').waitFor({ timeout: T });
    const ringing = b.page.getByRole('alert', { name: 'Incoming call' });
    await ringing.waitFor({ timeout: T });
    await ringing.getByRole('button', { name: 'Join call' }).click();
    await b.page.locator('[data-call-status="connected"]').waitFor({ timeout: T });
    for (const p of [a, b]) {
      await until(`${p.name} receiving audio through TURN`, async () => (await inboundAudioBytes(p)) > 1000);
      const types = await selectedLocalCandidates(p);
      assert.ok(types.length > 0 && types.every((t) => t === 'relay'), `${p.name}: ${types}`);
    }
    dmPages = relayed;
  });

  test('an answered call leaves how long it lasted, and a declined one a missed call for both', async () => {
    const [a, b] = dmPages;
    for (const p of [a, b]) await p.page.getByRole('button', { name: 'Leave' }).click({ timeout: T });
    for (const p of [a, b]) {
      await p.page
        .getByRole('note')
        .filter({ hasText: 'Ann started a call that lasted' })
        .waitFor({ timeout: T });
    }
    await a.page.getByRole('button', { name: 'Start a call' }).click({ timeout: T });
    const ringing = b.page.getByRole('alert', { name: 'Incoming call' });
    await ringing.waitFor({ timeout: T });
    await ringing.getByRole('button', { name: 'Decline' }).click();
    // Declined by everyone it rang: the call ends for Ann too, and both see the missed call.
    for (const p of [a, b]) {
      await p.page.getByRole('note').filter({ hasText: 'Missed call from Ann' }).waitFor({ timeout: T });
    }
    await a.page.getByRole('button', { name: 'Start a call' }).waitFor({ timeout: T });
    await screenshot(b.page, 'missed-call');
    // In history too: a reload shows it.
    await b.page.reload();
    await b.page.getByRole('note').filter({ hasText: 'Missed call from Ann' }).waitFor({ timeout: T });
  });
});
