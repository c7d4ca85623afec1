/**
 * The browser entry (dist/browser.js, package.json `exports` "." → `browser`) must load in a
 * page: nothing on its import graph may import a Node built-in (`node:fs`, or a bare `fs`), and
 * no module on it may use Node's globals (process, Buffer, require). Checked on the built files,
 * which are what a bundler reads (`npm run build` first; the suite's pretest does it).
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, 'dist');

/** The module specifiers of static imports and re-exports, dynamic imports, and `new URL('…', import.meta.url)` assets. */
function specifiers(code: string): { imports: string[]; urls: string[] } {
  const imports = [...code.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/gm), ...code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm), ...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
  const urls = [...code.matchAll(/new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g)].map((m) => m[1]);
  return { imports, urls };
}

/** Code without comments (the modules' comments name process, Buffer … freely). */
function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

/** Every module reachable from `entry` (workers started with new URL(…) included), with what each imports. */
function graph(entry: string): Map<string, { imports: string[]; urls: string[]; code: string }> {
  const seen = new Map<string, { imports: string[]; urls: string[]; code: string }>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    const code = readFileSync(file, 'utf8');
    const s = specifiers(code);
    seen.set(file, { ...s, code });
    for (const spec of [...s.imports, ...s.urls.filter((u) => u.endsWith('.js'))]) {
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec));
    }
  }
  return seen;
}

