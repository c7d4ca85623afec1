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
import { CharLoader, splitCounts, trainingTooShortMessage } from '../src/train/data.js';
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

describe('trainingTooShortMessage: the text too short for a train and a validation batch (hand-checked)', () => {
  const f = { trainFrac: 0.9, valFrac: 0.1 }; // no test split: k batches give train floor(0.9k), val the rest
  const head = (n: number, B: number, T: number, need: number, fr = '--train-frac 0.9 --val-frac 0.1') =>
    `the text has ${n} character(s), too few to train with --batch-size ${B} --seq-length ${T}: ` +
    `that needs ${need} batches of ${B}×${T} (with ${fr}, so that there is a train and a validation batch), ` +
    `i.e. at least ${need * B * T + 1} characters`;

  it('null when floor((n − 1)/(B·T)) batches give a train and a val batch', () => {
    // 13 characters of 2×3: floor(12/6) = 2 batches, train 1, val 1.
    expect(trainingTooShortMessage(13, 2, 3, f)).toBeNull();
    expect(trainingTooShortMessage(20, 2, 3, f)).toBeNull();
    // 0.5 / 0.25: 4 batches give train 2, val 1 (and test 1); 25 characters of 2×3 make 4.
    expect(trainingTooShortMessage(25, 2, 3, { trainFrac: 0.5, valFrac: 0.25 })).toBeNull();
  });

  it('names the batches needed and the largest --batch-size and --seq-length that fit', () => {
    // 12 characters of 2×3: floor(11/6) = 1 batch (train 0); 2 are needed, i.e. 13 characters.
    // B ≤ floor(11/(2·3)) = 1, T ≤ floor(11/(2·2)) = 2.
    const both = '; use --batch-size 1 or less (with --seq-length 3) or --seq-length 2 or less (with --batch-size 2), or a longer text';
    expect(trainingTooShortMessage(12, 2, 3, f)).toBe(head(12, 2, 3, 2) + both);
    expect(trainingTooShortMessage(10, 2, 3, f)).toBe(head(10, 2, 3, 2) + both);
    // 8 characters of 1×5: 1 batch; B ≤ floor(7/10) = 0 (none), T ≤ floor(7/2) = 3. And 5×1.
    expect(trainingTooShortMessage(8, 1, 5, f)).toBe(head(8, 1, 5, 2) + '; use --seq-length 3 or less (with --batch-size 1), or a longer text');
    expect(trainingTooShortMessage(8, 5, 1, f)).toBe(head(8, 5, 1, 2) + '; use --batch-size 3 or less (with --seq-length 1), or a longer text');
    // 8 characters of 2×5: B ≤ floor(7/10) = 0, T ≤ floor(7/4) = 1.
    expect(trainingTooShortMessage(8, 2, 5, f)).toBe(head(8, 2, 5, 2) + '; use --seq-length 1 or less (with --batch-size 2), or a longer text');
  });

  it('when neither size alone can fit, or nothing can', () => {
    // 5 characters of 3×3: B ≤ floor(4/6) = 0, T ≤ 0; but 2 batches of 1×2 fit in 4 + 1.
    expect(trainingTooShortMessage(5, 3, 3, f)).toBe(
      head(5, 3, 3, 2) + '; lower --batch-size and --seq-length so that 2·B·T is at most 4, or use a longer text',
    );
    // 3 characters of 2×2: B ≤ 0, T ≤ 0, and 2·B·T at most 2 = n − 1 (B = T = 1) would fit.
    expect(trainingTooShortMessage(3, 2, 2, f)).toBe(
      head(3, 2, 2, 2) + '; lower --batch-size and --seq-length so that 2·B·T is at most 2, or use a longer text',
    );
    // 0.5 / 0.01 (a test split): val is floor(0.01k), so 100 batches are needed, 101 characters.
    expect(trainingTooShortMessage(50, 1, 1, { trainFrac: 0.5, valFrac: 0.01 })).toBe(
      head(50, 1, 1, 100, '--train-frac 0.5 --val-frac 0.01') + '; even --batch-size 1 --seq-length 1 needs 101 characters: use a longer text',
    );
    for (const n of [0, 1, 2]) {
      expect(trainingTooShortMessage(n, 1, 1, f)).toBe(head(n, 1, 1, 2) + '; even --batch-size 1 --seq-length 1 needs 3 characters: use a longer text');
    }
  });

  it('searches up to a million batches', () => {
    // val is floor(10⁻⁶·k): a val batch needs exactly 1 000 000 batches.
    expect(trainingTooShortMessage(10, 1, 1, { trainFrac: 0.5, valFrac: 1e-6 })).toBe(
      head(10, 1, 1, 1_000_000, '--train-frac 0.5 --val-frac 0.000001') + '; even --batch-size 1 --seq-length 1 needs 1000001 characters: use a longer text',
    );
  });

  it('null when no number of batches gives a val batch (the loader explains that case)', () => {
    expect(trainingTooShortMessage(100, 1, 1, { trainFrac: 1, valFrac: 0 })).toBeNull();
    expect(trainingTooShortMessage(5, 1, 1, { trainFrac: 0, valFrac: 1 })).toBeNull();
  });
});
