/**
 * The library in a real browser: a small page (test/browser/library-page/) that imports
 * 'grid-lstm' by name, bundled with Vite as an application would bundle it (the package's
 * `exports` give the bundler dist/browser.js, the .wasm builds and the Web Worker), served from
 * a local server with and without the COOP/COEP headers of cross-origin isolation, in headless
 * Chromium (test/helpers/browser.ts; skipped with a line when there is none, a failure under
 * REQUIRE_BROWSER=1).
 *
 * - The same run (text, options, seed) trained in the page and in Node gives the same losses,
 *   bit for bit: on one thread on the page's main thread and in its worker, and on two threads
 *   in the worker (Web Workers) of the isolated page against two worker_threads in Node. The
 *   plain-SIMD kernels on both sides: the relaxed build may fuse differently on other engines.
 * - The page's checkpoint (kept in memory by the browser's Trainer) parses in Node and holds the
 *   weights Node's run ended with; a checkpoint written by Node loads in the page and gives
 *   Node's loss on a text.
 * - Without isolation the page says one thread and why, and a run asking for two is refused
 *   with that line; with it, a run asking for two on the page's main thread is refused (it may
 *   not wait), and in the worker it runs.
 * - No console errors, no request leaving the machine.
 */
import { createServer, type Server } from 'node:http';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions, Trainer } from '../../src/train/train.js';
import { loadCheckpoint, parseCheckpoint } from '../../src/train/checkpoint.js';
import { encode, loadDefaultCorpus } from '../../src/train/data.js';
import { evaluateIds } from '../../src/infer/generate.js';
import { loadWasmKernelsSync } from '../../src/nn/wasm-node.js';
import { BROWSER_HINT, type BrowserSession, browserRequired, findChromium, NO_BROWSER, openBrowser } from '../helpers/browser.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGE = fileURLToPath(new URL('./library-page/', import.meta.url));

const chromium = findChromium();
const haveBrowser = chromium !== null || browserRequired(); // required: a missing browser fails below
if (chromium === null) {
  const line = browserRequired() ? `REQUIRE_BROWSER=1 but ${NO_BROWSER}` : BROWSER_HINT;
  process.stderr.write(`\n  ${line}\n\n`);
}

/** The run both sides make: a small grid LSTM, 6 steps, a validation at 3 and 6. */
const OPTIONS: Partial<TrainOptions> = {
  model: 'grid_lstm',
  rnnSize: 24,
  numLayers: 2,
  batchSize: 8,
  seqLength: 16,
  maxSteps: 6,
  evalValEvery: 3,
  dropout: 0.1,
  seed: 7,
  keep: 'last-1',
  log: 'none',
};

interface PageRun {
  train: [number, number][];
  val: [number, number][];
  threads: number;
  kernels: string;
  checkpoint: number[];
  checkpointName: string;
}

const MIME: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

