/**
 * The Trainer's arithmetic in-process (src/train/train-core.ts, its checkpoints in memory), each
 * against a value computed here without the Trainer: a twin Model holding the same weights and
 * the loader's batches. Cheap (a 4-unit model, float64 TsKernels) so that mutation runs, which
 * leave out the CLI's tests, reach the Trainer through them.
 *
 *  1. A step (char-rnn's train.lua feval + optim): the loss is the batch's from the carried
 *     state, the update is x − lr·clamp(g, ±grad_clip) (sgd), the carried state becomes the
 *     batch's final state, and what the step reports (iteration, epoch, ratio ‖g‖/‖x‖, rate).
 *  2. Validation: the mean over the split's batches of the batch NLL, from a zero state carried
 *     through them; it changes neither the weights, the carry nor the train position.
 *  3. When a run stops (max_epochs, --max-steps), when it validates (every eval_val_every and at
 *     the end) and what the history and the outcome hold.
 */
import { describe, expect, it } from 'vitest';
import { Model, type State } from '../src/nn/model.js';
import { TsKernels } from '../src/nn/kernels.js';
import { DEFAULT_TRAIN_OPTIONS, MemoryCheckpointStore, type TrainOptions, Trainer } from '../src/train/train-core.js';
import { FOX_TEXT } from './helpers/tiny-run.js';

// 660 characters, B 2 × T 8: 41 batches; 0.5 / 0.25 gives 20 train, 10 val and 11 test batches.
const options = (over: Partial<TrainOptions> = {}): TrainOptions => ({
  ...DEFAULT_TRAIN_OPTIONS,
  model: 'lstm',
  rnnSize: 4,
  numLayers: 2,
  batchSize: 2,
  seqLength: 8,
  trainFrac: 0.5,
  valFrac: 0.25,
  optim: 'sgd',
  learningRate: 0.5,
  gradClip: 0.02,
  ...over,
});

const newTrainer = (over: Partial<TrainOptions> = {}) => Trainer.fromText(FOX_TEXT, options(over), { kernels: new TsKernels('float64') });

/** A model with the trainer's config and a copy of its weights. */
function twinOf(t: Trainer): Model {
  const twin = new Model(t.model.config, { kernels: new TsKernels('float64') });
  twin.params.set(t.model.params);
  return twin;
}

const copyState = (s: State): State => ({ h: s.h.map((a) => a.slice()), c: s.c.map((a) => a.slice()) });
const flat = (s: State) => [...s.h, ...s.c].flatMap((a) => Array.from(a));
const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

/** Batch k of a split, as the loader gives it. */
function batchOf(t: Trainer, split: 'train' | 'val' | 'test', k: number) {
  const { batchSize: B, seqLength: T } = t.options;
  const [x, y] = [new Int32Array(B * T), new Int32Array(B * T)];
  t.loader.getBatch(split, k, x, y);
  return { x, y, batchSize: B, seqLength: T };
}

