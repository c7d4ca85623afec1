/**
 * grid-lstm/testing: the fast-check arbitraries and helpers that this project's property tests
 * use, for tests of your own (random model configs, shapes, batches, states, models).
 *
 * fast-check is an optional peer dependency: install it (`npm i -D fast-check`) to use this
 * module. The main entry point ('grid-lstm') does not load it.
 */
import fc from 'fast-check';
import { type Batch, Model, type State } from './nn/model.js';
import { cellOf } from './nn/cells.js';
import { MODEL_KINDS, type ModelConfig, type ModelKind } from './nn/params.js';
import { Rng } from './nn/rng.js';

/** The config space the properties range over: any model, L 1–4, N 1–8, V 2–10, tied or not, dropout 0 or 0.05–0.7. */
export const arbConfig = fc.record({
  model: fc.constantFrom<ModelKind>(...MODEL_KINDS),
  numLayers: fc.integer({ min: 1, max: 4 }),
  rnnSize: fc.integer({ min: 1, max: 8 }),
  vocabSize: fc.integer({ min: 2, max: 10 }),
  tieWeights: fc.boolean(),
  dropout: fc.oneof(fc.constant(0), fc.double({ min: 0.05, max: 0.7, noNaN: true })),
});

/** B 1–3, T 1–6. */
export const arbShape = fc.record({
  batchSize: fc.integer({ min: 1, max: 3 }),
  seqLength: fc.integer({ min: 1, max: 6 }),
});

/** A batch of B·T random inputs and targets in [0, vocabSize), [B, T] row-major. */
export function arbBatch(vocabSize: number, batchSize: number, seqLength: number): fc.Arbitrary<Batch> {
  const n = batchSize * seqLength;
  const ids = fc.array(fc.integer({ min: 0, max: vocabSize - 1 }), { minLength: n, maxLength: n });
  return fc.record({ x: ids, y: ids }).map(({ x, y }) => ({ x, y, batchSize, seqLength }));
}

/**
 * A state (per layer h and c, [B, N], float64) with entries in [−scale, scale]; with `cell`
 * false, c is empty (length 0) in every layer, as gru and rnn carry h only.
 */
export function arbState(numLayers: number, rnnSize: number, batchSize: number, scale = 1, cell = true): fc.Arbitrary<State> {
  const layers = (n: number) => {
    const layer = fc.float64Array({ min: -scale, max: scale, noNaN: true, minLength: n, maxLength: n });
    return fc.array(layer, { minLength: numLayers, maxLength: numLayers });
  };
  const n = batchSize * rnnSize;
  return fc.record({ h: layers(n), c: layers(cell ? n : 0) });
}

/** arbState for a model config: c empty for gru and rnn. */
export function arbModelState(config: ModelConfig, batchSize: number, scale = 1): fc.Arbitrary<State> {
  return arbState(config.numLayers, config.rnnSize, batchSize, scale, cellOf(config.model).hasCell);
}

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

/** n random ids in [0, V). */
export function randomIds(rng: Rng, n: number, V: number): number[] {
  return Array.from({ length: n }, () => rng.int(V));
}

/** A state of the model's dtype for batch size B, entries uniform(−scale, scale). */
export function randomState(model: Model, B: number, rng: Rng, scale = 1): State {
  const s = model.zeroState(B);
  for (const a of [...s.h, ...s.c]) for (let j = 0; j < a.length; j++) a[j] = rng.uniformRange(-scale, scale);
  return s;
}

/**
 * Largest |a − b| / max(|a| + |b|, floor) over two arrays (default floor 1e-300: pure relative
 * error); equal entries (equal infinities too) differ by 0, and a NaN in either array makes the
 * result NaN, which no tolerance accepts (a NaN gradient must not pass as a match).
 */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-300): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let e = 0;
  for (let j = 0; j < a.length; j++) {
    if (a[j] === b[j]) continue;
    const d = Math.abs(a[j] - b[j]) / Math.max(Math.abs(a[j]) + Math.abs(b[j]), floor);
    if (Number.isNaN(d)) return NaN;
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
  const scale = Number(globalThis.process?.env?.PROPERTY_RUNS_SCALE ?? 1);
  return Number.isFinite(scale) && scale > 0 ? Math.max(1, Math.round(n * scale)) : n;
}
