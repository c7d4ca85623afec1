/**
 * The seed's experiment at laptop scale (issue 15): stacked LSTMs and Grid LSTMs of 3 and 6
 * layers, with and without dropout, each trained on the same number of characters of the same
 * corpus with the seed's settings (RMSprop, learning rate 1e-3, batches of 50 × 50, a 95/5
 * split, char-rnn's decay and clipping), one run after another; then a table of the results
 * (Markdown and JSON) and one figure of every run's validation curve.
 *
 * Each run trains through the library's Trainer, as `grid-lstm train` does, into a directory of
 * its own, <out>/<run>/: its checkpoints (--keep best: the best and the newest), its loss log,
 * and run.json (its status and the seconds it took up to each checkpoint). Started again with
 * the same options, an interrupted experiment (Ctrl-C, a crash) goes on where it stopped: a
 * finished run is skipped, a started one resumes from its newest checkpoint (bit for bit, with
 * the same thread count). run.ts is the command; experiments/depth/README.md says what it does
 * and what the published run found.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import {
  CharLoader,
  type CheckpointContents,
  type Corpus,
  DEFAULT_TRAIN_OPTIONS,
  type LossRun,
  type ModelKind,
  type TrainOptions,
  Trainer,
  corpusFromText,
  loadCheckpoint,
  loadDefaultCorpus,
  loadWasmKernelsSync,
  lossRunFromCheckpoint,
  normalizeConfig,
  paramCount,
  plotLossCurves,
  plotLossCurvesAscii,
  readCorpus,
} from '../../dist/index.js';
import { CHECKPOINT_NAME } from '../../dist/train/checkpoint.js';
import { type Terminal, TrainingDisplay, formatDuration } from '../../dist/cli/progress.js';

// ---------------------------------------------------------------------------------------------
// The runs and the protocol

/** One model of the experiment. */
export interface RunSpec {
  /** Its name: the directory, the --savefile and the legend (with "-seedS" for a seed other than 123). */
  name: string;
  model: ModelKind;
  numLayers: number;
  /** On the non-recurrent connections (the seed's 0.25), or 0. */
  dropout: number;
  /** grid_lstm: one depth LSTM shared by every layer (paper §3.5); unused by lstm. */
  tieWeights: boolean;
  /** Trained only when asked for (--untied, or named in --only). */
  optional?: boolean;
}

/** The seed's four models with dropout, its two without, and the untied grid (optional). */
export const RUNS: readonly RunSpec[] = [
  { name: 'stacked-3', model: 'lstm', numLayers: 3, dropout: 0.25, tieWeights: true },
  { name: 'grid-3', model: 'grid_lstm', numLayers: 3, dropout: 0.25, tieWeights: true },
  { name: 'stacked-6', model: 'lstm', numLayers: 6, dropout: 0.25, tieWeights: true },
  { name: 'grid-6', model: 'grid_lstm', numLayers: 6, dropout: 0.25, tieWeights: true },
  { name: 'stacked-6-nodrop', model: 'lstm', numLayers: 6, dropout: 0, tieWeights: true },
  { name: 'grid-6-nodrop', model: 'grid_lstm', numLayers: 6, dropout: 0, tieWeights: true },
  { name: 'grid-6-untied', model: 'grid_lstm', numLayers: 6, dropout: 0.25, tieWeights: false, optional: true },
];

/** What every run of one experiment shares; an output directory holds one experiment. */
export interface Protocol {
  rnnSize: number;
  batchSize: number;
  seqLength: number;
  /** Training steps of every run (characters: steps × batchSize × seqLength). */
  steps: number;
  /** A validation (a pass over the whole val split) and a checkpoint every this many steps, and at the end. */
  evalValEvery: number;
  learningRate: number;
  trainFrac: number;
  valFrac: number;
  /** The text trained on, as an absolute path, or null for the built-in corpus. */
  data: string | null;
  /** Only the first this many characters of the text (the smoke test's), or null: all of it. */
  dataChars: number | null;
}

/** The experiment as asked for on the command line (run.ts). */
export interface DepthOptions {
  rnnSize: number;
  /** Training characters per run; rounded to whole batches. */
  chars: number;
  /** Validations per run, evenly spaced (the last at the end). */
  evals: number;
  threads: number;
  /** One run of each model per seed (those of seed 123, the default, are named plainly). */
  seeds: number[];
  /** Run only these (names of RUNS), or null: every run that is not optional (and grid-6-untied with `untied`). */
  only: string[] | null;
  untied: boolean;
  out: string;
  data: string | null;
  dataChars: number | null;
  batchSize: number;
  seqLength: number;
  learningRate: number;
  /** Print the plan and the time it would take, then stop. */
  plan: boolean;
  /** The command line, for the results (e.g. "npm run experiment:depth -- --only grid-6"). */
  command: string;
}

/** The defaults of run.ts: the experiment the README's budget was chosen for (see experiments/depth/README.md). */
export const DEFAULTS = {
  rnnSize: 128,
  chars: 5_000_000,
  evals: 10,
  seeds: [DEFAULT_TRAIN_OPTIONS.seed],
  batchSize: 50,
  seqLength: 50,
  learningRate: 1e-3,
  out: 'experiments/depth/runs',
};

/** The threads a run uses by default: the cores, at most 8 and at most one per stream (B). */
export function defaultThreads(batchSize: number): number {
  return Math.max(1, Math.min(availableParallelism(), 8, batchSize));
}

/** An error in what was asked (a bad option, another experiment in --out): one line, exit code 2. */
export class ExperimentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExperimentError';
  }
}

