// End-to-end: files with media on S3 (the stack's SeaweedFS), as production runs it. The slots
// media hands out are presigned PUTs, so the browser sends the bytes straight into the store,
// which the page's Content-Security-Policy must allow (auth's `--upload-origins`) and the store's
// CORS must let through. Ann drops a photo into a channel; Bob sees it and it loads from media.
// Run with `npm run e2e -- e2e/attachments-s3.e2e.mjs`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dropPhotoAndSend, inOneServer, launch, person, signUp } from './browser.mjs';
import { Services } from './services.mjs';

const suffix = Math.random().toString(36).slice(2, 7);
const ANN = `ann_${suffix}`;
const BOB = `bob_${suffix}`;
const T = 15_000;

let services;
let browser;
let ann;
let bob;

before(async () => {
  services = await new Services({ storage: 's3' }).start();
  browser = await launch();
  ann = await person(browser, services, { name: 'ann', edge: 'edge1' });
  bob = await person(browser, services, { name: 'bob', edge: 'edge2' });
});

after(async () => {
  for (const p of [ann, bob]) if (p?.errors.length) console.error(`${p.name}: page errors`, p.errors);
  await browser?.close();
  await services?.stop();
});

describe('files with media on S3', () => {
  test('ann drops a photo in; it goes straight into the store, and bob sees it', async () => {
    await signUp(ann, ANN, 'Ann');
    await signUp(bob, BOB, 'Bob');
    const { channel } = await inOneServer(services, [ann, ANN], [bob, BOB], 'Photos');

    // Every PUT Ann's page makes, to see where the bytes went.
    const puts = [];
    ann.page.on('request', (r) => r.method() === 'PUT' && puts.push(r.url()));
    await dropPhotoAndSend(ann, 'store.png', 200, 100, { timeout: T });

    await bob.page.waitForFunction(
      () => {
        const img = document.querySelector('[role="log"] .attachment-image img');
        return img && img.complete && img.naturalWidth === 200;
      },
      null,
      { timeout: T },
    );
    const store = new URL(services.env.NATTER_S3_ENDPOINT).origin;
    assert.equal(puts.length, 1, JSON.stringify(puts));
    assert.equal(new URL(puts[0]).origin, store, 'the bytes went straight to the store');
    assert.deepEqual(ann.csp, [], 'the page was allowed to reach the store');
    assert.deepEqual(ann.errors, []);
    assert.deepEqual(bob.errors, []);
  });
});
