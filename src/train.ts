/**
 * Training, as char-rnn's train.lua does it: truncated BPTT over minibatches of B streams × T
 * steps with the hidden state carried from batch to batch, element-wise gradient clipping, an
 * optimiser step, learning-rate decay per epoch, validation and checkpoints every so often.
 *
 * The CLI (src/cli.ts) only parses options and prints; everything here is usable from code:
 *
 *   const trainer = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 64 });
 *   trainer.run({ onStep: (s) => console.log(s.iteration, s.loss) });
 */
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CheckpointContents, type TrainingState, saveCheckpoint } from './checkpoint.js';
import { CharLoader, type Split, type Vocab, buildVocab, encode } from './data.js';
import type { Kernels } from './kernels.js';
import { Model, type State } from './model.js';
import { type OptimName, Optimizer, clipGradients, norm } from './optim.js';
import type { ModelKind } from './params.js';

/** char-rnn's options, camelCased, with its defaults (DEFAULT_TRAIN_OPTIONS). */
export interface TrainOptions {
  model: ModelKind;
  rnnSize: number;
  numLayers: number;
  tieWeights: boolean;
  dropout: number;
  optim: OptimName;
  learningRate: number;
  learningRateDecay: number;
  /** In epochs. */
  learningRateDecayAfter: number;
  /** RMSprop's α. */
  decayRate: number;
  seqLength: number;
  batchSize: number;
  maxEpochs: number;
  /** Optional cap on the iteration count (counted from the start of the original run). */
  maxSteps: number | null;
  /** Element-wise clamp of the gradient; 0 disables. */
  gradClip: number;
  trainFrac: number;
  valFrac: number;
  seed: number;
  printEvery: number;
  evalValEvery: number;
  checkpointDir: string;
  /** Checkpoint name stem: lm_<savefile>_epoch<E>_<val loss>.safetensors. Default: the model kind. */
  savefile: string | null;
}

export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  model: 'grid_lstm',
  rnnSize: 128,
  numLayers: 2,
  tieWeights: true,
  dropout: 0,
  optim: 'rmsprop',
  learningRate: 2e-3,
  learningRateDecay: 0.97,
  learningRateDecayAfter: 10,
  decayRate: 0.95,
  seqLength: 50,
  batchSize: 50,
  maxEpochs: 50,
  maxSteps: null,
  gradClip: 5,
  trainFrac: 0.95,
  valFrac: 0.05,
  seed: 123,
  printEvery: 1,
  evalValEvery: 1000,
  checkpointDir: 'cv',
  savefile: null,
};

export interface StepResult {
  iteration: number;
  totalIterations: number;
  epoch: number;
  /** Mean NLL per character of this batch (nats). */
  loss: number;
  /** ‖grad‖ / ‖params‖ after clipping (char-rnn prints it). */
  gradParamRatio: number;
  /** Wall time of this step. */
  seconds: number;
  learningRate: number;
}

export interface RunHooks {
  onStep?: (s: StepResult) => void;
  onEval?: (e: { iteration: number; epoch: number; valLoss: number; seconds: number }) => void;
  onCheckpoint?: (path: string) => void;
  /** Asked after every step; returning true stops the run with a checkpoint (Ctrl-C). */
  shouldStop?: () => boolean;
}

export type RunOutcome =
  | { status: 'done'; checkpoint: string; valLoss: number }
  | { status: 'stopped'; checkpoint: string }
  | { status: 'diverged'; iteration: number; loss: number; checkpoint: string | null; message: string };

export class Trainer {
  readonly options: TrainOptions;
  readonly model: Model;
  readonly vocab: Vocab;
  readonly loader: CharLoader;
  readonly optimizer: Optimizer;
  /** Optimiser steps done, counted from the start of the original run. */
  iteration = 0;
  /** The hidden state carried from batch to batch. */
  carry: State;
  history: { train: [number, number][]; val: [number, number][] } = { train: [], val: [] };
  bestValLoss: number | null = null;
  lastCheckpoint: string | null = null;
  private readonly x: Int32Array;
  private readonly y: Int32Array;

