#!/usr/bin/env node
// Builds the services (debug) and the client, then runs the end-to-end tests in headless Chromium
// (every e2e/*.e2e.mjs, or the files named: `npm run e2e -- e2e/client.e2e.mjs`).
// Screenshots land in web/e2e/out/screenshots, service logs in web/e2e/out/logs.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { buildClient, buildServices } from './services.mjs';

const started = Date.now();
buildServices();
buildClient();
const web = new URL('..', import.meta.url).pathname;
const all = readdirSync(`${web}/e2e`)
  .filter((f) => f.endsWith('.e2e.mjs'))
  .map((f) => `e2e/${f}`);
const files = process.argv.slice(2);
// One file at a time: each starts its own services and browser, and the machine may be small.
// A test (or hook) that has not finished in 10 minutes fails, where it would hang the run.
const r = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=1',
    '--test-timeout=600000',
    '--test-reporter=spec',
    ...(files.length ? files : all.sort()),
  ],
  { stdio: 'inherit', cwd: web },
);
console.log(`e2e finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(r.status ?? 1);