/** Serves `dir` on 127.0.0.1 (a free port); `isolated`: with COOP same-origin + COEP require-corp on every response. */
function serve(dir: string, isolated: boolean): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream' };
    if (isolated) Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
    res.writeHead(200, headers).end(readFileSync(file));
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` })));
}

/** The same run in Node (plain-SIMD kernels, checkpoints in `dir`). */
function nodeRun(text: string, options: Partial<TrainOptions>, dir: string) {
  const kernels = loadWasmKernelsSync({ variant: 'simd' });
  const t = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, ...options, checkpointDir: dir }, { kernels });
  const outcome = t.run({ onWarning: () => {} });
  if (outcome.status !== 'done') throw new Error(`the Node run ended ${outcome.status}`);
  return { trainer: t, checkpoint: outcome.checkpoint };
}

describe.skipIf(!haveBrowser)('the library in Chromium (bundled by Vite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'grid-lstm-browser-lib-'));
  const out = join(work, 'dist');
  const servers: Server[] = [];
  let plainUrl = '';
  let isolatedUrl = '';
  let b: BrowserSession;
  const corpus = loadDefaultCorpus();
  const text = corpus.slice(3_000_000, 3_012_000);
  const evalText = corpus.slice(4_000_000, 4_001_000);

  beforeAll(async () => {
    // The page as an application's source folder: its files, and the package under
    // node_modules/grid-lstm (a link to this checkout, as `npm install` of a local path makes).
    const src = join(work, 'src');
    cpSync(PAGE, src, { recursive: true });
    mkdirSync(join(src, 'node_modules'));
    symlinkSync(ROOT, join(src, 'node_modules', 'grid-lstm'), 'dir');
    const { build } = await import('vite');
    await build({
      configFile: false,
      root: src,
      logLevel: 'warn',
      build: { outDir: out, emptyOutDir: true, minify: false, target: 'es2022' },
      worker: { format: 'es' },
    });
    for (const isolated of [false, true]) {
      const { server, url } = await serve(out, isolated);
      servers.push(server);
      if (isolated) isolatedUrl = url;
      else plainUrl = url;
    }
    b = await openBrowser();
  });
  afterAll(async () => {
    await b?.close();
    for (const s of servers) s.close();
    rmSync(work, { recursive: true, force: true });
  });

  async function open(url: string) {
    await b.open(url);
    await b.page.waitForFunction(`document.body.dataset.ready === '1'`, undefined, { timeout: 30_000 });
  }
  const call = <T>(expression: string, arg?: unknown) => b.page.evaluate(expression, arg) as Promise<T>;

  it('the bundle holds the browser entry, the two .wasm builds and the Web Worker (no Node module)', () => {
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('<script type="module"');
    const assets = readdirSync(join(out, 'assets'));
    expect(assets.filter((f) => f.endsWith('.wasm')).length).toBe(2);
    // The page, its training worker, and the library's thread worker.
    expect(assets.filter((f) => f.endsWith('.js')).length).toBeGreaterThanOrEqual(3);
    const js = assets.filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(out, 'assets', f), 'utf8')).join('\n');
    expect(js).not.toMatch(/["']node:/);
  });

  it('without cross-origin isolation: one thread, said why; a two-thread run is refused with that line', async () => {
    await open(plainUrl);
    const env = await call<{ threads: number; isolated: boolean; why: string; autoKernels: string }>('window.lib.environment()');
    expect(env).toMatchObject({ threads: 1, isolated: false });
    expect(env.why).toMatch(/^one thread: the page is not cross-origin isolated \(threads need it served with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp\)$/);
    // 'auto' takes the relaxed-SIMD build where WebAssembly.validate accepts it (Chromium does).
    expect(env.autoKernels).toBe('wasm-relaxed-simd');
    const refused = await call<string>(
      `window.lib.inWorker('train', ${JSON.stringify(text)}, ${JSON.stringify({ ...OPTIONS, threads: 2 })}).then(() => 'ran', (e) => e.message)`,
    );
    expect(refused).toBe(`--threads 2: ${env.why}; train with threads 1`);
    expect(b.errors).toEqual([]);
  });

  it("one thread, on the page's main thread and in its worker: Node's losses bit for bit; the checkpoints go both ways", async () => {
    await open(plainUrl);
    const node = nodeRun(text, { ...OPTIONS, threads: 1 }, join(work, 'cv1'));
    const here = await call<PageRun>(`window.lib.train(${JSON.stringify(text)}, ${JSON.stringify({ ...OPTIONS, threads: 1 })})`);
    const inWorker = await call<PageRun>(`window.lib.inWorker('train', ${JSON.stringify(text)}, ${JSON.stringify({ ...OPTIONS, threads: 1 })})`);
    for (const run of [here, inWorker]) {
      expect(run.kernels).toBe('wasm-simd');
      expect(run.threads).toBe(1);
      expect(run.train).toEqual(node.trainer.history.train);
      expect(run.val).toEqual(node.trainer.history.val);
    }
    expect(node.trainer.history.train.length).toBe(6);
    expect(node.trainer.history.val.map(([i]) => i)).toEqual([3, 6]);
    // The page's checkpoint (in memory, named as Node names its file) parses here: Node's final weights.
    expect(here.checkpointName).toMatch(/^cv\/lm_grid_lstm_epoch[\d.]+_[\d.]+\.safetensors$/);
    const fromPage = parseCheckpoint(new Uint8Array(here.checkpoint), 'page.safetensors');
    expect(fromPage.training!.iteration).toBe(6);
    expect(Buffer.from(fromPage.model.params.buffer).equals(Buffer.from(loadCheckpoint(node.checkpoint).model.params.buffer))).toBe(true);
    // Node's checkpoint in the page: the loss Node computes on a text.
    const kernels = loadWasmKernelsSync({ variant: 'simd' });
    const ck = loadCheckpoint(node.checkpoint, { kernels });
    const nodeLoss = evaluateIds(ck.model, encode(evalText, ck.vocab)).loss;
    const pageLoss = await call<{ loss: number; model: string; iteration: number }>(
      `window.lib.evaluate(${JSON.stringify(Array.from(readFileSync(node.checkpoint)))}, ${JSON.stringify(evalText)})`,
    );
    expect(pageLoss).toEqual({ loss: nodeLoss, model: 'grid_lstm', iteration: 6 });
    expect(b.errors).toEqual([]);
  });

  it("cross-origin isolated: two threads (Web Workers) in the worker equal Node's two threads bit for bit; the main thread may not wait", async () => {
    await open(isolatedUrl);
    const env = await call<{ threads: number; isolated: boolean; cores: number }>(`window.lib.inWorker('environment')`);
    expect(env.isolated).toBe(true);
    expect(env.threads).toBe(env.cores);
    const options = { ...OPTIONS, threads: 2 };
    const node = nodeRun(text, options, join(work, 'cv2'));
    expect(node.trainer.threads).toBe(2);
    const run = await call<PageRun>(`window.lib.inWorker('train', ${JSON.stringify(text)}, ${JSON.stringify(options)})`);
    expect(run.threads).toBe(2);
    expect(run.train).toEqual(node.trainer.history.train);
    expect(run.val).toEqual(node.trainer.history.val);
    // Two threads are not one thread's numbers (the sums round differently): the comparison above is of the threaded path.
    const one = nodeRun(text, { ...OPTIONS, threads: 1 }, join(work, 'cv3'));
    expect(run.train).not.toEqual(one.trainer.history.train);
    const refused = await call<string>(`window.lib.train(${JSON.stringify(text)}, ${JSON.stringify(options)}).then(() => 'ran', (e) => e.message)`);
    expect(refused).toBe(
      "--threads 2: a page's main thread may not wait for worker threads (Atomics.wait): run the Trainer inside a Web Worker, or train with threads 1",
    );
    expect(b.errors).toEqual([]);
  });
});
