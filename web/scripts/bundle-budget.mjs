#!/usr/bin/env node
// Fails when the initial load (index.html and every script, style and preload it references) is
// over the budget, gzipped. Run after `npm run build`: `npm run budget`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET_KB = Number(process.env.NATTER_BUNDLE_BUDGET_KB ?? 300);
const dist = new URL('../dist/', import.meta.url).pathname;
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const refs = [...html.matchAll(/(?:src|href)="\/?([^"]+\.(?:js|css))"/g)].map((m) => m[1]);
const files = ['index.html', ...new Set(refs)];
let total = 0;
for (const f of files) {
  const size = gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
  total += size;
  console.log(`  ${(size / 1024).toFixed(1).padStart(7)} KB  ${f}`);
}
const kb = total / 1024;
console.log(`initial load: ${kb.toFixed(1)} KB gzipped (budget ${BUDGET_KB} KB)`);
if (kb > BUDGET_KB) {
  console.error(`bundle budget exceeded by ${(kb - BUDGET_KB).toFixed(1)} KB`);
  process.exit(1);
}
