/**
 * Training, as char-rnn's train.lua does it: truncated BPTT over minibatches of B streams × T
 * steps with the hidden state carried from batch to batch, element-wise gradient clipping, an
 * optimiser step, learning-rate decay per epoch, validation and checkpoints every so often.
 *
 * The CLI (src/cli.ts) only parses options and prints; everything here is usable from code:
 *
 *   const trainer = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 64 });
 *   trainer.run({ onStep: (s) => console.log(s.iteration, s.loss) });
 *
 * No platform API here: where checkpoints and the loss log go, how worker threads start and how
 * much memory there is come from the class's `platform` (TrainerPlatform). src/train/train.ts
 * is the Trainer of Node (files, worker_threads), src/browser.ts the browser's (checkpoints kept
 * in memory, Web Workers); this module's own default keeps checkpoints in memory, one thread.
 */
import {
  type CheckpointContents,
  type CheckpointRecord,
  type TaskSpec,
  type TrainingState,
  CHECKPOINT_NAME,
  buildCheckpoint,
  checkpointBytes,
  failWith,
} from './checkpoint-core.js';
import { CharLoader, type Corpus, type Split, type Vocab, corpusFromText, trainingTooShortMessage } from './data-core.js';
import { type AdditionSpec, AdditionLoader, answerAccuracy, checkAdditionSpec } from './addition.js';
import type { Kernels } from '../nn/kernels.js';
import { Model, type State } from '../nn/model.js';
import { type OptimName, Optimizer, clipGradients } from './optim.js';
import { cellOf } from '../nn/cells.js';
import { MODEL_KINDS, type ModelKind } from '../nn/params.js';
import { DataParallel, type Spawn, WorkerError, effectiveThreads } from '../parallel/pool.js';
import { WasmKernels } from '../nn/wasm.js';

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
  /** The training text's path, recorded so that --resume can find it again (null: the built-in corpus). */
  data: string | null;
  /** How the text was read. */
  encoding: 'utf8' | 'latin1';
  /**
   * Which of the checkpoint files this run writes stay on disk: 'all' (char-rnn), 'best' (the
   * lowest validation loss, and the newest file so the run can resume where it stopped), or
   * 'last-N' (the N newest). Only files this run wrote are ever deleted, after the new one is written.
   */
  keep: KeepPolicy;
  /** Stop after this many validations in a row without a new best validation loss; 0: never. */
  patience: number;
  /** 'csv': write the loss history to <checkpointDir>/<savefile>.log.csv as the run goes; 'none': no log. */
  log: 'csv' | 'none';
  /**
   * Threads that train and validate (src/parallel/: the B streams of a batch split across them;
   * at most B run). 1 (the default here; the CLI's default is the cores, at most 8): no worker
   * threads, today's code path. More than 1 needs the WebAssembly kernels. Results equal the
   * one-thread ones up to float rounding, and are bit-identical from run to run for a given count.
   */
  threads: number;
  /**
   * 'char' (char-rnn's): predict the next character of a text. 'addition' (the seed's
   * -task addition, src/train/addition.ts): sums of two `digitLength`-digit numbers generated
   * from the seed, the loss over the answer's characters only, accuracy at every validation.
   */
  task: 'char' | 'addition';
  /** The addition task: digits of each operand (the seed's -digit_length). */
  digitLength: number;
}

/** TrainOptions.keep. */
export type KeepPolicy = 'all' | 'best' | `last-${number}`;

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
  data: null,
  encoding: 'utf8',
  keep: 'all',
  patience: 0,
  log: 'csv',
  threads: 1,
  task: 'char',
  digitLength: 4,
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

/** The addition task's validation accuracy: of the answers' characters, and of whole answers (fractions). */
export interface Accuracy {
  chars: number;
  numbers: number;
  /** The sums validated. */
  sums: number;
}

export interface RunHooks {
  onStep?: (s: StepResult) => void;
  /** `accuracy`: the addition task's (absent for text). */
  onEval?: (e: { iteration: number; epoch: number; valLoss: number; seconds: number; accuracy?: Accuracy }) => void;
  onCheckpoint?: (path: string) => void;
  /**
   * Something went wrong that does not stop training: the loss log cannot be written (said once),
   * an old checkpoint cannot be deleted under --keep. Default: the platform's warn (Node:
   * process.emitWarning).
   */
  onWarning?: (message: string) => void;
  /**
   * Asked before every step and after every validation batch; returning true stops the run
   * with a checkpoint of the state after the last completed step (Ctrl-C). A validation pass
   * that is cut short is dropped (it changes nothing that a resume needs).
   */
  shouldStop?: () => boolean;
  /**
   * During a validation pass: `done` of its `total` batches evaluated; called with 0 as it
   * starts, then after every batch (a pass over a large split takes a while: a display can
   * show its progress).
   */
  onEvalProgress?: (done: number, total: number) => void;
}

export type RunOutcome =
  /** `earlyStop`: the run ended before its last iteration because of --patience. */
  | { status: 'done'; checkpoint: string; valLoss: number; earlyStop?: EarlyStop }
  | { status: 'stopped'; checkpoint: string }
  /** The loss, a gradient or the weights stopped being finite, or the loss blew up. */
  | { status: 'diverged'; iteration: number; loss: number; checkpoint: string | null; message: string }
  /** A checkpoint could not be written (disk full, directory gone...); earlier ones are intact. */
  | { status: 'failed'; iteration: number; checkpoint: string | null; message: string };

/** Why a run stopped early (--patience): its best validation and where that checkpoint is. */
export interface EarlyStop {
  /** The --patience: validations in a row without a new best. */
  patience: number;
  /**
   * The validations in a row without a new best: the patience, or more when a run that had
   * already gone that far was resumed with a lower --patience.
   */
  validations: number;
  /**
   * True when the run had already met its --patience when it was resumed (it had stopped early
   * and was resumed with the same or a lower --patience): it stopped at once, without a step.
   */
  alreadyMet: boolean;
  bestValLoss: number;
  bestIteration: number;
  /** The path of the best validation's checkpoint; null when it is no longer kept (--keep last-N) or not known. */
  bestCheckpoint: string | null;
}

/**
 * Thrown by {@link Trainer.step} when the loss or a gradient element is NaN or infinite (then
 * nothing was changed: not the weights, the optimiser state, the carried state nor the data
 * position), or when the update made a weight non-finite (then the weights in memory are
 * lost; checkpoints on disk are not affected).
 */
export class TrainingDivergedError extends Error {
  constructor(
    message: string,
    /** The iteration the failed step would have completed. */
    readonly iteration: number,
    readonly loss: number,
  ) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}


/**
 * Where a Trainer keeps its checkpoints and loss log: files (Node, src/train/train.ts) or memory
 * (MemoryCheckpointStore). Paths are the platform's (TrainerPlatform.join).
 */
export interface CheckpointStore {
  /**
   * Makes `dir` ready and proves that a checkpoint of `probe`'s size can be written there, before
   * hours of training rather than after.
   *
   * @throws CheckpointDirError naming the directory, the cause and what to do
   */
  prepare(dir: string, probe: Uint8Array): void;
  /** Writes the file at `path` whole (readers see the old file or the new one); throws "cannot write <path>: <why>". */
  write(path: string, bytes: Uint8Array): void;
  /** The bytes of the file at `path`; throws when there is none. */
  read(path: string): Uint8Array;
  /** Deletes it: false when there was none; throws an Error saying why it cannot. */
  remove(path: string): boolean;
  exists(path: string): boolean;
  /**
   * The loss log at `path`, written anew with `lines` (header first) and then appended to, line
   * by line; null where there is no log to write (the history holds the same lines: logLines()).
   */
  openLog(path: string, lines: string[], warn: (message: string) => void): { append(line: string): void; close(): void } | null;
}