  private constructor(options: TrainOptions, model: Model, vocab: Vocab, ids: Uint16Array | Uint32Array) {
    this.options = options;
    this.model = model;
    this.vocab = vocab;
    this.loader = new CharLoader(ids, options.batchSize, options.seqLength, options);
    this.loader.requireSplit('train');
    this.loader.requireSplit('val');
    this.optimizer = new Optimizer(
      options.optim,
      model.params.length,
      { learningRate: options.learningRate, decayRate: options.decayRate },
      (n) => model.kernels.alloc(n),
    );
    this.carry = model.zeroState(options.batchSize);
    this.x = new Int32Array(options.batchSize * options.seqLength);
    this.y = new Int32Array(options.batchSize * options.seqLength);
  }

  /**
   * A new run on `text`. With `initFrom` (char-rnn's -init_from) the weights, vocabulary and
   * model shape come from that checkpoint; everything else starts afresh.
   */
  static fromText(text: string, options: TrainOptions, env: { kernels?: Kernels; initFrom?: CheckpointContents } = {}): Trainer {
    validateTrainOptions(options);
    let vocab: Vocab;
    let model: Model;
    if (env.initFrom) {
      vocab = env.initFrom.vocab;
      const c = env.initFrom.model.config;
      options = { ...options, model: c.model, rnnSize: c.rnnSize, numLayers: c.numLayers, tieWeights: c.tieWeights };
      model = new Model({ ...c, dropout: options.dropout }, { kernels: env.kernels, seed: options.seed });
      model.params.set(env.initFrom.model.params);
    } else {
      vocab = buildVocab(text);
      if (vocab.chars.length < 2) throw new Error('the training text has fewer than 2 distinct characters; there is nothing to learn');
      model = new Model(
        { model: options.model, vocabSize: vocab.chars.length, rnnSize: options.rnnSize, numLayers: options.numLayers, tieWeights: options.tieWeights, dropout: options.dropout },
        { kernels: env.kernels, seed: options.seed },
      );
    }
    return new Trainer(options, model, vocab, encode(text, vocab));
  }

