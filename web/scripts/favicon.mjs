#!/usr/bin/env node
// Writes public/favicon.ico from public/favicon.svg: the SVG drawn by headless Chromium at 16, 32
// and 48 px, each PNG stored whole in one ICO file (the PNG-in-ICO form every current browser
// reads). Run after changing the SVG: `node scripts/favicon.mjs`. The ICO is committed, so builds
// need no browser.
import { readFileSync, writeFileSync } from 'node:fs';
import { launch } from '../e2e/browser.mjs';

const pub = new URL('../public/', import.meta.url).pathname;
const svg = readFileSync(`${pub}favicon.svg`, 'utf8');
const browser = await launch();
const pngs = [];
for (const size of [16, 32, 48]) {
  const page = await browser.newPage({ viewport: { width: size, height: size } });
  await page.setContent(
    `<style>html,body{margin:0;background:transparent}svg{display:block;width:${size}px;height:${size}px}</style>${svg}`,
  );
  pngs.push({ size, data: await page.screenshot({ omitBackground: true }) });
  await page.close();
}
await browser.close();

// ICONDIR (6 bytes), one ICONDIRENTRY (16 bytes) per image, then the images.
const header = Buffer.alloc(6 + 16 * pngs.length);
header.writeUInt16LE(0, 0); // reserved
header.writeUInt16LE(1, 2); // 1: icon
header.writeUInt16LE(pngs.length, 4);
let offset = header.length;
pngs.forEach(({ size, data }, i) => {
  const at = 6 + 16 * i;
  header.writeUInt8(size % 256, at); // width (0 means 256)
  header.writeUInt8(size % 256, at + 1); // height
  header.writeUInt8(0, at + 2); // no palette
  header.writeUInt8(0, at + 3); // reserved
  header.writeUInt16LE(1, at + 4); // colour planes
  header.writeUInt16LE(32, at + 6); // bits per pixel
  header.writeUInt32LE(data.length, at + 8);
  header.writeUInt32LE(offset, at + 12);
  offset += data.length;
});
writeFileSync(`${pub}favicon.ico`, Buffer.concat([header, ...pngs.map((p) => p.data)]));
console.log(`wrote public/favicon.ico (${offset} bytes)`);
