// Debian's Chromium driven by playwright-core (its own browser download cannot work here).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
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
  page.on('dialog', (d) => void d.accept());
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
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  const p = { name, context, page, frames, errors, csp };
  people.push(p);
  return p;
}

export async function screenshot(page, name) {
  const dir = new URL('./out/screenshots/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
}