  /**
   * Continues the run saved in `ck` on the same `text`: same iteration, learning rate,
   * optimiser state, RNG state, data position and carried state; training continues on
   * `ck.model` (load the checkpoint with the kernels to train with). `changes` may only alter
   * when to stop, print, evaluate and where to save.
   */
  static resume(text: string, ck: CheckpointContents, changes: Partial<TrainOptions> = {}): Trainer {
    const t = ck.training;
    if (!t) throw new Error('this checkpoint has no training state (it holds weights only); use --init-from to start a new run from it');
    const saved = t.options as unknown as TrainOptions;
    const changeable: (keyof TrainOptions)[] = ['maxEpochs', 'maxSteps', 'printEvery', 'evalValEvery', 'checkpointDir', 'savefile'];
    for (const [key, value] of Object.entries(changes) as [keyof TrainOptions, unknown][]) {
      if (value === undefined || changeable.includes(key) || saved[key] === value) continue;
      throw new Error(
        `${optionFlag(key)} cannot change when resuming (the run used ${JSON.stringify(saved[key])}); ` +
          'drop it, or use --init-from to start a new run from these weights',
      );
    }
    const options: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, ...saved };
    for (const key of changeable) if (changes[key] !== undefined) (options as unknown as Record<string, unknown>)[key] = changes[key];
    validateTrainOptions(options);
    const model = ck.model;
    const trainer = new Trainer(options, model, ck.vocab, encode(text, ck.vocab));
    if (t.batches !== undefined && t.batches !== trainer.loader.nbatches) {
      throw new Error(
        `the data gives ${trainer.loader.nbatches} batches but the run had ${t.batches}; resume with the same --data as the original run`,
      );
    }
    trainer.iteration = t.iteration;
    trainer.optimizer.learningRate = t.learningRate;
    trainer.optimizer.stepCount = t.optimizer.stepCount;
    for (const [name, buf] of trainer.optimizer.state) {
      const savedBuf = ck.optimizerState.get(name);
      if (!savedBuf) throw new Error(`the checkpoint lacks the optimizer state tensor optimizer.${name}; it cannot be resumed exactly`);
      buf.set(savedBuf);
    }
    model.rng.state = t.rngState;
    trainer.loader.batchIx = { ...t.batchIx };
    trainer.history = { train: [...t.history.train], val: [...t.history.val] };
    trainer.bestValLoss = t.bestValLoss ?? null;
    if (ck.carry) {
      const { B, N } = { B: options.batchSize, N: options.rnnSize };
      for (let l = 0; l < options.numLayers; l++) {
        trainer.carry.h[l].set(ck.carry.h.subarray(l * B * N, (l + 1) * B * N));
        trainer.carry.c[l].set(ck.carry.c.subarray(l * B * N, (l + 1) * B * N));
      }
    }
    return trainer;
  }

  /** Batches per epoch (the train split). */
  get batchesPerEpoch(): number {
    return this.loader.splitSizes.train;
  }

  get totalIterations(): number {
    const byEpochs = Math.floor(this.options.maxEpochs * this.batchesPerEpoch);
    return this.options.maxSteps === null ? byEpochs : Math.min(byEpochs, this.options.maxSteps);
  }

  get epoch(): number {
    return this.iteration / this.batchesPerEpoch;
  }

  /** One training step on the next train batch. */
  step(): StepResult {
    const t0 = performance.now();
    const { batchSize: B, seqLength: T, gradClip } = this.options;
    this.loader.nextBatch('train', this.x, this.y);
    const r = this.model.forwardBackward({ x: this.x, y: this.y, batchSize: B, seqLength: T }, this.carry);
    this.carry = r.finalState;
    clipGradients(this.model.grads, gradClip);
    this.optimizer.step(this.model.params, this.model.grads);
    this.iteration++;
    // Learning-rate decay at the end of each epoch, from --learning-rate-decay-after on.
    const o = this.options;
    if (this.iteration % this.batchesPerEpoch === 0 && o.learningRateDecay < 1 && this.epoch >= o.learningRateDecayAfter) {
      this.optimizer.learningRate *= o.learningRateDecay;
    }
    this.history.train.push([this.iteration, r.loss]);
    return {
      iteration: this.iteration,
      totalIterations: this.totalIterations,
      epoch: this.epoch,
      loss: r.loss,
      gradParamRatio: norm(this.model.grads) / norm(this.model.params),
      seconds: (performance.now() - t0) / 1000,
      learningRate: this.optimizer.learningRate,
    };
  }

  /** Mean NLL per character over a whole split, from a zero state carried through its batches. */
  evaluate(split: Split = 'val'): number {
    this.loader.requireSplit(split);
    const { batchSize: B, seqLength: T } = this.options;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    let state = this.model.zeroState(B);
    let total = 0;
    const n = this.loader.splitSizes[split];
    for (let k = 0; k < n; k++) {
      this.loader.getBatch(split, k, x, y);
      const r = this.model.forward({ x, y, batchSize: B, seqLength: T }, state);
      total += r.loss;
      state = r.finalState;
    }
    return total / n;
  }

  /** The training state that --resume needs. */
  trainingState(): TrainingState {
    const o = this.optimizer;
    return {
      iteration: this.iteration,
      epoch: this.epoch,
      learningRate: o.learningRate,
      optimizer: { name: o.name, stepCount: o.stepCount, decayRate: o.decayRate, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon },
      rngState: this.model.rng.state,
      batchIx: { ...this.loader.batchIx },
      batches: this.loader.nbatches,
      options: { ...this.options },
      history: this.history,
      bestValLoss: this.bestValLoss,
    };
  }

  /** Writes a checkpoint (atomically) and returns its path. `tag` is the val loss or a word. */
  saveCheckpoint(tag: number | string): string {
    const name = `lm_${this.options.savefile ?? this.options.model}_epoch${this.epoch.toFixed(2)}_${
      typeof tag === 'number' ? tag.toFixed(4) : tag
    }.safetensors`;
    const path = join(this.options.checkpointDir, name);
    saveCheckpoint(path, this.model, this.vocab, {
      training: this.trainingState(),
      optimizer: this.optimizer,
      carry: this.carry,
    });
    this.lastCheckpoint = path;
    return path;
  }

  /**
   * Trains until the iteration count reaches totalIterations, evaluating on the val split and
   * writing a checkpoint every evalValEvery steps and at the end. Stops early (keeping the last
   * good checkpoint) when the loss is not finite or exceeds 3× the first loss of the run.
   */
  run(hooks: RunHooks = {}): RunOutcome {
    prepareCheckpointDir(this.options.checkpointDir);
    const total = this.totalIterations;
    while (this.iteration < total) {
      const s = this.step();
      hooks.onStep?.(s);
      const firstLoss = this.history.train[0][1];
      if (!Number.isFinite(s.loss) || s.loss > 3 * firstLoss) {
        const what = Number.isFinite(s.loss) ? `exceeds 3× the first loss (${firstLoss.toFixed(4)})` : 'is not a number';
        return {
          status: 'diverged',
          iteration: s.iteration,
          loss: s.loss,
          checkpoint: this.lastCheckpoint,
          message:
            `training stopped at iteration ${s.iteration}: the loss ${s.loss} ${what}; ` +
            `try a lower --learning-rate (now ${this.options.learningRate}) or a smaller --grad-clip` +
            (this.lastCheckpoint ? `; the last good checkpoint is ${this.lastCheckpoint}` : ''),
        };
      }
      if (this.iteration % this.options.evalValEvery === 0 || this.iteration === total) {
        const t0 = performance.now();
        const valLoss = this.evaluate('val');
        this.history.val.push([this.iteration, valLoss]);
        if (this.bestValLoss === null || valLoss < this.bestValLoss) this.bestValLoss = valLoss;
        hooks.onEval?.({ iteration: this.iteration, epoch: this.epoch, valLoss, seconds: (performance.now() - t0) / 1000 });
        const path = this.saveCheckpoint(valLoss);
        hooks.onCheckpoint?.(path);
        if (this.iteration === total) return { status: 'done', checkpoint: path, valLoss };
      }
      if (hooks.shouldStop?.()) {
        const path = this.saveCheckpoint('interrupted');
        hooks.onCheckpoint?.(path);
        return { status: 'stopped', checkpoint: path };
      }
    }
    // Already at the end (e.g. resumed from the final checkpoint): evaluate and save once more.
    const valLoss = this.evaluate('val');
    return { status: 'done', checkpoint: this.saveCheckpoint(valLoss), valLoss };
  }
}