describe('the browser entry', () => {
  const modules = graph(resolve(dist, 'browser.js'));

  it('reaches the library, the Web Worker and the wasm builds', () => {
    const names = [...modules.keys()].map((f) => relative(dist, f));
    for (const m of ['browser.js', 'train/train-core.js', 'train/train-browser.js', 'nn/model.js', 'nn/wasm.js', 'nn/wasm-browser.js', 'parallel/web.js', 'parallel/web-worker.js', 'parallel/worker-core.js', 'train/checkpoint-core.js']) {
      expect(names).toContain(m);
    }
    const urls = [...modules.values()].flatMap((m) => m.urls);
    expect(urls).toEqual(expect.arrayContaining(['../../build/kernels.wasm', '../../build/kernels-relaxed.wasm', './web-worker.js']));
  });

  it('imports no Node built-in anywhere on its graph', () => {
    const builtins = new Set(builtinModules);
    const bad: string[] = [];
    for (const [file, m] of modules) {
      for (const spec of m.imports) {
        if (spec.startsWith('node:') || builtins.has(spec.split('/')[0])) bad.push(`${relative(dist, file)} imports ${spec}`);
        else if (!spec.startsWith('.')) bad.push(`${relative(dist, file)} imports the package ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("uses none of Node's globals (process, Buffer, require, __dirname)", () => {
    const bad: string[] = [];
    for (const [file, m] of modules) {
      const code = stripComments(m.code);
      for (const g of ['process', 'Buffer', 'require', '__dirname', 'setImmediate']) {
        // (a property of the same name, `x.process`, and a guarded `g.setImmediate` are fine)
        if (new RegExp(`(?<![.\\w])${g}(?![\\w-])`).test(code)) bad.push(`${relative(dist, file)} uses ${g}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("exports what src/index.ts exports, but for the Node-only names and the page's own (the two lists are written twice: this keeps them in step)", async () => {
    const node = Object.keys(await import(resolve(dist, 'index.js')));
    const browser = Object.keys(await import(resolve(dist, 'browser.js')));
    // Files, the synchronous kernels' loader, Node's platform and the viz report (zlib).
    expect(node.filter((k) => !browser.includes(k)).sort()).toEqual([
      'DEFAULT_REPORT_BITS', 'DEFAULT_REPORT_KINDS', 'FileCheckpointStore', 'NODE_PLATFORM', 'REPORT_FORMAT',
      'buildReportData', 'decodeReportBlock', 'defaultReportKinds', 'loadCheckpoint', 'loadDefaultCorpus',
      'loadWasmKernelsSync', 'readCorpus', 'readSafetensorsFile', 'readTextFile', 'renderReport', 'saveCheckpoint',
      'wasmAvailable',
    ]);
    // The page's platform and its Web Worker threads.
    expect(browser.filter((k) => !node.includes(k)).sort()).toEqual([
      'BROWSER_PLATFORM', 'WorkerError', 'browserThreads', 'defaultBrowserThreads', 'defaultThreadCount',
      'effectiveThreads', 'spawnWebWorker',
    ]);
  });

  it("the Node modules it replaces are not on it (files, worker_threads, the loss log's file)", () => {
    const names = [...modules.keys()].map((f) => relative(dist, f));
    for (const m of ['index.js', 'train/train.js', 'train/checkpoint.js', 'train/data.js', 'train/safetensors.js', 'nn/wasm-node.js', 'parallel/node.js', 'parallel/worker.js']) {
      expect(names).not.toContain(m);
    }
  });
});

describe("the browser entry's Trainer (run here in Node, on the TypeScript kernels)", async () => {
  const { Trainer, MemoryCheckpointStore, DEFAULT_TRAIN_OPTIONS, parseCheckpoint, checkpointBytes } = await import('../src/browser.js');
  const { Trainer: NodeTrainer } = await import('../src/train/train.js');
  const text = 'the quick brown fox jumps over the lazy dog. '.repeat(40);
  const options = { ...DEFAULT_TRAIN_OPTIONS, model: 'lstm' as const, rnnSize: 8, numLayers: 1, batchSize: 2, seqLength: 8, maxSteps: 6, evalValEvery: 3, trainFrac: 0.9, valFrac: 0.1, keep: 'last-1' as const };

  it('keeps its checkpoints in memory (--keep applied), with the same losses as the Node Trainer', () => {
    const t = Trainer.fromText(text, options);
    const outcome = t.run();
    if (outcome.status !== 'done') throw new Error(`the run ended ${outcome.status}`);
    expect(t.store).toBeInstanceOf(MemoryCheckpointStore);
    const files = (t.store as InstanceType<typeof MemoryCheckpointStore>).files;
    expect([...files.keys()]).toEqual([outcome.checkpoint]);
    expect(outcome.checkpoint).toMatch(/^cv\/lm_lstm_epoch[\d.]+_[\d.]+\.safetensors$/);
    const ck = parseCheckpoint(t.store.read(outcome.checkpoint).slice().buffer, 'page.safetensors');
    expect(ck.training!.iteration).toBe(6);
    expect([...ck.model.params]).toEqual([...t.model.params]);
    // The Node Trainer on the same text and options: the same steps (it writes files: run without them).
    const n = NodeTrainer.fromText(text, options);
    for (let i = 0; i < 6; i++) n.step();
    expect(n.history.train).toEqual(t.history.train);
    expect(checkpointBytes(t.model, t.vocab).length).toBeGreaterThan(0);
  });

  it("refuses a model too large for a page's memory in the page's terms (not this machine's)", () => {
    // Weights, gradients and Adam state of far more than 4 GiB (but fewer than one buffer's 2^32 parameters).
    expect(() => Trainer.fromText(text, { ...options, rnnSize: 12_000, numLayers: 2 })).toThrow(
      /^training --rnn-size 12000 with --num-layers 2 and a vocabulary of \d+, batches of --batch-size 2 × --seq-length 8, needs about [\d.]+ GB of memory but a page's WebAssembly memory is limited to 4 GiB; lower --rnn-size, --num-layers, --batch-size or --seq-length$/,
    );
  });

  it('refuses threads outside a cross-origin isolated worker, saying why', async () => {
    const { loadWasmKernelsSync } = await import('../src/nn/wasm-node.js');
    const kernels = loadWasmKernelsSync({ variant: 'simd' });
    expect(() => Trainer.fromText(text, { ...options, threads: 2 }, { kernels })).toThrow(/^--threads 2: one thread: the page is not cross-origin isolated .*; train with threads 1$/);
  });
});

describe("Trainer.startThreads (Node's Trainer)", () => {
  it('starts the worker threads before the first step; the run is the one without it, bit for bit', async () => {
    const { Trainer, DEFAULT_TRAIN_OPTIONS } = await import('../src/train/train.js');
    const { loadWasmKernelsSync } = await import('../src/nn/wasm-node.js');
    const text = 'the quick brown fox jumps over the lazy dog. '.repeat(40);
    const options = { ...DEFAULT_TRAIN_OPTIONS, model: 'lstm' as const, rnnSize: 8, numLayers: 1, batchSize: 4, seqLength: 8, threads: 2 };
    const losses = async (start: boolean) => {
      const t = Trainer.fromText(text, options, { kernels: loadWasmKernelsSync({ variant: 'simd' }) });
      try {
        if (start) await t.startThreads();
        return [t.step().loss, t.step().loss, t.evaluate('val')];
      } finally {
        t.close();
      }
    };
    const started = await losses(true);
    expect(started).toEqual(await losses(false));
    expect(started.every(Number.isFinite)).toBe(true);
  });

  it('where threads start asynchronously (a browser), a step before startThreads() has resolved is refused, not blocked', async () => {
    const { Trainer, NODE_PLATFORM, DEFAULT_TRAIN_OPTIONS } = await import('../src/train/train.js');
    const { loadWasmKernelsSync } = await import('../src/nn/wasm-node.js');
    // The browser's rule on Node's workers: a step must wait for startThreads().
    class AsyncStart extends Trainer {
      static override platform = { ...NODE_PLATFORM, threadsStartAsync: true };
    }
    const text = 'the quick brown fox jumps over the lazy dog. '.repeat(40);
    const options = { ...DEFAULT_TRAIN_OPTIONS, model: 'lstm' as const, rnnSize: 8, numLayers: 1, batchSize: 4, seqLength: 8, threads: 2 };
    const t = AsyncStart.fromText(text, options, { kernels: loadWasmKernelsSync({ variant: 'simd' }) });
    const refused = /^worker threads start here only while the event loop turns: use `await trainer.runAsync\(\)`, or `await trainer.startThreads\(\)` before run\(\) or step\(\)$/;
    try {
      expect(() => t.step()).toThrow(refused);
      // Started but not yet running (the playground's "Train anew" hang): still refused.
      const starting = t.startThreads();
      expect(() => t.step()).toThrow(refused);
      expect(() => t.evaluate('val')).toThrow(refused);
      await starting;
      expect(Number.isFinite(t.step().loss)).toBe(true);
      // Closed: the threads must be started again.
      t.close();
      expect(() => t.step()).toThrow(refused);
      await t.startThreads();
      expect(Number.isFinite(t.step().loss)).toBe(true);
    } finally {
      t.close();
    }
  });
});

describe('Web Workers (src/parallel/web.ts, with a stand-in Worker)', () => {
  it("one whose script does not load stops the pool's start at once, in one line (not at the 20 s start timeout)", async () => {
    const { spawnWebWorker } = await import('../src/parallel/web.js');
    const { DataParallel } = await import('../src/parallel/pool.js');
    const { Model } = await import('../src/nn/model.js');
    const { loadWasmKernelsSync } = await import('../src/nn/wasm-node.js');
    // A Worker whose module script fails to load: Chromium fires a plain 'error' Event (no message) soon after.
    class NoScript {
      constructor(readonly url: URL) {}
      postMessage(): void {}
      terminate(): void {}
      addEventListener(type: string, listener: (e: { message?: string }) => void): void {
        if (type === 'error') setTimeout(() => listener({}), 10);
      }
    }
    const g = globalThis as { Worker?: unknown };
    g.Worker = NoScript;
    const model = new Model({ model: 'lstm', vocabSize: 5, rnnSize: 8, numLayers: 1 }, { kernels: loadWasmKernelsSync({ variant: 'simd' }) });
    const pool = new DataParallel(model, 4, 4, 2, spawnWebWorker);
    try {
      const t0 = Date.now();
      await expect(pool.whenStarted()).rejects.toThrow(/^worker thread 1 stopped: its Web Worker's script \(web-worker\.js\) did not load$/);
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      pool.close();
      delete g.Worker;
    }
  });
});

describe('checkpoints without Buffer', () => {
  it("the carried state's base64 (written and read without Node's Buffer) is Buffer's, both ways, for random states", async () => {
    const { checkpointBytes, parseCheckpoint } = await import('../src/train/checkpoint-core.js');
    const { parseSafetensors } = await import('../src/train/safetensors-core.js');
    const { Model } = await import('../src/nn/model.js');
    const { buildVocab } = await import('../src/train/data-core.js');
    const { Rng } = await import('../src/nn/rng.js');
    const vocab = buildVocab('abcdefg');
    const rng = new Rng(16);
    const concat = (parts: Float32Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
    for (let trial = 0; trial < 60; trial++) {
      // Byte counts 4·L·B·N of every remainder mod 3; gru carries no c (an empty string).
      const [N, L, B] = [1 + (trial % 5), 1 + (trial % 3), 1 + (trial % 4)];
      const kind = trial % 2 ? 'lstm' : 'gru';
      const model = new Model({ model: kind, vocabSize: 7, rnnSize: N, numLayers: L });
      const values = (n: number) => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * 10 ** (6 * rng.uniform()));
      const carry = { h: Array.from({ length: L }, () => values(B * N)), c: Array.from({ length: L }, () => values(kind === 'lstm' ? B * N : 0)) };
      const bytes = checkpointBytes(model, vocab, { carry });
      const written = JSON.parse(parseSafetensors(bytes).metadata.carry);
      expect(written.h).toBe(concat(carry.h).toString('base64'));
      expect(written.c).toBe(concat(carry.c).toString('base64'));
      const read = parseCheckpoint(bytes, 'x.safetensors').carry!;
      expect(Buffer.from(read.h.buffer).equals(concat(carry.h))).toBe(true);
      expect(Buffer.from(read.c.buffer).equals(concat(carry.c))).toBe(true);
    }
  });
});
