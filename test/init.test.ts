/**
 * Initialisation as char-rnn's: every parameter uniform(−0.08, 0.08), drawn from Rng(seed) in
 * layout order, then the forget-gate block of the bias of each LSTM's first linear map set to 1
 * (lstm: layers.l.i2h; grid_lstm: the time LSTM's t2h in every layer and the depth LSTM's t2h,
 * once when tied, per layer when untied; gru and rnn: none, char-rnn's rule is for LSTMs only).
 * Which block is the forget gate is taken from the
 * reference cell (src/reference/ops.ts), not from the model's code: with the pre-activations set
 * to that bias, the cell carries c_prev scaled by σ(1).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Model, type ModelConfig, Rng } from '../src/index.js';
import { lstmCell } from '../src/reference/ops.js';
import { arbConfig, runs } from './helpers/arbitraries.js';

/** The first-map biases of each LSTM, written out here from the naming scheme (src/nn/params.ts). */
function firstMapBiases(c: Required<ModelConfig>): string[] {
  const L = Array.from({ length: c.numLayers }, (_, l) => l);
  if (c.model === 'gru' || c.model === 'rnn') return []; // no forget gate
  if (c.model === 'lstm') return L.map((l) => `layers.${l}.i2h.bias`);
  const time = L.map((l) => `layers.${l}.time.t2h.bias`);
  return c.tieWeights ? [...time, 'depth.t2h.bias'] : [...time, ...L.map((l) => `layers.${l}.depth.t2h.bias`)];
}

const sigmoid = (a: number) => 1 / (1 + Math.exp(-a));

describe('initialisation', () => {
  it('forget-gate block of each first map = 1; all else uniform(−0.08, 0.08) from Rng(seed) in layout order', () => {
    fc.assert(
      fc.property(arbConfig, fc.integer({ min: 0, max: 2 ** 31 }), fc.constantFrom('float32' as const, 'float64' as const), (config, seed, dtype) => {
        const model = new Model(config, { seed, dtype });
        const c = model.config;
        const N = c.rnnSize;
        const forget = new Set(firstMapBiases(c));
        for (const name of forget) expect(model.parameterNames()).toContain(name);
        // The same draws, replayed: one uniform per parameter, in layout order.
        const rng = new Rng(seed);
        const cast = dtype === 'float32' ? Math.fround : (v: number) => v;
        for (const spec of model.layout) {
          const values = model.param(spec.name);
          expect(values.length).toBe(spec.size);
          for (let j = 0; j < spec.size; j++) {
            const drawn = cast(rng.uniformRange(-0.08, 0.08));
            const isForget = forget.has(spec.name) && j >= N && j < 2 * N;
            const want = isForget ? 1 : drawn;
            if (values[j] !== want) throw new Error(`${spec.name}[${j}] = ${values[j]}, expected ${want} (${JSON.stringify(config)}, seed ${seed})`);
            if (!isForget && !(Math.abs(values[j]) <= 0.08)) throw new Error(`${spec.name}[${j}] = ${values[j]} outside [−0.08, 0.08]`);
          }
        }
      }),
      { numRuns: runs(60) },
    );
  });

  it("the 1s sit in the reference cell's forget gate: c_prev is carried scaled by σ(1)", () => {
    const configs: ModelConfig[] = [
      { model: 'lstm', vocabSize: 5, rnnSize: 3, numLayers: 2 },
      { model: 'grid_lstm', vocabSize: 5, rnnSize: 3, numLayers: 2, tieWeights: true },
      { model: 'grid_lstm', vocabSize: 5, rnnSize: 3, numLayers: 2, tieWeights: false },
    ];
    for (const config of configs) {
      const model = new Model(config, { seed: 7, dtype: 'float64' });
      const N = model.config.rnnSize;
      for (const name of firstMapBiases(model.config)) {
        const a = Float64Array.from(model.param(name));
        const carried = lstmCell(a, Float64Array.from({ length: N }, () => 1), 1, N).c;
        const fresh = lstmCell(a, new Float64Array(N), 1, N).c;
        for (let n = 0; n < N; n++) expect(carried[n] - fresh[n]).toBeCloseTo(sigmoid(1), 14);
      }
    }
  });

  it('no other bias holds a 1, and no tensor is constant; draws depend on the seed and repeat with it', () => {
    for (const config of [
      { model: 'grid_lstm', vocabSize: 6, rnnSize: 4, numLayers: 3, tieWeights: false },
      { model: 'gru', vocabSize: 6, rnnSize: 4, numLayers: 2 },
      { model: 'rnn', vocabSize: 6, rnnSize: 4, numLayers: 2 },
    ] as ModelConfig[]) {
      const a = new Model(config, { seed: 5, dtype: 'float64' });
      const b = new Model(config, { seed: 5, dtype: 'float64' });
      const other = new Model(config, { seed: 6, dtype: 'float64' });
      expect(Array.from(b.params)).toEqual(Array.from(a.params));
      const forget = new Set(firstMapBiases(a.config));
      let differ = 0;
      for (const name of a.parameterNames()) {
        const v = Array.from(a.param(name));
        const w = Array.from(other.param(name));
        const ones = v.filter((x) => x === 1).length;
        expect(ones).toBe(forget.has(name) ? 4 : 0);
        expect(new Set(v.filter((x) => x !== 1)).size).toBeGreaterThan(v.length / 2); // not constant
        differ += v.filter((x, j) => x !== w[j]).length;
      }
      // Every drawn value differs between seeds 5 and 6 (the 1s are the same).
      expect(differ).toBe(a.params.length - 4 * forget.size);
    }
  });
});
