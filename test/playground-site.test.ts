/**
 * The playground's site without a browser: the static build (web/vite.config.ts) and its server
 * (web/serve.mjs). The build has its built-in sample (a suffix of the built-in corpus, whole
 * speeches, at most SAMPLE_CHARS characters) and the walkthrough as pages; every local link of the
 * page and of those pages leads to a file of the site, and every #anchor to an id in it; nothing
 * is loaded from outside it (links out are https: hrefs, followed only when clicked). The
 * server sends the cross-origin isolation headers (or not, with isolate: false), the right types
 * (application/wasm for the kernels), 404 for what is not there, and nothing from outside its
 * folder. Test/browser/playground.test.ts runs the page itself.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import { loadDefaultCorpus } from '../src/index.js';
// @ts-expect-error a plain ES module without types
import { serve } from '../web/serve.mjs';
// @ts-expect-error a plain ES module without types
import { SAMPLE_CHARS } from '../web/sample-text.mjs';

const CONFIG = fileURLToPath(new URL('../web/vite.config.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-site-'));
const site = join(dir, 'site');

function files(d: string): string[] {
  return readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? files(join(d, f)) : [join(d, f)]));
}

beforeAll(async () => {
  await build({ configFile: CONFIG, logLevel: 'error', build: { outDir: site, emptyOutDir: true } });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the built site', () => {
  it('has the sample: whole speeches at the end of the built-in corpus, at most SAMPLE_CHARS characters', () => {
    const text = readFileSync(join(site, 'sample.txt'), 'utf8');
    const meta = JSON.parse(readFileSync(join(site, 'sample.json'), 'utf8'));
    const corpus = loadDefaultCorpus();
    expect(text.length).toBe(meta.chars);
    expect(text.length).toBeLessThanOrEqual(SAMPLE_CHARS);
    expect(text.length).toBeGreaterThan(SAMPLE_CHARS / 2);
    expect(corpus.endsWith(text)).toBe(true);
    // It starts where a speech starts: after the blank line that separates two.
    expect(corpus.slice(corpus.length - text.length - 2, corpus.length - text.length)).toBe('\n\n');
    expect(meta.from).toBeLessThanOrEqual(meta.to);
  });

  it('every local link leads to a file of the site, and every #anchor to an id in it', () => {
    const pages = files(site).filter((f) => f.endsWith('.html'));
    expect(pages.map((p) => relative(site, p)).sort()).toEqual(
      ['index.html', ...readdirSync(fileURLToPath(new URL('../docs/walkthrough/', import.meta.url))).filter((f) => f.endsWith('.md')).map((f) => `walkthrough/${f.replace(/\.md$/, '.html')}`)].sort(),
    );
    const broken: string[] = [];
    let checked = 0;
    for (const page of pages) {
      const html = readFileSync(page, 'utf8');
      for (const [, attr, target] of html.matchAll(/\s(href|src)="([^"]+)"/g)) {
        if (/^[a-z]+:/i.test(target)) {
          // A link out is followed only when clicked; nothing is loaded from elsewhere.
          // The icon is `data:,` (none: the browser asks for /favicon.ico otherwise).
          if (target === 'data:,') continue;
          if (attr !== 'href' || !/^https:/.test(target)) broken.push(`${relative(site, page)}: ${attr}="${target}" loads from outside the site`);
          continue;
        }
        const [path, anchor] = target.split('#');
        const file = path === '' ? page : join(dirname(page), path);
        checked++;
        let body: string;
        try {
          body = readFileSync(file, 'utf8');
        } catch {
          broken.push(`${relative(site, page)}: ${target} (no such file)`);
          continue;
        }
        if (anchor && !body.includes(`id="${anchor}"`)) broken.push(`${relative(site, page)}: ${target} (no id "${anchor}")`);
      }
    }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });

  it('the kernels are files of their own, not inlined', () => {
    const wasm = files(site).filter((f) => f.endsWith('.wasm'));
    expect(wasm).toHaveLength(2);
    for (const f of wasm) expect(readFileSync(f).subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
  });
});

describe('web/serve.mjs', () => {
  for (const isolate of [true, false]) {
    it(`isolate: ${isolate}: the headers, the types, 404, nothing outside its folder`, async () => {
      const server = await serve({ dir: site, isolate });
      try {
        const page = await fetch(server.url);
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
        expect(page.headers.get('cross-origin-opener-policy')).toBe(isolate ? 'same-origin' : null);
        expect(page.headers.get('cross-origin-embedder-policy')).toBe(isolate ? 'require-corp' : null);
        const wasm = files(site).find((f) => f.endsWith('.wasm'))!;
        const r = await fetch(new URL(relative(site, wasm), server.url));
        expect(r.headers.get('content-type')).toBe('application/wasm');
        expect(Buffer.from(await r.arrayBuffer())).toEqual(readFileSync(wasm));
        expect((await fetch(new URL('no-such-file.js', server.url))).status).toBe(404);
        // A path that climbs out of the folder (sent as is, not normalised by the client).
        const port = new URL(server.url).port;
        const raw = await new Promise<number>((resolve, reject) => {
          import('node:http').then(({ request }) => {
            const req = request({ host: '127.0.0.1', port, path: '/../../etc/passwd' }, (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            });
            req.on('error', reject);
            req.end();
          }, reject);
        });
        expect([403, 404]).toContain(raw);
      } finally {
        await server.close();
      }
    });
  }
});
