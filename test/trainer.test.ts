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
import { describe, expect, it, vi } from 'vitest';
import { Model, type State } from '../src/nn/model.js';
import { type Float, TsKernels } from '../src/nn/kernels.js';
import {
  type CheckpointStore,
  CheckpointDirError,
  DEFAULT_TRAIN_OPTIONS,
  LOG_HEADER,
  LOG_HEADER_ADDITION,
  MEMORY_PLATFORM,
  MemoryCheckpointStore,
  type TrainOptions,
  Trainer,
  TrainingDivergedError,
  checkTrainingFits,
  initFromOptions,
  optionFlag,
  validateTrainOptions,
} from '../src/train/train-core.js';
import { loadWasmKernelsSync } from '../src/nn/wasm-node.js';
import type { Spawn } from '../src/parallel/pool.js';
import { parseCheckpoint } from '../src/train/checkpoint-core.js';
import { type Corpus, buildVocab, corpusFromText } from '../src/train/data-core.js';
import { spawnNodeWorker } from '../src/parallel/node.js';
import { NODE_PLATFORM, Trainer as NodeTrainer } from '../src/train/train.js';
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

/** TS kernels whose loss (and so the validation loss) is multiplied by `factor`. */
class ScaledLoss extends TsKernels {
  factor = 1;
  override logSoftmaxNll(logits: Float, targets: Int32Array, M: number, V: number): number {
    return this.factor * super.logSoftmaxNll(logits, targets, M, V);
  }
}

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

describe('validateTrainOptions: each option at its bounds, one message naming the flag', () => {
  const ok = (o: Partial<TrainOptions>) => expect(() => validateTrainOptions({ ...DEFAULT_TRAIN_OPTIONS, ...o }), JSON.stringify(o)).not.toThrow();
  const bad = (o: Partial<TrainOptions>, message: string) =>
    expect(() => validateTrainOptions({ ...DEFAULT_TRAIN_OPTIONS, ...o } as TrainOptions), JSON.stringify(o)).toThrow(message);

  it('whole numbers > 0', () => {
    for (const [key, flag] of [
      ['rnnSize', '--rnn-size'], ['numLayers', '--num-layers'], ['seqLength', '--seq-length'], ['batchSize', '--batch-size'],
      ['printEvery', '--print-every'], ['evalValEvery', '--eval-val-every'], ['maxSteps', '--max-steps'],
    ] as const) {
      ok({ [key]: 1 });
      for (const v of [0, -3, 1.5, '2' as unknown as number]) bad({ [key]: v }, `${flag} must be a whole number > 0, got ${v}`);
    }
    ok({ maxSteps: null });
  });

  it('numbers in their ranges, and the end each range excludes', () => {
    const cases: [keyof TrainOptions, number[], number[], string][] = [
      ['dropout', [0, 0.999], [-0.001, 1], '--dropout must be in [0, 1)'],
      ['learningRate', [1e-12], [0, -1], '--learning-rate must be a number > 0'],
      ['learningRateDecay', [1, 1e-9], [0, 1.001], '--learning-rate-decay must be in (0, 1]'],
      ['learningRateDecayAfter', [0, 2.5], [-0.5], '--learning-rate-decay-after must be a number ≥ 0'],
      ['decayRate', [0, 0.999], [-0.1, 1], '--decay-rate must be in [0, 1)'],
      ['maxEpochs', [0.01], [0, -1], '--max-epochs must be a number > 0'],
      ['gradClip', [0, 5], [-0.1], '--grad-clip must be a number ≥ 0 (0 disables clipping)'],
      ['seed', [0, -7], [1.5], '--seed must be a whole number'],
      ['patience', [0, 3], [-1, 0.5], '--patience must be a whole number ≥ 0 (0: never stop early)'],
      ['threads', [1, 256], [0, 257, 2.5], '--threads must be a whole number from 1 to 256'],
    ];
    for (const [key, good, wrong, message] of cases) {
      for (const v of good) ok({ [key]: v });
      for (const v of [...wrong, NaN, Infinity]) bad({ [key]: v }, `${message}, got ${v}`);
      bad({ [key]: '1' as unknown as number }, `${message}, got 1`);
    }
    // The split fractions: each in (0, 1], their sum at most 1.
    ok({ trainFrac: 1e-3, valFrac: 1e-3 });
    ok({ trainFrac: 0.95, valFrac: 0.05 });
    ok({ trainFrac: 0.7, valFrac: 0.3 });
    bad({ trainFrac: 0 }, '--train-frac must be in (0, 1], got 0');
    bad({ trainFrac: 1.5 }, '--train-frac must be in (0, 1], got 1.5');
    bad({ valFrac: 0 }, '--val-frac must be in (0, 1] (validation needs a val split), got 0');
    bad({ valFrac: 1.01 }, '--val-frac must be in (0, 1] (validation needs a val split), got 1.01');
    bad({ trainFrac: 0.7, valFrac: 0.31 }, '--train-frac + --val-frac must be at most 1, got 0.7 + 0.31');
    bad({ trainFrac: 1, valFrac: 1e-6 }, '--train-frac + --val-frac must be at most 1, got 1 + 0.000001');
    bad({ trainFrac: 1e-6, valFrac: 1 }, '--train-frac + --val-frac must be at most 1, got 0.000001 + 1');
    // The sum may exceed 1 by rounding, up to 1e-9: exactly 1 + 1e-9 passes.
    expect(0.5 + 0.500000001).toBe(1 + 1e-9);
    ok({ trainFrac: 0.5, valFrac: 0.500000001 });
  });

  it('the words: model, task, encoding, optim, keep, log', () => {
    for (const model of ['grid_lstm', 'lstm', 'gru', 'rnn'] as const) ok({ model });
    bad({ model: 'LSTM' as TrainOptions['model'] }, '--model must be one of grid_lstm, lstm, gru, rnn, got LSTM');
    ok({ task: 'addition', digitLength: 2, seqLength: 20 });
    bad({ task: 'sum' as TrainOptions['task'] }, '--task must be char or addition, got "sum"');
    bad({ task: 'addition', digitLength: 2, seqLength: 5 }, '--seq-length 5 is too short');
    ok({ encoding: 'latin1' });
    bad({ encoding: 'ascii' as TrainOptions['encoding'] }, '--encoding must be utf8 or latin1, got ascii');
    for (const optim of ['rmsprop', 'adam', 'sgd'] as const) ok({ optim });
    bad({ optim: 'adagrad' as TrainOptions['optim'] }, '--optim must be rmsprop, adam or sgd, got adagrad');
    for (const keep of ['all', 'best', 'last-1', 'last-10'] as const) ok({ keep });
    for (const keep of ['last-0', 'last-01', 'last-', 'newest', 'xlast-3', 'last-3x', 3, ['last-3']]) {
      bad({ keep: keep as TrainOptions['keep'] }, `--keep must be all, best or last-N with N ≥ 1, got ${JSON.stringify(keep)}`);
    }
    ok({ log: 'none' });
    bad({ log: 'json' as TrainOptions['log'] }, '--log must be csv or none, got "json"');
    // The loss log's columns, as plotting tools read them.
    expect(LOG_HEADER).toBe('iteration,epoch,train_loss,val_loss,learning_rate');
    expect(LOG_HEADER_ADDITION).toBe('iteration,epoch,train_loss,val_loss,learning_rate,val_char_accuracy,val_number_accuracy');
  });
});

/** The message of the Error `f` throws; fails when it throws something else or nothing. */
function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`threw ${String(e)}, not an Error`);
    return e.message;
  }
  throw new Error('threw nothing');
}

