/**
 * The playground's training worker: it owns the model and runs the library's Trainer (the
 * same steps, validation and learning-rate decay as `grid-lstm train`) in slices of about 50 ms,
 * so a pause, a sample or a save is answered between two steps. With more than one thread it is
 * the coordinator of the library's Web Workers (threads need a cross-origin isolated page: a
 * page's main thread may not wait on shared memory, a worker may).
 *
 * Messages: web/protocol.ts. Nothing here touches the page; everything goes back as messages.
 */
import {
  DEFAULT_TRAIN_OPTIONS,
  type CheckpointContents,
  type Kernels,
  type Model,
  type TrainOptions,
  Trainer,
  type Vocab,
  browserThreads,
  checkpointBytes,
  encode,
  evaluateIds,
  loadWasmKernels,
  paramCount,
  parseCheckpoint,
  sample,
  trace,
  traceKinds,
} from 'grid-lstm';
import type { FromWorker, ModelInfo, RunConfig, RunState, TextSource, ToWorker, TraceLayer } from './protocol.js';

/** The worker's global scope, as far as it is used here (the page's DOM types are in scope). */
interface WorkerScope {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
}
const scope = self as unknown as WorkerScope;
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

/** The training run, or null. */
let trainer: Trainer | null = null;
/** A model loaded from a checkpoint (when there is no run), and the file's bytes as uploaded. */
let loaded: { ck: CheckpointContents; name: string; bytes: ArrayBuffer } | null = null;
let runState: RunState = 'idle';
/** Where the run's model comes from, as the page shows it. */
let origin = 'trained here';
let autoSample = { seconds: 4, temperature: 0.8 };
let lastSampleAt = 0;
/** Steps not yet reported, and the recent ones for the speed. */
let unreported: [number, number][] = [];
let lastReportAt = 0;
const recent: { at: number; chars: number }[] = [];

/** Fresh kernels for each model: a run's memory goes with it when the next one starts. */
async function kernels(): Promise<Kernels> {
  return loadWasmKernels();
}

function options(config: RunConfig, src: TextSource): TrainOptions {
  return {
    ...DEFAULT_TRAIN_OPTIONS,
    model: config.model,
    numLayers: config.numLayers,
    rnnSize: config.rnnSize,
    tieWeights: config.tieWeights,
    dropout: config.dropout,
    learningRate: config.learningRate,
    batchSize: config.batchSize,
    seqLength: config.seqLength,
    threads: config.threads,
    evalValEvery: config.evalValEvery,
    seed: config.seed,
    data: src.name,
    savefile: 'playground',
    log: 'none',
  };
}

function info(model: Model, vocab: Vocab, origin: string): ModelInfo {
  const c = model.config;
  return { model: c.model, numLayers: c.numLayers, rnnSize: c.rnnSize, tieWeights: c.tieWeights, vocabSize: vocab.chars.length, params: paramCount(c), origin };
}

/** The model that samples, traces and evaluates: the run's, else the loaded one. */
function current(): { model: Model; vocab: Vocab } | null {
  if (trainer) return { model: trainer.model, vocab: trainer.vocab };
  if (loaded) return { model: loaded.ck.model, vocab: loaded.ck.vocab };
  return null;
}

function setState(state: RunState, message?: string): void {
  runState = state;
  post({ type: 'state', state, message });
}

/** The page's names for the command line's options, in the library's messages. */
const FIELDS: [RegExp, string][] = [
  [/--data (\S+?)(:?\s)/g, '$1$2'],
  [/--batch-size/g, 'batch size'],
  [/--seq-length/g, 'seq length'],
  [/--learning-rate/g, 'learning rate'],
  [/--rnn-size/g, 'size'],
  [/--num-layers/g, 'layers'],
  [/--dropout/g, 'dropout'],
  [/--threads/g, 'threads'],
  [/--grad-clip/g, 'grad clip'],
  [/--eval-val-every/g, 'validate every'],
  // The page has no fields for the split: it says what it is.
  [/--train-frac (\S+) --val-frac (\S+?)(,?) /g, "$1 of the text for training and $2 for validation$3 "],
  [/(\d+)·B·T is at most/g, '$1 × batch size × seq length is at most'],
  [/batch size (\d+) seq length (\d+)/g, 'batch size $1 and seq length $2'],
  // A checkpoint is uploaded here, a file (not a directory).
  [/pass a \.safetensors file that grid-lstm train wrote, or the directory holding them/g, 'load a .safetensors file that grid-lstm train or this page saved'],
];