/** Checkpoints kept in memory, by path (a page can offer them for download: `new Blob([store.read(path)])`). */
export class MemoryCheckpointStore implements CheckpointStore {
  /** Every checkpoint kept (--keep applies as with files), by path. */
  readonly files = new Map<string, Uint8Array>();

  prepare(): void {
    // Nothing to prepare: memory for one checkpoint more was just used to build the probe.
  }

  write(path: string, bytes: Uint8Array): void {
    this.files.set(path, bytes);
  }

  read(path: string): Uint8Array {
    const bytes = this.files.get(path);
    if (bytes === undefined) throw new Error(`no checkpoint ${path} is kept in memory (the run's are: ${[...this.files.keys()].join(', ') || 'none'})`);
    return bytes;
  }

  remove(path: string): boolean {
    return this.files.delete(path);
  }

  exists(path: string): boolean {
    return this.files.has(path);
  }

  openLog(): null {
    return null;
  }
}

/** What a Trainer needs from the platform it runs on. */
export interface TrainerPlatform {
  /** A new Trainer's checkpoint store. */
  store(): CheckpointStore;
  /** How worker threads start (options.threads > 1), or why there are none here. */
  spawner(): Spawn | string;
  /** Bytes of memory a run may use (checkTrainingFits). */
  totalMemory(): number;
  /** What limits that memory, for checkTrainingFits' message (default: "this machine has N GB"). */
  memoryLimit?: string;
  /** The default of RunHooks.onWarning. */
  warn(message: string): void;
  /** A file's path in a directory. */
  join(dir: string, name: string): string;
  /** Whether two directory paths name the same place. */
  samePlace(a: string, b: string): boolean;
  /**
   * True where worker threads start only while the event loop turns (a browser: a worker's
   * workers load through its event loop, which Atomics.wait blocks): they must be started with
   * `await trainer.startThreads()` (runAsync does it) before a step.
   */
  threadsStartAsync?: boolean;
}

/** "cv/./x/" → "cv/x": paths as plain strings, for platforms without a file system. */
function normalizePath(p: string): string {
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && parts.length > 0 && parts.at(-1) !== '..') parts.pop();
    else parts.push(part);
  }
  return (p.startsWith('/') ? '/' : '') + parts.join('/') || '.';
}

/**
 * The platform without a file system or threads: checkpoints in memory, one thread, at most
 * 4 GiB (a 32-bit WebAssembly memory's limit; a page may have less).
 */
export const MEMORY_PLATFORM: TrainerPlatform = {
  store: () => new MemoryCheckpointStore(),
  spawner: () => 'this platform starts no worker threads; train with threads 1',
  totalMemory: () => 2 ** 32,
  memoryLimit: "a page's WebAssembly memory is limited to 4 GiB",
  warn: (message) => console.warn(message),
  join: (dir, name) => normalizePath(`${dir}/${name}`),
  samePlace: (a, b) => normalizePath(a) === normalizePath(b),
};

/** Lets the event loop run (timers, messages, signal handlers), then resolves. */
function nextTurn(): Promise<void> {
  const g = globalThis as unknown as { setImmediate?: (f: () => void) => void; MessageChannel?: new () => { port1: { onmessage: (() => void) | null; close(): void }; port2: { postMessage(m: unknown): void; close(): void } } };
  if (g.setImmediate) return new Promise<void>((resolve) => g.setImmediate!(resolve));
  // Browsers: a message to oneself (setTimeout would wait at least 4 ms once nested).
  if (g.MessageChannel) {
    return new Promise<void>((resolve) => {
      const ch = new g.MessageChannel!();
      ch.port1.onmessage = () => {
        ch.port1.close();
        ch.port2.close();
        resolve();
      };
      ch.port2.postMessage(null);
    });
  }
  return new Promise<void>((resolve) => setTimeout(resolve, 0));
}

/** A step of the run's core loop: control returns to the caller (run / runAsync) at each yield. */
type RunSteps = Generator<void, RunOutcome, void>;

export class Trainer {
  /** Where checkpoints go, how threads start, how much memory there is (see TrainerPlatform). */
  static platform: TrainerPlatform = MEMORY_PLATFORM;
  /** This trainer's platform (its class's). */
  readonly platform: TrainerPlatform;
  /** Where this run's checkpoints (and loss log) go: the platform's; may be replaced before run(). */
  store: CheckpointStore;
  readonly options: TrainOptions;
  readonly model: Model;
  readonly vocab: Vocab;
  readonly loader: CharLoader | AdditionLoader;
  readonly optimizer: Optimizer;
  /** Optimiser steps done, counted from the start of the original run. */
  iteration = 0;
  /** The hidden state carried from batch to batch. */
  carry: State;
  /**
   * [iteration, loss] of every step and validation; `lr`: [iteration, rate] of every learning rate
   * set; `accuracy` (the addition task): [iteration, characters right, numbers right] of every
   * validation (see TrainingState).
   */
  history: { train: [number, number][]; val: [number, number][]; lr: [number, number][]; accuracy?: [number, number, number][] };
  /** The accuracy of the last validation (the addition task), else null. */
  lastAccuracy: Accuracy | null = null;
  bestValLoss: number | null = null;
  lastCheckpoint: string | null = null;
  /** The checkpoint files of this run in options.checkpointDir that --keep may delete, oldest first. */
  checkpoints: CheckpointRecord[] = [];
  /** Set by {@link Trainer.resume} when it set a new learning rate (--learning-rate on resume). */
  learningRateChange: { iteration: number; from: number; to: number } | null = null;
  /**
   * Set by {@link Trainer.resume} when the run goes on with another thread count than it had:
   * the continuation is then no longer bit-identical to an uninterrupted run (equal up to float
   * rounding).
   */
  threadsChange: { from: number; to: number } | null = null;
  /** The worker threads while a multi-threaded run is going (created at its first step, closed by run's end or close()). */
  private parallel: DataParallel | null = null;
  /** Whether startThreads() has resolved for the pool in `parallel`. */
  private threadsStarted = false;
  private readonly x: Int32Array;
  private readonly y: Int32Array;

  protected constructor(options: TrainOptions, model: Model, vocab: Vocab, ids: Uint16Array | Uint32Array | null) {
    this.platform = (new.target as typeof Trainer).platform;
    this.store = this.platform.store();
    this.options = options;
    this.model = model;
    this.vocab = vocab;
    if (ids === null) {
      // The addition task: sums generated from the seed (src/train/addition.ts).
      this.loader = new AdditionLoader(additionSpec(options), options.batchSize, options.seed);
      if (!sameVocab(vocab, this.loader.vocab)) throw new Error("the addition task's vocabulary is digits, +, = and space; this model's differs");
    } else {
      const short = trainingTooShortMessage(ids.length, options.batchSize, options.seqLength, options);
      if (short !== null) throw new Error(`${dataLabel(options)}: ${short}`);
      this.loader = new CharLoader(ids, options.batchSize, options.seqLength, options);
      this.loader.requireSplit('train');
      this.loader.requireSplit('val');
    }
    this.optimizer = new Optimizer(
      options.optim,
      model.params.length,
      { learningRate: options.learningRate, decayRate: options.decayRate },
      (n) => model.kernels.alloc(n),
    );
    this.carry = model.zeroState(options.batchSize);
    this.history = { train: [], val: [], lr: [[0, options.learningRate]] };
    if (options.task === 'addition') this.history.accuracy = [];
    this.x = new Int32Array(options.batchSize * options.seqLength);
    this.y = new Int32Array(options.batchSize * options.seqLength);
    if (this.threads > 1 && !(model.kernels instanceof WasmKernels)) {
      throw new Error(`--threads ${options.threads} needs the WebAssembly kernels; with --kernels ${model.kernels.name} use --threads 1`);
    }
    if (this.threads > 1) {
      const spawn = this.platform.spawner();
      if (typeof spawn === 'string') throw new Error(`--threads ${options.threads}: ${spawn}`);
    }
  }

