import fc from 'fast-check';
import { Model, type ModelConfig, Rng } from '../../src/index.js';

/** The config space the issue asks the properties to range over. */
export const arbConfig = fc.record({
  model: fc.constantFrom('grid_lstm' as const, 'lstm' as const),
  numLayers: fc.integer({ min: 1, max: 4 }),
  rnnSize: fc.integer({ min: 1, max: 8 }),
  vocabSize: fc.integer({ min: 2, max: 10 }),
  tieWeights: fc.boolean(),
  dropout: fc.oneof(fc.constant(0), fc.double({ min: 0.05, max: 0.7, noNaN: true })),
});

export const arbShape = fc.record({
  batchSize: fc.integer({ min: 1, max: 3 }),
  seqLength: fc.integer({ min: 1, max: 6 }),
});

/**
 * A float64 model whose parameters are redrawn uniform(−scale, scale): larger than char-rnn's
 * ±0.08, so the gates leave their linear regime and a wrong second-order term would show.
 */
export function randomModel(config: ModelConfig, seed: number, scale: number, dtype: 'float32' | 'float64' = 'float64'): Model {
  const m = new Model(config, { dtype, seed });
  const rng = new Rng(seed ^ 0x5bd1e995);
  for (let j = 0; j < m.params.length; j++) m.params[j] = rng.uniformRange(-scale, scale);
  return m;
}

export function randomIds(rng: Rng, n: number, V: number): number[] {
  return Array.from({ length: n }, () => rng.int(V));
}

export function randomState(model: Model, B: number, rng: Rng, scale = 1) {
  const s = model.zeroState(B);
  for (const a of [...s.h, ...s.c]) for (let j = 0; j < a.length; j++) a[j] = rng.uniformRange(-scale, scale);
  return s;
}

/** Largest |a − b| / max(|a| + |b|, 1e-300) over two arrays (pure relative error). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-300): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let e = 0;
  for (let j = 0; j < a.length; j++) {
    const d = Math.abs(a[j] - b[j]) / Math.max(Math.abs(a[j]) + Math.abs(b[j]), floor);
    if (d > e) e = d;
  }
  return e;
}

/**
 * The number of runs for a property: `n`, times the environment variable PROPERTY_RUNS_SCALE
 * when it is set (e.g. `PROPERTY_RUNS_SCALE=20 npx vitest run test/safetensors.test.ts` to soak
 * a file with twenty times as many random cases).
 */
export function runs(n: number): number {
  const scale = Number(process.env.PROPERTY_RUNS_SCALE ?? 1);
  return Number.isFinite(scale) && scale > 0 ? Math.max(1, Math.round(n * scale)) : n;
}