describe('Trainer.resume', () => {
  /** A run of `steps` steps (rmsprop: an optimiser state to restore), its checkpoint parsed back. */
  function saved(steps: number, over: Partial<TrainOptions> = {}) {
    const t = newTrainer({ optim: 'rmsprop', learningRate: 2e-3, evalValEvery: 2, maxSteps: 100, ...over });
    for (let k = 0; k < steps; k++) t.step();
    t.history.val.push([2, 3.25]);
    t.bestValLoss = 3.25;
    t.checkpoints = [{ name: 'lm_a.safetensors', iteration: 2, valLoss: 3.25 }];
    t.loader.batchIx.val = 4;
    t.loader.batchIx.test = 10;
    const parse = () => parseCheckpoint(t.checkpointBytes(), 'ck', { dtype: 'float64' });
    return { t, parse };
  }

  it('restores what the next step needs: iteration, rate, optimiser state, generator, positions, history, carry', () => {
    const { t, parse } = saved(3);
    const ck = parse();
    // (Contents not read from a file may list other names: they are never the run's to delete.)
    ck.training!.checkpoints!.push({ name: '../notes.txt', iteration: 2, valLoss: null });
    const r = Trainer.resume(FOX_TEXT, ck);
    expect(r.iteration).toBe(3);
    expect(r.optimizer.learningRate).toBe(t.optimizer.learningRate);
    expect(r.optimizer.stepCount).toBe(3);
    expect(Array.from(r.optimizer.state.get('m')!)).toEqual(Array.from(t.optimizer.state.get('m')!, Math.fround)); // saved as float32
    expect(Array.from(r.optimizer.state.get('m')!).some((v) => v !== 0)).toBe(true);
    expect(r.model.rng.state).toBe(t.model.rng.state);
    expect(r.loader.batchIx).toEqual({ train: 3, val: 4, test: 10 });
    expect(r.loader.batchIx).not.toBe(ck.training!.batchIx);
    expect(r.history.train).toEqual(t.history.train);
    expect(r.history.val).toEqual([[2, 3.25]]);
    expect(r.history.lr).toEqual([[0, 2e-3]]);
    expect(r.bestValLoss).toBe(3.25);
    // The files --keep may delete: the checkpoints' names only, in the same directory only.
    expect(r.checkpoints).toEqual([{ name: 'lm_a.safetensors', iteration: 2, valLoss: 3.25 }]);
    expect(Trainer.resume(FOX_TEXT, parse(), { checkpointDir: 'elsewhere' }).checkpoints).toEqual([]);
    expect(flat(r.carry)).toEqual(flat(t.carry).map(Math.fround)); // saved as float32
    expect(flat(r.carry).some((v) => v !== 0)).toBe(true);
    expect([r.threadsChange, r.learningRateChange]).toEqual([null, null]);
    // The histories are copies: the resumed run's steps leave the checkpoint's alone.
    r.step();
    expect(ck.training!.history.train).toHaveLength(3);
    expect(r.history.train.map(([i]) => i)).toEqual([1, 2, 3, 4]);
    // Absent from old checkpoints: history.lr (the run's own rate), bestValLoss (none), checkpoints (none).
    const old = parse();
    delete old.training!.history.lr;
    delete old.training!.bestValLoss;
    delete old.training!.checkpoints;
    const o = Trainer.resume(FOX_TEXT, old);
    expect([o.history.lr, o.bestValLoss, o.checkpoints]).toEqual([[[0, 2e-3]], null, []]);
    const emptyLr = parse();
    emptyLr.training!.history.lr = [];
    expect(Trainer.resume(FOX_TEXT, emptyLr).history.lr).toEqual([[0, 2e-3]]);
    // --tie-weights is part of a grid_lstm's shape only: an lstm's saved value may differ from its config's.
    const tie = parse();
    (tie.training!.options as Record<string, unknown>).tieWeights = !tie.model.config.tieWeights;
    expect(Trainer.resume(FOX_TEXT, tie).iteration).toBe(3);
    // An addition run saved without its accuracy history: an empty one.
    const add = Trainer.addition(options({ task: 'addition', digitLength: 1, model: 'rnn', rnnSize: 2, numLayers: 1 }));
    add.step();
    const addCk = parseCheckpoint(add.checkpointBytes(), 'ck', { dtype: 'float64' });
    delete addCk.training!.history.accuracy;
    expect(Trainer.resume(null, addCk).history.accuracy).toEqual([]);
    // The text may be given as a corpus of the checkpoint's vocabulary.
    expect(Trainer.resume(corpusFromText(FOX_TEXT, old.vocab), parse()).iteration).toBe(3);
  });

  it('changes only what may change; the rest, restated, is accepted', () => {
    const { parse } = saved(2);
    const changes: Partial<TrainOptions> = {
      maxEpochs: 3, maxSteps: 7, printEvery: 5, evalValEvery: 4, checkpointDir: 'cv2', savefile: 'x', data: 'other.txt',
      encoding: 'latin1', keep: 'best', patience: 2, log: 'none', threads: 1,
    };
    const r = Trainer.resume(FOX_TEXT, parse(), { ...changes, rnnSize: 4, optim: 'rmsprop', seed: 123, learningRate: undefined, dropout: undefined });
    expect(r.options).toMatchObject(changes);
    expect(r.options.rnnSize).toBe(4);
    for (const [key, value, flag, was] of [
      ['rnnSize', 8, '--rnn-size', '4'], ['optim', 'adam', '--optim', '"rmsprop"'], ['seed', 1, '--seed', '123'],
      ['gradClip', 1, '--grad-clip', '0.02'], ['batchSize', 1, '--batch-size', '2'],
    ] as const) {
      expect(() => Trainer.resume(FOX_TEXT, parse(), { [key]: value })).toThrow(
        `${flag} cannot change when resuming (the run used ${was}); drop it, or use --init-from to start a new run from these weights`,
      );
    }
  });

  it('older or partial contents: no batch count, no task, no carry; another thread count is recorded', () => {
    const { t, parse } = saved(2);
    // Without the batch count, data of another length resumes if the positions fit in it.
    const ck = parse();
    delete ck.training!.batches;
    ck.training!.batchIx.test = 0;
    expect(Trainer.resume(FOX_TEXT.slice(0, 600), ck).loader.nbatches).toBe(37);
    expect(() => Trainer.resume('', parse())).toThrow('the data gives 0 batches but the run had 41; resume with the same --data as the original run');
    // No task recorded: the text's.
    const noTask = parse();
    (noTask as { task?: unknown }).task = undefined;
    expect(Trainer.resume(FOX_TEXT, noTask).taskSpec()).toEqual({ kind: 'char' });
    // No carry: a zero state.
    const noCarry = parse();
    noCarry.carry = null;
    expect(flat(Trainer.resume(FOX_TEXT, noCarry).carry).every((v) => v === 0)).toBe(true);
    expect(flat(t.carry).some((v) => v !== 0)).toBe(true);
    // Another thread count: recorded (the continuation is then equal up to rounding, not bit for bit).
    class Spawning extends Trainer {
      static override platform = { ...MEMORY_PLATFORM, spawner: () => (() => { throw new Error('not started in this test'); }) as unknown as Spawn };
    }
    const wasm = parseCheckpoint(t.checkpointBytes(), 'ck', { kernels: loadWasmKernelsSync({ variant: 'simd' }) });
    expect(Spawning.resume(FOX_TEXT, wasm, { threads: 2 }).threadsChange).toEqual({ from: 1, to: 2 });
    expect(Spawning.resume(FOX_TEXT, wasm, { threads: 1 }).threadsChange).toBeNull();
  });

  it('refuses a checkpoint it cannot resume exactly, and other data, with one line each', () => {
    const { parse } = saved(2);
    const inconsistent = (what: string) =>
      `the checkpoint is inconsistent: ${what}; it cannot be resumed exactly, but --init-from can start a new run from its weights`;
    const edit = (f: (ck: ReturnType<typeof parse>) => void) => {
      const ck = parse();
      f(ck);
      return ck;
    };
    const opts = (ck: ReturnType<typeof parse>) => ck.training!.options as Record<string, unknown>;
    const cases: [ReturnType<typeof parse>, string | Corpus | null, string][] = [
      [edit((ck) => (ck.training = null)), FOX_TEXT, 'this checkpoint has no training state (it holds weights only); use --init-from to start a new run from it'],
      [edit((ck) => (opts(ck).rnnSize = 0)), FOX_TEXT, inconsistent('its saved training options are not valid (--rnn-size must be a whole number > 0, got 0)')],
      [edit((ck) => (opts(ck).rnnSize = 5)), FOX_TEXT, inconsistent('its training options say --rnn-size 5 but its config says 4')],
      [edit((ck) => (opts(ck).model = 'gru')), FOX_TEXT, inconsistent('its training options say --model "gru" but its config says "lstm"')],
      [edit((ck) => (opts(ck).numLayers = 1)), FOX_TEXT, inconsistent('its training options say --num-layers 1 but its config says 2')],
      [edit((ck) => (opts(ck).dropout = 0.5)), FOX_TEXT, inconsistent('its training options say --dropout 0.5 but its config says 0')],
      [edit((ck) => (opts(ck).optim = 'adam')), FOX_TEXT, inconsistent("its training options say --optim adam but its optimiser state is rmsprop's")],
      [edit((ck) => (ck.carry!.batchSize = 3)), FOX_TEXT, inconsistent('its carried state is for --batch-size 3 but its options say 2')],
      [edit((ck) => (ck.task = { kind: 'addition', digitLength: 1, seqLength: 8 })), FOX_TEXT, inconsistent('its training options say --task char but its config says addition')],
      [edit(() => {}), null, 'resuming a run on a text needs the text'],
      [edit(() => {}), { ids: new Uint16Array(700), vocab: buildVocab('ab') }, "the corpus must be encoded with the checkpoint's vocabulary to resume"],
      [edit(() => {}), FOX_TEXT.slice(0, 600), 'the data gives 37 batches but the run had 41; resume with the same --data as the original run'],
      [edit((ck) => (ck.training!.batchIx.val = 10)), FOX_TEXT, "the checkpoint's data position (val batch 10) is outside the 10-batch val split of this data; resume with the same --data as the original run"],
      [edit((ck) => (ck.training!.batchIx.train = 20)), FOX_TEXT, "the checkpoint's data position (train batch 20) is outside the 20-batch train split"],
      [edit((ck) => (ck.training!.batchIx.test = 11)), FOX_TEXT, "the checkpoint's data position (test batch 11) is outside the 11-batch test split"],
      [edit((ck) => ck.optimizerState.delete('m')), FOX_TEXT, 'the checkpoint lacks the optimizer state tensor optimizer.m; it cannot be resumed exactly'],
    ];
    // (Not toThrow(message): vitest's toThrow passes when the function throws undefined.)
    for (const [ck, text, message] of cases) expect(messageOf(() => Trainer.resume(text, ck)), message).toContain(message);
    // An addition checkpoint whose vocabulary is not the task's.
    const add = Trainer.addition(options({ task: 'addition', digitLength: 1, model: 'rnn', rnnSize: 2, numLayers: 1 }));
    const addCk = parseCheckpoint(add.checkpointBytes(), 'ck', { dtype: 'float64' });
    addCk.vocab = buildVocab('abcdefghijklmnopqrstuvwxyz'.slice(0, addCk.vocab.chars.length));
    expect(() => Trainer.resume(null, addCk)).toThrow("the addition task's vocabulary is digits, +, = and space; this model's differs");
    // A grid_lstm's --tie-weights is part of its shape too.
    const grid = newTrainer({ model: 'grid_lstm', tieWeights: true });
    const g = parseCheckpoint(grid.checkpointBytes(), 'ck', { dtype: 'float64' });
    (g.training!.options as Record<string, unknown>).tieWeights = false;
    expect(() => Trainer.resume(FOX_TEXT, g)).toThrow(inconsistent('its training options say --tie-weights false but its config says true'));
    // Without a test split, position 0 of it is still valid.
    const noTest = saved(1, { trainFrac: 0.75, valFrac: 0.25 });
    expect(noTest.t.loader.splitSizes.test).toBe(0);
    const ck = noTest.parse();
    ck.training!.batchIx.test = 0;
    expect(Trainer.resume(FOX_TEXT, ck).loader.batchIx.test).toBe(0);
  });
});

