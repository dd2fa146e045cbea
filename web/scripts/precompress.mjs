#!/usr/bin/env node
// Writes a brotli (.br) and a gzip (.gz) copy beside every compressible file of the build, so auth
// serves whichever the browser accepts without compressing anything per request. Run by
// `npm run build` after Vite. A copy that would not be smaller is not written.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url).pathname;
const COMPRESSIBLE = /\.(js|mjs|css|html|svg|ico|json|txt|map|webmanifest)$/;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (COMPRESSIBLE.test(name)) yield path;
  }
}

let raw = 0;
let br = 0;
for (const path of files(dist)) {
  const data = readFileSync(path);
  const copies = {
    br: brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    }),
    gz: gzipSync(data, { level: 9 }),
  };
  for (const [ext, copy] of Object.entries(copies))
    if (copy.length < data.length) writeFileSync(`${path}.${ext}`, copy);
  raw += data.length;
  br += Math.min(copies.br.length, data.length);
}
console.log(`precompressed ${(raw / 1024).toFixed(1)} KB to ${(br / 1024).toFixed(1)} KB (brotli)`);