export function protocolOf(o: DepthOptions): Protocol {
  const perBatch = o.batchSize * o.seqLength;
  const steps = Math.round(o.chars / perBatch);
  if (steps < 1) {
    throw new ExperimentError(`--chars ${o.chars} is less than one batch of ${o.batchSize} × ${o.seqLength} characters; give at least ${perBatch}`);
  }
  return {
    rnnSize: o.rnnSize,
    batchSize: o.batchSize,
    seqLength: o.seqLength,
    steps,
    evalValEvery: Math.max(1, Math.ceil(steps / o.evals)),
    learningRate: o.learningRate,
    trainFrac: DEFAULT_TRAIN_OPTIONS.trainFrac,
    valFrac: DEFAULT_TRAIN_OPTIONS.valFrac,
    data: o.data === null ? null : resolve(o.data),
    dataChars: o.dataChars,
  };
}

/** The runs `o` asks for, in the table's order (by model, then seed). */
export function selectedRuns(o: Pick<DepthOptions, 'only' | 'untied' | 'seeds'>): { spec: RunSpec; seed: number; id: string }[] {
  let specs: RunSpec[];
  if (o.only !== null) {
    for (const name of o.only) {
      if (!RUNS.some((r) => r.name === name)) {
        throw new ExperimentError(`--only: there is no run ${JSON.stringify(name)}; the runs are ${RUNS.map((r) => r.name).join(', ')}`);
      }
    }
    specs = RUNS.filter((r) => o.only!.includes(r.name));
  } else specs = RUNS.filter((r) => !r.optional || o.untied);
  const out: { spec: RunSpec; seed: number; id: string }[] = [];
  for (const spec of specs) for (const seed of o.seeds) out.push({ spec, seed, id: runId(spec.name, seed) });
  return out;
}

/** "grid-6" for the default seed (123, char-rnn's), "grid-6-seed124" for another. */
export function runId(name: string, seed: number): string {
  return seed === DEFAULT_TRAIN_OPTIONS.seed ? name : `${name}-seed${seed}`;
}

/** The Trainer's options of a run: char-rnn's defaults, the protocol, the run's model and seed. */
export function trainOptions(p: Protocol, spec: RunSpec, seed: number, id: string, dir: string, threads: number): TrainOptions {
  return {
    ...DEFAULT_TRAIN_OPTIONS,
    model: spec.model,
    rnnSize: p.rnnSize,
    numLayers: spec.numLayers,
    tieWeights: spec.tieWeights,
    dropout: spec.dropout,
    optim: 'rmsprop',
    learningRate: p.learningRate,
    seqLength: p.seqLength,
    batchSize: p.batchSize,
    maxSteps: p.steps,
    // Never the limit: an epoch is at least one step (char-rnn's 50 would cap a run on a short text).
    maxEpochs: p.steps,
    trainFrac: p.trainFrac,
    valFrac: p.valFrac,
    seed,
    evalValEvery: p.evalValEvery,
    printEvery: Math.max(1, Math.round(p.steps / 50)),
    checkpointDir: dir,
    savefile: id,
    data: p.data,
    keep: 'best',
    log: 'csv',
    threads,
  };
}

/** The text of the protocol: the built-in corpus or --data, whole or its first N characters. */
export function loadCorpus(p: Protocol): Corpus {
  if (p.data === null) {
    const text = loadDefaultCorpus();
    return corpusFromText(p.dataChars === null ? text : text.slice(0, p.dataChars));
  }
  let corpus: Corpus;
  try {
    corpus = readCorpus(p.data, { label: '--data' });
  } catch (e) {
    throw new ExperimentError((e as Error).message);
  }
  if (p.dataChars === null) return corpus;
  // Only the first characters: decoded again with their own vocabulary.
  const chars = corpus.vocab.chars;
  let text = '';
  const n = Math.min(p.dataChars, corpus.ids.length);
  for (let i = 0; i < n; i++) text += chars[corpus.ids[i]];
  return corpusFromText(text);
}

/**
 * The validation loss of a model that knows only how often each character occurs: the
 * cross-entropy on the val split's targets of the train split's character frequencies (each
 * count + 1, so that none is zero), in nats per character. A model that does not learn
 * anything else stalls about here.
 */
export function unigramValLoss(corpus: Corpus, p: Protocol): number {
  const loader = new CharLoader(corpus.ids, p.batchSize, p.seqLength, { trainFrac: p.trainFrac, valFrac: p.valFrac });
  const V = corpus.vocab.chars.length;
  const counts = new Float64Array(V).fill(1);
  const x = new Int32Array(p.batchSize * p.seqLength);
  const y = new Int32Array(p.batchSize * p.seqLength);
  for (let k = 0; k < loader.splitSizes.train; k++) {
    loader.getBatch('train', k, x, y);
    for (const c of y) counts[c]++;
  }
  const total = counts.reduce((a, b) => a + b, 0);
  let nll = 0;
  let n = 0;
  for (let k = 0; k < loader.splitSizes.val; k++) {
    loader.getBatch('val', k, x, y);
    for (const c of y) nll -= Math.log(counts[c] / total);
    n += y.length;
  }
  return nll / n;
}

// ---------------------------------------------------------------------------------------------
// The output directory: experiment.json, and run.json in each run's directory

/** <out>/experiment.json: the protocol every run in the directory follows, and how it was run. */
interface ExperimentFile {
  format: 'grid-lstm/depth-experiment-1';
  protocol: Protocol;
  /** Each time the experiment was started: when, and the command. */
  invocations: { date: string; command: string }[];
}