describe('Trainer.run: how a run ends', () => {
  /** Memory that fails every write from the `failFrom`-th on (1-based). */
  class FailingStore extends MemoryCheckpointStore {
    writes = 0;
    constructor(readonly failFrom: number) {
      super();
    }
    override write(path: string, bytes: Uint8Array): void {
      if (++this.writes >= this.failFrom) throw new Error(`cannot write ${path}: disk full`);
      super.write(path, bytes);
    }
  }

  it('a checkpoint that cannot be written: failed, with the last one written (or none) and what to do', () => {
    const t = newTrainer({ maxSteps: 10, evalValEvery: 2 });
    t.store = new FailingStore(2);
    const out = t.run();
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    const first = 'cv/lm_lstm_epoch0.10_' + t.history.val[0][1].toFixed(4) + '.safetensors';
    expect([out.iteration, out.checkpoint, t.lastCheckpoint]).toEqual([4, first, first]);
    expect(out.message).toBe(
      `training stopped at iteration 4: cannot write cv/lm_lstm_epoch0.20_${t.history.val[1][1].toFixed(4)}.safetensors: disk full; ` +
        `the last checkpoint written, ${first}, is intact: fix the problem and continue with --resume ${first}`,
    );
    const none = newTrainer({ maxSteps: 10, evalValEvery: 2 });
    none.store = new FailingStore(1);
    const out2 = none.run();
    expect(out2).toMatchObject({ status: 'failed', iteration: 2, checkpoint: null });
    expect(out2.status === 'failed' && out2.message).toMatch(/^training stopped at iteration 2: cannot write .*: disk full; no checkpoint was written in this run; fix the problem and start again$/);
  });

  it('a stop right after a validation\'s checkpoint returns that checkpoint; a stop later writes an interrupted one', () => {
    const t = newTrainer({ maxSteps: 10, evalValEvery: 2 });
    let stop = false;
    const out = t.run({ onCheckpoint: () => (stop = true), shouldStop: () => stop });
    expect(out).toEqual({ status: 'stopped', checkpoint: t.lastCheckpoint });
    expect(t.iteration).toBe(2);
    expect((t.store as MemoryCheckpointStore).files.size).toBe(1);
    expect(out.status === 'stopped' && out.checkpoint).toMatch(/_epoch0\.10_\d\.\d{4}\.safetensors$/);
    // The interrupted one is tagged so, at the epoch of its iteration.
    const u = newTrainer({ maxSteps: 10, evalValEvery: 2 });
    const out2 = u.run({ shouldStop: () => u.iteration === 3 });
    expect(out2).toEqual({ status: 'stopped', checkpoint: 'cv/lm_lstm_epoch0.15_interrupted.safetensors' });
    expect((u.store as MemoryCheckpointStore).files.size).toBe(2);
    expect(u.checkpoints.map((r) => [r.iteration, r.valLoss])).toEqual([[2, u.history.val[0][1]], [3, null]]);
  });

  it('a loss above 3× the first loss of the run: diverged, the step applied, the last good checkpoint named', () => {
    const kernels = new ScaledLoss('float64');
    const t = Trainer.fromText(FOX_TEXT, options({ maxSteps: 10, evalValEvery: 2 }), { kernels });
    const out = t.run({ onStep: (s) => (kernels.factor = s.iteration === 2 ? 2.9 : s.iteration === 3 ? 3.1 : 1) });
    // Step 3's loss is 2.9 × its own (not > 3× the first): only step 4's, at 3.1 ×, stops the run.
    expect(out.status).toBe('diverged');
    if (out.status !== 'diverged') return;
    const first = t.history.train[0][1];
    expect([out.iteration, t.iteration, out.loss]).toEqual([4, 4, t.history.train[3][1]]);
    expect(out.loss).toBeGreaterThan(3 * first);
    expect(out.checkpoint).toBe(t.lastCheckpoint);
    expect(out.message).toBe(
      `training stopped at iteration 4: the loss ${out.loss} exceeds 3× the first loss (${first.toFixed(4)}); ` +
        `try a lower --learning-rate (now 0.5) or a smaller --grad-clip (now 0.02); this step was applied; the last good checkpoint is ${t.lastCheckpoint}`,
    );
  });
});