function message(e: unknown): string {
  let m = e instanceof Error ? e.message : String(e);
  for (const [re, to] of FIELDS) m = m.replace(re, to);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Training: slices of steps between messages

/**
 * Each start() is a new run: a tick of an earlier run (still queued when the new one begins)
 * must not step the new trainer, least of all while its threads are starting.
 */
let generation = 0;
/** The run whose tick is queued (at most one at a time), or -1. */
let queuedFor = -1;
const tick = new MessageChannel();
tick.port1.onmessage = (ev: MessageEvent<number>) => {
  if (ev.data === queuedFor) queuedFor = -1;
  if (ev.data === generation) slice();
};
function schedule(): void {
  if (queuedFor === generation) return;
  queuedFor = generation;
  tick.port2.postMessage(generation);
}

function slice(): void {
  const t = trainer;
  if (!t || runState !== 'training') return;
  const o = t.options;
  const t0 = performance.now();
  try {
    do {
      if (t.iteration >= t.totalIterations) {
        report(true);
        setState('done', `all ${t.totalIterations} steps done (${o.maxEpochs} epochs)`);
        return;
      }
      const s = t.step();
      unreported.push([s.iteration, s.loss]);
      // As `grid-lstm train` (and char-rnn): a loss above 3× the run's first has blown up.
      const first = t.history.train[0][1];
      if (s.loss > 3 * first) {
        report(true);
        t.close();
        setState('failed', `At step ${s.iteration} the loss ${s.loss.toFixed(4)} exceeds 3× the first loss (${first.toFixed(4)}): try a lower learning rate (now ${o.learningRate}).`);
        return;
      }
      recent.push({ at: performance.now(), chars: o.batchSize * o.seqLength });
      if (s.iteration % o.evalValEvery === 0 || s.iteration === t.totalIterations) {
        report(true);
        const valLoss = t.evaluate('val');
        t.history.val.push([t.iteration, valLoss]);
        if (t.bestValLoss === null || valLoss < t.bestValLoss) t.bestValLoss = valLoss;
        post({ type: 'val', iteration: t.iteration, loss: valLoss });
      }
    } while (performance.now() - t0 < 50);
  } catch (e) {
    report(true);
    t.close();
    setState('failed', message(e));
    return;
  }
  report(false);
  if (autoSample.seconds > 0 && performance.now() - lastSampleAt >= autoSample.seconds * 1000) {
    lastSampleAt = performance.now();
    const text = sample(t.model, t.vocab, { length: 240, temperature: autoSample.temperature, seed: t.iteration });
    post({ type: 'autoSample', iteration: t.iteration, temperature: autoSample.temperature, text });
  }
  schedule();
}

/** Sends the steps since the last report (at most every 150 ms unless `now`). */
function report(now: boolean): void {
  const t = trainer;
  const at = performance.now();
  if (!t || unreported.length === 0 || (!now && at - lastReportAt < 150)) return;
  while (recent.length > 1 && at - recent[0].at > 2000) recent.shift();
  let charsPerSecond = 0;
  if (recent.length > 1) {
    const chars = recent.slice(1).reduce((a, r) => a + r.chars, 0);
    charsPerSecond = chars / ((recent[recent.length - 1].at - recent[0].at) / 1000);
  }
  post({ type: 'progress', steps: unreported, iteration: t.iteration, epoch: t.epoch, learningRate: t.optimizer.learningRate, charsPerSecond });
  unreported = [];
  lastReportAt = at;
}

function drop(): void {
  trainer?.close();
  trainer = null;
  unreported = [];
  recent.length = 0;
}

/**
 * A new run on `src`. `fromLoaded`: from the loaded checkpoint's weights (the command line's
 * --init-from: its model shape and vocabulary, the page's other options, a new run); the text
 * must use only characters of its vocabulary.
 */
async function start(src: TextSource, config: RunConfig, fromLoaded: boolean): Promise<void> {
  const from = fromLoaded ? loaded : null;
  if (fromLoaded && !from) {
    setState('failed', 'there is no loaded checkpoint to train from');
    return;
  }
  drop();
  generation++;
  // Before the first await: until the threads run, nothing may step (see slice()).
  setState('starting');
  try {
    trainer = Trainer.fromText(src.text, options(config, src), { kernels: await kernels(), initFrom: from?.ck });
    // More than one thread: the workers start while this worker's event loop turns.
    await trainer.startThreads();
  } catch (e) {
    drop();
    setState('failed', message(e));
    // A checkpoint that could not be trained from stays loaded.
    post({ type: 'model', info: loaded ? info(loaded.ck.model, loaded.ck.vocab, loaded.name) : null });
    return;
  }
  loaded = null;
  origin = from ? `trained here from ${from.name}` : 'trained here';
  const t = trainer;
  post({
    type: 'started',
    info: info(t.model, t.vocab, origin),
    threads: t.threads,
    trainBatches: t.loader.splitSizes.train,
    valBatches: t.loader.splitSizes.val,
    totalIterations: t.totalIterations,
    charsPerStep: t.options.batchSize * t.options.seqLength,
  });
  post({ type: 'model', info: info(t.model, t.vocab, origin) });
  lastSampleAt = performance.now();
  setState('training');
  schedule();
}

// ---------------------------------------------------------------------------------------------
// The speed estimate: a few real steps of the configuration, on the text

let pendingEstimate: Extract<ToWorker, { type: 'estimate' }> | null = null;

async function estimate(): Promise<void> {
  const m = pendingEstimate;
  pendingEstimate = null;
  if (!m) return;
  let probe: Trainer | null = null;
  try {
    probe = Trainer.fromText(m.source.text, { ...options(m.config, m.source), maxSteps: 4 }, { kernels: await kernels() });
    await probe.startThreads();
    // The first step warms up; the fastest of the next ones counts (a step slower than a second:
    // that one, so that a large model does not keep the worker busy measuring).
    let best = probe.step().seconds;
    if (best < 1) {
      best = Infinity;
      const t0 = performance.now();
      for (let k = 0; k < 3 && (k === 0 || performance.now() - t0 < 1500); k++) best = Math.min(best, probe.step().seconds);
    }
    const c = probe.model.config;
    post({ type: 'estimate', id: m.id, params: paramCount(c), vocabSize: c.vocabSize, charsPerSecond: (m.config.batchSize * m.config.seqLength) / best, threads: probe.threads });
  } catch (e) {
    post({ type: 'estimate', id: m.id, params: 0, vocabSize: 0, charsPerSecond: 0, threads: 0, error: message(e) });
  } finally {
    probe?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

function traceOf(model: Model, vocab: Vocab, text: string) {
  const chars = Array.from(text);
  const known = chars.filter((ch) => vocab.index.has(ch));
  const dropped = [...new Set(chars.filter((ch) => !vocab.index.has(ch)))];
  if (known.length < 2) throw new Error('the text needs at least 2 characters the model knows');
  const r = trace(model, encode(known.join(''), vocab));
  const kinds = traceKinds(model.config.model);
  const copy = (cell: Partial<Record<string, ArrayLike<number>>>) => {
    const out: Record<string, Float32Array> = {};
    for (const k of kinds) if (cell[k]) out[k] = Float32Array.from(cell[k]!);
    return out;
  };
  const layers: TraceLayer[] = r.layers.map((l) => ({ time: copy(l.time), depth: l.depth ? copy(l.depth) : null }));
  return { chars: known, loss: Float32Array.from(r.loss), layers, rnnSize: model.config.rnnSize, model: model.config.model, dropped };
}

function transferables(layers: TraceLayer[]): Transferable[] {
  const out: Transferable[] = [];
  for (const l of layers) for (const cell of [l.time, l.depth]) if (cell) for (const a of Object.values(cell)) out.push(a.buffer);
  return out;
}

async function request(m: Extract<ToWorker, { id: number }>): Promise<void> {
  const fail = (error: string) => post({ type: 'reply', id: m.id, ok: false, error });
  try {
    if (m.type === 'load') {
      const ck = parseCheckpoint(new Uint8Array(m.bytes), m.name, { kernels: await kernels() });
      if (ck.task.kind !== 'char') throw new Error(`${m.name}: a checkpoint of the addition task; the playground works with text models`);
      drop();
      loaded = { ck, name: m.name, bytes: m.bytes.slice(0) };
      setState('idle');
      post({ type: 'model', info: info(ck.model, ck.vocab, m.name) });
      post({ type: 'reply', id: m.id, ok: true, name: m.name });
      return;
    }
    const cur = current();
    if (!cur) return fail('there is no model yet: start training or load a checkpoint');
    switch (m.type) {
      case 'sample': {
        const r = m.request;
        const text = sample(cur.model, cur.vocab, { length: r.length, temperature: r.temperature, primetext: r.primetext, argmax: r.argmax, seed: r.seed });
        post({ type: 'reply', id: m.id, ok: true, sample: text });
        return;
      }
      case 'evalText': {
        const chars = Array.from(m.text);
        const unknown = [...new Set(chars.filter((ch) => !cur.vocab.index.has(ch)))];
        if (unknown.length > 0) return fail(`the model's vocabulary does not contain ${unknown.slice(0, 5).map((c) => JSON.stringify(c)).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}`);
        const loss = evaluateIds(cur.model, encode(m.text, cur.vocab));
        post({ type: 'reply', id: m.id, ok: true, loss });
        return;
      }
      case 'trace': {
        const t = traceOf(cur.model, cur.vocab, m.text);
        post({ type: 'reply', id: m.id, ok: true, trace: t }, [t.loss.buffer, ...transferables(t.layers)]);
        return;
      }
      case 'save': {
        let buffer: ArrayBuffer;
        let name: string;
        if (trainer) {
          // A run of this page (trained here, or on from a loaded checkpoint): its own checkpoint,
          // with the optimizer and the carried state, as `grid-lstm train` writes it (resumable).
          const t = trainer;
          const bytes = checkpointBytes(t.model, t.vocab, { training: t.trainingState(), optimizer: t.optimizer, carry: t.carry, task: t.taskSpec() });
          buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
          const val = t.history.val.at(-1);
          name = `lm_playground_${t.model.config.model}_epoch${t.epoch.toFixed(2)}_${val ? val[1].toFixed(4) : 'noval'}.safetensors`;
        } else {
          // The loaded checkpoint, untouched: the uploaded file byte for byte (written anew it
          // would lose its optimizer and carried state, and saved over the original, --resume).
          buffer = loaded!.bytes.slice(0);
          name = loaded!.name;
        }
        post({ type: 'reply', id: m.id, ok: true, bytes: buffer, name }, [buffer]);
        return;
      }
    }
  } catch (e) {
    fail(message(e));
  }
}

/**
 * The steps that wait (loading kernels, starting threads) run one after another, never
 * interleaved: a start, an estimate or a load waits for the one before it.
 */
let queue: Promise<void> = Promise.resolve();
const inTurn = (op: () => Promise<void>) => {
  queue = queue.then(op, op);
};

scope.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case 'start':
      inTurn(() => start(m.source, m.config, m.fromLoaded));
      return;
    case 'pause':
      if (runState === 'training') {
        report(true);
        setState('paused');
      }
      return;
    case 'resume':
      if (runState === 'paused' && trainer) {
        recent.length = 0;
        setState('training');
        schedule();
      }
      return;
    case 'reset':
      inTurn(async () => {
        drop();
        loaded = null;
        setState('idle');
        post({ type: 'model', info: null });
      });
      return;
    case 'autoSample':
      autoSample = { seconds: m.seconds, temperature: m.temperature };
      return;
    case 'estimate':
      // Only the newest counts; none while a run is going (it shows its own speed).
      pendingEstimate = m;
      inTurn(() => (runState === 'training' || runState === 'paused' ? Promise.resolve() : estimate()));
      return;
    case 'load':
      inTurn(() => request(m));
      return;
    default:
      void request(m);
  }
};

// Say which kernels this browser runs (relaxed SIMD where it validates, as in Node).
kernels().then(
  (k) => {
    const t = browserThreads();
    post({ type: 'ready', kernels: k.name, isolated: t.isolated, cores: t.cores, threads: t.threads, why: t.why });
  },
  (e) => setState('failed', `cannot load the WebAssembly kernels: ${message(e)}`),
);