  /** The threads that run: options.threads, at most one per stream of a batch. */
  get threads(): number {
    return effectiveThreads(this.options.threads, this.options.batchSize);
  }

  /** The worker pool for more than one thread (started on first use), or null for one. */
  private pool(): DataParallel | null {
    if (this.threads === 1) return null;
    // Where threads start asynchronously, a step before startThreads() has resolved would block
    // this thread in Atomics.wait while its workers still load through its event loop.
    if (this.platform.threadsStartAsync && !this.threadsStarted) {
      throw new Error(
        'worker threads start here only while the event loop turns: use `await trainer.runAsync()`, or `await trainer.startThreads()` before run() or step()',
      );
    }
    this.parallel ??= new DataParallel(this.model, this.options.batchSize, this.options.seqLength, this.threads, this.platform.spawner() as Spawn);
    return this.parallel;
  }

  /**
   * Starts the worker threads (options.threads > 1) and resolves once they run, without
   * blocking. Optional in Node (the first step starts them); needed in a browser before run()
   * or step() (runAsync does it).
   *
   * @throws WorkerError when a worker fails or does not start
   */
  async startThreads(): Promise<void> {
    if (this.threads === 1) return;
    this.parallel ??= new DataParallel(this.model, this.options.batchSize, this.options.seqLength, this.threads, this.platform.spawner() as Spawn);
    const parallel = this.parallel;
    try {
      await parallel.whenStarted();
      // Closed (or closed and restarted) meanwhile: only the pool that is still this trainer's counts.
      if (this.parallel === parallel) this.threadsStarted = true;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Ends the worker threads, if any (a later step or startThreads starts them again). */
  close(): void {
    this.parallel?.close();
    this.parallel = null;
    this.threadsStarted = false;
  }

  /**
   * A new run on `text`. With `initFrom` (char-rnn's -init_from) the weights, vocabulary and
   * model shape come from that checkpoint; everything else starts afresh.
   */
  static fromText(text: string, options: TrainOptions, env: { kernels?: Kernels; initFrom?: CheckpointContents } = {}): Trainer {
    validateTrainOptions(options);
    return this.fromCorpus(corpusFromText(text, env.initFrom?.vocab), options, env);
  }

  /**
   * A new run on a text already turned into ids (e.g. by readCorpus, which never holds the text
   * as a string). With `initFrom`, `corpus.vocab` must be that checkpoint's vocabulary.
   */
  static fromCorpus(corpus: Corpus, options: TrainOptions, env: { kernels?: Kernels; initFrom?: CheckpointContents } = {}): Trainer {
    validateTrainOptions(options);
    if (options.task !== 'char') throw new Error('--task addition generates its own sums: start it with Trainer.addition(options), without a text');
    checkInitFromTask(env.initFrom, options);
    let vocab: Vocab;
    let model: Model;
    if (env.initFrom) {
      vocab = env.initFrom.vocab;
      if (!sameVocab(corpus.vocab, vocab)) throw new Error("the corpus must be encoded with the --init-from checkpoint's vocabulary");
      const c = env.initFrom.model.config;
      options = { ...options, model: c.model, rnnSize: c.rnnSize, numLayers: c.numLayers, tieWeights: c.tieWeights };
      checkTrainingFits(options, vocab.chars.length, corpus.ids.length, env.kernels, this.platform.totalMemory(), this.platform.memoryLimit);
      model = buildModel(() => new Model({ ...c, dropout: options.dropout }, { kernels: env.kernels, seed: options.seed }), options, vocab.chars.length);
      model.params.set(env.initFrom.model.params);
    } else {
      vocab = corpus.vocab;
      const V = vocab.chars.length;
      if (V < 2) {
        throw new Error(
          `${dataLabel(options)} has only ${V === 0 ? 'no characters' : `one distinct character, ${JSON.stringify(vocab.chars[0])}`}; ` +
            'a model needs at least 2 to learn anything, so pass a longer, more varied text',
        );
      }
      checkTrainingFits(options, V, corpus.ids.length, env.kernels, this.platform.totalMemory(), this.platform.memoryLimit);
      model = freshModel(options, V, env.kernels);
    }
    return new this(options, model, vocab, corpus.ids);
  }

  /**
   * A new run of the addition task (options.task 'addition', options.digitLength): no text, the
   * sums are generated from options.seed. With `initFrom`, the weights of a checkpoint of the
   * same task (and its model shape).
   */
  static addition(options: TrainOptions, env: { kernels?: Kernels; initFrom?: CheckpointContents } = {}): Trainer {
    validateTrainOptions(options);
    if (options.task !== 'addition') throw new Error(`Trainer.addition needs options.task 'addition', got ${JSON.stringify(options.task)}`);
    checkInitFromTask(env.initFrom, options);
    const vocab = new AdditionLoader(additionSpec(options), options.batchSize, options.seed).vocab;
    const V = vocab.chars.length;
    let model: Model;
    if (env.initFrom) {
      const c = env.initFrom.model.config;
      options = { ...options, model: c.model, rnnSize: c.rnnSize, numLayers: c.numLayers, tieWeights: c.tieWeights };
      checkTrainingFits(options, V, 0, env.kernels, this.platform.totalMemory(), this.platform.memoryLimit);
      model = buildModel(() => new Model({ ...c, dropout: options.dropout }, { kernels: env.kernels, seed: options.seed }), options, V);
      model.params.set(env.initFrom.model.params);
    } else {
      checkTrainingFits(options, V, 0, env.kernels, this.platform.totalMemory(), this.platform.memoryLimit);
      model = freshModel(options, V, env.kernels);
    }
    return new this(options, model, vocab, null);
  }

  /** The addition task's spec of this run (options.task 'addition'). */
  get addition(): AdditionSpec | null {
    return this.options.task === 'addition' ? additionSpec(this.options) : null;
  }

  /**
   * Continues the run saved in `ck` on the same `text` (a string, or a corpus encoded with
   * `ck.vocab`): same iteration, learning rate, optimiser state, RNG state, data position and
   * carried state; training continues on `ck.model` (load the checkpoint with the kernels to
   * train with). `changes` may only alter when to stop (including --patience), print, evaluate,
   * where to save, what to keep and log, where the data now is, and the learning rate: a
   * `learningRate` other than the current (decayed) rate replaces it from the next step on,
   * later decays apply to it, the optimiser state is kept, and `history.lr` records it.
   */
  static resume(text: string | Corpus | null, ck: CheckpointContents, changes: Partial<TrainOptions> = {}): Trainer {
    const t = ck.training;
    if (!t) throw new Error('this checkpoint has no training state (it holds weights only); use --init-from to start a new run from it');
    // (Runs saved before an option existed had its default.)
    const saved = { ...DEFAULT_TRAIN_OPTIONS, ...(t.options as unknown as TrainOptions) };
    // Where the data now is may change too (the batch count check below catches other data).
    const changeable: (keyof TrainOptions)[] = [
      ...(['maxEpochs', 'maxSteps', 'printEvery', 'evalValEvery', 'checkpointDir', 'savefile', 'data', 'encoding'] as const),
      ...(['keep', 'patience', 'log', 'threads'] as const),
    ];
    // A learning rate other than the current (decayed) one is a new rate from here on; the
    // current one restated changes nothing (the resume stays exact).
    const newRate = changes.learningRate !== undefined && changes.learningRate !== t.learningRate ? changes.learningRate : undefined;
    for (const [key, value] of Object.entries(changes) as [keyof TrainOptions, unknown][]) {
      if (value === undefined || changeable.includes(key) || saved[key] === value || key === 'learningRate') continue;
      throw new Error(
        `${optionFlag(key)} cannot change when resuming (the run used ${JSON.stringify(saved[key])}); ` +
          'drop it, or use --init-from to start a new run from these weights',
      );
    }
    const inconsistent = (what: string) =>
      new Error(`the checkpoint is inconsistent: ${what}; it cannot be resumed exactly, but --init-from can start a new run from its weights`);
    const savedOptions: TrainOptions = saved;
    try {
      validateTrainOptions(savedOptions);
    } catch (e) {
      throw inconsistent(`its saved training options are not valid (${(e as Error).message})`);
    }
    const c = ck.model.config;
    const shape: [keyof TrainOptions, unknown][] = [
      ['model', c.model],
      ['rnnSize', c.rnnSize],
      ['numLayers', c.numLayers],
      ['dropout', c.dropout],
    ];
    if (c.model === 'grid_lstm') shape.push(['tieWeights', c.tieWeights]);
    for (const [key, value] of shape) {
      if (savedOptions[key] !== value) {
        throw inconsistent(`its training options say ${optionFlag(key)} ${JSON.stringify(savedOptions[key])} but its config says ${JSON.stringify(value)}`);
      }
    }
    if (t.optimizer.name !== savedOptions.optim) {
      throw inconsistent(`its training options say --optim ${savedOptions.optim} but its optimiser state is ${t.optimizer.name}'s`);
    }
    if (ck.carry && ck.carry.batchSize !== savedOptions.batchSize) {
      throw inconsistent(`its carried state is for --batch-size ${ck.carry.batchSize} but its options say ${savedOptions.batchSize}`);
    }
    const options: TrainOptions = { ...savedOptions };
    for (const key of changeable) if (changes[key] !== undefined) (options as unknown as Record<string, unknown>)[key] = changes[key];
    if (newRate !== undefined) options.learningRate = newRate;
    validateTrainOptions(options);
    const ckTask = ck.task?.kind ?? 'char';
    if (ckTask !== options.task) throw inconsistent(`its training options say --task ${options.task} but its config says ${ckTask}`);
    let ids: Uint16Array | Uint32Array | null = null;
    if (options.task === 'char') {
      if (text === null) throw new Error('resuming a run on a text needs the text');
      let corpus: Corpus;
      if (typeof text === 'string') corpus = corpusFromText(text, ck.vocab);
      else {
        corpus = text;
        if (!sameVocab(corpus.vocab, ck.vocab)) throw new Error("the corpus must be encoded with the checkpoint's vocabulary to resume");
      }
      const n = corpus.ids.length;
      const nbatches = n >= 1 ? Math.floor((n - 1) / (options.batchSize * options.seqLength)) : 0;
      if (t.batches !== undefined && t.batches !== nbatches) {
        throw new Error(`the data gives ${nbatches} batches but the run had ${t.batches}; resume with the same --data as the original run`);
      }
      ids = corpus.ids;
    }
    const model = ck.model;
    const trainer = new this(options, model, ck.vocab, ids);
    for (const split of ['train', 'val', 'test'] as const) {
      const k = t.batchIx[split];
      const size = trainer.loader.splitSizes[split];
      const loader = trainer.loader;
      if (loader instanceof AdditionLoader ? !loader.hasPosition(split, k) : k >= Math.max(size, 1)) {
        throw new Error(
          `the checkpoint's data position (${split} batch ${k}) is outside the ${size}-batch ${split} split of this data; ` +
            'resume with the same --data as the original run',
        );
      }
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
    // Checkpoints written before this feature have no history.lr: their rate was never changed.
    const lr = t.history.lr && t.history.lr.length > 0 ? t.history.lr : [[0, savedOptions.learningRate] as [number, number]];
    trainer.history = { train: [...t.history.train], val: [...t.history.val], lr: [...lr] };
    if (options.task === 'addition') trainer.history.accuracy = [...(t.history.accuracy ?? [])];
    trainer.bestValLoss = t.bestValLoss ?? null;
    // The files --keep may delete: only those in the directory the run goes on saving to.
    if (t.checkpoints && this.platform.samePlace(options.checkpointDir, savedOptions.checkpointDir)) {
      trainer.checkpoints = t.checkpoints.filter((r) => CHECKPOINT_NAME.test(r.name)).map((r) => ({ ...r }));
    }
    const [was, now] = [effectiveThreads(savedOptions.threads, options.batchSize), trainer.threads];
    if (was !== now) trainer.threadsChange = { from: was, to: now };
    if (newRate !== undefined) {
      trainer.learningRateChange = { iteration: t.iteration, from: t.learningRate, to: newRate };
      trainer.optimizer.learningRate = newRate;
      // A rate set again at the same iteration (a resume stopped before its first step) replaces it.
      if (trainer.history.lr.at(-1)![0] === t.iteration) trainer.history.lr.pop();
      trainer.history.lr.push([t.iteration, newRate]);
    }
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

  /**
   * One training step on the next train batch. Throws {@link TrainingDivergedError} when the
   * loss or a gradient element is not finite, before anything changes (so the weights are never
   * updated with a NaN), and when the update makes a weight non-finite.
   */
  step(): StepResult {
    const t0 = performance.now();
    const { batchSize: B, seqLength: T, gradClip } = this.options;
    const position = this.loader.batchIx.train;
    this.loader.nextBatch('train', this.x, this.y);
    const pool = this.pool();
    // The sums of the addition task are independent: each batch starts from a zero state.
    const from = this.options.task === 'addition' ? this.model.zeroState(B) : this.carry;
    let r: { loss: number; finalState: State };
    try {
      r = pool
        ? pool.forwardBackward(this.x, this.y, from, this.model.rng)
        : this.model.forwardBackward({ x: this.x, y: this.y, batchSize: B, seqLength: T }, from);
    } catch (e) {
      if (e instanceof WorkerError) this.close();
      this.loader.batchIx.train = position;
      throw e;
    }
    const iteration = this.iteration + 1;
    const grads = this.model.grads;
    let problem: string | null = null;
    if (!Number.isFinite(r.loss)) problem = `the loss ${r.loss} is ${Number.isNaN(r.loss) ? 'not a number' : 'not finite'}`;
    else {
      const j = this.model.kernels.firstNonFinite(grads);
      if (j >= 0) problem = `the gradient ${this.elementName(j)} is ${grads[j]} (the loss was ${r.loss})`;
    }
    if (problem !== null) {
      this.loader.batchIx.train = position;
      throw new TrainingDivergedError(this.divergedMessage(iteration, problem, 'the weights were not updated'), iteration, r.loss);
    }
    if (this.options.task === 'char') this.carry = r.finalState;
    clipGradients(grads, gradClip, this.model.kernels);
    this.optimizer.step(this.model.params, grads, this.model.kernels);
    this.iteration = iteration;
    // The norms of the progress line's ratio, both in one pass.
    const [paramSquares, gradSquares] = this.model.kernels.sumSquares2(this.model.params, grads);
    const paramNorm = Math.sqrt(paramSquares);
    if (!Number.isFinite(paramNorm)) {
      const j = this.model.kernels.firstNonFinite(this.model.params);
      if (j >= 0) {
        throw new TrainingDivergedError(
          this.divergedMessage(iteration, `the update made the weight ${this.elementName(j)} ${this.model.params[j]}`, 'the weights in memory are lost'),
          iteration,
          r.loss,
        );
      }
    }
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
      gradParamRatio: Math.sqrt(gradSquares) / paramNorm,
      seconds: (performance.now() - t0) / 1000,
      learningRate: this.optimizer.learningRate,
    };
  }

  /** "of decoder.weight at element 12" for index j of the flat parameter/gradient buffer. */
  private elementName(j: number): string {
    const spec = this.model.layout.find((s) => j >= s.offset && j < s.offset + s.size);
    return spec ? `of ${spec.name} at element ${j - spec.offset}` : `at element ${j}`;
  }

  /** The message of a divergence at `iteration`: what happened and what to do. */
  private divergedMessage(iteration: number, problem: string, effect: string): string {
    const o = this.options;
    const clip = o.gradClip > 0 ? `a smaller --grad-clip (now ${o.gradClip})` : 'a --grad-clip such as 5';
    return (
      `training stopped at iteration ${iteration}: ${problem}; ` +
      `try a lower --learning-rate (now ${o.learningRate}) or ${clip}; ${effect}` +
      (this.lastCheckpoint ? `; the last good checkpoint is ${this.lastCheckpoint}` : '; no checkpoint was saved in this run')
    );
  }

  /**
   * Mean NLL per character over a whole split, from a zero state carried through its batches
   * (the addition task: over the answers' characters, each sum from a zero state; its accuracy
   * is then in {@link lastAccuracy}).
   */
  evaluate(split: Split = 'val'): number {
    const it = this.evaluateSteps(split, () => false);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value!;
    }
  }

  /**
   * {@link evaluate}, yielding after every batch; returns null if `stop()` turns true.
   * `progress(done, n)` is called at the start (0) and after every batch.
   */
  private *evaluateSteps(split: Split, stop: () => boolean, progress?: (done: number, n: number) => void): Generator<void, number | null, void> {
    this.loader.requireSplit(split);
    const { batchSize: B, seqLength: T } = this.options;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    let state = this.model.zeroState(B);
    let total = 0;
    const n = this.loader.splitSizes[split];
    // The addition task validates on one thread: its accuracy needs every prediction, and its
    // validation set is small (2 000 sums).
    const addition = this.options.task === 'addition';
    const counts = { chars: 0, correctChars: 0, numbers: 0, correctNumbers: 0 };
    // With threads, each carries the state of its streams from batch to batch in the pool.
    const pool = addition ? null : this.pool();
    pool?.resetState();
    progress?.(0, n);
    for (let k = 0; k < n; k++) {
      if (k > 0) {
        yield;
        if (stop()) return null;
      }
      this.loader.getBatch(split, k, x, y);
      // Weights held constant for the batch (its first-layer products read from tables).
      if (pool) {
        try {
          total += pool.evaluateBatch(x, y);
        } catch (e) {
          if (e instanceof WorkerError) this.close();
          throw e;
        }
        progress?.(k + 1, n);
        continue;
      }
      const r = this.model.inference(() => this.model.forward({ x, y, batchSize: B, seqLength: T }, state));
      total += r.loss;
      if (addition) {
        const c = answerAccuracy(this.model.activations()!.logp, y, B, T, this.model.config.vocabSize);
        for (const key of Object.keys(counts) as (keyof typeof counts)[]) counts[key] += c[key];
      } else state = r.finalState;
      progress?.(k + 1, n);
    }
    if (addition) this.lastAccuracy = { chars: counts.correctChars / counts.chars, numbers: counts.correctNumbers / counts.numbers, sums: counts.numbers };
    return total / n;
  }

  /** The task as checkpoints record it. */
  taskSpec(): TaskSpec {
    const a = this.addition;
    return a === null ? { kind: 'char' } : { kind: 'addition', ...a };
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
      checkpoints: this.checkpoints,
    };
  }

  /**
   * Writes a checkpoint (atomically) and returns its path. `tag` is the val loss (a validation's
   * checkpoint) or a word. Then, under --keep best or last-N, deletes the files of this run that
   * are no longer kept (never the new one; never a file this run did not write); a file that
   * cannot be deleted is reported to `warn` and tried again at the next checkpoint.
   */
  saveCheckpoint(tag: number | string, warn: (message: string) => void = (m) => this.platform.warn(m)): string {
    const name = `lm_${this.options.savefile ?? this.options.model}_epoch${this.epoch.toFixed(2)}_${
      typeof tag === 'number' ? tag.toFixed(4) : tag
    }.safetensors`;
    const dir = this.options.checkpointDir;
    const path = this.platform.join(dir, name);
    const before = this.checkpoints;
    // A file of the same name is replaced by the new one: one record.
    const written = [...before.filter((r) => r.name !== name), { name, iteration: this.iteration, valLoss: typeof tag === 'number' ? tag : null }];
    const kept = keptCheckpoints(written, this.options.keep);
    this.checkpoints = kept; // what the new file lists
    try {
      const extra = { training: this.trainingState(), optimizer: this.optimizer, carry: this.carry, task: this.taskSpec() };
      this.store.write(path, buildCheckpoint(this.model, this.vocab, extra, failWith(`cannot save ${path}`)));
    } catch (e) {
      this.checkpoints = before;
      throw e;
    }
    this.lastCheckpoint = path;
    // Only now, with the new file in place, the old ones go.
    const failed = new Set<CheckpointRecord>();
    for (const r of written) {
      if (kept.includes(r) || !CHECKPOINT_NAME.test(r.name)) continue;
      const old = this.platform.join(dir, r.name);
      try {
        this.store.remove(old); // (false: already gone)
      } catch (e) {
        failed.add(r);
        warn(`cannot delete the old checkpoint ${old} (--keep ${this.options.keep}): ${(e as Error).message}`);
      }
    }
    if (failed.size > 0) this.checkpoints = written.filter((r) => kept.includes(r) || failed.has(r));
    return path;
  }

  /**
   * Trains until the iteration count reaches totalIterations, evaluating on the val split and
   * writing a checkpoint every evalValEvery steps and at the end. Stops early, keeping the last
   * good checkpoint, when the loss or a gradient is not finite or the loss exceeds 3× the first
   * loss of the run ('diverged'), when a checkpoint cannot be written ('failed'), or when
   * `hooks.shouldStop` says so ('stopped', after writing a checkpoint).
   *
   * Synchronous: signal handlers (Ctrl-C) cannot run while it works; use {@link runAsync} for
   * that. Both give the same results.
   */
  run(hooks: RunHooks = {}): RunOutcome {
    const it = this.runSteps(hooks);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
    }
  }