describe('Trainer.run: the bookkeeping around the steps', () => {
  /** Memory that records what the run does with the store: prepares, the log's lines, closes. */
  class RecordingStore implements CheckpointStore {
    readonly memory = new MemoryCheckpointStore();
    prepared: string[] = [];
    opened: { path: string; lines: string[] }[] = [];
    appended: string[] = [];
    closed = 0;
    write = (path: string, bytes: Uint8Array) => this.memory.write(path, bytes);
    read = (path: string) => this.memory.read(path);
    remove = (path: string) => this.memory.remove(path);
    exists = (path: string) => this.memory.exists(path);
    prepare(dir: string): void {
      this.prepared.push(dir);
    }
    openLog(path: string, lines: string[]): { append(line: string): void; close(): void } {
      this.opened.push({ path, lines });
      return { append: (l) => this.appended.push(l), close: () => this.closed++ };
    }
  }

  it('validationsSinceBest: validations after the lowest (a tie is no new best); 0 with none', () => {
    const t = newTrainer();
    const since = (val: [number, number][]) => ((t.history.val = val), t.validationsSinceBest);
    expect(since([])).toBe(0);
    expect(since([[2, 1.5]])).toBe(0);
    expect(since([[2, 1.0], [4, 2.0], [6, 1.5]])).toBe(2);
    expect(since([[2, 1.0], [4, 1.0]])).toBe(1);
    expect(since([[2, 3.0], [4, 1.0], [6, 1.0], [8, 0.5]])).toBe(0);
    expect(since([[2, 3.0], [4, 1.0], [6, 2.0]])).toBe(1);
  });

  it('the loss log: opened with logLines() at the start, a row per step and validation, closed at the end; none with --log none', () => {
    const t = newTrainer({ maxSteps: 5, evalValEvery: 2, savefile: 'run' });
    const store = new RecordingStore();
    t.store = store;
    t.checkCheckpointDir();
    t.run();
    expect(store.prepared).toEqual(['cv']); // checked once, not again by run()
    expect(store.opened).toEqual([{ path: 'cv/run.log.csv', lines: ['iteration,epoch,train_loss,val_loss,learning_rate'] }]);
    expect([LOG_HEADER, ...store.appended]).toEqual(t.logLines());
    expect(store.appended.map((l) => l.split(',').slice(0, 2).join(','))).toEqual(
      ['1,0.05', '2,0.1', '2,0.1', '3,0.15', '4,0.2', '4,0.2', '5,0.25', '5,0.25'],
    );
    expect(store.closed).toBe(1);
    const quiet = newTrainer({ maxSteps: 2, log: 'none' });
    const s2 = new RecordingStore();
    quiet.store = s2;
    quiet.run();
    expect([s2.prepared, s2.opened, quiet.logPath]).toEqual([['cv'], [], null]);
  });

  it('logLines replays the rates the steps used: decays from the end of epoch learning-rate-decay-after', () => {
    const t = newTrainer({ learningRateDecay: 0.5, learningRateDecayAfter: 2, maxSteps: 61, evalValEvery: 1000 });
    const used: number[] = [];
    t.run({ onStep: () => used.push(NaN) }); // (the count only)
    const rates = t.logLines().slice(1).map((l) => l.split(',')).filter((f) => f[2] !== '').map((f) => Number(f[4]));
    // 0.5 for epochs 1 and 2 (steps 1-40), 0.25 for epoch 3 (41-60), 0.125 from step 61.
    expect(rates).toEqual([...new Array(40).fill(0.5), ...new Array(20).fill(0.25), 0.125]);
    expect(used).toHaveLength(61);
    // A history without rates (lr empty): the run's own rate.
    t.history.lr = [];
    expect(t.logLines()[1].split(',')[4]).toBe('0.5');
  });

  it('the addition task\'s log: its header and accuracy columns, a step\'s empty', () => {
    const t = Trainer.addition(options({ task: 'addition', digitLength: 1, seqLength: 8, maxSteps: 2, evalValEvery: 2 }), { kernels: new TsKernels('float64') });
    const store = new RecordingStore();
    t.store = store;
    const evals: unknown[] = [];
    t.run({ onEval: (e) => evals.push(e.accuracy) });
    expect(store.opened[0].lines).toEqual([LOG_HEADER_ADDITION]);
    const [step, , val] = store.appended.map((l) => l.split(','));
    expect(step).toHaveLength(7);
    expect(step.slice(5)).toEqual(['', '']);
    expect(val.slice(5).map(Number)).toEqual([t.lastAccuracy!.chars, t.lastAccuracy!.numbers]);
    expect(t.history.accuracy).toEqual([[2, t.lastAccuracy!.chars, t.lastAccuracy!.numbers]]);
    expect(evals).toEqual([t.lastAccuracy]);
    expect(t.logLines()).toEqual([LOG_HEADER_ADDITION, ...store.appended]);
    // A validation without a recorded accuracy (a checkpoint from before it was kept): empty columns.
    t.history.accuracy = [];
    expect(t.logLines().at(-1)).toBe(`2,${2 / t.batchesPerEpoch},,${t.history.val[0][1]},,,`);
  });

  it('warnings go to the platform\'s warn without an onWarning hook', () => {
    class Undeletable extends MemoryCheckpointStore {
      override remove(): boolean {
        throw new Error('read-only');
      }
    }
    const t = newTrainer({ maxSteps: 4, evalValEvery: 2, keep: 'last-1' });
    t.store = new Undeletable();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      expect(t.run().status).toBe('done');
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/^cannot delete the old checkpoint cv\/lm_lstm_epoch0\.10_.*\.safetensors \(--keep last-1\): read-only$/);
    } finally {
      warn.mockRestore();
    }
  });

  it('onEval: the validation\'s wall time in seconds', () => {
    const t = newTrainer({ maxSteps: 1 });
    const t0 = performance.now();
    let seconds = NaN;
    t.run({ onEval: (e) => (seconds = e.seconds) });
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThanOrEqual((performance.now() - t0) / 1000);
  });

  it('runAsync: the same run as run(), and the event loop turns between steps (a timer can stop it)', async () => {
    const [a, b] = [newTrainer({ maxSteps: 4, evalValEvery: 2 }), newTrainer({ maxSteps: 4, evalValEvery: 2 })];
    const outA = a.run();
    const outB = await b.runAsync();
    expect(outB).toEqual(outA);
    expect(b.history).toEqual(a.history);
    let stop = false;
    const c = newTrainer({ maxSteps: 1000, evalValEvery: 1000 });
    setTimeout(() => (stop = true), 0);
    const outC = await c.runAsync({ shouldStop: () => stop });
    expect(outC.status).toBe('stopped');
    expect(c.iteration).toBeLessThan(1000);
  });

  it('an error that is not a divergence propagates; a loss of exactly 3× the first does not stop the run', () => {
    class Faulty extends TsKernels {
      at: ((nll: number) => number) | null = null;
      override logSoftmaxNll(logits: Float, targets: Int32Array, M: number, V: number): number {
        const nll = super.logSoftmaxNll(logits, targets, M, V);
        return this.at ? this.at(nll) : nll;
      }
    }
    const k = new Faulty('float64');
    const t = Trainer.fromText(FOX_TEXT, options({ maxSteps: 10, evalValEvery: 100 }), { kernels: k });
    expect(() =>
      t.run({
        onStep: () => {
          k.at = () => {
            throw new Error('a kernel failed');
          };
        },
      }),
    ).toThrow('a kernel failed');
    const u = Trainer.fromText(FOX_TEXT, options({ maxSteps: 3, evalValEvery: 100 }), { kernels: k });
    k.at = null;
    // Step 2's loss: exactly 3× step 1's (B·T = 16 targets: the sum ÷ 16 is exact).
    const out = u.run({ onStep: (s) => (k.at = s.iteration === 1 ? () => 3 * s.loss * 16 : null) });
    expect(u.history.train[1][1]).toBe(3 * u.history.train[0][1]);
    expect(out.status).toBe('done');
  });

  it('a stop whose checkpoint cannot be written: failed; a checkpoint saved by hand before run() is not the stop\'s', () => {
    const t = newTrainer({ maxSteps: 10 });
    t.step();
    t.store = new (class extends MemoryCheckpointStore {
      override write(): void {
        throw new Error('cannot write: read-only');
      }
    })();
    const out = t.run({ shouldStop: () => true });
    expect(out).toMatchObject({ status: 'failed', iteration: 1, checkpoint: null });
    const u = newTrainer({ maxSteps: 10 });
    u.step();
    const manual = u.saveCheckpoint('manual');
    const out2 = u.run({ shouldStop: () => true });
    expect(out2).toEqual({ status: 'stopped', checkpoint: 'cv/lm_lstm_epoch0.05_interrupted.safetensors' });
    expect(manual).toBe('cv/lm_lstm_epoch0.05_manual.safetensors');
  });

  it('resumed at its end from an interrupted checkpoint: the outcome names the validation\'s file of that iteration', () => {
    const a = newTrainer({ maxSteps: 4, evalValEvery: 2 });
    expect(a.run().status).toBe('done');
    const store = a.store as MemoryCheckpointStore;
    // Resumed for more steps and stopped at once: an interrupted checkpoint of iteration 4.
    const b = Trainer.resume(FOX_TEXT, parseCheckpoint(store.read(a.lastCheckpoint!), 'ck', { dtype: 'float64' }), { maxSteps: 8 });
    b.store = store;
    const stopped = b.run({ shouldStop: () => true });
    expect(stopped).toEqual({ status: 'stopped', checkpoint: 'cv/lm_lstm_epoch0.20_interrupted.safetensors' });
    // Resumed from it with --max-steps 4: already at its end, validated: done, with the validation's checkpoint.
    const c = Trainer.resume(FOX_TEXT, parseCheckpoint(store.read('cv/lm_lstm_epoch0.20_interrupted.safetensors'), 'ck', { dtype: 'float64' }), { maxSteps: 4 });
    c.store = store;
    const done = c.run();
    expect(done).toEqual({ status: 'done', checkpoint: a.lastCheckpoint, valLoss: a.history.val[1][1] });
    expect(c.history.val).toEqual(a.history.val);
  });
});

