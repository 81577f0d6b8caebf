/**
 * Build step (`npm run build`, after tsc): inlines uPlot, the page's style and
 * its script into one HTML document, dist/src/dashboard/dashboard.json, with
 * the Content-Security-Policy that allows exactly those inline scripts (by
 * their SHA-256). The node serves it from memory; the page loads nothing else,
 * so it works offline and behind any firewall.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DashboardAsset } from './asset.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The sources sit in src/dashboard/ whether this runs from there or from dist/src/dashboard/. */
const sources = here.includes(join('dist', 'src')) ? join(here, '..', '..', '..', 'src', 'dashboard') : here;
const uplot = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));

const read = (path: string) => readFileSync(path, 'utf8');
const uplotJs = read(join(uplot, 'dist', 'uPlot.iife.min.js'));
const script = read(join(sources, 'dashboard.js'));
/** A script or style body may not close its own element early. */
function inline(text: string, element: 'script' | 'style'): string {
  if (text.toLowerCase().includes(`</${element}`)) throw new Error(`an inlined ${element} contains </${element}`);
  return text;
}
const parts: Record<string, string> = {
  '<!--UPLOT_LICENSE-->': `<!-- uPlot ${(JSON.parse(read(join(uplot, 'package.json'))) as { version: string }).version}, inlined below:\n${read(join(uplot, 'LICENSE')).replaceAll('--', '- -')}-->`,
  '/*UPLOT_CSS*/': inline(read(join(uplot, 'dist', 'uPlot.min.css')), 'style'),
  '/*PAGE_CSS*/': inline(read(join(sources, 'page.css')), 'style'),
  '/*UPLOT_JS*/': inline(uplotJs, 'script'),
  '/*DASHBOARD_JS*/': inline(script, 'script'),
};
let html = read(join(sources, 'page.html'));
for (const [marker, text] of Object.entries(parts)) {
  if (!html.includes(marker)) throw new Error(`page.html has no ${marker}`);
  // A function, so that `$&` and friends in the inlined code are not taken for replacement patterns.
  html = html.replace(marker, () => text);
}
/** CSP hashes cover an element's whole text, the whitespace around the inlined code included. */
const hashes = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(
  (m) =>
    `'sha256-${createHash('sha256')
      .update(m[1] as string)
      .digest('base64')}'`,
);
const csp = [
  "default-src 'none'",
  `script-src ${hashes.join(' ')}`,
  // uPlot sizes and places its elements with inline styles.
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');
const asset: DashboardAsset = { html, csp };
// Quiet on success: `npm start` builds first, and its output is the node's.
writeFileSync(join(here, 'dashboard.json'), JSON.stringify(asset));
