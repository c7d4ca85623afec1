/** grid-lstm train: char-rnn's train.lua. */
import type { Corpus } from '../train/data.js';
import { MODEL_KINDS, paramCount } from '../nn/params.js';
import {
  DEFAULT_TRAIN_OPTIONS,
  type RunOutcome,
  type TrainOptions,
  CheckpointDirError,
  Trainer,
  initFromOptions,
  prepareCheckpointDir,
  validateTrainOptions,
} from '../train/train.js';
import { COMMON, type OptSpec, UsageError, makeKernels, parseArgs } from './args.js';
import { commandLine } from './command.js';
import { checkpointFile, loadCk, readData } from './files.js';
import { TrainingDisplay } from './progress.js';
import { startedByNpm, stopExitCode, stopRequests } from './stop.js';
import { defaultThreads } from '../parallel/node.js';

export const D = DEFAULT_TRAIN_OPTIONS;
export const TRAIN_OPTS: OptSpec[] = [
  { key: 'data', kind: 'string', arg: 'FILE', help: 'UTF-8 text to train on (default: the built-in State of the Union corpus)' },
  {
    key: 'task',
    kind: 'choice',
    choices: ['char', 'addition'],
    default: D.task,
    help: 'char: the next character of a text; addition: sums a+b= of --digit-length-digit numbers generated from --seed, the answer reversed (no --data)',
  },
  { key: 'digitLength', kind: 'int', arg: 'D', default: D.digitLength, help: '--task addition: digits of each number; --seq-length must be at least 3D+3' },
  { key: 'encoding', kind: 'choice', choices: ['utf8', 'latin1'], default: 'utf8', help: 'how to read --data: utf8, or latin1 (each byte one character)' },
  {
    key: 'model',
    kind: 'choice',
    choices: [...MODEL_KINDS],
    default: D.model,
    help: 'grid_lstm (2D Grid LSTM), or a stack of lstm, gru or rnn cells (docs/models.md)',
  },
  { key: 'rnnSize', kind: 'int', arg: 'N', default: D.rnnSize, help: "hidden units per layer (the size of h, and of an LSTM's c)" },
  { key: 'numLayers', kind: 'int', arg: 'L', default: D.numLayers, help: 'number of layers' },
  { key: 'tieWeights', kind: 'bool', default: D.tieWeights, help: 'grid_lstm: share the depth LSTM weights across layers' },
  { key: 'dropout', kind: 'number', arg: 'P', default: D.dropout, help: 'dropout on non-recurrent connections, in [0, 1)' },
  { key: 'optim', kind: 'choice', choices: ['rmsprop', 'adam', 'sgd'], default: D.optim, help: 'optimiser' },
  { key: 'learningRate', kind: 'number', arg: 'LR', default: D.learningRate, help: 'learning rate' },
  { key: 'learningRateDecay', kind: 'number', arg: 'X', default: D.learningRateDecay, help: 'learning rate × this after each epoch' },
  { key: 'learningRateDecayAfter', kind: 'number', arg: 'E', default: D.learningRateDecayAfter, help: 'start decaying after this many epochs' },
  { key: 'decayRate', kind: 'number', arg: 'A', default: D.decayRate, help: "RMSprop's decay rate α" },
  { key: 'seqLength', kind: 'int', arg: 'T', default: D.seqLength, help: 'time steps per batch (truncated BPTT length)' },
  { key: 'batchSize', kind: 'int', arg: 'B', default: D.batchSize, help: 'sequences per batch' },
  { key: 'maxEpochs', kind: 'number', arg: 'E', default: D.maxEpochs, help: 'epochs to train' },
  { key: 'maxSteps', kind: 'int', arg: 'S', help: 'stop after this many iterations in all (counted from the start of the run)' },
  { key: 'gradClip', kind: 'number', arg: 'C', default: D.gradClip, help: 'clamp each gradient element to [-C, C]; 0 disables' },
  { key: 'trainFrac', kind: 'number', arg: 'F', default: D.trainFrac, help: 'fraction of batches for training' },
  { key: 'valFrac', kind: 'number', arg: 'F', default: D.valFrac, help: 'fraction of batches for validation (the rest: test)' },
  { key: 'initFrom', kind: 'string', arg: 'CK', help: 'start from the weights of this checkpoint (new run)' },
  { key: 'resume', kind: 'string', arg: 'CK', help: 'continue the run saved in this checkpoint exactly' },
  { key: 'seed', kind: 'int', default: D.seed, help: 'random seed' },
  { key: 'printEvery', kind: 'int', arg: 'K', default: D.printEvery, help: 'print every K iterations' },
  { key: 'evalValEvery', kind: 'int', arg: 'K', default: D.evalValEvery, help: 'validate and checkpoint every K iterations' },
  { key: 'checkpointDir', kind: 'string', arg: 'DIR', default: D.checkpointDir, help: 'where checkpoints go' },
  { key: 'savefile', kind: 'string', arg: 'NAME', help: 'checkpoint name stem (default: the model kind)' },
  {
    key: 'keep',
    kind: 'string',
    arg: 'WHICH',
    default: D.keep,
    help: "checkpoints to keep: all, best (the lowest val loss, and the newest to resume from), or last-N (the N newest); only this run's files are deleted",
  },
  { key: 'patience', kind: 'int', arg: 'K', default: D.patience, help: 'stop early after K validations without a new best val loss; 0: never' },
  { key: 'log', kind: 'choice', choices: ['csv', 'none'], default: D.log, help: 'write the loss history to DIR/<savefile>.log.csv as the run goes (csv), or not (none)' },
  {
    key: 'threads',
    kind: 'int',
    arg: 'N',
    help:
      'threads that train and validate, the B streams split across them (default: the cores, at most 8 and at most B; 1 for a very small model; --resume: the run\'s own). ' +
      'A run is bit-identical for a given N; other Ns agree up to float rounding',
  },
  ...COMMON,
];
export async function cmdTrain(argv: string[]): Promise<number> {
  const { opts, given } = parseArgs('train', argv, TRAIN_OPTS, []);
  if (opts.initFrom !== undefined && opts.resume !== undefined) throw new UsageError('use either --init-from or --resume, not both');
  const savefile = opts.savefile as string | undefined;
  if (savefile !== undefined && (savefile === '' || /[\\/\0]/.test(savefile) || savefile.startsWith('.'))) {
    throw new UsageError(`--savefile must be a plain file name stem (no / or \\, not starting with .), got ${JSON.stringify(savefile)}; choose the directory with --checkpoint-dir`);
  }
  const kernels = makeKernels(opts.kernels);
  const toTrain = (o: Record<string, unknown>): TrainOptions => {
    const t = { ...DEFAULT_TRAIN_OPTIONS } as unknown as Record<string, unknown>;
    for (const k of Object.keys(DEFAULT_TRAIN_OPTIONS)) if (o[k] !== undefined) t[k] = o[k];
    return t as unknown as TrainOptions;
  };
  const err = (s: string) => process.stderr.write(s + '\n');
  /** Runs `f`, turning any error into a UsageError (a problem with the input: exit code 2). */
  const asUsage = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError((e as Error).message);
    }
  };
  let trainer: Trainer;
  let encoding: 'utf8' | 'latin1';
  const notes: string[] = []; // printed once the run is sure to start
  if (opts.resume !== undefined) {
    const ckPath = checkpointFile(opts.resume as string);
    const ck = loadCk(ckPath, kernels);
    const saved = (ck.training?.options ?? {}) as Record<string, unknown>;
    const addition = ck.task.kind === 'addition';
    checkDigitLength(ck.task.kind, given, 'resume');
    if (addition && opts.data !== undefined) throw new UsageError('--task addition generates its sums from the seed; drop --data');
    const dir = given.has('checkpointDir') ? (opts.checkpointDir as string) : typeof saved.checkpointDir === 'string' ? saved.checkpointDir : (opts.checkpointDir as string);
    asUsage(() => prepareCheckpointDir(dir));
    const dataPath = (opts.data as string | undefined) ?? (typeof saved.data === 'string' ? saved.data : undefined);
    encoding = given.has('encoding') || (saved.encoding !== 'utf8' && saved.encoding !== 'latin1') ? (opts.encoding as 'utf8' | 'latin1') : saved.encoding;
    let corpus: (Corpus & { report: string }) | null = null;
    try {
      if (!addition) corpus = readData(dataPath, encoding, ck.vocab);
    } catch (e) {
      const hint = opts.data === undefined && dataPath !== undefined ? ` (the run's --data, recorded in ${ckPath}; pass --data to say where it is now)` : '';
      throw new UsageError(`${(e as Error).message}${hint}`);
    }
    const changes: Record<string, unknown> = {};
    for (const k of given) if (k in DEFAULT_TRAIN_OPTIONS) changes[k] = opts[k];
    // The reference kernels run on one thread (a run trained on more goes on with one).
    if (!given.has('threads') && kernels.name === 'ts') changes.threads = 1;
    trainer = asUsage(() => Trainer.resume(corpus, ck, changes as Partial<TrainOptions>));
    notes.push(corpus?.report ?? additionReport(trainer), `resuming ${ckPath} at iteration ${trainer.iteration} (epoch ${trainer.epoch.toFixed(2)})`);
    const lr = trainer.learningRateChange;
    // Two lines, each within 79 columns with ordinary rates and iterations.
    if (lr) {
      notes.push(
        `learning rate: ${lr.from} → ${lr.to} from iteration ${lr.iteration + 1} on, optimiser state kept;`,
        "later decays apply to the new rate; the checkpoints' history records it",
      );
    }
    const th = trainer.threadsChange;
    if (th) notes.push(`threads: ${th.from} → ${th.to}; the continuation equals the run's up to float rounding,`, 'no longer bit for bit');
  } else {
    // Everything that can be checked without the data is checked before reading it.
    const initFrom = opts.initFrom !== undefined ? loadCk(opts.initFrom as string) : undefined;
    // --init-from: the checkpoint's task and shape, first (an option given that differs: an error).
    const options = initFrom ? asUsage(() => initFromOptions(initFrom, toTrain(opts), given)) : toTrain(opts);
    checkDigitLength(options.task, given, initFrom ? 'init-from' : 'default');
    if (options.task === 'addition' && opts.data !== undefined) {
      const why = initFrom && !given.has('task') ? 'the --init-from checkpoint is of --task addition, whose sums are generated' : '--task addition generates its sums';
      throw new UsageError(`${why} from --seed; drop --data`);
    }
    if (!given.has('threads')) options.threads = kernels.name === 'ts' ? 1 : defaultThreads(options);
    asUsage(() => validateTrainOptions(options));
    asUsage(() => prepareCheckpointDir(options.checkpointDir));
    encoding = opts.encoding as 'utf8' | 'latin1';
    if (options.task === 'addition') {
      trainer = asUsage(() => Trainer.addition(options, { kernels, initFrom }));
      notes.push(additionReport(trainer));
    } else {
      const dataPath = opts.data as string | undefined;
      const corpus = readData(dataPath, encoding, initFrom?.vocab);
      trainer = asUsage(() => Trainer.fromCorpus(corpus, options, { kernels, initFrom }));
      notes.push(corpus.report);
    }
    if (initFrom?.note) notes.push(initFrom.note);
  }
  // Room for a checkpoint, before anything is printed (an error here stays a single line).
  asUsage(() => trainer.checkCheckpointDir());
  for (const n of notes) err(n);
  for (const w of trainer.loader.warnings) err(`warning: ${w}`);

  const o = trainer.options;
  const m = trainer.model;
  // Two lines, each short enough for an 80-column terminal.
  err(
    `${o.model} ${o.numLayers}×${o.rnnSize}${o.model === 'grid_lstm' ? (o.tieWeights ? ' tied' : ' untied') : ''}, ` +
      `${paramCount(m.config).toLocaleString('en-US')} parameters, vocabulary ${m.config.vocabSize}`,
  );
  const batches =
    o.task === 'addition'
      ? `${trainer.loader.splitSizes.train} batches an epoch, ${trainer.loader.splitSizes.val} val batches of ${o.batchSize}×${o.seqLength}`
      : `${trainer.loader.splitSizes.train}/${trainer.loader.splitSizes.val}/${trainer.loader.splitSizes.test} train/val/test batches of ${o.batchSize}×${o.seqLength}`;
  const kernelsLine = `kernels ${m.kernels.name}, ${trainer.threads} thread${trainer.threads === 1 ? '' : 's'}`;
  // The kernels beside the batches when both fit in 79 columns, else on a line of their own.
  if (batches.length + 2 + kernelsLine.length <= 79) err(`${batches}, ${kernelsLine}`);
  else err(`${batches}\n${kernelsLine}`);

  // What the run shows (a line fitted to the terminal, or char-rnn's plain lines): progress.ts.
  const display = new TrainingDisplay(process.stderr, {
    printEvery: o.printEvery,
    charsPerBatch: o.batchSize * o.seqLength,
    evalValEvery: o.evalValEvery,
    total: trainer.totalIterations,
    valBatches: trainer.loader.splitSizes.val,
  });
  // Ctrl-C, SIGTERM, or the npm that started this run gone (stop.ts): the run stops after the
  // current step (or validation batch) with a checkpoint of the last completed step.
  const stop = stopRequests((why) => {
    const what = why === 'parent-exit' ? "the run's npm exited" : why;
    // Two lines within 79 columns: what happens, then how to quit at once instead.
    display.note(`${what}: saving a checkpoint after this step, then stopping\n(Ctrl-\\ quits at once without saving)`);
  }, startedByNpm());
  let outcome: RunOutcome;
  try {
    outcome = await trainer.runAsync({
      onStep: (s) => display.step(s),
      onEvalProgress: (done, total) => display.validationProgress(done, total),
      onEval: (e) => display.validated(e),
      onCheckpoint: (p) => display.note(`saved checkpoint ${p}`),
      onWarning: (w) => display.note(`warning: ${w}`),
      shouldStop: () => stop.reason() !== null,
    });
  } catch (e) {
    if (e instanceof CheckpointDirError) throw new UsageError(e.message);
    if (e instanceof RangeError && /allocat|Invalid typed array length|Array buffer/i.test(e.message)) {
      throw new Error(`out of memory (${e.message}); lower --batch-size, --seq-length or --rnn-size`);
    }
    throw e;
  } finally {
    stop.dispose();
    display.close();
  }
  if (outcome.status === 'diverged' || outcome.status === 'failed') {
    err(`grid-lstm: error: ${outcome.message}`);
    return 1;
  }
  if (outcome.status === 'stopped') {
    const why = stop.reason();
    const by = why === 'parent-exit' ? 'the exit of npm' : (why ?? 'request');
    // The command as this run was started (npx grid-lstm, node dist/cli.js, ...): it runs as printed.
    err(`stopped by ${by} at iteration ${trainer.iteration}; resume with: ${commandLine('train', '--resume', outcome.checkpoint)}`);
    return stopExitCode(why);
  }
  const early = outcome.earlyStop;
  if (early) {
    // The outcome, then the checkpoint on a line of its own (a path can be long).
    // The validations counted (more than --patience when it was lowered on resume).
    const n = early.validations;
    const what = `no improvement in ${n} validation${n === 1 ? '' : 's'} (best ${early.bestValLoss.toFixed(4)} at iteration ${early.bestIteration})`;
    err(early.alreadyMet ? `already stopped early: ${what}` : `stopped early: ${what}`);
    err(early.bestCheckpoint ? `checkpoint: ${early.bestCheckpoint}` : `checkpoint: ${outcome.checkpoint} (the last; the best's was not kept)`);
    // Resumed with its --patience already met: nothing was trained; say how to go on.
    if (early.alreadyMet) err(`to train on, resume with --patience ${n + 1} or more, or --patience 0 (never stop early)`);
    return 0;
  }
  // The accuracy of the validation reported: this process's, or (a resumed run already at its
  // end validates nothing) the last one of the history.
  const sumsRight = trainer.lastAccuracy?.numbers ?? trainer.history.accuracy?.at(-1)?.[2];
  err(`done: val_loss = ${outcome.valLoss.toFixed(4)} nats/char${sumsRight !== undefined ? `, ${percent(sumsRight)} of the sums right` : ''}`);
  err(`checkpoint: ${outcome.checkpoint}`);
  return 0;
}