/** Seconds spent on a run up to a checkpoint (so that a resume from that checkpoint goes on from them). */
export interface Timing {
  /** The checkpoint's file name, and its iteration. */
  checkpoint: string;
  iteration: number;
  /** In training steps (forward, backward, update). */
  trainSeconds: number;
  /** In validation passes. */
  valSeconds: number;
  /** From the start of the run (or resume) to the checkpoint, everything included. */
  wallSeconds: number;
  /** Steps whose seconds are counted (fewer than the iteration when a run's record was lost). */
  timedSteps: number;
}

/** <out>/<run>/run.json. */
export interface RunRecord {
  format: 'grid-lstm/depth-run-1';
  name: string;
  seed: number;
  /** 'running' until the run ends: 'done', or 'diverged' (the loss stopped being finite or blew up). */
  status: 'running' | 'done' | 'diverged';
  /** Why it diverged. */
  message?: string;
  /** The file name of the run's final checkpoint (done), or of its last good one (diverged; null: none was written). */
  checkpoint: string | null;
  /** The model, as trained. */
  config: { model: ModelKind; numLayers: number; rnnSize: number; tieWeights: boolean; dropout: number; parameters: number };
  timings: Timing[];
}

function writeJson(path: string, value: unknown): void {
  const tmp = join(resolve(path, '..'), `.${basename(path)}.tmp`);
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new ExperimentError(`${path} is not valid JSON (${(e as Error).message}); delete it, or choose another --out`);
  }
}

const OPTION_OF: Record<keyof Protocol, string> = {
  rnnSize: '--rnn-size',
  batchSize: 'batch size',
  seqLength: 'sequence length',
  steps: '--chars (in steps)',
  evalValEvery: '--evals (validation interval)',
  learningRate: 'learning rate',
  trainFrac: 'train fraction',
  valFrac: 'validation fraction',
  data: '--data',
  dataChars: '--smoke (data length)',
};

/**
 * Checks that `out` holds no other experiment (a different protocol) and records this start;
 * makes the directory. With `dryRun` nothing is written.
 */
export function claimOutDir(out: string, p: Protocol, command: string, dryRun: boolean): void {
  const path = join(out, 'experiment.json');
  const file = readJson<ExperimentFile>(path);
  if (file !== null) {
    for (const key of Object.keys(OPTION_OF) as (keyof Protocol)[]) {
      const was = file.protocol?.[key] ?? null;
      if (was !== p[key]) {
        throw new ExperimentError(
          `${out} holds an experiment with ${OPTION_OF[key]} ${JSON.stringify(was)}, not ${JSON.stringify(p[key])}; ` +
            'run it with its own options to continue it, or give another --out',
        );
      }
    }
  }
  if (dryRun) return;
  mkdirSync(out, { recursive: true });
  const invocations = [...(file?.invocations ?? []), { date: new Date().toISOString(), command }];
  writeJson(path, { format: 'grid-lstm/depth-experiment-1', protocol: p, invocations } satisfies ExperimentFile);
}

/** Where a run stands: not started, started (resume from `checkpoint`), or ended. */
export type RunState =
  | { kind: 'new' }
  | { kind: 'resume'; checkpoint: string; iteration: number }
  | { kind: 'ended'; record: RunRecord };

/** The newest checkpoint file of a directory (the furthest into training among equal times), or null. */
function newestCheckpoint(dir: string): string | null {
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir).filter((f) => CHECKPOINT_NAME.test(f));
  let best: { file: string; iteration: number } | null = null;
  for (const f of files) {
    const path = join(dir, f);
    let iteration: number;
    try {
      iteration = loadCheckpoint(path).training?.iteration ?? -1;
    } catch {
      continue; // a file cut short by a crash: the one before it is whole
    }
    if (best === null || iteration > best.iteration) best = { file: path, iteration };
  }
  return best?.file ?? null;
}

export function runState(dir: string, name: string, seed: number): RunState {
  const record = readJson<RunRecord>(join(dir, 'run.json'));
  if (record !== null && (record.name !== name || record.seed !== seed)) {
    throw new ExperimentError(`${dir} holds the run ${record.name} of seed ${record.seed}, not ${name} of seed ${seed}; move it away, or give another --out`);
  }
  // A diverged run would diverge again: it has ended too, with or without a checkpoint.
  if (record?.status === 'diverged' || (record?.status === 'done' && record.checkpoint !== null && existsSync(join(dir, record.checkpoint)))) {
    return { kind: 'ended', record };
  }
  const checkpoint = newestCheckpoint(dir);
  if (checkpoint === null) return { kind: 'new' };
  return { kind: 'resume', checkpoint, iteration: loadCheckpoint(checkpoint).training!.iteration };
}

// ---------------------------------------------------------------------------------------------
// Estimates

/** Seconds per training step and per validation batch of a run, measured on this machine now. */
export interface Speed {
  stepSeconds: number;
  valBatchSeconds: number;
}

/**
 * Times a few steps and validation batches of a run's model on the first 60 batches of the
 * corpus (a throwaway Trainer; nothing is written): one step and one validation pass (3 batches)
 * to warm up, then the median of 5 steps and the mean batch of a second pass.
 */