  /** Validations since the best one (0: the last validation was the best), from the history. */
  get validationsSinceBest(): number {
    const val = this.history.val;
    let best = -1;
    for (let i = 0; i < val.length; i++) if (best < 0 || val[i][1] < val[best][1]) best = i;
    return best < 0 ? 0 : val.length - 1 - best;
  }

  /** The best validation so far and its checkpoint, for a stop by --patience (`alreadyMet`: on resume, before any step). */
  private earlyStop(patience: number, alreadyMet = false): EarlyStop {
    const val = this.history.val;
    const validations = this.validationsSinceBest;
    const [bestIteration, bestValLoss] = val[val.length - 1 - validations];
    const r = this.checkpoints.find((c) => c.iteration === bestIteration && c.valLoss === bestValLoss);
    return { patience, validations, alreadyMet, bestValLoss, bestIteration, bestCheckpoint: r ? this.platform.join(this.options.checkpointDir, r.name) : null };
  }

  /** The loss log's path (--log csv), next to the checkpoints; null with --log none. */
  get logPath(): string | null {
    return this.options.log === 'csv' ? this.platform.join(this.options.checkpointDir, `${this.options.savefile ?? this.options.model}.log.csv`) : null;
  }

  /**
   * The loss log's lines for this run's history, header first: one per step (iteration, epoch,
   * train loss, the learning rate of the step's update) and one per validation (iteration,
   * epoch, val loss), in order; an absent value is an empty field. The rates are replayed from
   * `history.lr` and the decay schedule, as the run applied them.
   */
  logLines(): string[] {
    const addition = this.options.task === 'addition';
    const lines = [addition ? LOG_HEADER_ADDITION : LOG_HEADER];
    const { train, val, lr } = this.history;
    const accuracy = new Map((this.history.accuracy ?? []).map(([it, c, n]) => [it, [c, n]]));
    const bpe = this.batchesPerEpoch;
    const o = this.options;
    let rate = lr.length > 0 ? lr[0][1] : o.learningRate;
    let nextLr = 1;
    let v = 0;
    const valRows = (upTo: number) => {
      for (; v < val.length && val[v][0] <= upTo; v++) {
        const acc = addition ? (accuracy.get(val[v][0]) ?? [null, null]) : undefined;
        lines.push(logRow(val[v][0], val[v][0] / bpe, null, val[v][1], null, acc));
      }
    };
    for (const [it, loss] of train) {
      valRows(it - 1);
      // A rate set at iteration k applies from step k + 1 on.
      for (; nextLr < lr.length && lr[nextLr][0] < it; nextLr++) rate = lr[nextLr][1];
      lines.push(logRow(it, it / bpe, loss, null, rate, addition ? [null, null] : undefined));
      if (it % bpe === 0 && o.learningRateDecay < 1 && it / bpe >= o.learningRateDecayAfter) rate *= o.learningRateDecay;
    }
    valRows(Infinity);
    return lines;
  }

