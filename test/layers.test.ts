/** src/nn/layers.ts details the model tests do not pin down. */
import { describe, expect, it } from 'vitest';
import { dropoutMask } from '../src/nn/layers.js';
import { Rng } from '../src/nn/rng.js';

describe('dropoutMask', () => {
  it('drops a unit when the draw u is below p (u < p), keeps it at u = p, with 1/(1 − p) kept', () => {
    // p chosen equal to the first draw of Rng(7), then a draw just above it by a second seed.
    const p = new Rng(7).uniform();
    const mask = new Float64Array(3).fill(-1);
    dropoutMask(mask, p, new Rng(7), 1, 1);
    expect(Array.from(mask)).toEqual([-1, 1 / (1 - p), -1]); // only [start, start + n) written
    const q = Math.min(0.99, p + 1e-9);
    dropoutMask(mask, q, new Rng(7), 0, 1);
    expect(mask[0]).toBe(0); // u = p < q: dropped
  });

  it('draws one uniform per unit, in order', () => {
    const p = 0.5;
    const rng = new Rng(3);
    const want = Array.from({ length: 8 }, () => (rng.uniform() < p ? 0 : 2));
    const mask = new Float64Array(8);
    dropoutMask(mask, p, new Rng(3), 0, 8);
    expect(Array.from(mask)).toEqual(want);
  });
});