/**
 * Creates the checkpoint directory if needed and writes (then removes) a probe file, so that an
 * unwritable directory or a full disk is found before hours of training rather than after.
 */
export function prepareCheckpointDir(dir: string): void {
  const probe = join(dir, `.probe-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, 'grid-lstm write probe\n');
    unlinkSync(probe);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`cannot write checkpoints to ${dir}: ${err.code ?? err.message}; choose another --checkpoint-dir or free some space`);
  }
}

/** The command-line flag of an option: learningRate → --learning-rate. */
export function optionFlag(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** Rejects out-of-range options with an error naming the flag. */
export function validateTrainOptions(o: TrainOptions): void {
  const posInt = (k: keyof TrainOptions) => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`${optionFlag(k)} must be a whole number > 0, got ${v}`);
  };
  const num = (k: keyof TrainOptions, ok: (v: number) => boolean, what: string) => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`${optionFlag(k)} must be ${what}, got ${v}`);
  };
  if (o.model !== 'grid_lstm' && o.model !== 'lstm') throw new Error(`--model must be grid_lstm or lstm, got ${o.model}`);
  for (const k of ['rnnSize', 'numLayers', 'seqLength', 'batchSize', 'printEvery', 'evalValEvery'] as const) posInt(k);
  if (o.maxSteps !== null) posInt('maxSteps');
  num('dropout', (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('learningRate', (v) => v > 0, 'a number > 0');
  num('learningRateDecay', (v) => v > 0 && v <= 1, 'in (0, 1]');
  num('learningRateDecayAfter', (v) => v >= 0, 'a number ≥ 0');
  num('decayRate', (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('maxEpochs', (v) => v > 0, 'a number > 0');
  num('gradClip', (v) => v >= 0, 'a number ≥ 0 (0 disables clipping)');
  num('trainFrac', (v) => v > 0 && v <= 1, 'in (0, 1]');
  num('valFrac', (v) => v > 0 && v <= 1, 'in (0, 1] (validation needs a val split)');
  num('seed', (v) => Number.isInteger(v), 'a whole number');
  if (o.trainFrac + o.valFrac > 1 + 1e-9) throw new Error(`--train-frac + --val-frac must be at most 1, got ${o.trainFrac} + ${o.valFrac}`);
  if (!['rmsprop', 'adam', 'sgd'].includes(o.optim)) throw new Error(`--optim must be rmsprop, adam or sgd, got ${o.optim}`);
}