  /**
   * {@link run}, but returning to the event loop between steps and between validation batches,
   * so that signal handlers and timers run (e.g. a Ctrl-C handler that makes
   * `hooks.shouldStop` return true).
   */
  async runAsync(hooks: RunHooks = {}): Promise<RunOutcome> {
    if (this.platform.threadsStartAsync && this.threads > 1) {
      try {
        await this.startThreads();
      } catch (e) {
        if (!(e instanceof WorkerError)) throw e;
        return this.workerFailed(e);
      }
    }
    const it = this.runSteps(hooks);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
      await nextTurn();
    }
  }

  /**
   * Creates the checkpoint directory and writes (then removes) a full-size checkpoint of the
   * current state there, so that an unwritable directory or a disk too full for one checkpoint
   * shows up now rather than after hours of training. {@link run} does this first unless it was
   * done for the same directory.
   *
   * @throws CheckpointDirError
   */
  checkCheckpointDir(): void {
    this.store.prepare(this.options.checkpointDir, this.checkpointBytes());
    this.checkedDir = this.options.checkpointDir;
  }

  private checkedDir: string | null = null;

  /**
   * The checkpoint of the current state, as bytes (what saveCheckpoint writes, resumable): e.g.
   * for a download in a browser, `new Blob([trainer.checkpointBytes()])`.
   */
  checkpointBytes(): Uint8Array {
    return checkpointBytes(this.model, this.vocab, { training: this.trainingState(), optimizer: this.optimizer, carry: this.carry, task: this.taskSpec() });
  }

  private *runSteps(hooks: RunHooks): RunSteps {
    if (this.checkedDir !== this.options.checkpointDir) this.checkCheckpointDir();
    const warn = hooks.onWarning ?? ((m: string) => this.platform.warn(m));
    const logPath = this.logPath;
    const log = logPath === null ? null : this.store.openLog(logPath, this.logLines(), warn);
    try {
      return yield* this.runLoop(hooks, warn, log);
    } catch (e) {
      if (!(e instanceof WorkerError)) throw e;
      return this.workerFailed(e);
    } finally {
      this.close();
      log?.close();
    }
  }

  /** The outcome of a run stopped by a worker thread's failure: the last good checkpoint (the step it was in changed nothing). */
  private workerFailed(e: WorkerError): RunOutcome {
    return {
      status: 'failed',
      iteration: this.iteration,
      checkpoint: this.lastCheckpoint,
      message:
        `training stopped at iteration ${this.iteration}: ${e.message}; ` +
        (this.lastCheckpoint
          ? `the last good checkpoint is ${this.lastCheckpoint}: continue with --resume ${this.lastCheckpoint} (--threads 1 if it happens again)`
          : this.iteration > 0
            ? 'no checkpoint was written since this run resumed: resume again from the one it resumed from (--threads 1 if it happens again)'
            : 'no checkpoint was written in this run; start again (--threads 1 if it happens again)'),
    };
  }

  private *runLoop(hooks: RunHooks, warn: (message: string) => void, log: { append(line: string): void } | null): RunSteps {
    const stop = () => hooks.shouldStop?.() === true;
    const total = this.totalIterations;
    let savedAt = -1; // the iteration of the last checkpoint written by this run
    const save = (tag: number | string): string | RunOutcome => {
      let path: string;
      try {
        path = this.saveCheckpoint(tag, warn);
      } catch (e) {
        const why = (e as Error).message;
        return {
          status: 'failed',
          iteration: this.iteration,
          checkpoint: this.lastCheckpoint,
          message:
            `training stopped at iteration ${this.iteration}: ${why}; ` +
            (this.lastCheckpoint
              ? `the last checkpoint written, ${this.lastCheckpoint}, is intact: fix the problem and continue with --resume ${this.lastCheckpoint}`
              : 'no checkpoint was written in this run; fix the problem and start again'),
        };
      }
      savedAt = this.iteration;
      hooks.onCheckpoint?.(path);
      return path;
    };
    const stopped = (): RunOutcome => {
      if (savedAt === this.iteration && this.lastCheckpoint) return { status: 'stopped', checkpoint: this.lastCheckpoint };
      const path = save('interrupted');
      return typeof path === 'string' ? { status: 'stopped', checkpoint: path } : path;
    };
    const diverged = (iteration: number, loss: number, message: string): RunOutcome => ({
      status: 'diverged',
      iteration,
      loss,
      checkpoint: this.lastCheckpoint,
      message,
    });
    /** Validation and a checkpoint; a RunOutcome when the run must end, else the val loss. */
    const validate = function* (this: Trainer): Generator<void, RunOutcome | number, void> {
      const t0 = performance.now();
      const valLoss = yield* this.evaluateSteps('val', stop, hooks.onEvalProgress);
      if (valLoss === null) return stopped();
      if (!Number.isFinite(valLoss)) {
        return diverged(
          this.iteration,
          valLoss,
          this.divergedMessage(this.iteration, `the validation loss is ${valLoss}`, 'no checkpoint was written for it'),
        );
      }
      this.history.val.push([this.iteration, valLoss]);
      const acc = this.options.task === 'addition' ? this.lastAccuracy : null;
      if (acc) this.history.accuracy!.push([this.iteration, acc.chars, acc.numbers]);
      log?.append(logRow(this.iteration, this.epoch, null, valLoss, null, acc ? [acc.chars, acc.numbers] : undefined));
      if (this.bestValLoss === null || valLoss < this.bestValLoss) this.bestValLoss = valLoss;
      const seconds = (performance.now() - t0) / 1000;
      hooks.onEval?.({ iteration: this.iteration, epoch: this.epoch, valLoss, seconds, ...(acc ? { accuracy: acc } : {}) });
      const path = save(valLoss);
      return typeof path === 'string' ? valLoss : path;
    }.bind(this);

    /** The loss of the validation of `iteration` in the history, or null. */
    const validatedAt = (iteration: number): number | null => {
      const val = this.history.val;
      for (let i = val.length - 1; i >= 0 && val[i][0] >= iteration; i--) if (val[i][0] === iteration) return val[i][1];
      return null;
    };
    /**
     * The checkpoint of the current state for an outcome without a new validation (a resumed run
     * already at its end, or that already met its --patience): the file of this iteration this
     * run wrote, if it is still there (its validation's rather than an interrupted one), else a
     * new one tagged `tag`.
     */
    const current = (tag: number | string): string | RunOutcome => {
      if (savedAt === this.iteration && this.lastCheckpoint) return this.lastCheckpoint;
      const dir = this.options.checkpointDir;
      const here = this.checkpoints.filter((r) => r.iteration === this.iteration && this.store.exists(this.platform.join(dir, r.name)));
      const r = here.find((c) => c.valLoss !== null) ?? here.at(-1);
      if (r) return (this.lastCheckpoint = this.platform.join(dir, r.name));
      return save(tag);
    };
    if (this.iteration > 0 && this.iteration < total) {
      // Resumed at a validation point without its validation (a stop during it drops it): that
      // validation and its checkpoint come first, as in the run that did not stop.
      let validated = false;
      if (this.iteration % this.options.evalValEvery === 0 && validatedAt(this.iteration) === null) {
        const r = yield* validate();
        if (typeof r !== 'number') return r;
        validated = true;
      }
      // Resumed with its --patience already met (it stopped early; resumed with the same or a
      // lower --patience): it stops at once.
      const patience = this.options.patience;
      if (patience > 0 && this.validationsSinceBest >= patience) {
        const [at, valLoss] = this.history.val.at(-1)!;
        const path = current(at === this.iteration ? valLoss : 'interrupted');
        if (typeof path !== 'string') return path;
        return { status: 'done', checkpoint: path, valLoss, earlyStop: this.earlyStop(patience, !validated) };
      }
    }

    while (this.iteration < total) {
      yield;
      if (stop()) return stopped();
      let s: StepResult;
      const rate = this.optimizer.learningRate; // this step's (a decay after it changes the rate)
      try {
        s = this.step();
      } catch (e) {
        if (e instanceof TrainingDivergedError) return diverged(e.iteration, e.loss, e.message);
        throw e;
      }
      log?.append(logRow(s.iteration, s.epoch, s.loss, null, rate, this.options.task === 'addition' ? [null, null] : undefined));
      hooks.onStep?.(s);
      const firstLoss = this.history.train[0][1];
      if (s.loss > 3 * firstLoss) {
        return diverged(
          s.iteration,
          s.loss,
          this.divergedMessage(s.iteration, `the loss ${s.loss} exceeds 3× the first loss (${firstLoss.toFixed(4)})`, 'this step was applied'),
        );
      }
      if (this.iteration % this.options.evalValEvery === 0 || this.iteration === total) {
        const r = yield* validate();
        if (typeof r !== 'number') return r;
        if (this.iteration === total) return { status: 'done', checkpoint: this.lastCheckpoint!, valLoss: r };
        const patience = this.options.patience;
        if (patience > 0 && this.validationsSinceBest >= patience) {
          return { status: 'done', checkpoint: this.lastCheckpoint!, valLoss: r, earlyStop: this.earlyStop(patience) };
        }
      }
    }
    // Already at the end (resumed from the final checkpoint, or with a lower --max-steps): done
    // with this iteration's validation and checkpoint; the validation only if there was none
    // (never two of one iteration), the checkpoint written again only if its file is gone.
    const done = validatedAt(this.iteration);
    if (done !== null) {
      const path = current(done);
      return typeof path === 'string' ? { status: 'done', checkpoint: path, valLoss: done } : path;
    }
    const r = yield* validate();
    if (typeof r !== 'number') return r;
    return { status: 'done', checkpoint: this.lastCheckpoint!, valLoss: r };
  }
}

