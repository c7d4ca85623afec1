/**
 * The train / val / test split sizes as char-rnn's CharSplitLMMinibatchLoader makes them:
 *   ntrain = floor(nbatches · train_frac)
 *   test_frac = 1 − train_frac − val_frac (train.lua: max(0, …))
 *   test_frac = 0:  nval = nbatches − ntrain,        ntest = 0
 *   else:           nval = floor(nbatches · val_frac), ntest = the rest
 * checked by hand where this rule and "test gets floor(n · test_frac), val the rest" differ,
 * and as a property with the fractions in whole percent, computed here in integers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CharLoader, splitCounts } from '../src/train/data.js';
import { runs } from './helpers/arbitraries.js';

describe("splits as char-rnn's loader makes them", () => {
  it('val gets floor(n · val_frac) and test the rest when there is a test split (hand-checked)', () => {
    // 10 batches, 0.5 / 0.25 (test 0.25): train 5, val floor(2.5) = 2, test 3.
    expect(splitCounts(10, { trainFrac: 0.5, valFrac: 0.25 })).toEqual({ train: 5, val: 2, test: 3 });
    // 7 batches, 0.4 / 0.3 (test 0.3): train floor(2.8) = 2, val floor(2.1) = 2, test 3.
    expect(splitCounts(7, { trainFrac: 0.4, valFrac: 0.3 })).toEqual({ train: 2, val: 2, test: 3 });
    // No test split: val gets the rest. 7 batches, 0.4 / 0.6: train 2, val 5.
    expect(splitCounts(7, { trainFrac: 0.4, valFrac: 0.6 })).toEqual({ train: 2, val: 5, test: 0 });
    // char-rnn's defaults, 0.95 / 0.05, whose test fraction is 4.4e-17 in floating point: no test split.
    expect(1 - 0.95 - 0.05).toBeGreaterThan(0);
    expect(splitCounts(39, { trainFrac: 0.95, valFrac: 0.05 })).toEqual({ train: 37, val: 2, test: 0 });
    // The loader uses these counts, in train, val, test order.
    const loader = new CharLoader(new Uint16Array(61), 2, 3, { trainFrac: 0.5, valFrac: 0.25 });
    expect(loader.nbatches).toBe(10);
    expect(loader.splitSizes).toEqual({ train: 5, val: 2, test: 3 });
  });

  it('property: fractions in whole percent, the counts computed in integers', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 0, max: 100 }).chain((a) => fc.tuple(fc.constant(a), fc.integer({ min: 0, max: 100 - a }))),
        (n, [a, b]) => {
          const ntrain = Math.floor((n * a) / 100); // n·a is an exact integer, so is the floor
          const hasTest = a + b < 100;
          const nval = hasTest ? Math.floor((n * b) / 100) : n - ntrain;
          const expected = { train: ntrain, val: nval, test: n - ntrain - nval };
          expect(splitCounts(n, { trainFrac: a / 100, valFrac: b / 100 })).toEqual(expected);
        },
      ),
      { numRuns: runs(2000) },
    );
  });
});