describe('Trainer.fromText / fromCorpus / addition: what a new run starts from, and what it refuses', () => {
  it('--init-from: the checkpoint\'s weights, vocabulary and shape; the rest from the options', () => {
    const src = newTrainer({ model: 'gru', rnnSize: 3, numLayers: 1 });
    src.step();
    const ck = parseCheckpoint(src.checkpointBytes(), 'ck', { dtype: 'float64' });
    const kernels = new TsKernels('float64');
    const t = Trainer.fromText(FOX_TEXT, options({ model: 'lstm', rnnSize: 5, numLayers: 2, dropout: 0.25, seed: 9, learningRate: 0.1 }), {
      kernels,
      initFrom: ck,
    });
    // The kernels given, and the dropout generator seeded from the run's --seed.
    expect(t.model.kernels).toBe(kernels);
    expect(t.model.rng.state).toBe(new Model(t.model.config, { kernels, seed: 9 }).rng.state);
    expect(t.model.rng.state).not.toBe(new Model(t.model.config, { kernels }).rng.state);
    expect(t.options).toMatchObject({ model: 'gru', rnnSize: 3, numLayers: 1, dropout: 0.25, seed: 9, learningRate: 0.1 });
    expect(t.model.config).toMatchObject({ model: 'gru', rnnSize: 3, numLayers: 1, dropout: 0.25 });
    expect(Array.from(t.model.params)).toEqual(Array.from(src.model.params, Math.fround)); // saved as float32
    expect(t.vocab).toBe(ck.vocab);
    expect([t.iteration, t.history.train, t.optimizer.learningRate]).toEqual([0, [], 0.1]); // a new run
    // A text with a character outside the checkpoint's vocabulary, or a corpus in another, is refused.
    expect(() => Trainer.fromCorpus(corpusFromText('ab'.repeat(400)), options(), { initFrom: ck })).toThrow(
      "the corpus must be encoded with the --init-from checkpoint's vocabulary",
    );
    // The addition task from a char checkpoint, and the other way round.
    expect(() => Trainer.addition(options({ task: 'addition', digitLength: 1 }), { initFrom: ck })).toThrow(
      'the --init-from checkpoint is of --task char; train it on the same task, or start a new run without --init-from',
    );
    const add = Trainer.addition(options({ task: 'addition', digitLength: 1, model: 'rnn', rnnSize: 2, numLayers: 1 }), { kernels: new TsKernels('float64') });
    add.step();
    const addCk = parseCheckpoint(add.checkpointBytes(), 'ck', { dtype: 'float64' });
    expect(addCk.task).toEqual({ kind: 'addition', digitLength: 1, seqLength: 8 });
    expect(() => Trainer.fromCorpus({ ids: new Uint16Array(800), vocab: addCk.vocab }, options(), { initFrom: addCk })).toThrow(
      'the --init-from checkpoint is of --task addition --digit-length 1; train it on the same task, or start a new run without --init-from',
    );
    expect(() => Trainer.addition(options({ task: 'addition', digitLength: 2, seqLength: 12 }), { initFrom: addCk })).toThrow(
      'the --init-from checkpoint is of --task addition --digit-length 1; train it on the same task',
    );
    const again = Trainer.addition(options({ task: 'addition', digitLength: 1, rnnSize: 6, dropout: 0.5, seed: 11 }), { kernels, initFrom: addCk });
    expect(again.model.kernels).toBe(kernels);
    expect(again.model.rng.state).toBe(new Model(again.model.config, { kernels, seed: 11 }).rng.state);
    expect(again.options).toMatchObject({ model: 'rnn', rnnSize: 2, numLayers: 1, dropout: 0.5 });
    expect(again.model.config).toMatchObject({ model: 'rnn', rnnSize: 2, dropout: 0.5 });
    expect(Array.from(again.model.params)).toEqual(Array.from(add.model.params, Math.fround));
  });

  it('one line for a text it cannot train on, naming where the text came from', () => {
    expect(() => newTrainer({ task: 'addition', digitLength: 1 })).toThrow(
      '--task addition generates its own sums: start it with Trainer.addition(options), without a text',
    );
    expect(() => Trainer.addition(options())).toThrow(`Trainer.addition needs options.task 'addition', got "char"`);
    expect(() => Trainer.fromText('', options())).toThrow(
      'the built-in corpus has only no characters; a model needs at least 2 to learn anything, so pass a longer, more varied text',
    );
    expect(() => Trainer.fromText('a'.repeat(1000), options({ data: 'as.txt' }))).toThrow(
      '--data as.txt has only one distinct character, "a"; a model needs at least 2',
    );
    expect(() => Trainer.fromText('ab'.repeat(20), options({ data: 'short.txt' }))).toThrow(/^--data short\.txt: the text has 40 character\(s\), too few to train with --batch-size 2 --seq-length 8/);
    expect(() => Trainer.fromText('ab'.repeat(20), options())).toThrow(/^the built-in corpus: the text has 40 character/);
  });

  it('threads: more than one needs the WebAssembly kernels and a platform that starts workers', () => {
    expect(() => newTrainer({ threads: 2 })).toThrow('--threads 2 needs the WebAssembly kernels; with --kernels ts use --threads 1');
    const wasm = loadWasmKernelsSync({ variant: 'simd' });
    expect(() => Trainer.fromText(FOX_TEXT, options({ threads: 2 }), { kernels: wasm })).toThrow(
      '--threads 2: this platform starts no worker threads; train with threads 1',
    );
    // At most one thread per stream of a batch.
    class Spawning extends Trainer {
      static override platform = { ...MEMORY_PLATFORM, spawner: () => (() => { throw new Error('not started in this test'); }) as unknown as Spawn };
    }
    expect(Spawning.fromText(FOX_TEXT, options({ threads: 8, batchSize: 2 }), { kernels: wasm }).threads).toBe(2);
    expect(Spawning.fromText(FOX_TEXT, options({ threads: 3, batchSize: 4 }), { kernels: wasm }).threads).toBe(3);
  });

  it('what a new run holds: the task, the first rate in the history, a zero carry, accuracy only for addition', () => {
    const t = newTrainer({ learningRate: 0.25 });
    expect([t.addition, t.taskSpec(), t.history, t.iteration]).toEqual([null, { kind: 'char' }, { train: [], val: [], lr: [[0, 0.25]] }, 0]);
    expect(flat(t.carry).every((v) => v === 0)).toBe(true);
    expect(t.carry.h).toHaveLength(2);
    const a = Trainer.addition(options({ task: 'addition', digitLength: 2, seqLength: 12 }));
    expect([a.addition, a.taskSpec(), a.history.accuracy]).toEqual([
      { digitLength: 2, seqLength: 12 },
      { kind: 'addition', digitLength: 2, seqLength: 12 },
      [],
    ]);
  });
});