/**
 * The records --keep keeps of `written` (oldest first; the last is the file just written, always
 * kept): all; the last N; or the lowest validation loss (the first such) and the newest.
 */
export function keptCheckpoints(written: CheckpointRecord[], keep: KeepPolicy): CheckpointRecord[] {
  if (keep === 'all') return written;
  if (keep === 'best') {
    let best: CheckpointRecord | null = null;
    for (const r of written) if (r.valLoss !== null && (best === null || r.valLoss < best.valLoss!)) best = r;
    return written.filter((r, i) => r === best || i === written.length - 1);
  }
  return written.slice(-keepCount(keep)!);
}

/** N of 'last-N', else null. */
function keepCount(keep: string): number | null {
  const m = /^last-([1-9]\d*)$/.exec(keep);
  return m ? Number(m[1]) : null;
}

/** The loss log's header: the columns of {@link Trainer.logLines}. */
export const LOG_HEADER = 'iteration,epoch,train_loss,val_loss,learning_rate';

/** The addition task's: two more columns, the validation's accuracy (fractions) of the answers' characters and numbers. */
export const LOG_HEADER_ADDITION = `${LOG_HEADER},val_char_accuracy,val_number_accuracy`;

/** One line of the loss log; numbers as JavaScript writes them (they read back exactly), null as an empty field. */
function logRow(
  iteration: number,
  epoch: number,
  train: number | null,
  val: number | null,
  rate: number | null,
  accuracy?: (number | null)[],
): string {
  return [iteration, epoch, train, val, rate, ...(accuracy ?? [])].map((v) => (v === null ? '' : String(v))).join(',');
}

