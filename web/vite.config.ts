/**
 * The playground's build (Vite): web/ → dist-web/, a static site with relative URLs that works
 * from any folder of any host. `grid-lstm` resolves to the library's browser entry
 * (src/browser.ts, compiled from source); its .wasm files and the training worker are assets
 * Vite finds through their `new URL(..., import.meta.url)` references.
 *
 * The plugin below adds the files made at build time: sample.txt (web/sample-text.mjs) and the
 * walkthrough chapters as HTML pages under walkthrough/ (web/walkthrough-pages.mjs), which the
 * page's "How it works" panel links to.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { sampleText } from './sample-text.mjs';
import { walkthroughPages } from './walkthrough-pages.mjs';

const root = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

/** Files made at build time, served by the dev server and emitted by the build. */
function generatedFiles(): Plugin {
  let files: Map<string, { type: string; body: string | Uint8Array }> | null = null;
  const make = () => {
    if (files) return files;
    const sample = sampleText();
    files = new Map();
    files.set('sample.txt', { type: 'text/plain; charset=utf-8', body: sample.text });
    files.set('sample.json', { type: 'application/json', body: JSON.stringify({ from: sample.from, to: sample.to, speeches: sample.speeches, chars: sample.text.length }) });
    for (const [name, body] of walkthroughPages(repo)) files.set(`walkthrough/${name}`, { type: name.endsWith('.svg') ? 'image/svg+xml' : name.endsWith('.png') ? 'image/png' : 'text/html; charset=utf-8', body });
    return files;
  };
  return {
    name: 'grid-lstm-playground-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = decodeURIComponent((req.url ?? '').split('?')[0]).replace(/^\/+/, '');
        const f = make().get(path);
        if (!f) return next();
        res.setHeader('Content-Type', f.type);
        res.end(f.body);
      });
    },
    generateBundle() {
      for (const [fileName, f] of make()) this.emitFile({ type: 'asset', fileName, source: f.body });
    },
  };
}

export default defineConfig({
  root,
  base: './',
  resolve: {
    alias: { 'grid-lstm': fileURLToPath(new URL('../src/browser.ts', import.meta.url)) },
  },
  // The worker is an ES module (it imports the library).
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('../dist-web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // The .wasm kernels stay files, never inlined as base64: fetched, their bytes validated
    // (relaxed SIMD or not, src/nn/wasm.ts) and compiled once (src/nn/wasm-browser.ts).
    assetsInlineLimit: (file) => (file.endsWith('.wasm') ? false : undefined),
    chunkSizeWarningLimit: 2000,
  },
  server: {
    headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
  },
  plugins: [generatedFiles()],
});
