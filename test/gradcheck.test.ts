/**
 * Every backward pass against central finite differences, in float64, over random configs.
 *
 * Error formula (src/nn/gradcheck.ts): for each element, with a the analytic gradient and
 *   n = (−f(θ+2ε) + 8f(θ+ε) − 8f(θ−ε) + f(θ−2ε)) / (12ε),  ε = 2e-3,
 *   err = |a − n| / max(|a| + |n|, 1e-5)   (round-off alone makes n uncertain by ~1e-11),
 * where f = Σ_t mean_b NLL + ⟨r, final state⟩ (r random), from a random initial state.
 * Required: err ≤ 1e-6 for every element of every parameter tensor and of the initial state.
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

  for (const kind of ['grid_lstm', 'lstm'] as const) {
    it(`${kind}: every parameter and initial-state gradient matches central differences to 1e-6`, () => {
      fc.assert(
        fc.property(
          arbConfig.map((c) => ({ ...c, model: kind })),
          arbShape,
          fc.integer({ min: 1, max: 1e6 }),
          fc.double({ min: 0.08, max: 1, noNaN: true }),
          (config, shape, seed, scale) => {
            const model = randomModel(config, seed, scale);
            const res = gradcheck(model, { ...shape, seed });
            // Every tensor was checked (parameters and both state tensors of every layer).
            expect(Object.keys(res.errors).length).toBe(model.layout.length + 2 * config.numLayers);
            if (res.maxError > 1e-6) {
              throw new Error(`max error ${res.maxError} at ${JSON.stringify(res.worst)} for ${JSON.stringify({ config, shape, seed, scale })}`);
            }
          },
        ),
        { numRuns: runs(25) },
      );
    });
  }
});