export function measureSpeed(corpus: Corpus, options: TrainOptions): Speed {
  const perBatch = options.batchSize * options.seqLength;
  const batches = Math.min(60, Math.floor((corpus.ids.length - 1) / perBatch));
  const slice = { ids: corpus.ids.subarray(0, batches * perBatch + 1), vocab: corpus.vocab };
  const t = Trainer.fromCorpus(slice, { ...options, maxSteps: null }, { kernels: loadWasmKernelsSync() });
  try {
    t.step();
    t.evaluate('val');
    const steps: number[] = [];
    for (let i = 0; i < 5; i++) steps.push(t.step().seconds);
    steps.sort((a, b) => a - b);
    const t0 = performance.now();
    t.evaluate('val');
    const valBatchSeconds = (performance.now() - t0) / 1000 / t.loader.splitSizes.val;
    return { stepSeconds: steps[2], valBatchSeconds };
  } finally {
    t.close();
  }
}

/** Validation passes from iteration `from` (exclusive) to the end of a run of `steps` steps. */
export function validationsAfter(from: number, steps: number, every: number): number {
  const regular = Math.floor(steps / every) - Math.floor(from / every);
  return regular + (steps % every !== 0 && from < steps ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// The experiment

/** Where the experiment writes, and how it is stopped. */
export interface ExperimentIo {
  /** Progress and the plan (process.stderr). */
  err: Terminal;
  /** The results table and the ASCII figure at the end (process.stdout). */
  out: (s: string) => void;
  /** Asked between steps (Ctrl-C): true stops the current run with a checkpoint. */
  shouldStop?: () => boolean;
}

export type ExperimentOutcome = 'done' | 'planned' | 'stopped';

interface PlannedRun {
  spec: RunSpec;
  seed: number;
  id: string;
  dir: string;
  options: TrainOptions;
  state: RunState;
  estimate: number | null;
  /** Measured training characters per second (null: not measured). */
  speed: number | null;
}

const nf = (n: number) => n.toLocaleString('en-US');

/** "4M", "2.5M", "500k", "2,500". */
export function formatChars(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n % 1e6 === 0 ? 0 : 1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(n % 1e3 === 0 ? 0 : 1)}k`;
  return nf(n);
}

/** "12.3 s" under a minute, else "5m03s" / "1h02m". */
export function formatWall(s: number): string {
  return s < 60 ? `${s.toFixed(1)} s` : formatDuration(s);
}

function describeModel(spec: RunSpec, rnnSize: number): string {
  const tie = spec.model === 'grid_lstm' ? (spec.tieWeights ? ' tied' : ' untied') : '';
  return `${spec.model} ${spec.numLayers}×${rnnSize}${tie}`;
}

/** Runs the experiment `o` asks for (see the file's header). */
export async function runExperiment(o: DepthOptions, io: ExperimentIo): Promise<ExperimentOutcome> {
  const p = protocolOf(o);
  const runs = selectedRuns(o);
  claimOutDir(o.out, p, o.command, o.plan);
  const say = (s: string) => io.err.write(s + '\n');

  const t0 = performance.now();
  const corpus = loadCorpus(p);
  const loader = new CharLoader(corpus.ids, p.batchSize, p.seqLength, { trainFrac: p.trainFrac, valFrac: p.valFrac });
  const sizes = loader.splitSizes;
  if (sizes.train === 0 || sizes.val === 0) {
    throw new ExperimentError(
      `the text gives ${loader.nbatches} batches of ${p.batchSize} × ${p.seqLength}, too few for a train and a val split; use a longer --data`,
    );
  }
  const text = p.dataChars !== null ? `its first ${nf(corpus.ids.length)} characters` : `${nf(corpus.ids.length)} characters`;
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  say(`corpus: ${p.data === null ? 'the built-in one' : p.data}, ${text}, vocabulary ${corpus.vocab.chars.length} (${seconds} s)`);

  const planned: PlannedRun[] = runs.map(({ spec, seed, id }) => {
    const dir = join(o.out, id);
    return { spec, seed, id, dir, options: trainOptions(p, spec, seed, id, dir, o.threads), state: runState(dir, spec.name, seed), estimate: null, speed: null };
  });
  const pending = planned.filter((r) => r.state.kind !== 'ended');
  if (pending.length > 0) say(`measuring a few steps of ${pending.length === 1 ? 'the run' : `each of the ${pending.length} runs`} to be trained...`);
  for (const r of pending) {
    const speed = measureSpeed(corpus, r.options);
    const from = r.state.kind === 'resume' ? r.state.iteration : 0;
    r.speed = (p.batchSize * p.seqLength) / speed.stepSeconds;
    r.estimate = (p.steps - from) * speed.stepSeconds + validationsAfter(from, p.steps, p.evalValEvery) * sizes.val * speed.valBatchSeconds;
  }
  printPlan(say, o, p, planned, sizes, corpus.vocab.chars.length);
  if (o.plan) return 'planned';

  for (const [k, r] of planned.entries()) {
    // A Ctrl-C during the measurements (which hold the event loop) is seen here, before a run starts.
    await new Promise<void>((done) => setImmediate(done));
    if (io.shouldStop?.() === true && r.state.kind !== 'ended') {
      writeResults(o, p, corpus, io, false);
      say(`stopped before ${r.id}; run the same command again to continue`);
      return 'stopped';
    }
    const head = `[${k + 1}/${planned.length}] ${r.id}: ${describeModel(r.spec, p.rnnSize)}, dropout ${r.spec.dropout}, seed ${r.seed}`;
    if (r.state.kind === 'ended') {
      say(`${head}: ${r.state.record.status} already, skipped`);
      continue;
    }
    say(r.state.kind === 'resume' ? `${head}: resuming at iteration ${r.state.iteration}` : `${head}: training`);
    const result = await trainRun(r, corpus, o, io);
    if (result === 'stopped') {
      writeResults(o, p, corpus, io, false);
      say(`stopped during ${r.id}; run the same command again to continue where it stopped`);
      return 'stopped';
    }
  }
  writeResults(o, p, corpus, io, true);
  return 'done';
}

function printPlan(
  say: (s: string) => void,
  o: DepthOptions,
  p: Protocol,
  runs: PlannedRun[],
  sizes: Readonly<Record<'train' | 'val' | 'test', number>>,
  vocabSize: number,
): void {
  const chars = p.steps * p.batchSize * p.seqLength;
  const vals = validationsAfter(0, p.steps, p.evalValEvery);
  // Lines within 80 columns.
  const epochs = (chars / (sizes.train * p.batchSize * p.seqLength)).toFixed(2);
  say(`plan: ${runs.length} run${runs.length === 1 ? '' : 's'} of ${nf(p.steps)} steps each (${formatChars(chars)} training characters, ${epochs} epochs)`);
  say(`  rnn size ${p.rnnSize}, batches of ${p.batchSize} × ${p.seqLength}, RMSprop lr ${p.learningRate}, ${o.threads} thread${o.threads === 1 ? '' : 's'}`);
  say(`  ${vals} validation${vals === 1 ? '' : 's'} per run (every ${nf(p.evalValEvery)} steps) over the whole val split (${sizes.val} batches)`);
  say(`  into ${o.out}`);
  const rows = runs.map((r) => {
    const status =
      r.state.kind === 'ended' ? `${r.state.record.status}, skipped` : r.state.kind === 'resume' ? `resume at ${nf(r.state.iteration)}` : 'new';
    const { model, numLayers, tieWeights } = r.spec;
    const parameters = paramCount(normalizeConfig({ model, vocabSize, rnnSize: p.rnnSize, numLayers, tieWeights }));
    const speed = r.speed === null ? '' : nf(Math.round(r.speed));
    const estimate = r.estimate === null ? '' : formatDuration(r.estimate);
    return [r.id, describeModel(r.spec, p.rnnSize), String(r.spec.dropout), nf(parameters), status, speed, estimate];
  });
  const header = ['run', 'model', 'dropout', 'parameters', 'status', 'chars/s', 'estimate'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const numeric = (i: number) => i === 3 || i >= 5;
  const line = (cells: string[]) => '  ' + cells.map((c, i) => (numeric(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  say(line(header));
  for (const row of rows) say(line(row));
  const total = runs.reduce((s, r) => s + (r.estimate ?? 0), 0);
  if (runs.some((r) => r.estimate !== null)) {
    say(`estimated time: ${formatDuration(total)} (from a few steps measured now; more on a busier machine)`);
  } else say('every run has ended: writing the results');
}

async function trainRun(r: PlannedRun, corpus: Corpus, o: DepthOptions, io: ExperimentIo): Promise<'done' | 'diverged' | 'stopped'> {
  const kernels = loadWasmKernelsSync();
  const recordPath = join(r.dir, 'run.json');
  const old = readJson<RunRecord>(recordPath);
  const { model, numLayers, rnnSize, tieWeights, dropout } = r.options;
  const parameters = paramCount(normalizeConfig({ model, vocabSize: corpus.vocab.chars.length, rnnSize, numLayers, tieWeights }));
  const record: RunRecord = {
    format: 'grid-lstm/depth-run-1',
    name: r.spec.name,
    seed: r.seed,
    status: 'running',
    checkpoint: null,
    config: { model, numLayers, rnnSize, tieWeights, dropout, parameters },
    timings: [],
  };
  let trainer: Trainer;
  let base: Timing = { checkpoint: '', iteration: 0, trainSeconds: 0, valSeconds: 0, wallSeconds: 0, timedSteps: 0 };
  if (r.state.kind === 'resume') {
    const ck: CheckpointContents = loadCheckpoint(r.state.checkpoint, { kernels });
    trainer = Trainer.resume(corpus, ck, { threads: o.threads, checkpointDir: r.dir, printEvery: r.options.printEvery });
    // The seconds up to this checkpoint, as recorded when it was written.
    const name = basename(r.state.checkpoint);
    const at = old?.timings.filter((t) => t.checkpoint === name && t.iteration === trainer.iteration).at(-1);
    record.timings = old?.timings.filter((t) => t.iteration <= trainer.iteration) ?? [];
    if (at) base = at;
    else io.err.write(`note: no record of the time ${r.id} took up to iteration ${trainer.iteration}; its time counts from here\n`);
    if (trainer.threadsChange) {
      const { from, to } = trainer.threadsChange;
      io.err.write(`note: ${r.id} ran on ${from} thread(s) and goes on with ${to}: equal up to float rounding, no longer bit for bit\n`);
    }
  } else {
    mkdirSync(r.dir, { recursive: true });
    trainer = Trainer.fromCorpus(corpus, r.options, { kernels });
  }
  writeJson(recordPath, record);
  const display = new TrainingDisplay(io.err, {
    printEvery: trainer.options.printEvery,
    charsPerBatch: trainer.options.batchSize * trainer.options.seqLength,
    evalValEvery: trainer.options.evalValEvery,
    total: trainer.totalIterations,
    valBatches: trainer.loader.splitSizes.val,
  });
  let trainSeconds = base.trainSeconds;
  let valSeconds = base.valSeconds;
  let timedSteps = base.timedSteps;
  const wall0 = performance.now();
  const outcome = await trainer
    .runAsync({
      onStep: (s) => {
        trainSeconds += s.seconds;
        timedSteps++;
        display.step(s);
      },
      onEvalProgress: (done, total) => display.validationProgress(done, total),
      onEval: (e) => {
        valSeconds += e.seconds;
        display.validated(e);
      },
      onCheckpoint: (path) => {
        const wallSeconds = base.wallSeconds + (performance.now() - wall0) / 1000;
        record.timings.push({ checkpoint: basename(path), iteration: trainer.iteration, trainSeconds, valSeconds, wallSeconds, timedSteps });
        writeJson(recordPath, record);
      },
      onWarning: (w) => display.note(`warning: ${w}`),
      shouldStop: io.shouldStop,
    })
    .finally(() => display.close());
  if (outcome.status === 'stopped') return 'stopped';
  if (outcome.status === 'failed') throw new Error(`${r.id}: ${outcome.message}`);
  if (outcome.status === 'diverged') {
    record.status = 'diverged';
    record.message = outcome.message;
    record.checkpoint = outcome.checkpoint === null ? null : basename(outcome.checkpoint);
    writeJson(recordPath, record);
    io.err.write(`${r.id} diverged: ${outcome.message}\n`);
    return 'diverged';
  }
  record.status = 'done';
  record.checkpoint = basename(outcome.checkpoint);
  writeJson(recordPath, record);
  const res = runResult(r.dir, record, o.out);
  io.err.write(
    `${r.id} done: best val_loss ${res.bestValLoss!.toFixed(4)} (${res.bestValBits!.toFixed(3)} bits), final ${res.finalValLoss!.toFixed(4)}; ` +
      `${formatWall(res.wallSeconds)}, ${nf(Math.round(res.charsPerSecond ?? 0))} chars/s\n`,
  );
  return 'done';
}

// ---------------------------------------------------------------------------------------------
// Results

/** One row of the results. Losses in nats per character (…Bits: in bits); null where a run has none yet. */
export interface RunResult {
  id: string;
  name: string;
  seed: number;
  model: ModelKind;
  numLayers: number;
  rnnSize: number;
  tieWeights: boolean;
  dropout: number;
  parameters: number;
  /** 'incomplete': started and not ended (resume it by running the experiment again). */
  status: 'done' | 'diverged' | 'incomplete';
  /** Steps done, and characters trained on (steps × batch × seq). */
  iteration: number;
  charsSeen: number;
  validations: number;
  bestValLoss: number | null;
  bestValBits: number | null;
  /** Characters trained on when the best validation loss was measured. */
  bestAtChars: number | null;
  finalValLoss: number | null;
  finalValBits: number | null;
  /** The run's wall time (training, validations, checkpoints), summed over its resumes. */
  wallSeconds: number;
  trainSeconds: number;
  valSeconds: number;
  /** Training characters per second of training-step time (validation not included); null when none were timed. */
  charsPerSecond: number | null;
  /** Threads of the run's last part. */
  threads: number;
  /** The run's newest checkpoint, relative to the output directory (null: none was written). */
  checkpoint: string | null;
  /** The checkpoint's history of validation losses: [characters, nats]. */
  valCurve: [number, number][];
}

function runResult(dir: string, record: RunRecord, out: string): RunResult {
  const file = record.status !== 'running' ? (record.checkpoint === null ? null : join(dir, record.checkpoint)) : newestCheckpoint(dir);
  // A run that diverged before its first checkpoint has no history: its row says so, with no losses.
  const t = file === null ? null : loadCheckpoint(file).training!;
  const iteration = t?.iteration ?? 0;
  const opts = (t?.options ?? {}) as unknown as Partial<TrainOptions>;
  const perBatch = (opts.batchSize ?? 0) * (opts.seqLength ?? 0);
  const val = t?.history.val ?? [];
  let best: [number, number] | null = null;
  for (const v of val) if (best === null || v[1] < best[1]) best = v;
  const final = val.length > 0 ? val[val.length - 1] : null;
  const timing = record.timings.filter((x) => x.iteration <= iteration).at(-1);
  const c = record.config;
  return {
    id: basename(dir),
    name: record.name,
    seed: record.seed,
    model: c.model,
    numLayers: c.numLayers,
    rnnSize: c.rnnSize,
    tieWeights: c.tieWeights,
    dropout: c.dropout,
    parameters: c.parameters,
    status: record.status === 'running' ? 'incomplete' : record.status,
    iteration,
    charsSeen: iteration * perBatch,
    validations: val.length,
    bestValLoss: best?.[1] ?? null,
    bestValBits: best === null ? null : best[1] / Math.LN2,
    bestAtChars: best === null ? null : best[0] * perBatch,
    finalValLoss: final?.[1] ?? null,
    finalValBits: final === null ? null : final[1] / Math.LN2,
    wallSeconds: timing?.wallSeconds ?? 0,
    trainSeconds: timing?.trainSeconds ?? 0,
    valSeconds: timing?.valSeconds ?? 0,
    charsPerSecond: timing && timing.trainSeconds > 0 ? (timing.timedSteps * perBatch) / timing.trainSeconds : null,
    threads: opts.threads ?? 0,
    checkpoint: file === null ? null : relative(out, file),
    valCurve: val.map(([i, loss]) => [i * perBatch, loss]),
  };
}

/** Every run in the output directory (of any invocation), in the order of RUNS, then by seed. */
export function collectResults(out: string): RunResult[] {
  const rows: RunResult[] = [];
  if (!existsSync(out)) return rows;
  for (const entry of readdirSync(out, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(out, entry.name);
    const record = readJson<RunRecord>(join(dir, 'run.json'));
    if (record === null) continue;
    if (record.status === 'running' && newestCheckpoint(dir) === null) continue; // started, nothing saved yet
    rows.push(runResult(dir, record, out));
  }
  const order = (r: RunResult) => RUNS.findIndex((s) => s.name === r.name);
  return rows.sort((a, b) => order(a) - order(b) || a.seed - b.seed);
}

/** The seed's findings beside this experiment's, for one seed (each null when its runs are missing). */
export interface Comparison {
  seed: number;
  /** With dropout 0.25: the stacked and the grid run of lowest best validation loss. */
  bestStacked: { id: string; loss: number } | null;
  bestGrid: { id: string; loss: number } | null;
  /** How much lower the best grid's loss is than the best stacked's, in % of the latter (the seed: 4.61). */
  gridLowerPercent: number | null;
  /** The same for grid-6 against stacked-3 (the seed's best pair). */
  grid6LowerThanStacked3Percent: number | null;
  /** Without dropout: each 6-layer model's best validation loss, and whether it stalled. */
  noDropout: { id: string; bestValLoss: number; stalled: boolean }[];
}

/** A run "did not train" when its best validation loss is above this fraction of the unigram loss. */
export const STALLED_FRACTION = 0.95;

export function compare(rows: RunResult[], seed: number, unigram: number): Comparison {
  const ofSeed = rows.filter((r) => r.seed === seed && r.status === 'done' && r.bestValLoss !== null);
  const best = (model: ModelKind) => {
    const c = ofSeed.filter((r) => r.model === model && r.dropout === 0.25 && r.tieWeights);
    if (c.length === 0) return null;
    const b = c.reduce((x, y) => (y.bestValLoss! < x.bestValLoss! ? y : x));
    return { id: b.id, loss: b.bestValLoss! };
  };
  const bestStacked = best('lstm');
  const bestGrid = best('grid_lstm');
  const lower = (s: number | undefined | null, g: number | undefined | null) => (s == null || g == null ? null : ((s - g) / s) * 100);
  const named = (name: string) => ofSeed.find((r) => r.name === name);
  return {
    seed,
    bestStacked,
    bestGrid,
    gridLowerPercent: lower(bestStacked?.loss, bestGrid?.loss),
    grid6LowerThanStacked3Percent: lower(named('stacked-3')?.bestValLoss, named('grid-6')?.bestValLoss),
    noDropout: ['stacked-6-nodrop', 'grid-6-nodrop']
      .map(named)
      .filter((r): r is RunResult => r !== undefined)
      .map((r) => ({ id: r.id, bestValLoss: r.bestValLoss!, stalled: r.bestValLoss! > STALLED_FRACTION * unigram })),
  };
}

/** The results as experiments/depth writes them (results.json). */
export interface Results {
  format: 'grid-lstm/depth-results-1';
  date: string;
  /** Every start of the experiment in this directory: when, and the command. */
  invocations: { date: string; command: string }[];
  machine: { cpu: string; cores: number; node: string };
  protocol: Protocol;
  corpus: { characters: number; vocabulary: number; batches: { train: number; val: number; test: number } };
  /** See {@link unigramValLoss}. */
  unigramValLoss: number;
  runs: RunResult[];
  comparisons: Comparison[];
  /** False when runs the experiment asked for are not done yet (it was stopped). */
  complete: boolean;
}

function writeResults(o: DepthOptions, p: Protocol, corpus: Corpus, io: ExperimentIo, complete: boolean): Results {
  const rows = collectResults(o.out);
  const unigram = unigramValLoss(corpus, p);
  const loader = new CharLoader(corpus.ids, p.batchSize, p.seqLength, { trainFrac: p.trainFrac, valFrac: p.valFrac });
  const seeds = [...new Set(rows.map((r) => r.seed))].sort((a, b) => a - b);
  const file = readJson<ExperimentFile>(join(o.out, 'experiment.json'));
  const results: Results = {
    format: 'grid-lstm/depth-results-1',
    date: new Date().toISOString(),
    invocations: file?.invocations ?? [],
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version },
    protocol: p,
    corpus: { characters: corpus.ids.length, vocabulary: corpus.vocab.chars.length, batches: { ...loader.splitSizes } },
    unigramValLoss: unigram,
    runs: rows,
    comparisons: seeds.map((s) => compare(rows, s, unigram)),
    complete,
  };
  writeJson(join(o.out, 'results.json'), results);
  const md = resultsMarkdown(results);
  writeFileSync(join(o.out, 'results.md'), md);
  // The figure: every run's validation curve against the characters trained on.
  const curves = figureRuns(o.out, rows);
  if (curves.length > 0) {
    const title = `Validation loss, rnn size ${p.rnnSize}, ${formatChars(p.steps * p.batchSize * p.seqLength)} characters per run`;
    writeFileSync(join(o.out, 'curves.svg'), plotLossCurves(curves, { x: 'chars', curves: 'val', title }));
    io.out(plotLossCurvesAscii(curves, { x: 'chars', curves: 'val' }));
  }
  io.out(md);
  io.err.write(`wrote ${join(o.out, 'results.md')}, results.json${curves.length > 0 ? ' and curves.svg' : ''}\n`);
  return results;
}

/** The runs' validation curves as `plot` draws them, from their newest checkpoints. */
function figureRuns(out: string, rows: RunResult[]): LossRun[] {
  return rows
    .filter((r) => r.validations > 0 && r.checkpoint !== null)
    .map((r) => {
      const ck = loadCheckpoint(join(out, r.checkpoint!));
      const drop = r.dropout > 0 ? `dropout ${r.dropout}` : 'no dropout';
      const tie = r.model === 'grid_lstm' && !r.tieWeights ? ' untied' : '';
      return lossRunFromCheckpoint(ck, { x: 'chars', label: `${r.id}: ${r.model} ${r.numLayers}×${r.rnnSize}${tie}, ${drop}` });
    });
}

const f4 = (x: number | null) => (x === null ? '—' : x.toFixed(4));
const f3 = (x: number | null) => (x === null ? '—' : x.toFixed(3));

/** results.md: the table, the figure, the findings beside the seed's, the protocol and the commands. */
export function resultsMarkdown(r: Results): string {
  const p = r.protocol;
  const L: string[] = [];
  L.push('# Depth experiment: results', '');
  L.push(
    `${r.complete ? 'Complete' : 'Incomplete (stopped; run the same command again to finish it)'}; written ${r.date}. ` +
      `Machine: ${r.machine.cores} × ${r.machine.cpu}, Node ${r.machine.node}. ` +
      `Losses are validation losses over the whole val split, in nats per character (bits = nats ÷ ln 2).`,
    '',
  );
  const columns = ['run', 'model', 'dropout', 'parameters', 'best val (nats)', 'best val (bits)', 'final val (nats)', 'final val (bits)'];
  columns.push('characters seen', 'wall time', 'training chars/s');
  L.push(`| ${columns.join(' | ')} |`, `| --- | --- | --- |${' ---: |'.repeat(columns.length - 3)}`);
  for (const x of r.runs) {
    const tie = x.model === 'grid_lstm' ? (x.tieWeights ? ' tied' : ' untied') : '';
    const status = x.status === 'done' ? '' : ` (${x.status})`;
    const cells = [`${x.id}${status}`, `${x.model} ${x.numLayers}×${x.rnnSize}${tie}`, String(x.dropout), nf(x.parameters)];
    cells.push(f4(x.bestValLoss), f3(x.bestValBits), f4(x.finalValLoss), f3(x.finalValBits), nf(x.charsSeen), formatWall(x.wallSeconds));
    cells.push(x.charsPerSecond === null ? '—' : nf(Math.round(x.charsPerSecond)));
    L.push(`| ${cells.join(' | ')} |`);
  }
  L.push('');
  const u = r.unigramValLoss;
  L.push(`A model that knows only how often each character occurs scores ${u.toFixed(4)} nats/char on this val split`);
  L.push(`(${(u / Math.LN2).toFixed(3)} bits).`, '');
  if (r.runs.some((x) => x.validations > 0)) L.push('![The validation loss of every run against the characters it has trained on](curves.svg)', '');
  L.push('## Beside the seed', '');
  L.push(
    "The seed trained 1000 units per layer on enwik8 (100M characters); its numbers are from its README. Here: the runs' best validation losses. " +
      `A run "did not train" when its best validation loss stays above ${STALLED_FRACTION * 100}% of the loss of character frequencies alone.`,
    '',
  );
  L.push('| finding | seed | here (seed ' + (r.comparisons.map((c) => c.seed).join(', ') || '—') + ') |', '| --- | --- | --- |');
  const each = (f: (c: Comparison) => string) => (r.comparisons.length === 0 ? '—' : r.comparisons.map(f).join('; '));
  const pct = (x: number | null) => (x === null ? '—' : `${Math.abs(x).toFixed(2)}% ${x >= 0 ? 'lower' : 'higher'}`);
  L.push(
    `| best grid vs best stacked, dropout 0.25 | grid-6 4.61% lower than stacked-3 | ${each((c) =>
      c.bestGrid && c.bestStacked ? `${c.bestGrid.id} ${pct(c.gridLowerPercent)} than ${c.bestStacked.id}` : '—',
    )} |`,
  );
  L.push(`| grid-6 vs stacked-3, dropout 0.25 | 4.61% lower | ${each((c) => pct(c.grid6LowerThanStacked3Percent))} |`);
  for (const [id, seedSays] of [
    ['stacked-6-nodrop', 'did not train: validation loss flat at about 3.53'],
    ['grid-6-nodrop', 'trained easily'],
  ]) {
    L.push(
      `| ${id} | ${seedSays} | ${each((c) => {
        const n = c.noDropout.find((x) => x.id.startsWith(id));
        return n ? `${n.stalled ? 'did not train' : 'trained'}: best ${n.bestValLoss.toFixed(4)}` : '—';
      })} |`,
    );
  }
  L.push('', '## Protocol', '');
  const b = r.corpus.batches;
  L.push(
    `Every run: rnn size ${p.rnnSize}, ${nf(p.steps)} steps of ${p.batchSize} × ${p.seqLength} characters ` +
      `(${nf(p.steps * p.batchSize * p.seqLength)} characters), RMSprop (decay 0.95) with learning rate ${p.learningRate}, ` +
      "char-rnn's decay of ×0.97 per epoch after 10 epochs and gradient clipping at 5, " +
      `seed ${DEFAULT_TRAIN_OPTIONS.seed} (a run named NAME-seedS: seed S). ` +
      `Validation every ${nf(p.evalValEvery)} steps and at the end over all ${b.val} batches of the val split. ` +
      `Corpus: ${p.data === null ? 'the built-in one (State of the Union addresses)' : basename(p.data)}` +
      `${p.dataChars !== null ? `, its first ${nf(p.dataChars)} characters` : ''}: ` +
      `${nf(r.corpus.characters)} characters, vocabulary ${r.corpus.vocabulary}, ` +
      `${b.train}/${b.val}/${b.test} train/val/test batches (${p.trainFrac}/${p.valFrac}).`,
    '',
  );
  L.push('Commands:', '');
  for (const i of r.invocations) L.push(`- ${i.date}: \`${i.command}\``);
  L.push('');
  return L.join('\n');
}