/** True when two vocabularies have the same characters in the same order. */
function sameVocab(a: Vocab, b: Vocab): boolean {
  return a === b || (a.chars.length === b.chars.length && a.chars.every((c, i) => c === b.chars[i]));
}

/** Parameter count of a model, computed without building its layout (which is O(layers)). */
function parameterCount(o: Pick<TrainOptions, 'model' | 'rnnSize' | 'numLayers' | 'tieWeights'>, V: number): number {
  const N = o.rnnSize;
  const G = cellOf(o.model).blocks.length; // 4 (LSTMs), 3 (gru), 1 (rnn)
  const cell = 2 * (G * N * N + G * N); // one cell's two linear maps
  const perLayer = o.model === 'grid_lstm' && !o.tieWeights ? 2 * cell : cell;
  const shared = o.model === 'grid_lstm' && o.tieWeights ? cell : 0;
  return 2 * V * N + V + o.numLayers * perLayer + shared;
}

/** "1.5 GB" */
function gigabytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toPrecision(3)} GB` : `${Math.ceil(bytes / 1e6)} MB`;
}

/** Largest parameter count: one typed array holds at most 2^32 elements. */
const MAX_PARAMETERS = 2 ** 32;

/**
 * Rejects a model or batch shape that cannot fit in this machine's memory (`total`; Node's
 * checkTrainingFits, src/train/train.ts, defaults it to os.totalmem()), before anything is allocated: a huge allocation would otherwise fail with an
 * obscure RangeError, or get the process killed when the memory is touched. `chars`: the length
 * of the training text (its ids are kept in memory too). `limit`: what limits `total`, for the
 * message (TrainerPlatform.memoryLimit; default "this machine has N GB").
 */
export function checkTrainingFits(o: TrainOptions, V: number, chars: number, kernels: Kernels | undefined, total: number, limit?: string): void {
  const P = parameterCount(o, V);
  const bytesPer = kernels?.dtype === 'float64' ? 8 : 4;
  const shape = `--rnn-size ${o.rnnSize} with --num-layers ${o.numLayers} and a vocabulary of ${V}`;
  if (P > MAX_PARAMETERS) {
    throw new Error(`${shape} makes ${P.toExponential(2)} parameters, more than one buffer can hold (2^32); lower --rnn-size or --num-layers`);
  }
  const optimBuffers = o.optim === 'adam' ? 2 : o.optim === 'rmsprop' ? 1 : 0;
  const M = o.batchSize * o.seqLength;
  const N = o.rnnSize;
  // The WASM kernels also keep packed copies of the weight matrices (at most 3 layouts each,
  // reused from pass to pass) and of a layer's input for its weight gradients ([B·T, N]).
  const packed = kernels === undefined || kernels.name.startsWith('wasm') ? 3 * P + M * 8 * Math.ceil(N / 8) : 0;
  // The model's first-layer tables and their gradient (at most 3 × [V, 4N]), with any kernels.
  const tables = 12 * V * N;
  // weights, gradients, optimiser state; the activations kept for the backward pass (about
  // 19 [B·T, N] buffers per layer with dropout, 10 more, and the [B·T, V] logits); the ids.
  const bytes = bytesPer * (P * (2 + optimBuffers) + packed + tables + M * (N * (19 * o.numLayers + 10) + V)) + 4 * chars;
  if (bytes > total) {
    throw new Error(
      `training ${shape}, batches of --batch-size ${o.batchSize} × --seq-length ${o.seqLength}, needs about ${gigabytes(bytes)} of memory ` +
        `but ${limit ?? `this machine has ${gigabytes(total)}`}; lower --rnn-size, --num-layers, --batch-size or --seq-length`,
    );
  }
}

/** A new model of the run's shape, initialised from options.seed (see buildModel). */
function freshModel(options: TrainOptions, V: number, kernels: Kernels | undefined): Model {
  const { model, rnnSize, numLayers, tieWeights, dropout } = options;
  return buildModel(() => new Model({ model, vocabSize: V, rnnSize, numLayers, tieWeights, dropout }, { kernels, seed: options.seed }), options, V);
}

/** Builds a model, turning an allocation failure into a one-line error that says what to lower. */
function buildModel(make: () => Model, o: TrainOptions, V: number): Model {
  try {
    return make();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new Error(
      `not enough memory for a model of ${parameterCount(o, V).toLocaleString('en-US')} parameters (${(e as Error).message}); ` +
        'lower --rnn-size or --num-layers',
    );
  }
}

/** The checkpoint directory cannot be created or written (found before training starts). */
export class CheckpointDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointDirError';
  }
}

/** The addition spec of options (task 'addition'), checked: a one-line error for a bad --digit-length or a short --seq-length. */
function additionSpec(o: TrainOptions): AdditionSpec {
  const spec = { digitLength: o.digitLength, seqLength: o.seqLength };
  checkAdditionSpec(spec);
  return spec;
}

/**
 * The options of a new run from the weights of `ck` (char-rnn's -init_from), from `options` of
 * which `given` names those the user set: the checkpoint's task (for addition its --digit-length,
 * and its --seq-length unless given) and its model shape (--model, --rnn-size, --num-layers, and a
 * grid_lstm's --tie-weights) replace those not given. One given that differs from the checkpoint
 * is a one-line error, checked before anything else: a run from these weights has their task and
 * shape.
 */
export function initFromOptions(ck: CheckpointContents, options: TrainOptions, given: ReadonlySet<string>): TrainOptions {
  const task = ck.task ?? { kind: 'char' };
  const what = task.kind === 'char' ? '--task char' : `--task addition --digit-length ${task.digitLength}`;
  const clash = (flag: string) => new Error(`the --init-from checkpoint is of ${what}; drop ${flag}, or start a new run without --init-from`);
  if (given.has('task') && options.task !== task.kind) throw clash(`--task ${options.task}`);
  const o = { ...options, task: task.kind };
  if (task.kind === 'addition') {
    if (given.has('digitLength') && options.digitLength !== task.digitLength) throw clash(`--digit-length ${options.digitLength}`);
    o.digitLength = task.digitLength;
    if (!given.has('seqLength')) o.seqLength = task.seqLength;
  }
  const c = ck.model.config;
  const shape = `a ${c.model} of ${c.numLayers} layer${c.numLayers === 1 ? '' : 's'} × ${c.rnnSize}${c.model === 'grid_lstm' ? (c.tieWeights ? ', tied' : ', untied') : ''}`;
  const fixed: [keyof TrainOptions, string | number | boolean][] = [['model', c.model], ['rnnSize', c.rnnSize], ['numLayers', c.numLayers]];
  if (c.model === 'grid_lstm') fixed.push(['tieWeights', c.tieWeights]);
  for (const [key, value] of fixed) {
    if (given.has(key) && options[key] !== value) {
      const flag = typeof value === 'boolean' ? (options[key] ? optionFlag(key) : `--no-${optionFlag(key).slice(2)}`) : `${optionFlag(key)} ${options[key]}`;
      throw new Error(`the --init-from checkpoint is ${shape}; drop ${flag} (a run from its weights keeps its shape), or start a new run without --init-from`);
    }
  }
  return { ...o, model: c.model, rnnSize: c.rnnSize, numLayers: c.numLayers, tieWeights: c.tieWeights };
}

/** An --init-from checkpoint must be of the run's task (and, for addition, its --digit-length). */
function checkInitFromTask(ck: CheckpointContents | undefined, o: TrainOptions): void {
  if (!ck) return;
  const task = ck.task ?? { kind: 'char' };
  const same = task.kind === o.task && (task.kind === 'char' || task.digitLength === o.digitLength);
  if (same) return;
  const what = task.kind === 'char' ? '--task char' : `--task addition --digit-length ${task.digitLength}`;
  throw new Error(`the --init-from checkpoint is of ${what}; train it on the same task, or start a new run without --init-from`);
}

/** How errors name the training text: `--data FILE`, or the built-in corpus. */
function dataLabel(o: TrainOptions): string {
  return o.data === null ? 'the built-in corpus' : `--data ${o.data}`;
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
  if (!MODEL_KINDS.includes(o.model)) throw new Error(`--model must be one of ${MODEL_KINDS.join(', ')}, got ${o.model}`);
  if (o.task !== 'char' && o.task !== 'addition') throw new Error(`--task must be char or addition, got ${JSON.stringify(o.task)}`);
  if (o.task === 'addition') additionSpec(o);
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
  if (o.encoding !== 'utf8' && o.encoding !== 'latin1') throw new Error(`--encoding must be utf8 or latin1, got ${o.encoding}`);
  if (!['rmsprop', 'adam', 'sgd'].includes(o.optim)) throw new Error(`--optim must be rmsprop, adam or sgd, got ${o.optim}`);
  if (o.keep !== 'all' && o.keep !== 'best' && (typeof o.keep !== 'string' || keepCount(o.keep) === null)) {
    throw new Error(`--keep must be all, best or last-N with N ≥ 1, got ${JSON.stringify(o.keep)}`);
  }
  num('patience', (v) => Number.isInteger(v) && v >= 0, 'a whole number ≥ 0 (0: never stop early)');
  if (o.log !== 'csv' && o.log !== 'none') throw new Error(`--log must be csv or none, got ${JSON.stringify(o.log)}`);
  num('threads', (v) => Number.isInteger(v) && v >= 1 && v <= 256, 'a whole number from 1 to 256');
}