describe('Trainer.step', () => {
  it('loss from the carried state, update x − lr·clamp(g, ±clip), carry ← final state, and what it reports', () => {
    const t = newTrainer();
    expect(t.loader.splitSizes).toEqual({ train: 20, val: 10, test: 11 });
    expect(t.batchesPerEpoch).toBe(20);
    let clippedSeen = 0;
    for (let k = 0; k < 3; k++) {
      const twin = twinOf(t);
      const from = copyState(t.carry);
      const before = Float64Array.from(t.model.params);
      const r = twin.forwardBackward(batchOf(t, 'train', k), from);
      const s = t.step();
      expect(s.loss).toBe(r.loss);
      expect(t.history.train.at(-1)).toEqual([k + 1, r.loss]);
      expect(flat(t.carry)).toEqual(flat(r.finalState));
      const g = Array.from(twin.grads, (v) => Math.min(0.02, Math.max(-0.02, v)));
      clippedSeen += Array.from(twin.grads).filter((v) => Math.abs(v) > 0.02).length;
      const expected = Array.from(before, (p, j) => p - 0.5 * g[j]);
      expect(Array.from(t.model.params)).toEqual(expected);
      expect(s.iteration).toBe(k + 1);
      expect(t.iteration).toBe(k + 1);
      expect(s.epoch).toBe((k + 1) / 20);
      expect(s.totalIterations).toBe(50 * 20);
      expect(s.learningRate).toBe(0.5);
      expect(s.gradParamRatio).toBeCloseTo(norm(g) / norm(expected), 12);
      expect(t.loader.batchIx.train).toBe(k + 1);
    }
    // The clip was both active and not (some elements past ±0.02, some inside).
    expect(clippedSeen).toBeGreaterThan(0);
    expect(t.history.train.map(([i]) => i)).toEqual([1, 2, 3]);
  });

  it('--grad-clip 0 leaves the gradient as it is; another clip clamps at its own value', () => {
    for (const clip of [0, 0.005]) {
      const t = newTrainer({ gradClip: clip });
      const twin = twinOf(t);
      const before = Float64Array.from(t.model.params);
      twin.forwardBackward(batchOf(t, 'train', 0), twin.zeroState(2));
      t.step();
      const g = Array.from(twin.grads, (v) => (clip === 0 ? v : Math.min(clip, Math.max(-clip, v))));
      expect(Array.from(twin.grads).some((v) => Math.abs(v) > 0.02)).toBe(true); // so clip 0 differs from clipping at 0.02
      expect(Array.from(t.model.params)).toEqual(Array.from(before, (p, j) => p - 0.5 * g[j]));
    }
  });

  it('seconds is the step\'s wall time in seconds', () => {
    const t = newTrainer();
    const t0 = performance.now();
    const s = t.step();
    const wall = (performance.now() - t0) / 1000;
    expect(s.seconds).toBeGreaterThanOrEqual(0);
    expect(s.seconds).toBeLessThanOrEqual(wall);
  });

  it('the addition task: every batch from a zero state, whatever the carry holds; the carry stays zero', () => {
    const t = Trainer.addition(options({ task: 'addition', digitLength: 1, seqLength: 8, batchSize: 2 }), { kernels: new TsKernels('float64') });
    for (const a of [...t.carry.h, ...t.carry.c]) a.fill(0.5); // a carry that would change the loss
    for (let k = 0; k < 2; k++) {
      const twin = twinOf(t);
      const { batchSize: B, seqLength: T } = t.options;
      const [x, y] = [new Int32Array(B * T), new Int32Array(B * T)];
      const position = t.loader.batchIx.train;
      t.loader.nextBatch('train', x, y);
      t.loader.batchIx.train = position;
      const batch = { x, y, batchSize: B, seqLength: T };
      const r = twin.forwardBackward(batch, twin.zeroState(B));
      expect(twin.forward(batch, copyState(t.carry)).loss).not.toBe(r.loss);
      expect(t.step().loss).toBe(r.loss);
    }
    expect(flat(t.carry).every((v) => v === 0.5)).toBe(true); // not replaced by a batch's final state
  });

  it('the train split wraps after its last batch: the first batch of epoch 2 is batch 0 again', () => {
    const t = newTrainer();
    for (let k = 0; k < 20; k++) t.step();
    expect(t.loader.batchIx.train).toBe(0);
    expect(t.epoch).toBe(1);
    const twin = twinOf(t);
    const r = twin.forwardBackward(batchOf(t, 'train', 0), copyState(t.carry));
    expect(t.step().loss).toBe(r.loss);
  });
});