/**
 * --digit-length given for a run of --task char (`from`: where that task comes from when not
 * from --task: 'default', 'init-from', 'resume'): a usage error.
 */
function checkDigitLength(task: TrainOptions['task'], given: ReadonlySet<string>, from: 'default' | 'init-from' | 'resume'): void {
  if (task !== 'char' || !given.has('digitLength')) return;
  if (given.has('task')) throw new UsageError('--digit-length is for --task addition, not --task char; drop --digit-length');
  if (from === 'default') throw new UsageError('--digit-length is for --task addition (the default task is char); add --task addition, or drop --digit-length');
  const whose = from === 'init-from' ? 'the --init-from checkpoint' : 'the resumed run';
  throw new UsageError(`--digit-length is for --task addition, and ${whose} is of --task char; drop --digit-length`);
}

/** The line that says what an addition run trains on (instead of the corpus report). */
function additionReport(trainer: Trainer): string {
  const a = trainer.addition!;
  const pad = a.seqLength - (3 * a.digitLength + 3);
  return (
    `addition of ${a.digitLength}-digit numbers, generated from --seed ${trainer.options.seed}: ` +
    `"a+b=" and the reversed answer${pad > 0 ? `, ${pad} spaces in front` : ''}`
  );
}

/** 0.4567 → "45.7%" */
export function percent(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
