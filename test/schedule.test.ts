/**
 * The learning-rate schedule, as char-rnn's train.lua: after iteration i, when i is a multiple
 * of the train batches per epoch (the end of an epoch) and epoch = i / ntrain ≥
 * learning_rate_decay_after, lr ← lr · learning_rate_decay — once per epoch, the first time at
 * the end of epoch ⌈decay_after⌉ (at least 1). --resume across that boundary keeps it.
 */
import { describe, expect, it } from 'vitest';
import { checkpointBytes, parseCheckpoint } from '../src/train/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS, Trainer, type TrainOptions } from '../src/train/train.js';

// 17 characters, B 1, T 2: 8 batches; 0.75 / 0.25 gives 6 train and 2 val batches.
const TEXT = 'abcabdabcadbcabca';
const NTRAIN = 6;

function options(o: Partial<TrainOptions>): TrainOptions {
  return {
    ...DEFAULT_TRAIN_OPTIONS,
    model: 'lstm',
    rnnSize: 3,
    numLayers: 1,
    batchSize: 1,
    seqLength: 2,
    trainFrac: 0.75,
    valFrac: 0.25,
    optim: 'sgd',
    learningRate: 0.1,
    learningRateDecay: 0.5,
    maxEpochs: 100,
    ...o,
  };
}

/** The learning rate after each of `steps` steps (index i: after iteration i + 1), from the optimiser and the step result. */
function schedule(trainer: Trainer, steps: number): number[] {
  const lrs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const r = trainer.step();
    expect(r.learningRate).toBe(trainer.optimizer.learningRate);
    lrs.push(r.learningRate);
  }
  return lrs;
}

/** char-rnn's rule, written out: the number of decays after iteration i. */
function expected(lr: number, decay: number, after: number, steps: number): number[] {
  const out: number[] = [];
  let rate = lr;
  for (let i = 1; i <= steps; i++) {
    if (i % NTRAIN === 0 && i / NTRAIN >= after) rate *= decay;
    out.push(rate);
  }
  return out;
}

describe('learning-rate schedule', () => {
  it('decays first at the end of epoch learning-rate-decay-after, then once per epoch', () => {
    const trainer = Trainer.fromText(TEXT, options({ learningRateDecayAfter: 2 }));
    expect(trainer.batchesPerEpoch).toBe(NTRAIN);
    const lrs = schedule(trainer, 4 * NTRAIN);
    // By hand: 0.1 through iteration 11, 0.05 from the end of epoch 2 (iteration 12), 0.025 from 18, 0.0125 at 24.
    expect(lrs.slice(0, 2 * NTRAIN - 1)).toEqual(new Array(2 * NTRAIN - 1).fill(0.1));
    expect(lrs.slice(2 * NTRAIN - 1, 3 * NTRAIN - 1)).toEqual(new Array(NTRAIN).fill(0.05));
    expect(lrs.slice(3 * NTRAIN - 1, 4 * NTRAIN - 1)).toEqual(new Array(NTRAIN).fill(0.025));
    expect(lrs[4 * NTRAIN - 1]).toBe(0.0125);
    expect(lrs).toEqual(expected(0.1, 0.5, 2, 4 * NTRAIN));
  });

  it('a fractional decay-after (1.5) first decays at the end of epoch 2; 0 at the end of epoch 1; decay 1 never', () => {
    for (const after of [0, 1, 1.5, 3]) {
      const lrs = schedule(Trainer.fromText(TEXT, options({ learningRateDecayAfter: after })), 4 * NTRAIN);
      expect(lrs).toEqual(expected(0.1, 0.5, after, 4 * NTRAIN));
    }
    expect(expected(0.1, 0.5, 1.5, 4 * NTRAIN)[2 * NTRAIN - 1]).toBe(0.05);
    expect(expected(0.1, 0.5, 0, 4 * NTRAIN)[NTRAIN - 1]).toBe(0.05);
    const flat = schedule(Trainer.fromText(TEXT, options({ learningRateDecayAfter: 0, learningRateDecay: 1 })), 3 * NTRAIN);
    expect(flat).toEqual(new Array(3 * NTRAIN).fill(0.1));
  });

  it('the decayed rate is the one the next update uses (sgd: x −= lr·g)', () => {
    const trainer = Trainer.fromText(TEXT, options({ learningRateDecayAfter: 1 }));
    schedule(trainer, NTRAIN); // the end of epoch 1: lr 0.05 from now on
    const before = Float64Array.from(trainer.model.params);
    // The gradient of the next step, then the update it makes.
    const probe = Trainer.resume(TEXT, parseCheckpoint(checkpointBytes(trainer.model, trainer.vocab, { training: trainer.trainingState(), optimizer: trainer.optimizer, carry: trainer.carry }), 'ck'));
    probe.optimizer.learningRate = 0;
    probe.step();
    const g = Float64Array.from(probe.model.grads); // after clipping, as the update sees it
    expect(Array.from(probe.model.params)).toEqual(Array.from(before)); // lr 0: no change
    trainer.step();
    const moved = g.filter((v) => v !== 0).length;
    expect(moved).toBeGreaterThan(0);
    for (let j = 0; j < g.length; j++) expect(trainer.model.params[j]).toBe(Math.fround(before[j] - 0.05 * g[j]));
  });

  for (const stop of [2 * NTRAIN - 1, 2 * NTRAIN, 2 * NTRAIN + 1]) {
    it(`resume after iteration ${stop} (the boundary is at ${2 * NTRAIN}) keeps the schedule and the weights bit for bit`, () => {
      const o = options({ learningRateDecayAfter: 2 });
      const whole = Trainer.fromText(TEXT, o);
      const lrsWhole = schedule(whole, 4 * NTRAIN);
      const first = Trainer.fromText(TEXT, o);
      const lrsFirst = schedule(first, stop);
      const bytes = checkpointBytes(first.model, first.vocab, { training: first.trainingState(), optimizer: first.optimizer, carry: first.carry });
      const resumed = Trainer.resume(TEXT, parseCheckpoint(bytes, 'ck'));
      expect(resumed.iteration).toBe(stop);
      expect(resumed.optimizer.learningRate).toBe(lrsWhole[stop - 1]);
      const lrsRest = schedule(resumed, 4 * NTRAIN - stop);
      expect([...lrsFirst, ...lrsRest]).toEqual(lrsWhole);
      expect(Array.from(resumed.model.params)).toEqual(Array.from(whole.model.params));
    });
  }
});
