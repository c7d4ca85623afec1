/**
 * Every backward pass against central finite differences, in float64, over random configs.
 *
 * Error formula (src/nn/gradcheck.ts): for each element, with a the analytic gradient and
 *   n = (−f(θ+2ε) + 8f(θ+ε) − 8f(θ−ε) + f(θ−2ε)) / (12ε),  ε = 2e-3,
 *   err = |a − n| / max(|a| + |n|, 1e-5)   (round-off alone makes n uncertain by ~1e-11),
 * where f = Σ_t mean_b NLL + ⟨r, final state⟩ (r random), from a random initial state; with
 * masked targets (−1, not scored) the NLL is summed over the scored ones only, / B.
 * Required: err ≤ 1e-6 for every element of every parameter tensor and of the initial state, for
 * every model (grid_lstm, lstm, gru, rnn), with and without dropout (arbConfig's dropout: 0 or
 * 0.05–0.7, its mask fixed by the seed), and with masked targets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gradcheck, relativeError } from '../src/index.js';
import { arbConfig, arbShape, randomModel, runs } from './helpers/arbitraries.js';

describe('gradcheck', () => {
  it('relativeError is the stated formula', () => {
    expect(relativeError(1, 1, 1e-6)).toBe(0);
    expect(relativeError(1, 3, 1e-6)).toBe(0.5);
    expect(relativeError(0, 1e-12, 1e-6)).toBeCloseTo(1e-6, 15);
  });

  for (const kind of ['grid_lstm', 'lstm', 'gru', 'rnn'] as const) {
    it(`${kind}: every parameter and initial-state gradient matches central differences to 1e-6`, () => {
      let withDropout = 0;
      fc.assert(
        fc.property(
          arbConfig.map((c) => ({ ...c, model: kind })),
          arbShape,
          fc.integer({ min: 1, max: 1e6 }),
          fc.double({ min: 0.08, max: 1, noNaN: true }),
          (config, shape, seed, scale) => {
            const model = randomModel(config, seed, scale);
            if (config.dropout > 0) withDropout++;
            const res = gradcheck(model, { ...shape, seed });
            // Every tensor was checked: the parameters, and the state tensors of every layer (h and
            // c; gru and rnn carry h only).
            const stateTensors = kind === 'gru' || kind === 'rnn' ? 1 : 2;
            expect(Object.keys(res.errors).length).toBe(model.layout.length + stateTensors * config.numLayers);
            if (res.maxError > 1e-6) {
              throw new Error(`max error ${res.maxError} at ${JSON.stringify(res.worst)} for ${JSON.stringify({ config, shape, seed, scale })}`);
            }
          },
        ),
        { numRuns: runs(25) },
      );
      expect(withDropout).toBeGreaterThan(0); // (each case has dropout with probability 1/2)
    });
  }

  // The masked loss (targets −1 not scored, the addition task's): its gradient is that of the
  // NLL over the scored targets only, / B.
  for (const kind of ['grid_lstm', 'lstm', 'gru', 'rnn'] as const) {
    it(`${kind}: with about a third of the targets not scored, every gradient matches central differences to 1e-6`, () => {
      fc.assert(
        fc.property(arbConfig.map((c) => ({ ...c, model: kind })), arbShape, fc.integer({ min: 1, max: 1e6 }), (config, shape, seed) => {
          const model = randomModel(config, seed, 0.5);
          const res = gradcheck(model, { ...shape, seed, masked: true });
          if (res.maxError > 1e-6) {
            throw new Error(`max error ${res.maxError} at ${JSON.stringify(res.worst)} for ${JSON.stringify({ config, shape, seed })}`);
          }
        }),
        { numRuns: runs(6) },
      );
    });
  }
});