describe('the helpers of a run: memory, --init-from options, flags', () => {
  it('checkTrainingFits: the real parameter count of each model, in the estimate written out; the boundary byte', () => {
    // (--tie-weights matters to a grid_lstm only.)
    const shapes: Partial<TrainOptions>[] = [
      { model: 'grid_lstm', tieWeights: true }, { model: 'grid_lstm', tieWeights: false },
      { model: 'lstm', tieWeights: false }, { model: 'gru', tieWeights: false }, { model: 'rnn', tieWeights: false }, { model: 'lstm' },
    ];
    const wasm = loadWasmKernelsSync({ variant: 'simd' });
    for (const shape of shapes) {
      for (const [kernels, bytesPer] of [[new TsKernels('float64'), 8], [new TsKernels('float32'), 4], [undefined, 4], [wasm, 4]] as const) {
        for (const [optim, N] of [['sgd', 5], ['rmsprop', 9], ['adam', 5]] as const) {
          const o = options({ ...shape, rnnSize: N, numLayers: 3, batchSize: 3, seqLength: 7, optim });
          const V = 11;
          const P = new Model({ model: o.model, vocabSize: V, rnnSize: N, numLayers: 3, tieWeights: o.tieWeights }).params.length;
          // weights, gradients, optimiser state; the WASM kernels' packed copies (none for TsKernels);
          // the first-layer tables; the activations: 19 [B·T, N] per layer, 10 more, [B·T, V]; the ids.
          const M = 21;
          const packed = kernels === undefined || kernels === wasm ? 3 * P + M * 8 * Math.ceil(N / 8) : 0;
          const optimBuffers = { sgd: 0, rmsprop: 1, adam: 2 }[optim];
          const bytes = bytesPer * (P * (2 + optimBuffers) + packed + 12 * V * N + M * (N * (19 * 3 + 10) + V)) + 4 * 500;
          const what = JSON.stringify({ shape, optim, kernels: kernels?.dtype });
          expect(() => checkTrainingFits(o, V, 500, kernels, bytes), what).not.toThrow();
          expect(() => checkTrainingFits(o, V, 500, kernels, bytes - 1), what).toThrow(
            `training --rnn-size ${N} with --num-layers 3 and a vocabulary of 11, batches of --batch-size 3 × --seq-length 7, needs about ${Math.ceil(bytes / 1e6)} MB of memory but this machine has 1 MB; lower --rnn-size, --num-layers, --batch-size or --seq-length`,
          );
        }
      }
    }
    // Gigabytes from 1e9 bytes on (three digits); the platform's own limit when it names one.
    const big = options({ rnnSize: 4000 });
    expect(() => checkTrainingFits(big, 10, 0, new TsKernels('float64'), 1e9, 'a page has 1 GB')).toThrow(/needs about \d\.\d\d GB of memory but a page has 1 GB;/);
    expect(() => checkTrainingFits(big, 10, 0, new TsKernels('float64'), 2.5e9)).toThrow(/but this machine has 2\.50 GB;/);
    expect(() => checkTrainingFits(big, 10, 0, new TsKernels('float64'), 1e9)).toThrow(/but this machine has 1\.00 GB;/);
    expect(() => checkTrainingFits(big, 10, 0, new TsKernels('float64'), 1e9 - 1)).toThrow(/but this machine has 1000 MB;/);
    // Exactly 2^32 parameters fit in one buffer (an rnn of 1 unit: 3V + 4 parameters); one more does not.
    const rnn1 = options({ model: 'rnn', rnnSize: 1, numLayers: 1 });
    expect(() => checkTrainingFits(rnn1, 1431655764, 0, undefined, Infinity)).not.toThrow();
    expect(() => checkTrainingFits(rnn1, 1431655765, 0, undefined, Infinity)).toThrow('makes 4.29e+9 parameters, more than one buffer can hold (2^32)');
    // More parameters than one buffer holds (2^32), before any memory sum.
    const huge = options({ model: 'grid_lstm', tieWeights: true, rnnSize: 20000, numLayers: 2 });
    expect(() => checkTrainingFits(huge, 65, 0, undefined, Infinity)).toThrow(
      // Two time LSTMs and the tied depth LSTM, each 2·(4N² + 4N), the embedding and decoder 2VN + V: 9 603 080 065.
      '--rnn-size 20000 with --num-layers 2 and a vocabulary of 65 makes 9.60e+9 parameters, more than one buffer can hold (2^32); lower --rnn-size or --num-layers',
    );
  });

  it('initFromOptions: the checkpoint\'s task and shape replace those not given; one given that differs is refused', () => {
    const src = newTrainer({ model: 'grid_lstm', tieWeights: false, rnnSize: 3, numLayers: 2 });
    const ck = parseCheckpoint(src.checkpointBytes(), 'ck', { dtype: 'float64' });
    const o = options({ model: 'lstm', rnnSize: 9, numLayers: 1, tieWeights: true, learningRate: 0.3 });
    expect(initFromOptions(ck, o, new Set(['learningRate']))).toEqual({ ...o, task: 'char', model: 'grid_lstm', rnnSize: 3, numLayers: 2, tieWeights: false });
    expect(initFromOptions(ck, options({ model: 'grid_lstm', rnnSize: 3, tieWeights: false }), new Set(['model', 'rnnSize', 'tieWeights'])).rnnSize).toBe(3);
    const shape = 'the --init-from checkpoint is a grid_lstm of 2 layers × 3, untied; drop';
    const tail = '(a run from its weights keeps its shape), or start a new run without --init-from';
    expect(messageOf(() => initFromOptions(ck, o, new Set(['rnnSize'])))).toContain(`${shape} --rnn-size 9 ${tail}`);
    expect(messageOf(() => initFromOptions(ck, o, new Set(['model'])))).toContain(`${shape} --model lstm ${tail}`);
    expect(messageOf(() => initFromOptions(ck, o, new Set(['numLayers'])))).toContain(`${shape} --num-layers 1 ${tail}`);
    expect(messageOf(() => initFromOptions(ck, o, new Set(['tieWeights'])))).toContain(`${shape} --tie-weights ${tail}`);
    expect(() => initFromOptions(ck, o, new Set(['task']))).not.toThrow();
    expect(messageOf(() => initFromOptions(ck, options({ task: 'addition' }), new Set(['task'])))).toContain(
      'the --init-from checkpoint is of --task char; drop --task addition, or start a new run without --init-from',
    );
    // One layer, tied: the words of the shape.
    const one = parseCheckpoint(newTrainer({ model: 'grid_lstm', tieWeights: true, rnnSize: 2, numLayers: 1 }).checkpointBytes(), 'ck', { dtype: 'float64' });
    expect(messageOf(() => initFromOptions(one, options({ model: 'grid_lstm', tieWeights: false }), new Set(['tieWeights'])))).toContain(
      'the --init-from checkpoint is a grid_lstm of 1 layer × 2, tied; drop --no-tie-weights (a run',
    );
    const lstm = parseCheckpoint(newTrainer({ model: 'lstm', rnnSize: 2, numLayers: 1 }).checkpointBytes(), 'ck', { dtype: 'float64' });
    expect(messageOf(() => initFromOptions(lstm, options({ rnnSize: 3 }), new Set(['rnnSize', 'tieWeights'])))).toContain(
      'the --init-from checkpoint is a lstm of 1 layer × 2; drop --rnn-size 3',
    );
    expect(initFromOptions(lstm, options({ model: 'lstm', tieWeights: false }), new Set(['tieWeights'])).tieWeights).toBe(true); // not a grid: not its shape
    // The addition task: its digit length, and its sequence length unless given.
    const add = Trainer.addition(options({ task: 'addition', digitLength: 1, seqLength: 9, model: 'rnn', rnnSize: 2, numLayers: 1 }));
    const addCk = parseCheckpoint(add.checkpointBytes(), 'ck', { dtype: 'float64' });
    const a = options({ task: 'char', digitLength: 3, seqLength: 30 });
    expect(initFromOptions(addCk, a, new Set())).toMatchObject({ task: 'addition', digitLength: 1, seqLength: 9 });
    expect(initFromOptions(addCk, a, new Set(['seqLength']))).toMatchObject({ task: 'addition', digitLength: 1, seqLength: 30 });
    expect(messageOf(() => initFromOptions(addCk, a, new Set(['digitLength'])))).toContain(
      'the --init-from checkpoint is of --task addition --digit-length 1; drop --digit-length 3, or start a new run without --init-from',
    );
    expect(messageOf(() => initFromOptions(addCk, a, new Set(['task'])))).toContain('the --init-from checkpoint is of --task addition --digit-length 1; drop --task char');
    expect(initFromOptions(addCk, { ...a, digitLength: 1 }, new Set(['digitLength'])).digitLength).toBe(1);
  });

  it('vocabularies: the same characters in the same order, or refused', () => {
    const src = newTrainer();
    const ck = parseCheckpoint(src.checkpointBytes(), 'ck', { dtype: 'float64' });
    const chars = ck.vocab.chars;
    const corpus = (cs: string[]) => ({ ids: new Uint16Array(700), vocab: buildVocab(cs.join('')) });
    const refused = "the corpus must be encoded with the --init-from checkpoint's vocabulary";
    expect(messageOf(() => Trainer.fromCorpus(corpus(chars.slice(0, -1)), options(), { initFrom: ck }))).toBe(refused); // a prefix
    expect(messageOf(() => Trainer.fromCorpus(corpus([...chars.slice(0, -1), '\u00e9']), options(), { initFrom: ck }))).toBe(refused); // one differs
    expect(Trainer.fromCorpus({ ids: new Uint16Array(700), vocab: buildVocab(chars.join('')) }, options(), { initFrom: ck }).vocab).toBe(ck.vocab);
  });

  it('a model too large to allocate: one line with its parameter count; other errors as they are', () => {
    class NoMemory extends TsKernels {
      constructor(readonly error: Error) {
        super('float64');
      }
      override alloc(n: number): Float {
        if (n > 100) throw this.error;
        return super.alloc(n);
      }
    }
    expect(messageOf(() => Trainer.fromText(FOX_TEXT, options({ rnnSize: 40 }), { kernels: new NoMemory(new RangeError('Array buffer allocation failed')) }))).toBe(
      `not enough memory for a model of ${new Model({ model: 'lstm', vocabSize: 37, rnnSize: 40, numLayers: 2 }).params.length.toLocaleString('en-US')} parameters (Array buffer allocation failed); lower --rnn-size or --num-layers`,
    );
    expect(messageOf(() => Trainer.fromText(FOX_TEXT, options({ rnnSize: 40 }), { kernels: new NoMemory(new Error('something else')) }))).toBe('something else');
    const ck = parseCheckpoint(newTrainer().checkpointBytes(), 'ck', { dtype: 'float64' });
    expect(messageOf(() => Trainer.fromText(FOX_TEXT, options(), { kernels: new NoMemory(new RangeError('no room')), initFrom: ck }))).toMatch(
      /^not enough memory for a model of [\d,]+ parameters \(no room\); lower --rnn-size or --num-layers$/,
    );
  });

  it('a checkpoint without a task is of the text task', () => {
    const ck = parseCheckpoint(newTrainer().checkpointBytes(), 'ck', { dtype: 'float64' });
    (ck as { task?: unknown }).task = undefined;
    expect(initFromOptions(ck, options(), new Set()).task).toBe('char');
    expect(messageOf(() => initFromOptions(ck, options({ task: 'addition', digitLength: 1 }), new Set(['task'])))).toBe(
      'the --init-from checkpoint is of --task char; drop --task addition, or start a new run without --init-from',
    );
    expect(Trainer.fromText(FOX_TEXT, options(), { initFrom: ck }).taskSpec()).toEqual({ kind: 'char' });
    expect(messageOf(() => Trainer.addition(options({ task: 'addition', digitLength: 1 }), { initFrom: ck }))).toBe(
      'the --init-from checkpoint is of --task char; train it on the same task, or start a new run without --init-from',
    );
  });

  it('optionFlag and CheckpointDirError', () => {
    expect(optionFlag('learningRateDecayAfter')).toBe('--learning-rate-decay-after');
    expect(optionFlag('seed')).toBe('--seed');
    const e = new CheckpointDirError('x');
    expect([e.name, e.message, e instanceof Error]).toEqual(['CheckpointDirError', 'x', true]);
  });
});