describe('Trainer.evaluate', () => {
  for (const split of ['val', 'test'] as const) {
    it(`${split}: the mean batch loss from a zero state carried through the split; nothing else changes`, () => {
      const t = newTrainer();
      t.step();
      t.step();
      const [params, carry, position] = [Float64Array.from(t.model.params), flat(t.carry), { ...t.loader.batchIx }];
      const twin = twinOf(t);
      let state = twin.zeroState(2);
      const losses: number[] = [];
      for (let k = 0; k < t.loader.splitSizes[split]; k++) {
        const r = twin.forward(batchOf(t, split, k), state);
        losses.push(r.loss);
        state = r.finalState;
      }
      const mean = losses.reduce((a, b) => a + b, 0) / losses.length;
      // Not the mean from zero states, nor the sum, nor the last batch's.
      const fromZero = Array.from(losses, (_, k) => twin.forward(batchOf(t, split, k), twin.zeroState(2)).loss);
      expect(Math.abs(fromZero.reduce((a, b) => a + b, 0) / losses.length - mean)).toBeGreaterThan(1e-6);
      const got = t.evaluate(split);
      expect(got).toBeCloseTo(mean, 12);
      expect(t.evaluate(split)).toBe(got); // from a zero state every time
      expect(Array.from(t.model.params)).toEqual(Array.from(params));
      expect(flat(t.carry)).toEqual(carry);
      expect(t.loader.batchIx).toEqual(position);
      expect(t.lastAccuracy).toBeNull(); // the addition task's only
    });
  }
});

describe('Trainer.run', () => {
  it('stops at ⌊max_epochs · batches per epoch⌋, or --max-steps if fewer; validates every eval_val_every and at the end', () => {
    const a = newTrainer({ maxEpochs: 0.38, evalValEvery: 3 }); // ⌊0.38 · 20⌋ = 7
    expect(a.totalIterations).toBe(7);
    const val: number[] = [];
    const evals: number[] = [];
    const out = a.run({ onEval: (e) => evals.push(e.iteration), onStep: () => val.push(a.evaluate('val')) });
    expect(a.iteration).toBe(7);
    expect(evals).toEqual([3, 6, 7]);
    expect(a.history.val.map(([i]) => i)).toEqual([3, 6, 7]);
    // Each validation's loss is the val loss of the weights after its step.
    expect(a.history.val.map(([, v]) => v)).toEqual([val[2], val[5], val[6]]);
    expect(a.history.train.map(([i]) => i)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(out).toMatchObject({ status: 'done', valLoss: val[6] });
    expect(a.bestValLoss).toBe(Math.min(val[2], val[5], val[6]));
    // One checkpoint per validation, kept in memory (--keep all), the last one the outcome's.
    const store = a.store as MemoryCheckpointStore;
    expect(store.files.size).toBe(3);
    expect(out.status === 'done' && store.files.has(out.checkpoint)).toBe(true);
    expect(a.lastCheckpoint).toBe(out.status === 'done' ? out.checkpoint : null);

    const b = newTrainer({ maxEpochs: 2, maxSteps: 4, evalValEvery: 100 });
    expect(b.totalIterations).toBe(4);
    expect(b.run()).toMatchObject({ status: 'done' });
    expect(b.iteration).toBe(4);
    expect(b.history.val.map(([i]) => i)).toEqual([4]);
    const c = newTrainer({ maxEpochs: 0.1, maxSteps: 40 });
    expect(c.totalIterations).toBe(2);
  });

  it('shouldStop before a step: a checkpoint of the state after the last step, tagged interrupted', () => {
    const t = newTrainer({ maxSteps: 10, evalValEvery: 100 });
    let asked = 0;
    const out = t.run({ shouldStop: () => ++asked > 3 });
    expect(t.iteration).toBe(3);
    expect(out.status).toBe('stopped');
    expect(out.status === 'stopped' && out.checkpoint).toMatch(/_interrupted\.safetensors$/);
    expect(t.history.val).toEqual([]);
  });

  it('shouldStop is asked before every step and between validation batches; progress counts the batches done', () => {
    const t = newTrainer({ maxSteps: 2, evalValEvery: 100 });
    let asked = 0;
    const progress: [number, number][] = [];
    t.run({ shouldStop: () => (asked++, false), onEvalProgress: (done, n) => progress.push([done, n]) });
    const n = t.loader.splitSizes.val; // 10
    expect(progress).toEqual(Array.from({ length: n + 1 }, (_, k) => [k, n]));
    expect(asked).toBe(2 + (n - 1)); // 2 steps, then after each validation batch but the last
  });
});
