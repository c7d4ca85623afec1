#!/usr/bin/env node
/**
 * The grid-lstm command line: a thin layer over the library (src/index.ts).
 *
 *   grid-lstm train [options]            train a model (char-rnn's train.lua)
 *   grid-lstm sample CK [options]        generate text (char-rnn's sample.lua)
 *   grid-lstm eval CK --data FILE        loss of a text in nats and bits per character
 *   grid-lstm inspect CK                 config, size and progress of a checkpoint
 *   grid-lstm viz CK --data FILE         an HTML report of what the model's units do over a text
 *
 * Exit codes: 0 success, 2 a usage or input error, 1 a failure at run time, 130/143 when
 * stopped by Ctrl-C / SIGTERM (after saving a checkpoint).
 */
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type CheckpointContents, loadCheckpoint } from './train/checkpoint.js';
import { type Corpus, type Vocab, corpusFromText, loadDefaultCorpus, readCorpus } from './train/data.js';
import { checkPrimetext, evaluateIds, sample } from './infer/generate.js';
import type { Kernels } from './nn/kernels.js';
import { TsKernels } from './nn/kernels.js';
import { loadWasmKernelsSync } from './nn/wasm.js';
import { FONT_FAMILY, type LossRun, type PlotCurves, type PlotTheme, type PlotXAxis, PlotInputError, lossRunFromCheckpoint, plotLossCurves, plotLossCurvesAscii } from './viz/plot.js';
import { paramCount } from './nn/params.js';
import { TRACE_KINDS, type TraceKind } from './infer/trace.js';
import { DEFAULT_REPORT_BITS, DEFAULT_REPORT_KINDS, buildReportData } from './viz/report-data.js';
import { checkOutputPath, writeOutputFile } from './viz/output-file.js';
import { renderReport } from './viz/report.js';
import { describeSystemError } from './train/safetensors.js';
import {
  DEFAULT_TRAIN_OPTIONS,
  type RunOutcome,
  type StepResult,
  type TrainOptions,
  CheckpointDirError,
  Trainer,
  optionFlag,
  prepareCheckpointDir,
  validateTrainOptions,
} from './train/train.js';

/** An error the user can fix: printed as one line, exit code 2. */
class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------
// Option parsing

type Kind = 'int' | 'number' | 'string' | 'bool' | 'choice';
interface OptSpec {
  key: string;
  kind: Kind;
  help: string;
  default?: unknown;
  choices?: string[];
  /** Value name in --help. */
  arg?: string;
}

function parseArgs(command: string, argv: string[], specs: OptSpec[], positionals: string[]): { opts: Record<string, unknown>; pos: string[]; given: Set<string> } {
  const byFlag = new Map(specs.map((s) => [optionFlag(s.key), s]));
  const opts: Record<string, unknown> = {};
  for (const s of specs) opts[s.key] = s.default;
  const given = new Set<string>();
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || a === '--') {
      pos.push(a);
      continue;
    }
    let flag = a;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (eq > 0) {
      flag = a.slice(0, eq);
      value = a.slice(eq + 1);
    }
    let spec = byFlag.get(flag);
    let negated = false;
    if (!spec && flag.startsWith('--no-')) {
      spec = byFlag.get('--' + flag.slice(5));
      negated = spec?.kind === 'bool';
      if (!negated) spec = undefined;
    }
    if (!spec) throw new UsageError(`unknown option ${flag} for 'grid-lstm ${command}'; see grid-lstm ${command} --help`);
    given.add(spec.key);
    if (spec.kind === 'bool') {
      if (value !== undefined) throw new UsageError(`${flag} takes no value`);
      opts[spec.key] = !negated;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value (${spec.arg ?? spec.kind})`);
      value = argv[++i];
    }
    opts[spec.key] = convert(flag, spec, value);
  }
  if (pos.length > positionals.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(pos[positionals.length])} for 'grid-lstm ${command}'; see grid-lstm ${command} --help`);
  }
  return { opts, pos, given };
}

