#!/usr/bin/env node
// Builds the services (debug) and the client, then runs the end-to-end tests in headless Chromium.
// Screenshots land in web/e2e/out/screenshots, service logs in web/e2e/out/logs.
import { spawnSync } from 'node:child_process';
import { buildClient, buildServices } from './services.mjs';

const started = Date.now();
buildServices();
buildClient();
const files = process.argv.slice(2);
const r = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', ...(files.length ? files : ['e2e/chat.e2e.mjs'])],
  { stdio: 'inherit', cwd: new URL('..', import.meta.url).pathname },
);
console.log(`e2e finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(r.status ?? 1);
