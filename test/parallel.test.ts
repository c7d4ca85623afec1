/**
 * Training and validation on several threads (src/parallel/, issue 13):
 * - 1 vs 2 vs 3 threads over random small configs (every model, tied/untied, dropout, B not
 *   divisible by the thread count, B below it): the loss, every gradient, the carried state and
 *   the dropout generator's state agree up to float rounding; the dropout masks are the same;
 * - a given thread count is bit-identical from run to run, and a Trainer resumed with the same
 *   count continues bit for bit (another count is allowed, and says so);
 * - a worker that throws, or whose thread is ended, stops the job with an error (never a hang),
 *   and a Trainer's run stops with status 'failed' naming the last good checkpoint.
 * The workers run dist/parallel/worker.js (built by `npm test`'s pretest step).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Float } from '../src/nn/kernels.js';
import { Model } from '../src/nn/model.js';
import type { ModelConfig } from '../src/nn/params.js';
import { Rng } from '../src/nn/rng.js';
import { loadWasmKernelsSync } from '../src/nn/wasm-node.js';
import { spawnNodeWorker } from '../src/parallel/node.js';
import { DataParallel, WorkerError, defaultThreadCount, effectiveThreads, partOf } from '../src/parallel/pool.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS, Trainer } from '../src/train/train.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-parallel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** max |a − b| / max(|a|, tiny): how far b is from a, relative to a's scale. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 1e-6;
  for (let j = 0; j < a.length; j++) {
    d = Math.max(d, Math.abs(a[j] - b[j]));
    s = Math.max(s, Math.abs(a[j]));
  }
  return d / s;
}

function twin(config: ModelConfig, seed: number): Model {
  return new Model(config, { kernels: loadWasmKernelsSync(), seed });
}

const arbCase = fc.record({
  tieWeights: fc.boolean(),
  dropout: fc.constantFrom(0, 0, 0.25),
  rnnSize: fc.integer({ min: 3, max: 12 }),
  numLayers: fc.integer({ min: 1, max: 3 }),
  vocabSize: fc.integer({ min: 2, max: 12 }),
  B: fc.integer({ min: 1, max: 7 }),
  T: fc.integer({ min: 1, max: 5 }),
  seed: fc.integer({ min: 0, max: 1e6 }),
});

describe('thread split', () => {
  it('gives every stream to exactly one thread, sizes differing by at most one', () => {
    for (let B = 1; B <= 20; B++) {
      for (let W = 1; W <= 9; W++) {
        const E = effectiveThreads(W, B);
        expect(E).toBe(Math.min(W, B));
        let next = 0;
        const sizes: number[] = [];
        for (let w = 0; w < E; w++) {
          const p = partOf(w, E, B);
          expect(p.first).toBe(next);
          next += p.count;
          sizes.push(p.count);
        }
        expect(next).toBe(B);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        expect(Math.min(...sizes)).toBeGreaterThan(0);
      }
    }
  });
});

describe('default thread count', () => {
  const o = { model: 'grid_lstm', rnnSize: 128, numLayers: 2, batchSize: 50, seqLength: 50 };
  it('is the cores, at most 8 and at most B; 1 for a step too small to share', () => {
    expect(defaultThreadCount(2, o)).toBe(2);
    expect(defaultThreadCount(16, o)).toBe(8);
    expect(defaultThreadCount(16, { ...o, batchSize: 3 })).toBe(3);
    expect(defaultThreadCount(1, o)).toBe(1);
    expect(defaultThreadCount(8, { ...o, rnnSize: 16, batchSize: 4, seqLength: 8 })).toBe(1);
    expect(defaultThreadCount(8, { ...o, rnnSize: 32, batchSize: 8, seqLength: 16 })).toBe(8);
  });
});

describe('1 vs 2 vs 3 threads', () => {
  // Three random cases of each model (gru and rnn carry h only: their c views are empty).
  it('agree on the loss, gradients, carried state, dropout state and validation loss', () => {
    for (const model of ['lstm', 'grid_lstm', 'gru', 'rnn'] as const) fc.assert(
      fc.property(arbCase, (c) => {
        const config: ModelConfig = { model, vocabSize: c.vocabSize, rnnSize: c.rnnSize, numLayers: c.numLayers, tieWeights: c.tieWeights, dropout: c.dropout };
        const { B, T } = c;
        const rng = new Rng(c.seed);
        const x = Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize));
        const y = Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize));
        const one = twin(config, c.seed);
        const carry = one.zeroState(B);
        for (const a of [...carry.h, ...carry.c]) for (let j = 0; j < a.length; j++) a[j] = rng.uniformRange(-1, 1);
        const r1 = one.forwardBackward({ x, y, batchSize: B, seqLength: T }, carry);
        const v1 = one.inference(() => one.forward({ x, y, batchSize: B, seqLength: T }, one.zeroState(B))).loss;
        for (const threads of [2, 3]) {
          const m = twin(config, c.seed);
          const dp = new DataParallel(m, B, T, threads, spawnNodeWorker);
          try {
            const r = dp.forwardBackward(x, y, carry, m.rng);
            expect(Math.abs(r.loss - r1.loss)).toBeLessThan(1e-5 * Math.max(1, r1.loss));
            expect(relDiff(one.grads, m.grads)).toBeLessThan(1e-4);
            for (let l = 0; l < c.numLayers; l++) {
              expect(relDiff(r1.finalState.h[l], r.finalState.h[l])).toBeLessThan(1e-4);
              expect(r.finalState.c[l]).toHaveLength(model === 'gru' || model === 'rnn' ? 0 : B * c.rnnSize);
              expect(relDiff(r1.finalState.c[l], r.finalState.c[l])).toBeLessThan(1e-4);
            }
            // The masks are the same draws: the generator ends in the same state.
            expect(m.rng.state).toBe(one.rng.state);
            dp.resetState();
            expect(Math.abs(dp.evaluateBatch(x, y) - v1)).toBeLessThan(1e-5 * Math.max(1, v1));
          } finally {
            dp.close();
          }
        }
      }),
      { numRuns: 3 },
    );
  }, 60_000);

  it('with targets not scored (−1), as the addition task masks them: the parts add up to the whole loss', () => {
    fc.assert(
      fc.property(arbCase, fc.constantFrom('lstm' as const, 'grid_lstm' as const, 'gru' as const, 'rnn' as const), (c, model) => {
        const config: ModelConfig = { model, vocabSize: c.vocabSize, rnnSize: c.rnnSize, numLayers: c.numLayers, tieWeights: c.tieWeights, dropout: c.dropout };
        const { B, T } = c;
        const rng = new Rng(c.seed);
        const x = Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize));
        // Each stream scores a different number of targets (stream b: its last b + 1 at most).
        const y = Int32Array.from({ length: B * T }, (_, j) => (j % T >= T - 1 - Math.floor(j / T) ? rng.int(c.vocabSize) : -1));
        const one = twin(config, c.seed);
        const r1 = one.forwardBackward({ x, y, batchSize: B, seqLength: T }, one.zeroState(B));
        const v1 = one.inference(() => one.forward({ x, y, batchSize: B, seqLength: T }, one.zeroState(B))).loss;
        const m = twin(config, c.seed);
        const dp = new DataParallel(m, B, T, 2, spawnNodeWorker);
        try {
          const r = dp.forwardBackward(x, y, m.zeroState(B), m.rng);
          expect(Math.abs(r.loss - r1.loss)).toBeLessThan(1e-5 * Math.max(1, r1.loss));
          expect(relDiff(one.grads, m.grads)).toBeLessThan(1e-4);
          dp.resetState();
          expect(Math.abs(dp.evaluateBatch(x, y) - v1)).toBeLessThan(1e-5 * Math.max(1, v1));
        } finally {
          dp.close();
        }
      }),
      { numRuns: 6 },
    );
  }, 60_000);

  it('a given thread count is bit-identical from run to run (with dropout)', () => {
    const config: ModelConfig = { model: 'grid_lstm', vocabSize: 9, rnnSize: 10, numLayers: 2, dropout: 0.3 };
    const B = 5;
    const T = 4;
    const x = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % 9);
    const y = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 2) % 9);
    const runs = [0, 1].map(() => {
      const m = twin(config, 7);
      const dp = new DataParallel(m, B, T, 2, spawnNodeWorker);
      try {
        let carry = m.zeroState(B);
        const losses: number[] = [];
        for (let s = 0; s < 3; s++) {
          const r = dp.forwardBackward(x, y, carry, m.rng);
          losses.push(r.loss);
          carry = r.finalState;
        }
        return { losses, grads: m.grads.slice(), h: carry.h[1].slice(), rng: m.rng.state };
      } finally {
        dp.close();
      }
    });
    expect(runs[1].losses).toEqual(runs[0].losses);
    expect(Buffer.from(runs[1].grads.buffer).equals(Buffer.from(runs[0].grads.buffer))).toBe(true);
    expect(Buffer.from(runs[1].h.buffer).equals(Buffer.from(runs[0].h.buffer))).toBe(true);
    expect(runs[1].rng).toBe(runs[0].rng);
  }, 20_000);
});

describe('the threads share one copy of the packed weights and first-layer tables', () => {
  // The pool prepares them once per step (src/parallel/shared.ts); each thread's result must be
  // bit for bit what a model computing its own copies gives on its streams. Reference: the
  // parts run one after another on one thread, each through Model.forwardBackward with `part`,
  // the gradients summed in thread order; steps with an update between (stale copies would show).
  const cases: [ModelConfig, number, number][] = [
    [{ model: 'lstm', vocabSize: 11, rnnSize: 12, numLayers: 2, dropout: 0.2 }, 7, 6], // every part tabulates (V ≤ count·T)
    [{ model: 'grid_lstm', vocabSize: 13, rnnSize: 10, numLayers: 2, tieWeights: true }, 5, 4], // only some do
  ];
  for (const [config, B, T] of cases) {
    it(`${config.model}, B ${B}, T ${T}: each step and validation batch equal the parts run one by one`, () => {
      for (const threads of [2, 3]) {
        const m = twin(config, 3);
        const ref = twin(config, 3);
        const P = ref.params.length;
        const k = ref.kernels as ReturnType<typeof loadWasmKernelsSync>;
        const parts = Array.from({ length: threads }, (_, w) =>
          w === 0 ? ref : new Model(config, { kernels: k, buffers: { params: ref.params, grads: k.alloc(P) } }),
        );
        const N = config.rnnSize;
        const dp = new DataParallel(m, B, T, threads, spawnNodeWorker);
        try {
          let carry = m.zeroState(B);
          for (let step = 0; step < 2; step++) {
            const x = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + step) % config.vocabSize);
            const y = Int32Array.from({ length: B * T }, (_, i) => (i * 3 + 1 + step) % config.vocabSize);
            const start = ref.rng.state;
            const r = dp.forwardBackward(x, y, carry, m.rng);
            let loss = 0;
            let val = 0;
            const hLast: Float32Array[] = [];
            for (let w = 0; w < threads; w++) {
              const { first, count } = partOf(w, threads, B);
              const rows = (a: Float) => a.slice(first * N, (first + count) * N);
              const batch = { x: x.subarray(first * T, (first + count) * T), y: y.subarray(first * T, (first + count) * T), batchSize: count, seqLength: T };
              const rng = new Rng(0);
              rng.state = start;
              const part = { first, total: B, scored: B * T };
              const rw = parts[w].forwardBackward(batch, { h: carry.h.map(rows), c: carry.c.map(rows) }, { rng, part });
              loss += rw.loss;
              hLast.push(rw.finalState.h[1] as Float32Array);
              const z = parts[w].zeroState(count);
              val += parts[w].inference(() => parts[w].forward(batch, z, { part })).loss;
              if (w === threads - 1) ref.rng.state = rng.state;
            }
            for (let w = 1; w < threads; w++) for (let j = 0; j < P; j++) ref.grads[j] += parts[w].grads[j];
            expect(r.loss).toBe(loss);
            expect(Buffer.from(m.grads.buffer, m.grads.byteOffset, 4 * P).equals(Buffer.from(ref.grads.buffer, ref.grads.byteOffset, 4 * P))).toBe(true);
            const h = new Float32Array(B * N);
            hLast.forEach((a, w) => h.set(a, partOf(w, threads, B).first * N));
            expect(Buffer.from(r.finalState.h[1].buffer, r.finalState.h[1].byteOffset, 4 * B * N).equals(Buffer.from(h.buffer))).toBe(true);
            dp.resetState();
            expect(dp.evaluateBatch(x, y)).toBe(val);
            // The same update on both sides, so the next step's copies must be made again.
            for (const model of [m, ref]) for (let j = 0; j < P; j++) model.params[j] -= 0.05 * model.grads[j];
            carry = r.finalState;
          }
        } finally {
          dp.close();
        }
      }
    }, 30_000);
  }
});

describe('failures stop the job, never hang', () => {
  const config: ModelConfig = { model: 'lstm', vocabSize: 5, rnnSize: 4, numLayers: 1 };
  const x = new Int32Array(8);
  it('a worker that throws', () => {
    const m = twin(config, 1);
    const dp = new DataParallel(m, 4, 2, 2, spawnNodeWorker);
    dp.forwardBackward(x, x, m.zeroState(4), m.rng);
    expect(() => dp.failWorkerForTest()).toThrow(/worker thread 1 failed: a test asked this worker to fail/);
    // The pool is closed after a failure: later jobs say so at once.
    expect(() => dp.forwardBackward(x, x, m.zeroState(4), m.rng)).toThrow(WorkerError);
  }, 20_000);

  it('a worker whose thread is ended', () => {
    const m = twin(config, 1);
    const handles: { terminate(): void }[] = [];
    const dp = new DataParallel(m, 4, 2, 2, (init) => {
      const h = spawnNodeWorker(init);
      handles.push(h);
      return h;
    }, { answerMs: 3000 });
    dp.forwardBackward(x, x, m.zeroState(4), m.rng);
    handles[0].terminate();
    const t0 = Date.now();
    expect(() => dp.forwardBackward(x, x, m.zeroState(4), m.rng)).toThrow(/worker thread 1 (stopped|gave no answer)/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 20_000);
});

describe('a worker that never starts', () => {
  it('is reported after startMs, naming the build', () => {
    const m = twin({ model: 'lstm', vocabSize: 5, rnnSize: 4, numLayers: 1 }, 1);
    const dp = new DataParallel(m, 4, 2, 2, () => ({ terminate() {} }), { startMs: 500 });
    const x = new Int32Array(8);
    expect(() => dp.forwardBackward(x, x, m.zeroState(4), m.rng)).toThrow(/worker thread 1 did not start in 0.5 s .*npm run build/);
  });
});

describe('Trainer with threads', () => {
  const TEXT = 'the quick brown fox jumps over the lazy dog. '.repeat(60);
  const options = (threads: number, d: string) => ({
    ...DEFAULT_TRAIN_OPTIONS,
    model: 'lstm' as const,
    rnnSize: 8,
    numLayers: 2,
    dropout: 0.2,
    batchSize: 5,
    seqLength: 6,
    maxSteps: 6,
    evalValEvery: 3,
    printEvery: 1000,
    valFrac: 0.1,
    trainFrac: 0.9,
    threads,
    log: 'none' as const,
    checkpointDir: join(dir, d),
  });

  it('resumes bit for bit with the same count, and says so with another', () => {
    const wasm = () => ({ kernels: loadWasmKernelsSync() });
    const whole = Trainer.fromText(TEXT, options(2, 'whole'), wasm());
    const out = whole.run();
    expect(out.status).toBe('done');
    const cut = Trainer.fromText(TEXT, { ...options(2, 'cut'), maxSteps: 3 }, wasm());
    expect(cut.run().status).toBe('done');
    const ck = loadCheckpoint(cut.lastCheckpoint!, { kernels: loadWasmKernelsSync() });
    const resumed = Trainer.resume(TEXT, ck, { maxSteps: 6 });
    expect(resumed.threadsChange).toBeNull();
    expect(resumed.run().status).toBe('done');
    expect(Buffer.from(resumed.model.params.buffer, resumed.model.params.byteOffset, resumed.model.params.byteLength).equals(
      Buffer.from(whole.model.params.buffer, whole.model.params.byteOffset, whole.model.params.byteLength),
    )).toBe(true);
    expect(resumed.history.val).toEqual(whole.history.val);
    const other = Trainer.resume(TEXT, loadCheckpoint(cut.lastCheckpoint!, { kernels: loadWasmKernelsSync() }), { maxSteps: 6, threads: 1 });
    expect(other.threadsChange).toEqual({ from: 2, to: 1 });
    expect(other.run().status).toBe('done');
    expect(relDiff(whole.model.params, other.model.params)).toBeLessThan(1e-4);
  }, 30_000);

  it('a worker that fails stops the run with status failed, one line naming the last good checkpoint', () => {
    /** A pool whose worker never starts (a spawner that starts nothing), put where the trainer keeps its pool. */
    const failing = (tr: Trainer) => {
      (tr as unknown as { parallel: DataParallel }).parallel = new DataParallel(tr.model, 5, 6, 2, () => ({ terminate() {} }), { startMs: 300 });
    };
    const t = Trainer.fromText(TEXT, { ...options(2, 'fails'), maxSteps: 3 }, { kernels: loadWasmKernelsSync() });
    expect(t.run().status).toBe('done');
    const checkpoint = t.lastCheckpoint!;
    const params = t.model.params.slice();
    (t.options as { maxSteps: number | null }).maxSteps = 6;
    failing(t);
    const out = t.run();
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.message).not.toContain('\n');
    expect(out.message).toBe(
      `training stopped at iteration 3: worker thread 1 did not start in 0.3 s (its script is dist/parallel/worker.js: run \`npm run build\`); ` +
        `the last good checkpoint is ${checkpoint}: continue with --resume ${checkpoint} (--threads 1 if it happens again)`,
    );
    expect(out.checkpoint).toBe(checkpoint);
    expect(t.iteration).toBe(3);
    expect(t.model.params).toEqual(params); // the failed step changed no weight
    // Resumed, before its first checkpoint: back to the one it resumed from.
    const r = Trainer.resume(TEXT, loadCheckpoint(checkpoint, { kernels: loadWasmKernelsSync() }), { maxSteps: 6, evalValEvery: 5 });
    failing(r);
    const again = r.run();
    expect(again.status === 'failed' && again.message).toMatch(/; no checkpoint was written since this run resumed: resume again from the one it resumed from/);
  }, 20_000);

  it('threads > 1 needs the WebAssembly kernels', () => {
    expect(() => Trainer.fromText(TEXT, options(2, 'ts'))).toThrow('--threads 2 needs the WebAssembly kernels; with --kernels ts use --threads 1');
    expect(() => Trainer.fromText(TEXT, options(1, 'ts'))).not.toThrow();
  });
});