describe('Trainer.run after a resume: the validation it owes, --patience already met, and failures on the way', () => {
  const failing = () =>
    new (class extends MemoryCheckpointStore {
      override write(path: string): void {
        throw new Error(`cannot write ${path}: read-only`);
      }
    })();

  it('the best checkpoint of an early stop is its validation\'s file, not an interrupted one of the same iteration', () => {
    const k = new ScaledLoss('float64');
    const o = options({ maxSteps: 10, evalValEvery: 1, patience: 1 });
    const a = Trainer.fromText(FOX_TEXT, o, { kernels: k });
    // Stopped during the validation of iteration 1: an interrupted checkpoint of iteration 1.
    expect(a.run({ shouldStop: () => a.iteration === 1 })).toEqual({ status: 'stopped', checkpoint: 'cv/lm_lstm_epoch0.05_interrupted.safetensors' });
    const store = a.store as MemoryCheckpointStore;
    const load = (path: string) => parseCheckpoint(store.read(path), 'ck', { kernels: k });
    const b = Trainer.resume(FOX_TEXT, load(a.lastCheckpoint!));
    b.store = store;
    // Its validation of iteration 1 first; then iteration 2 validates worse (×2): --patience 1 is met.
    const out = b.run({ onEval: (e) => e.iteration === 1 && (k.factor = 2) });
    k.factor = 1;
    expect(out.status === 'done' && out.earlyStop).toMatchObject({ patience: 1, validations: 1, alreadyMet: false, bestIteration: 1 });
    const v1 = b.history.val[0][1];
    expect(out.status === 'done' && out.earlyStop!.bestCheckpoint).toBe(`cv/lm_lstm_epoch0.05_${v1.toFixed(4)}.safetensors`);
    expect(b.checkpoints.map((r) => [r.iteration, r.valLoss === null])).toEqual([[1, true], [1, false], [2, false]]);
    const final = load(b.lastCheckpoint!);
    // Resumed from iteration 1's validation checkpoint, already at its end (--max-steps 1): done with
    // that validation's file — not the interrupted one listed before it, nor one saved by hand.
    const val1 = `cv/lm_lstm_epoch0.05_${v1.toFixed(4)}.safetensors`;
    for (const byHand of [false, true]) {
      const g = Trainer.resume(FOX_TEXT, load(val1), { maxSteps: 1, patience: 0 });
      g.store = store;
      if (byHand) g.saveCheckpoint('manual');
      expect(g.run(), `saved by hand: ${byHand}`).toEqual({ status: 'done', checkpoint: val1, valLoss: v1 });
    }
    // At its end with --patience met: done, without an early stop (it did not stop early).
    const atEnd = Trainer.resume(FOX_TEXT, final, { maxSteps: 2 });
    atEnd.store = store;
    expect(atEnd.run()).toEqual({ status: 'done', checkpoint: b.lastCheckpoint, valLoss: b.history.val[1][1] });

    // Resumed with --patience 1 still met: done at once, with this iteration's validation's checkpoint —
    // written again (with its val loss) when the store no longer has it; failed when it cannot be.
    const v2 = b.history.val[1][1];
    const c = Trainer.resume(FOX_TEXT, load(b.lastCheckpoint!));
    expect(c.run()).toMatchObject({ status: 'done', valLoss: v2, checkpoint: `cv/lm_lstm_epoch0.10_${v2.toFixed(4)}.safetensors`, earlyStop: { alreadyMet: true } });
    expect([...(c.store as MemoryCheckpointStore).files.keys()]).toEqual([`cv/lm_lstm_epoch0.10_${v2.toFixed(4)}.safetensors`]);
    const d = Trainer.resume(FOX_TEXT, load(b.lastCheckpoint!));
    d.store = failing();
    expect(d.run()).toMatchObject({ status: 'failed', iteration: 2, checkpoint: null });
    // At its end (--max-steps 2), validated: the same file; failed when it cannot be written.
    const e = Trainer.resume(FOX_TEXT, final, { maxSteps: 2, patience: 0 });
    e.store = failing();
    expect(e.run()).toMatchObject({ status: 'failed', iteration: 2 });

    // Interrupted after the last validation (iteration 5; validations at 2 and 4, 4 the worse), resumed
    // with --patience 1: met at once; the checkpoint is that interrupted state's, tagged so.
    const k2 = new ScaledLoss('float64');
    const h = Trainer.fromText(FOX_TEXT, options({ maxSteps: 10, evalValEvery: 2 }), { kernels: k2 });
    h.run({ onEval: (e) => e.iteration === 2 && (k2.factor = 2), shouldStop: () => h.iteration === 5 });
    k2.factor = 1;
    expect(h.history.val.map(([i]) => i)).toEqual([2, 4]);
    const hs = h.store as MemoryCheckpointStore;
    const resumed = Trainer.resume(FOX_TEXT, parseCheckpoint(hs.read(h.lastCheckpoint!), 'ck', { kernels: k2 }), { patience: 1 });
    expect(resumed.run()).toMatchObject({ status: 'done', checkpoint: 'cv/lm_lstm_epoch0.25_interrupted.safetensors', valLoss: h.history.val[1][1], earlyStop: { alreadyMet: true, bestIteration: 2 } });

    // From the interrupted checkpoint (iteration 1, not validated): at its end (--max-steps 1), or
    // owing the validation of a validation point, a checkpoint that cannot be written: failed.
    for (const maxSteps of [1, 10]) {
      const f = Trainer.resume(FOX_TEXT, load('cv/lm_lstm_epoch0.05_interrupted.safetensors'), { maxSteps });
      f.store = failing();
      const r = f.run();
      expect(r, `max steps ${maxSteps}`).toMatchObject({ status: 'failed', iteration: 1, checkpoint: null });
      expect(f.history.val.map(([i]) => i)).toEqual([1]);
    }
  });
});

describe('Trainer.step: what it checks before and after the update', () => {
  /** Makes the trainer's next forwardBackward leave `grads[j] = v`. */
  function poison(t: Trainer, j: number, v: number) {
    const fb = t.model.forwardBackward.bind(t.model);
    t.model.forwardBackward = (...args) => {
      const r = fb(...args);
      t.model.grads[j] = v;
      t.model.forwardBackward = fb;
      return r;
    };
  }

  it('a non-finite gradient is named by parameter and element, wherever it is (first, first of a tensor, inside one)', () => {
    const t = newTrainer();
    const spec = t.model.layout.find((s) => s.name === 'decoder.bias')!;
    expect(spec.offset).toBeGreaterThan(0);
    for (const [j, name] of [[0, 'embedding.weight at element 0'], [spec.offset, 'decoder.bias at element 0'], [spec.offset + 2, 'decoder.bias at element 2']] as const) {
      poison(t, j, NaN);
      const before = Float64Array.from(t.model.params);
      expect(() => t.step()).toThrow(new RegExp(`^training stopped at iteration 1: the gradient of ${name.replace('.', '\\.')} is NaN \\(the loss was [\\d.]+\\);`));
      expect(Array.from(t.model.params)).toEqual(Array.from(before));
    }
    expect(t.step().iteration).toBe(1);
  });

  it('an infinite loss is "not finite"; an update that makes a weight infinite is caught after it; an overflowing norm alone is not', () => {
    const k = new ScaledLoss('float64');
    const t = Trainer.fromText(FOX_TEXT, options(), { kernels: k });
    k.factor = Infinity;
    expect(() => t.step()).toThrow(/^training stopped at iteration 1: the loss Infinity is not finite; /);
    k.factor = 1;
    // The update: sgd at rate 1e10 with a gradient of 1e300 (no clip) makes the weight −∞.
    const u = newTrainer({ learningRate: 1e10, gradClip: 0 });
    poison(u, 5, 1e300);
    expect(() => u.step()).toThrow(
      /^training stopped at iteration 1: the update made the weight of embedding\.weight at element 5 -Infinity; try a lower --learning-rate \(now 10000000000\) or a --grad-clip such as 5; the weights in memory are lost; no checkpoint was saved in this run$/,
    );
    // The first weight too.
    const u0 = newTrainer({ learningRate: 1e10, gradClip: 0 });
    poison(u0, 0, 1e300);
    expect(() => u0.step()).toThrow(/^training stopped at iteration 1: the update made the weight of embedding\.weight at element 0 -Infinity;/);
    // A weight of −1e200 is finite, though its square overflows the norm: the step goes through.
    const w = newTrainer({ learningRate: 1, gradClip: 0 });
    poison(w, 5, 1e200);
    const s = w.step();
    expect(w.model.params[5]).toBeCloseTo(-1e200, -190);
    expect([s.iteration, w.iteration]).toEqual([1, 1]);
  });

  it('evaluate() validates on the val split by default', () => {
    const t = newTrainer();
    expect(t.evaluate()).toBe(t.evaluate('val'));
    expect(t.evaluate()).not.toBe(t.evaluate('test'));
  });
});

