/**
 * Workspaces (the activations and scratch of one batch shape): a model keeps four shapes and
 * reuses the memory of the ones it drops, so that a caller going through many shapes (varying T)
 * uses a bounded amount of memory, also with WasmKernels, which never take memory back. And a
 * reused workspace computes exactly what a fresh one does.
 */
import { describe, expect, it } from 'vitest';
import { Model, type ModelConfig, Rng, buildVocab, sample } from '../src/index.js';
import { loadWasmKernelsSync } from '../src/nn/wasm-node.js';
import { randomIds } from '../src/testing.js';
import { DEFAULT_TRAIN_OPTIONS, Trainer } from '../src/train/train.js';

const config: ModelConfig = { model: 'grid_lstm', vocabSize: 10, rnnSize: 8, numLayers: 2, tieWeights: true, dropout: 0.2 };
const SHAPES: [number, number][] = [];
for (let B = 1; B <= 4; B++) for (let T = 1; T <= 25; T++) SHAPES.push([B, T]);

/** Zero states made once per model and batch size. */
const zeros = new WeakMap<Model, Map<number, ReturnType<Model['zeroState']>>>();
function zeroState(model: Model, B: number) {
  if (!zeros.has(model)) zeros.set(model, new Map());
  const m = zeros.get(model)!;
  if (!m.has(B)) m.set(B, model.zeroState(B));
  return m.get(B)!;
}

function pass(model: Model, B: number, T: number, seed: number) {
  const rng = new Rng(seed);
  const batch = { x: randomIds(rng, B * T, 10), y: randomIds(rng, B * T, 10), batchSize: B, seqLength: T };
  const r = model.forwardBackward(batch, zeroState(model, B), { rng: new Rng(seed) });
  return { loss: r.loss, grads: Array.from(model.grads) };
}

/** The memory one pass at [B, T] takes on a fresh model: its workspace, with the kernels' own scratch. */
function workspaceBytes(B: number, T: number): number {
  const k = loadWasmKernelsSync({ variant: 'simd' });
  const m = new Model(config, { kernels: k, seed: 1 });
  zeroState(m, B);
  const before = k.bytesAllocated;
  pass(m, B, T, 1);
  return k.bytesAllocated - before;
}

describe('workspaces', () => {
  it('memory stays bounded over 100 shapes, three times over (WasmKernels)', () => {
    expect(SHAPES).toHaveLength(100);
    const largest = workspaceBytes(4, 25);
    // 300 passes over 100 shapes in a shuffled order, on a model of its own.
    const k = loadWasmKernelsSync({ variant: 'simd' });
    const model = new Model(config, { kernels: k, seed: 1 });
    for (let B = 1; B <= 4; B++) zeroState(model, B);
    const start = k.bytesAllocated;
    const rng = new Rng(5);
    const order = SHAPES.map((s) => [rng.uniform(), s] as const).sort((a, b) => a[0] - b[0]).map(([, s]) => s);
    const grown: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (const [B, T] of order) pass(model, B, T, B * 100 + T);
      grown.push(k.bytesAllocated - start);
    }
    // Without reuse, every one of the 300 passes made a new workspace: about 78 × `largest`.
    // The bound of the free list (model.ts) is about 20 × the largest workspace plus 4 exact ones.
    expect(grown[2]).toBeLessThanOrEqual(24 * largest);
    // After the first round, nothing more is needed here.
    expect(grown[2]).toBe(grown[0]);
  });

  it('memory stays bounded when T only grows, 1 to 100 (each shape larger than every one before)', () => {
    const largest = workspaceBytes(1, 100);
    const k = loadWasmKernelsSync({ variant: 'simd' });
    const model = new Model(config, { kernels: k, seed: 1 });
    zeroState(model, 1);
    const start = k.bytesAllocated;
    for (let T = 1; T <= 100; T++) pass(model, 1, T, T);
    // Without reuse, or reusing only blocks of the exact sizes asked, about 50 × `largest`.
    expect(k.bytesAllocated - start).toBeLessThanOrEqual(24 * largest);
  });

  it('a reused workspace computes exactly what a fresh one does (float64 and WasmKernels)', () => {
    for (const make of [() => new Model(config, { dtype: 'float64', seed: 3 }), () => new Model(config, { kernels: loadWasmKernelsSync({ variant: 'simd' }), seed: 3 })]) {
      const fresh = make();
      const want = pass(fresh, 3, 7, 42);
      const used = make();
      // Go through more than four other shapes, larger and smaller, so that 3×7 lands in a reused block.
      for (const [B, T] of [[4, 25], [1, 1], [2, 9], [4, 20], [3, 3], [1, 25], [2, 2]]) pass(used, B, T, B + T);
      const got = pass(used, 3, 7, 42);
      expect(got.loss).toBe(want.loss);
      expect(got.grads).toEqual(want.grads);
    }
  });

  // Each of these starts from model.zeroState(), which took kernel memory (never given back by
  // WasmKernels) until it made ordinary arrays: 600 KB per validation at 3×512, B 50, and every
  // step of the addition task, whose batches start from zero.
  it('zero states, samplings, validations and addition steps take no more kernel memory once warm (WasmKernels)', () => {
    const k = loadWasmKernelsSync({ variant: 'simd' });
    const model = new Model(config, { kernels: k, seed: 1 });
    const before = k.bytesAllocated;
    for (let i = 0; i < 100; i++) {
      const s = model.zeroState(50);
      expect(s.h[0]).toHaveLength(50 * 8);
      expect(s.h[0].every((v) => v === 0) && s.c[1].every((v) => v === 0)).toBe(true);
    }
    expect(k.bytesAllocated).toBe(before);
    // Of the model's dtype: a float64 model's sampling carries its state in float64.
    expect(model.zeroState(2).c[0]).toBeInstanceOf(Float32Array);
    expect(new Model(config, { dtype: 'float64' }).zeroState(2).h[1]).toBeInstanceOf(Float64Array);

    const vocab = buildVocab('abcdefghij');
    sample(model, vocab, { length: 5, primetext: 'ab' });
    const sampled = k.bytesAllocated;
    for (let i = 0; i < 30; i++) sample(model, vocab, { length: 5, primetext: 'ab', seed: i });
    expect(k.bytesAllocated).toBe(sampled);

    const text = 'the cat sat on the mat. '.repeat(20);
    const small = { ...DEFAULT_TRAIN_OPTIONS, model: 'lstm' as const, rnnSize: 8, numLayers: 2, batchSize: 4, seqLength: 5, log: 'none' as const };
    const trainer = Trainer.fromText(text, small, { kernels: loadWasmKernelsSync({ variant: 'simd' }) });
    const tk = trainer.model.kernels as ReturnType<typeof loadWasmKernelsSync>;
    const first = trainer.evaluate('val');
    const validated = tk.bytesAllocated;
    for (let i = 0; i < 20; i++) expect(trainer.evaluate('val')).toBe(first);
    expect(tk.bytesAllocated).toBe(validated);

    const adder = Trainer.addition(
      { ...DEFAULT_TRAIN_OPTIONS, task: 'addition', digitLength: 2, seqLength: 10, model: 'lstm', rnnSize: 8, numLayers: 1, batchSize: 20, log: 'none' },
      { kernels: loadWasmKernelsSync({ variant: 'simd' }) },
    );
    const ak = adder.model.kernels as ReturnType<typeof loadWasmKernelsSync>;
    adder.step();
    const stepped = ak.bytesAllocated;
    for (let i = 0; i < 20; i++) adder.step();
    expect(ak.bytesAllocated).toBe(stepped);
  });
});