function convert(flag: string, spec: OptSpec, value: string): unknown {
  switch (spec.kind) {
    case 'int': {
      const v = Number(value);
      if (value.trim() === '' || !Number.isInteger(v)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
      if (!Number.isSafeInteger(v)) throw new UsageError(`${flag} must be a whole number between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}, got ${value}`);
      return v;
    }
    case 'number': {
      const v = Number(value);
      if (value.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${flag} must be a number, got ${JSON.stringify(value)}`);
      return v;
    }
    case 'choice':
      if (!spec.choices!.includes(value)) throw new UsageError(`${flag} must be one of ${spec.choices!.join(', ')}, got ${JSON.stringify(value)}`);
      return value;
    default:
      return value;
  }
}

function helpText(usage: string, about: string, specs: OptSpec[]): string {
  const lines = [`usage: ${usage}`, '', about, '', 'options:'];
  for (const s of specs) {
    const flag = s.kind === 'bool' ? `${optionFlag(s.key)}/--no-${optionFlag(s.key).slice(2)}` : `${optionFlag(s.key)} ${s.arg ?? s.kind.toUpperCase()}`;
    const def = s.default === undefined || s.default === null ? '' : ` (default: ${s.default})`;
    lines.push(`  ${flag.padEnd(34)} ${s.help}${def}`);
  }
  lines.push(`  ${'--debug'.padEnd(34)} print stack traces on errors`, `  ${'--help'.padEnd(34)} show this help`);
  return lines.join('\n');
}

const COMMON: OptSpec[] = [
  {
    key: 'kernels',
    kind: 'choice',
    choices: ['wasm', 'wasm-simd', 'ts'],
    default: 'wasm',
    help: 'compute kernels: wasm (WebAssembly, relaxed SIMD where the engine has it), wasm-simd (plain SIMD), ts (the TypeScript reference, slow)',
  },
];

function makeKernels(name: unknown): Kernels {
  if (name === 'ts') return new TsKernels('float32');
  if (name === 'wasm' || name === 'wasm-simd') return loadWasmKernelsSync({ variant: name === 'wasm' ? 'auto' : 'simd' });
  throw new UsageError(`unknown kernels ${String(name)}`);
}

// ---------------------------------------------------------------------------------------------
// train

const D = DEFAULT_TRAIN_OPTIONS;
const TRAIN_OPTS: OptSpec[] = [
  { key: 'data', kind: 'string', arg: 'FILE', help: 'UTF-8 text to train on (default: the built-in State of the Union corpus)' },
  { key: 'encoding', kind: 'choice', choices: ['utf8', 'latin1'], default: 'utf8', help: 'how to read --data: utf8, or latin1 (each byte one character)' },
  { key: 'model', kind: 'choice', choices: ['grid_lstm', 'lstm'], default: D.model, help: 'grid_lstm (2D Grid LSTM) or lstm (stacked LSTM)' },
  { key: 'rnnSize', kind: 'int', arg: 'N', default: D.rnnSize, help: 'hidden units per LSTM' },
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
  ...COMMON,
];

/**
 * The text of --data (or the built-in corpus) as ids: with `vocab` (a checkpoint's) encoded with
 * it, else with its own vocabulary; `report` says "loaded N characters in X s ..." (printed once
 * the run is known to start, so that an input error stays a single line).
 */
function readData(path: string | undefined, encoding: 'utf8' | 'latin1', vocab?: Vocab): Corpus & { report: string } {
  const t0 = performance.now();
  let corpus: Corpus;
  try {
    corpus = path === undefined ? corpusFromText(loadDefaultCorpus(), vocab) : readCorpus(path, { encoding, label: '--data', vocab });
  } catch (e) {
    const message = (e as Error).message;
    throw new UsageError(path === undefined ? `the built-in corpus: ${message}` : message);
  }
  const seconds = (performance.now() - t0) / 1000;
  const report = `loaded ${corpus.ids.length} characters in ${seconds.toFixed(2)} s from ${path ?? 'the built-in corpus'} (vocabulary ${corpus.vocab.chars.length})`;
  return { ...corpus, report };
}

/** A path as a shell word (quoted when it holds anything but safe characters). */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function loadCk(path: string, kernels?: Kernels): CheckpointContents {
  try {
    return loadCheckpoint(checkpointFile(path), { kernels });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message);
  }
}

/** The checkpoint file a CK argument names: itself, or for a directory its newest checkpoint. */
function checkpointFile(path: string): string {
  try {
    if (statSync(path).isDirectory()) return newestCheckpoint(path);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  return path;
}

/** The most recently written .safetensors file in a directory. */
function newestCheckpoint(dir: string): string {
  const files: { f: string; t: number }[] = [];
  for (const name of readdirSync(dir)) {
    // Names starting with "." are never checkpoints (e.g. the temporary files of a write).
    if (!name.endsWith('.safetensors') || name.startsWith('.')) continue;
    try {
      const st = statSync(join(dir, name));
      if (st.isFile()) files.push({ f: join(dir, name), t: st.mtimeMs });
    } catch {
      // removed meanwhile
    }
  }
  if (files.length === 0) throw new UsageError(`${dir} holds no .safetensors checkpoint; train one first or name a checkpoint file`);
  // File times come from a coarse clock (a few ms), so checkpoints written in quick succession
  // can share one: among the newest, take the one furthest into training.
  const newest = Math.max(...files.map((x) => x.t));
  const tied = files.filter((x) => x.t === newest);
  if (tied.length === 1) return tied[0].f;
  return tied.map((x) => ({ f: x.f, i: savedIteration(x.f) })).sort((a, b) => b.i - a.i)[0].f;
}

/** The training iteration recorded in a checkpoint's header, or -1 (read without loading it). */
function savedIteration(path: string): number {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) !== 8) return -1;
    const n = Number(head.readBigUInt64LE(0));
    if (n > 100_000_000) return -1;
    const header = Buffer.alloc(n);
    if (readSync(fd, header, 0, n, 8) !== n) return -1;
    const training = JSON.parse(JSON.parse(header.toString('utf8')).__metadata__.training) as { iteration?: unknown };
    return typeof training.iteration === 'number' ? training.iteration : -1;
  } catch {
    return -1;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

async function cmdTrain(argv: string[]): Promise<number> {
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
    const dir = given.has('checkpointDir') ? (opts.checkpointDir as string) : typeof saved.checkpointDir === 'string' ? saved.checkpointDir : (opts.checkpointDir as string);
    asUsage(() => prepareCheckpointDir(dir));
    const dataPath = (opts.data as string | undefined) ?? (typeof saved.data === 'string' ? saved.data : undefined);
    encoding = given.has('encoding') || (saved.encoding !== 'utf8' && saved.encoding !== 'latin1') ? (opts.encoding as 'utf8' | 'latin1') : saved.encoding;
    let corpus: Corpus & { report: string };
    try {
      corpus = readData(dataPath, encoding, ck.vocab);
    } catch (e) {
      const hint = opts.data === undefined && dataPath !== undefined ? ` (the run's --data, recorded in ${ckPath}; pass --data to say where it is now)` : '';
      throw new UsageError(`${(e as Error).message}${hint}`);
    }
    const changes: Record<string, unknown> = {};
    for (const k of given) if (k in DEFAULT_TRAIN_OPTIONS) changes[k] = opts[k];
    trainer = asUsage(() => Trainer.resume(corpus, ck, changes as Partial<TrainOptions>));
    notes.push(corpus.report, `resuming ${ckPath} at iteration ${trainer.iteration} (epoch ${trainer.epoch.toFixed(2)})`);
  } else {
    // Everything that can be checked without the data is checked before reading it.
    const options = toTrain(opts);
    asUsage(() => validateTrainOptions(options));
    asUsage(() => prepareCheckpointDir(options.checkpointDir));
    const initFrom = opts.initFrom !== undefined ? loadCk(opts.initFrom as string) : undefined;
    encoding = opts.encoding as 'utf8' | 'latin1';
    const dataPath = opts.data as string | undefined;
    const corpus = readData(dataPath, encoding, initFrom?.vocab);
    trainer = asUsage(() => Trainer.fromCorpus(corpus, options, { kernels, initFrom }));
    notes.push(corpus.report);
  }
  // Room for a checkpoint, before anything is printed (an error here stays a single line).
  asUsage(() => trainer.checkCheckpointDir());
  for (const n of notes) err(n);
  for (const w of trainer.loader.warnings) err(`warning: ${w}`);

  const o = trainer.options;
  const m = trainer.model;
  err(
    `${o.model} ${o.numLayers}×${o.rnnSize}${o.model === 'grid_lstm' ? (o.tieWeights ? ' tied' : ' untied') : ''}, ` +
      `${paramCount(m.config).toLocaleString('en-US')} parameters, vocabulary ${m.config.vocabSize}, ` +
      `${trainer.loader.splitSizes.train}/${trainer.loader.splitSizes.val}/${trainer.loader.splitSizes.test} train/val/test batches of ${o.batchSize}×${o.seqLength}, kernels ${m.kernels.name}`,
  );

  const tty = process.stderr.isTTY === true;
  const charsPerBatch = o.batchSize * o.seqLength;
  let avg = 0; // smoothed seconds per step, for the ETA
  // Ctrl-C / SIGTERM: the handler runs between steps (runAsync returns to the event loop there)
  // and asks the run to stop; it then writes a checkpoint of the last completed step. A signal
  // repeated before that is ignored; Ctrl-\ (SIGQUIT) still quits at once without saving.
  let stopSignal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopSignal) return;
    stopSignal = sig;
    err(`${tty ? '\n' : ''}${sig}: saving a checkpoint after this step, then stopping (Ctrl-\\ quits at once without saving)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const line = (s: StepResult) =>
    `${s.iteration}/${s.totalIterations} (epoch ${s.epoch.toFixed(3)}), train_loss = ${s.loss.toFixed(8)}, ` +
    `grad/param norm = ${s.gradParamRatio.toExponential(4)}, time/batch = ${s.seconds.toFixed(4)}s, ` +
    `${Math.round(charsPerBatch / s.seconds)} chars/s`;
  let outcome: RunOutcome;
  try {
    outcome = await trainer.runAsync({
      onStep: (s) => {
        avg = avg === 0 ? s.seconds : 0.9 * avg + 0.1 * s.seconds;
        if (tty) {
          const width = 24;
          const done = Math.round((width * s.iteration) / s.totalIterations);
          const bar = '='.repeat(done) + ' '.repeat(width - done);
          process.stderr.write(`\r[${bar}] ${line(s)}, ETA ${formatDuration(avg * (s.totalIterations - s.iteration))}\x1b[K`);
        } else if (s.iteration % o.printEvery === 0 || s.iteration === s.totalIterations) {
          err(line(s));
        }
      },
      onEval: (e) => {
        if (tty) process.stderr.write('\n');
        err(`validation at iteration ${e.iteration}: val_loss = ${e.valLoss.toFixed(4)} nats/char = ${(e.valLoss / Math.LN2).toFixed(4)} bits/char (${e.seconds.toFixed(1)}s)`);
      },
      onCheckpoint: (p) => err(`saved checkpoint ${p}`),
      shouldStop: () => stopSignal !== null,
    });
  } catch (e) {
    if (e instanceof CheckpointDirError) throw new UsageError(e.message);
    if (e instanceof RangeError && /allocat|Invalid typed array length|Array buffer/i.test(e.message)) {
      throw new Error(`out of memory (${e.message}); lower --batch-size, --seq-length or --rnn-size`);
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (tty) process.stderr.write('\n');
  }
  if (outcome.status === 'diverged' || outcome.status === 'failed') {
    err(`grid-lstm: error: ${outcome.message}`);
    return 1;
  }
  if (outcome.status === 'stopped') {
    err(`stopped by ${stopSignal ?? 'request'} at iteration ${trainer.iteration}; resume with: grid-lstm train --resume ${shellWord(outcome.checkpoint)}`);
    return stopSignal === 'SIGTERM' ? 143 : 130;
  }
  err(`done: val_loss = ${outcome.valLoss.toFixed(4)} nats/char; checkpoint ${outcome.checkpoint}`);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// sample

const SAMPLE_OPTS: OptSpec[] = [
  { key: 'length', kind: 'int', default: 2000, help: 'number of characters to generate' },
  { key: 'temperature', kind: 'number', default: 1, help: 'sampling temperature (> 0); lower is more conservative' },
  { key: 'primetext', kind: 'string', arg: 'TEXT', help: 'text to warm the state up with (printed first)' },
  { key: 'argmax', kind: 'bool', default: false, help: 'take the most likely character each time (deterministic)' },
  { key: 'seed', kind: 'int', default: 123, help: 'random seed' },
  { key: 'quiet', kind: 'bool', default: false, help: 'print only the text, no diagnostics' },
  ...COMMON,
];

function cmdSample(argv: string[]): number {
  const { opts, pos } = parseArgs('sample', argv, SAMPLE_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError('sample needs a checkpoint: grid-lstm sample CK (a .safetensors file or a directory of them)');
  if ((opts.length as number) < 0) throw new UsageError(`--length must be ≥ 0, got ${opts.length}`);
  if (!((opts.temperature as number) > 0)) throw new UsageError(`--temperature must be > 0, got ${opts.temperature}`);
  if ((opts.temperature as number) < 1e-300) {
    throw new UsageError(`--temperature ${opts.temperature} is too small to compute with (below 1e-300); use --argmax for the most likely character each time`);
  }
  const ck = loadCk(pos[0], makeKernels(opts.kernels));
  const prime = (opts.primetext as string | undefined) ?? '';
  try {
    checkPrimetext(prime, ck.vocab); // before anything is printed
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (!opts.quiet) process.stderr.write(`sampling ${opts.length} characters from ${pos[0]}\n`);
  const stopped = Symbol('output closed');
  /** Writes to stdout; stops sampling once stdout has failed (e.g. `| head` has exited). */
  const write = (text: string) => {
    process.stdout.write(text);
    if (process.stdout.errored) throw stopped;
  };
  let buf = '';
  try {
    write(prime);
    sample(ck.model, ck.vocab, {
      length: opts.length as number,
      temperature: opts.temperature as number,
      primetext: prime,
      argmax: opts.argmax as boolean,
      seed: opts.seed as number,
      onChar: (c) => {
        buf += c;
        if (buf.length >= 64 || c === '\n') {
          write(buf);
          buf = '';
        }
      },
    });
    write(buf + '\n');
  } catch (e) {
    if (e !== stopped) throw e;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// eval

const EVAL_OPTS: OptSpec[] = [
  { key: 'data', kind: 'string', arg: 'FILE', help: 'the text to evaluate (required)' },
  { key: 'encoding', kind: 'choice', choices: ['utf8', 'latin1'], default: 'utf8', help: 'how to read --data' },
  { key: 'json', kind: 'bool', default: false, help: 'print one JSON object {loss, bpc, predictions}' },
  ...COMMON,
];

function cmdEval(argv: string[]): number {
  const { opts, pos } = parseArgs('eval', argv, EVAL_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError('eval needs a checkpoint: grid-lstm eval CK --data FILE');
  if (opts.data === undefined) throw new UsageError('eval needs --data FILE: the text to measure the loss on');
  const ck = loadCk(pos[0], makeKernels(opts.kernels));
  const { ids } = readData(opts.data as string, opts.encoding as 'utf8' | 'latin1', ck.vocab);
  if (ids.length < 2) throw new UsageError(`--data ${opts.data} has ${ids.length} character(s); at least 2 are needed`);
  const r = evaluateIds(ck.model, ids);
  if (opts.json) process.stdout.write(JSON.stringify({ loss: r.loss, bpc: r.bpc, predictions: r.predictions }) + '\n');
  else process.stdout.write(`${r.loss.toFixed(6)} nats/char, ${r.bpc.toFixed(6)} bits/char over ${r.predictions} predictions\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// inspect

function cmdInspect(argv: string[]): number {
  const { pos } = parseArgs('inspect', argv, [], ['CK']);
  if (pos.length < 1) throw new UsageError('inspect needs a checkpoint: grid-lstm inspect CK');
  const ck = loadCk(pos[0]);
  const c = ck.model.config;
  const out: string[] = [
    `model:        ${c.model}${c.model === 'grid_lstm' ? (c.tieWeights ? ' (depth weights tied)' : ' (depth weights untied)') : ''}`,
    `rnn_size:     ${c.rnnSize}`,
    `num_layers:   ${c.numLayers}`,
    `dropout:      ${c.dropout}`,
    `vocabulary:   ${c.vocabSize} characters`,
    `parameters:   ${paramCount(c).toLocaleString('en-US')}`,
  ];
  const t = ck.training;
  if (t) {
    const last = <T>(a: T[]) => (a.length ? a[a.length - 1] : undefined);
    const lt = last(t.history.train);
    const lv = last(t.history.val);
    out.push(
      `iteration:    ${t.iteration}`,
      `epoch:        ${t.epoch.toFixed(3)}`,
      `learning rate ${t.learningRate}`,
      `optimizer:    ${t.optimizer.name}`,
      `train loss:   ${lt ? `${lt[1].toFixed(4)} (iteration ${lt[0]})` : '-'}`,
      `val loss:     ${lv ? `${lv[1].toFixed(4)} nats/char, ${(lv[1] / Math.LN2).toFixed(4)} bits/char (iteration ${lv[0]})` : '-'}`,
      `val history:  ${t.history.val.map(([i, v]) => `${i}:${v.toFixed(4)}`).join(' ') || '-'}`,
      `options:      ${JSON.stringify(t.options)}`,
    );
  } else out.push('training:     none (weights only)');
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

// ---------------------------------------------------------------------------------------------
// plot

const PLOT_OPTS: OptSpec[] = [
  { key: 'out', kind: 'string', arg: 'FILE', help: 'write the figure: FILE.svg, FILE.png (needs @resvg/resvg-js), or - for SVG on stdout (default: an ASCII plot on stdout)' },
  { key: 'x', kind: 'choice', choices: ['iteration', 'epoch', 'chars'], default: 'iteration', help: 'x axis: iteration, epoch, or chars (training characters: iteration × batch size × seq length)' },
  { key: 'bits', kind: 'bool', default: false, help: 'losses in bits per character instead of nats' },
  { key: 'curves', kind: 'choice', choices: ['both', 'val', 'train'], default: 'both', help: 'which losses to draw: both, val or train' },
  { key: 'smooth', kind: 'number', arg: 'F', default: 0.01, help: 'moving average of the training loss over this fraction of the steps (0: raw)' },
  { key: 'theme', kind: 'choice', choices: ['auto', 'light', 'dark'], default: 'auto', help: 'auto: SVG for light and dark pages (transparent, prefers-color-scheme), PNG light; light/dark: that palette on an opaque background' },
  { key: 'ascii', kind: 'bool', default: false, help: 'print the ASCII plot too when --out is given' },
];

/** The run of one CK argument (a file, or a directory: its newest checkpoint), as plotted. */
function plotRun(arg: string, x: PlotXAxis): LossRun {
  const file = checkpointFile(arg);
  const ck = loadCk(file);
  try {
    return lossRunFromCheckpoint(ck, { x });
  } catch (e) {
    if (e instanceof PlotInputError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}

/** The PNG of an SVG, drawn by @resvg/resvg-js with the system fonts (imported only when needed). */
async function renderPng(svg: string): Promise<Buffer> {
  type Resvg = new (svg: string, options: object) => { render(): { asPng(): Buffer; pixels: Buffer } };
  let Resvg: Resvg;
  try {
    const specifier = '@resvg/resvg-js'; // an optional dependency: not a static import
    Resvg = ((await import(specifier)) as { Resvg: Resvg }).Resvg;
  } catch {
    throw new UsageError('--out .png needs the optional package @resvg/resvg-js: install it (npm install @resvg/resvg-js) or write an .svg');
  }
  const font = { loadSystemFonts: true };
  // resvg draws text only with the fonts it finds; a text-only probe shows whether there are any.
  const probe = new Resvg(`<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="2" y="15" font-size="14" font-family="${FONT_FAMILY}">Ag</text></svg>`, { font }).render();
  if (!probe.pixels.some((v, i) => i % 4 === 3 && v > 0)) {
    process.stderr.write('warning: no system fonts found, so the PNG has no text; install a font (e.g. the fonts-dejavu-core package) or write an .svg\n');
  }
  return new Resvg(svg, { font, fitTo: { mode: 'zoom', value: 2 } }).render().asPng();
}

/** checkOutputPath, its error a usage error (exit 2). */
function checkOut(out: string): void {
  try {
    checkOutputPath(out);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function cmdPlot(argv: string[]): Promise<number> {
  const { opts, pos } = parseArgs('plot', argv, PLOT_OPTS, argv.map(() => 'CK'));
  if (pos.length < 1) throw new UsageError('plot needs at least one checkpoint: grid-lstm plot CK... (.safetensors files or directories of them)');
  const smooth = opts.smooth as number;
  if (!(smooth >= 0 && smooth <= 1)) throw new UsageError(`--smooth must be a fraction in [0, 1], got ${smooth}`);
  const out = opts.out as string | undefined;
  const format = out === undefined ? null : out === '-' ? 'svg' : /\.svg$/i.test(out) ? 'svg' : /\.png$/i.test(out) ? 'png' : undefined;
  if (format === undefined) throw new UsageError(`--out ${out} must end in .svg or .png (or be - for SVG on stdout)`);
  if (out === '-' && opts.ascii) throw new UsageError('--out - and --ascii both write to stdout; use one of them');
  if (out !== undefined && out !== '-') checkOut(out);
  const x = opts.x as PlotXAxis;
  const runs = pos.map((p) => plotRun(p, x));
  // Runs with the same label (same model, size and --savefile) are told apart by their argument.
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.label, (counts.get(r.label) ?? 0) + 1);
  runs.forEach((r, i) => {
    if (counts.get(r.label)! > 1) r.label = `${r.label} — ${pos[i]}`;
  });
  const common = { x, bits: opts.bits as boolean, curves: opts.curves as PlotCurves, smoothing: smooth };
  if (format !== null) {
    const themeOpt = opts.theme as PlotTheme;
    const theme = format === 'png' && themeOpt === 'auto' ? 'light' : themeOpt;
    const svg = plotLossCurves(runs, { ...common, theme });
    const bytes = format === 'png' ? await renderPng(svg) : Buffer.from(svg, 'utf8');
    if (out === '-') process.stdout.write(bytes);
    else {
      writeOutputFile(out!, bytes);
      process.stderr.write(`wrote ${out} (${runs.length} run${runs.length === 1 ? '' : 's'}, x ${x})\n`);
    }
  }
  if (format === null || opts.ascii) {
    const columns = process.stdout.isTTY ? Math.max(40, Math.min(process.stdout.columns || 80, 80)) : 80;
    process.stdout.write(plotLossCurvesAscii(runs, { ...common, width: columns }));
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// viz

const VIZ_OPTS: OptSpec[] = [
  { key: 'data', kind: 'string', arg: 'FILE', help: 'the text to run the model over (required)' },
  { key: 'encoding', kind: 'choice', choices: ['utf8', 'latin1'], default: 'utf8', help: 'how to read --data' },
  { key: 'out', kind: 'string', arg: 'FILE', help: 'the file to write, - for stdout (default: report.html; with --json, stdout)' },
  { key: 'json', kind: 'bool', default: false, help: "write the report's data as JSON (format grid-lstm/viz-1) instead of HTML" },
  { key: 'start', kind: 'int', arg: 'S', default: 0, help: 'the first character shown (the model reads the text from its beginning)' },
  { key: 'length', kind: 'int', arg: 'N', default: 2000, help: 'how many characters are shown' },
  {
    key: 'kinds',
    kind: 'string',
    arg: 'LIST',
    default: DEFAULT_REPORT_KINDS.join(','),
    help: 'the values stored for the page, from i,f,o,g,c,tc,h (tanh(c) is computed from c unless tc is listed); fewer make a smaller file',
  },
  { key: 'bits', kind: 'int', arg: 'B', default: DEFAULT_REPORT_BITS, help: 'bits per stored value, 1 to 8 (6: 64 levels, as many as the page has colours); fewer make a smaller file' },
  ...COMMON,
];

function cmdViz(argv: string[]): number {
  const { opts, pos } = parseArgs('viz', argv, VIZ_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError('viz needs a checkpoint: grid-lstm viz CK --data FILE');
  if (opts.data === undefined) throw new UsageError('viz needs --data FILE: the text to run the model over');
  const start = opts.start as number;
  const length = opts.length as number;
  if (start < 0) throw new UsageError(`--start must be ≥ 0, got ${start}`);
  if (length < 1) throw new UsageError(`--length must be a whole number > 0, got ${length}`);
  const bits = opts.bits as number;
  if (bits < 1 || bits > 8) throw new UsageError(`--bits must be a whole number from 1 to 8, got ${bits}`);
  const kinds = (opts.kinds as string).split(',').map((k) => k.trim()).filter((k) => k !== '');
  const unknown = kinds.filter((k) => !TRACE_KINDS.includes(k as TraceKind));
  if (unknown.length > 0 || kinds.length === 0) {
    throw new UsageError(`--kinds must list some of ${TRACE_KINDS.join(',')}, got ${JSON.stringify(opts.kinds)}`);
  }
  const out = (opts.out as string | undefined) ?? (opts.json ? '-' : 'report.html');
  if (out !== '-') checkOut(out);
  const file = checkpointFile(pos[0]);
  const ck = loadCk(file, makeKernels(opts.kernels));
  const { ids } = readData(opts.data as string, opts.encoding as 'utf8' | 'latin1', ck.vocab);
  if (start >= ids.length) throw new UsageError(`--start ${start} is past the end of --data ${opts.data} (${ids.length} characters)`);
  const data = buildReportData(ck.model, ck.vocab, ids, { start, length, bits, kinds: kinds as TraceKind[], label: file.split(/[\\/]/).pop() });
  const text = opts.json ? JSON.stringify(data) + '\n' : renderReport(data);
  if (out === '-') {
    process.stdout.write(text);
    return 0;
  }
  const bytes = writeOutputFile(out, text);
  const shown = [...data.text].length;
  process.stderr.write(
    `wrote ${out} (${bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.ceil(bytes / 1e3)} kB`}): characters ${start}–${start + shown - 1} of ${ids.length}` +
      `${data.meanLoss === null ? '' : `, mean loss ${data.meanLoss.toFixed(4)} nats/char`}${opts.json ? '' : '; open it in a browser'}\n`,
  );
  return 0;
}

// ---------------------------------------------------------------------------------------------

const COMMANDS: Record<string, { run: (argv: string[]) => number | Promise<number>; help: () => string }> = {
  train: {
    run: cmdTrain,
    help: () => helpText('grid-lstm train [options]', 'Train a character-level language model (char-rnn options and defaults).', TRAIN_OPTS),
  },
  sample: {
    run: cmdSample,
    help: () => helpText('grid-lstm sample CK [options]', 'Generate text from a checkpoint (a file, or a directory: its newest checkpoint).', SAMPLE_OPTS),
  },
  eval: {
    run: cmdEval,
    help: () => helpText('grid-lstm eval CK --data FILE [--json]', 'Mean negative log-likelihood of FILE, read as one stream, in nats and bits per character.', EVAL_OPTS),
  },
  inspect: { run: cmdInspect, help: () => helpText('grid-lstm inspect CK', 'Show a checkpoint: config, parameter count, iteration, epoch, losses.', []) },
  plot: {
    run: cmdPlot,
    help: () =>
      helpText(
        'grid-lstm plot CK... [--out curves.svg|curves.png] [--x iteration|epoch|chars] [--bits] [--ascii]',
        'Training and validation loss curves of one or more runs, from the loss history in their checkpoints (a directory: its newest checkpoint). Without --out, a plot in the terminal.',
        PLOT_OPTS,
      ),
  },
  viz: {
    run: cmdViz,
    help: () =>
      helpText(
        'grid-lstm viz CK --data FILE [--out report.html] [--json] [--start S] [--length N]',
        "A self-contained HTML report of what the model's units do over a window of FILE: the text coloured by any unit, the units that track text features, gate saturation, the depth cells (grid_lstm), the top-5 predictions at every character.",
        VIZ_OPTS,
      ),
  },
};

const MAIN_HELP = `usage: grid-lstm <command> [options]

commands:
  train      train a grid_lstm or lstm model on a text file (default: the built-in corpus)
  sample     generate text from a checkpoint
  eval       measure the loss of a text under a checkpoint
  inspect    show what a checkpoint holds
  plot       draw the loss curves of runs (SVG, PNG or in the terminal)
  viz        an HTML report of what a model's units do over a text

'grid-lstm <command> --help' lists a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  argv = argv.filter((a) => a !== '--debug');
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(MAIN_HELP + '\n');
      return command === undefined ? 2 : 0;
    }
    const cmd = COMMANDS[command];
    if (!cmd) throw new UsageError(`unknown command ${JSON.stringify(command)}; use train, sample, eval, inspect, plot or viz`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(cmd.help() + '\n');
      return 0;
    }
    const code = await cmd.run(rest);
    const failed = outputError(process.stdout.errored);
    if (failed !== null) throw new Error(failed);
    return code;
  } catch (e) {
    const err = e as Error;
    if (outputErrorReported) return 1;
    outputErrorReported = /^cannot write the output: /.test(err?.message ?? '');
    process.stderr.write(`grid-lstm: error: ${oneLine(err?.message ?? String(e))}\n`);
    if (debug) process.stderr.write(`${err.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

/**
 * The message for a failed write to stdout, or null when there is none or it is EPIPE (whoever
 * read the output has stopped, as with "| head": not an error, as for other command-line tools).
 */
function outputError(e: unknown): string | null {
  if (!e || (e as NodeJS.ErrnoException).code === 'EPIPE') return null;
  return `cannot write the output: ${describeSystemError(e)}`;
}

// A failed write to stdout or stderr is reported as an 'error' event, which would otherwise end
// the process with a stack trace. Diagnostics on a closed stderr are dropped (training goes on).
let outputErrorReported = false;
process.stdout.on('error', (e) => {
  const message = outputError(e);
  if (message !== null && !outputErrorReported) {
    outputErrorReported = true;
    process.stderr.write(`grid-lstm: error: ${message}\n`);
    process.exitCode = 1;
  }
});
process.stderr.on('error', () => {});

/** A message on one line: line breaks and other control characters become spaces. */
function oneLine(message: string): string {
  return message.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();
}

process.exitCode = await main(process.argv.slice(2));