describe('Trainer on worker threads (Node): the same numbers as one thread, up to rounding', () => {
  it('a step and a validation on 2 threads against 1; a run\'s validation progress counts the batches', () => {
    const o = options({ rnnSize: 4, numLayers: 1, maxSteps: 2, evalValEvery: 100 });
    const make = (threads: number) => NodeTrainer.fromText(FOX_TEXT, { ...o, threads }, { kernels: loadWasmKernelsSync({ variant: 'simd' }) });
    const [one, two] = [make(1), make(2)];
    try {
      expect(two.threads).toBe(2);
      expect(two.step().loss).toBeCloseTo(one.step().loss, 5);
      const va = one.evaluate('val');
      expect(va).toBeGreaterThan(1);
      expect(two.evaluate('val')).toBeCloseTo(va, 5);
      one.store = two.store = new MemoryCheckpointStore();
      const progress: [number, number][] = [];
      one.run();
      two.run({ onEvalProgress: (done, n) => progress.push([done, n]) });
      expect(two.history.val[0][1]).toBeCloseTo(one.history.val[0][1], 5);
      expect(progress).toEqual(Array.from({ length: 11 }, (_, k) => [k, 10]));
    } finally {
      two.close();
    }
  });

  it('the workers start at the first step (or startThreads), never for one thread', async () => {
    let spawned = 0;
    class Counting extends NodeTrainer {
      static override platform = { ...NODE_PLATFORM, spawner: () => ((init: never) => (spawned++, spawnNodeWorker(init))) as Spawn };
    }
    const make = (threads: number) => Counting.fromText(FOX_TEXT, options({ threads }), { kernels: loadWasmKernelsSync({ variant: 'simd' }) });
    const one = make(1);
    await one.startThreads();
    one.step();
    expect(spawned).toBe(0);
    const two = make(2);
    try {
      expect(spawned).toBe(0);
      two.step();
      expect(spawned).toBeGreaterThan(0);
      const n = spawned;
      two.step();
      await two.startThreads(); // the same pool
      expect(spawned).toBe(n);
    } finally {
      two.close();
    }
  });

  it('where threads start asynchronously (a browser): runAsync starts them first; a step before that is refused', async () => {
    class Async extends NodeTrainer {
      static override platform = { ...NODE_PLATFORM, threadsStartAsync: true };
    }
    const make = () => Async.fromText(FOX_TEXT, options({ threads: 2, maxSteps: 1 }), { kernels: loadWasmKernelsSync({ variant: 'simd' }) });
    const early = make();
    expect(() => early.step()).toThrow(/^worker threads start here only while the event loop turns: use `await trainer.runAsync\(\)`/);
    const t = make();
    t.store = new MemoryCheckpointStore();
    expect((await t.runAsync()).status).toBe('done');
    expect(t.iteration).toBe(1);
  });
});

describe('Trainer.trainingState and saveCheckpoint', () => {
  it('trainingState: what --resume needs, positions and options as copies', () => {
    const t = newTrainer({ optim: 'adam', learningRate: 0.01 });
    t.step();
    t.step();
    t.bestValLoss = 2.5;
    const s = t.trainingState();
    const o = t.optimizer;
    expect(s).toEqual({
      iteration: 2,
      epoch: 0.1,
      learningRate: 0.01,
      optimizer: { name: 'adam', stepCount: 2, decayRate: o.decayRate, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon },
      rngState: t.model.rng.state,
      batchIx: { train: 2, val: 0, test: 0 },
      batches: 41,
      options: t.options,
      history: t.history,
      bestValLoss: 2.5,
      checkpoints: [],
    });
    expect([o.beta1, o.beta2, o.epsilon].every((v) => typeof v === 'number')).toBe(true);
    s.batchIx.train = 9;
    s.options.rnnSize = 99;
    expect([t.loader.batchIx.train, t.options.rnnSize]).toEqual([2, 4]);
  });

  it('saveCheckpoint: named by savefile (else the model), epoch and tag; one record per name; a failed write changes nothing', () => {
    const t = newTrainer({ savefile: 'fox', keep: 'last-2' });
    t.step();
    expect(t.saveCheckpoint(1.23456)).toBe('cv/lm_fox_epoch0.05_1.2346.safetensors');
    expect(t.saveCheckpoint(1.23456)).toBe('cv/lm_fox_epoch0.05_1.2346.safetensors'); // the same file again: one record
    expect(t.checkpoints).toEqual([{ name: 'lm_fox_epoch0.05_1.2346.safetensors', iteration: 1, valLoss: 1.23456 }]);
    t.step();
    expect(t.saveCheckpoint('interrupted')).toBe('cv/lm_fox_epoch0.10_interrupted.safetensors');
    expect(t.checkpoints.map((r) => [r.name, r.valLoss])).toEqual([['lm_fox_epoch0.05_1.2346.safetensors', 1.23456], ['lm_fox_epoch0.10_interrupted.safetensors', null]]);
    expect(t.lastCheckpoint).toBe('cv/lm_fox_epoch0.10_interrupted.safetensors');
    // The file written lists itself and what is kept.
    const store = t.store as MemoryCheckpointStore;
    const listed = parseCheckpoint(store.read('cv/lm_fox_epoch0.10_interrupted.safetensors'), 'ck', { dtype: 'float64' }).training!.checkpoints;
    expect(listed).toEqual(t.checkpoints);
    // A third: last-2 deletes the oldest, after writing the new one.
    t.step();
    t.saveCheckpoint(0.5);
    expect([...store.files.keys()]).toEqual(['cv/lm_fox_epoch0.10_interrupted.safetensors', 'cv/lm_fox_epoch0.15_0.5000.safetensors']);
    // A write that fails leaves the records and the last checkpoint as they were.
    const before = [...t.checkpoints];
    t.store = new (class extends MemoryCheckpointStore {
      override write(): void {
        throw new Error('disk full');
      }
    })();
    expect(() => t.saveCheckpoint(0.25)).toThrow('disk full');
    expect([t.checkpoints, t.lastCheckpoint]).toEqual([before, 'cv/lm_fox_epoch0.15_0.5000.safetensors']);
    expect(newTrainer({ model: 'gru' }).saveCheckpoint('x')).toBe('cv/lm_gru_epoch0.00_x.safetensors');
  });
});

describe('the memory platform and store', () => {
  it('paths as plain strings: "." and empty parts dropped, ".." taken back where it can be, the root kept', () => {
    const { join, samePlace } = MEMORY_PLATFORM;
    expect(join('cv/./x/', 'a.safetensors')).toBe('cv/x/a.safetensors');
    expect(join('cv//x', 'a')).toBe('cv/x/a');
    expect(join('cv/x/..', 'a')).toBe('cv/a');
    expect(join('../..', 'a')).toBe('../../a');
    expect(join('..', '../a')).toBe('../../a');
    expect(join('/runs/cv', 'a')).toBe('/runs/cv/a');
    expect(join('runs/', 'a')).toBe('runs/a');
    expect(join('.', '.')).toBe('.');
    expect(join('/', '.')).toBe('/');
    expect(samePlace('cv', './cv/')).toBe(true);
    expect(samePlace('cv', 'cv/x/..')).toBe(true);
    expect(samePlace('cv', '/cv')).toBe(false);
    expect(samePlace('cv', 'cv2')).toBe(false);
  });

  it('MemoryCheckpointStore: read names what it keeps; no loss log', () => {
    const store = new MemoryCheckpointStore();
    expect(messageOf(() => store.read('cv/a'))).toBe("no checkpoint cv/a is kept in memory (the run's are: none)");
    store.write('cv/b', new Uint8Array(1));
    store.write('cv/c', new Uint8Array(2));
    expect(messageOf(() => store.read('cv/a'))).toBe("no checkpoint cv/a is kept in memory (the run's are: cv/b, cv/c)");
    expect(store.read('cv/c')).toHaveLength(2);
    expect(store.openLog()).toBeNull();
  });

  it('TrainingDivergedError and saveCheckpoint\'s errors and default warning', () => {
    const e = new TrainingDivergedError('m', 3, 1.5);
    expect([e.name, e.message, e.iteration, e.loss, e instanceof Error]).toEqual(['TrainingDivergedError', 'm', 3, 1.5, true]);
    const bad = newTrainer();
    bad.checkpoints = [{ name: 'lm_x/y.safetensors', iteration: 0, valLoss: null }];
    expect(messageOf(() => bad.saveCheckpoint('x'))).toMatch(/^cannot save cv\/lm_lstm_epoch0\.00_x\.safetensors: training\.checkpoints\[0\]\.name must be/);
    const t = newTrainer({ keep: 'last-1' });
    t.store = new (class extends MemoryCheckpointStore {
      override remove(): boolean {
        throw new Error('read-only');
      }
    })();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      t.saveCheckpoint('a');
      t.saveCheckpoint('b');
      expect(warn).toHaveBeenCalledWith('cannot delete the old checkpoint cv/lm_lstm_epoch0.00_a.safetensors (--keep last-1): read-only');
    } finally {
      warn.mockRestore();
    }
    expect(t.checkpoints.map((r) => r.name)).toEqual(['lm_lstm_epoch0.00_a.safetensors', 'lm_lstm_epoch0.00_b.safetensors']);
  });
});
