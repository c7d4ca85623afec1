/**
 * The playground page: controls, the live views, and the training worker (web/train-worker.ts)
 * that does all the computing. The page never runs a step itself, so it stays responsive.
 *
 * For tests and scripts it sets `window.playground` (a snapshot of what the page shows) and
 * `document.body.dataset` (ready, state).
 */
import { buildVocab, defaultBrowserThreads, normalizeConfig, paramCount, type ModelKind } from 'grid-lstm';
import { LossChart } from './chart.js';
import { KIND_LABEL, type Selection, drawHeatmap, drawText } from './cells.js';
import type { FromWorker, ModelInfo, RunConfig, RunState, TextSource, ToWorker, TraceReply } from './protocol.js';

const $ = <T extends HTMLElement = HTMLInputElement>(id: string) => document.getElementById(id) as T;
const worker = new Worker(new URL('./train-worker.ts', import.meta.url), { type: 'module' });
const send = (m: ToWorker, transfer: Transferable[] = []) => worker.postMessage(m, transfer);

const chart = new LossChart($('chart'));
let state: RunState = 'idle';
let model: ModelInfo | null = null;
let env = { kernels: '', isolated: false, cores: 1 };
let sampleText = '';
let sampleName = 'sotu-sample.txt';
let ownText = '';
let ownName = 'pasted.txt';
let lastAutoSample = '';
let lastEval: { loss: number; bpc: number; predictions: number } | null = null;
let lastVal: number | null = null;
let iteration = 0;
/**
 * After Train (anew) or Reset, until the new run's 'started': the worker may still send steps,
 * validations and samples of the run it is ending, which belong to no curve now.
 */
let ignoreRun = false;
let threadsUsed = 1;
let trace: TraceReply | null = null;

// ---------------------------------------------------------------------------------------------
// Requests with a reply

let nextId = 1;
const waiting = new Map<number, (m: Extract<FromWorker, { type: 'reply' }>) => void>();
/** A request without its id (Omit over each member of the union). */
type Request = Extract<ToWorker, { id: number }> extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never;
function ask(m: Request, transfer: Transferable[] = []): Promise<Extract<FromWorker, { type: 'reply' }>> {
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    send({ ...m, id } as ToWorker, transfer);
  });
}

// ---------------------------------------------------------------------------------------------
// Text

function source(): TextSource {
  const own = ($('own-text') as HTMLTextAreaElement).value;
  return document.querySelector<HTMLInputElement>('input[name=source]:checked')!.value === 'own'
    ? { text: own, name: own === ownText ? ownName : 'pasted.txt' }
    : { text: sampleText, name: sampleName };
}

let vocabCache: { text: string; size: number } | null = null;
function vocabSize(text: string): number {
  if (vocabCache?.text !== text) vocabCache = { text, size: text.length === 0 ? 0 : buildVocab(text).chars.length };
  return vocabCache.size;
}

function showTextStats(): void {
  const s = source();
  const n = s.text.length;
  $('text-stats').textContent = n === 0 ? 'No text yet.' : `${s.name}: ${n.toLocaleString('en')} characters, ${vocabSize(s.text)} distinct.`;
  configChanged();
}

function useOwnText(text: string, name: string): void {
  ownText = text;
  ownName = name;
  ($('own-text') as HTMLTextAreaElement).value = text;
  document.querySelector<HTMLInputElement>('input[name=source][value=own]')!.checked = true;
  showTextStats();
}

async function readFile(f: File): Promise<void> {
  const text = await f.text();
  if (text.length === 0) {
    $('text-stats').textContent = `${f.name} is empty: choose a text file with something in it.`;
    return;
  }
  useOwnText(text, f.name);
}

$('own-text').addEventListener('input', () => {
  document.querySelector<HTMLInputElement>('input[name=source][value=own]')!.checked = true;
  showTextStats();
});
for (const r of document.querySelectorAll<HTMLInputElement>('input[name=source]')) r.addEventListener('change', showTextStats);
$('text-file').addEventListener('change', () => {
  const f = ($('text-file') as HTMLInputElement).files?.[0];
  if (f) void readFile(f);
});
const drop = $('own-text');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('dragging');
});
drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('dragging');
  const f = e.dataTransfer?.files[0];
  if (f) void readFile(f);
});

// ---------------------------------------------------------------------------------------------
// The configuration, its parameter count and speed

function num(id: string): number {
  return Number(($(id) as HTMLInputElement).value);
}

/** The configuration, or a one-line message saying which field is wrong. */
function config(): RunConfig | string {
  const int = (id: string, name: string, lo: number, hi: number) => {
    const v = num(id);
    return Number.isInteger(v) && v >= lo && v <= hi ? v : `${name} must be a whole number from ${lo} to ${hi}`;
  };
  const c = {
    model: ($('model') as HTMLSelectElement).value as ModelKind,
    numLayers: int('num-layers', 'layers', 1, 16),
    rnnSize: int('rnn-size', 'size', 1, 1024),
    tieWeights: ($('tie-weights') as HTMLInputElement).checked,
    dropout: num('dropout'),
    learningRate: num('learning-rate'),
    batchSize: int('batch-size', 'batch size', 1, 1000),
    seqLength: int('seq-length', 'seq length', 1, 1000),
    threads: int('threads', 'threads', 1, Math.max(1, Number(($('threads') as HTMLInputElement).max))),
    evalValEvery: int('eval-every', 'validate every', 1, 1e9),
    seed: 123,
  };
  for (const v of Object.values(c)) if (typeof v === 'string' && v.includes(' must ')) return v;
  if (!(c.dropout >= 0 && c.dropout < 1)) return 'dropout must be a number from 0 to below 1';
  if (!(c.learningRate > 0) || !Number.isFinite(c.learningRate)) return 'learning rate must be a number > 0';
  return c as RunConfig;
}

let estimateId = 0;
let estimateTimer: ReturnType<typeof setTimeout> | undefined;
function configChanged(): void {
  ($('tie-label') as HTMLElement).hidden = ($('model') as HTMLSelectElement).value !== 'grid_lstm';
  const c = config();
  const s = source();
  const V = vocabSize(s.text);
  if (typeof c === 'string') {
    $('param-count').textContent = c;
    $('speed-estimate').textContent = '';
    return;
  }
  if (V < 2) {
    $('param-count').textContent = 'The text needs at least 2 distinct characters.';
    $('speed-estimate').textContent = '';
    return;
  }
  const P = paramCount(normalizeConfig({ model: c.model, vocabSize: V, rnnSize: c.rnnSize, numLayers: c.numLayers, tieWeights: c.tieWeights, dropout: c.dropout }));
  $('param-count').textContent = `${P.toLocaleString('en')} parameters (vocabulary ${V}).`;
  if (state === 'starting' || state === 'training' || state === 'paused') return;
  $('speed-estimate').textContent = 'Measuring the speed…';
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(() => {
    if (state === 'starting' || state === 'training' || state === 'paused') return;
    estimateId++;
    send({ type: 'estimate', id: estimateId, source: s, config: c });
  }, 300);
}
for (const id of ['model', 'num-layers', 'rnn-size', 'tie-weights', 'dropout', 'learning-rate', 'batch-size', 'seq-length', 'threads', 'eval-every']) {
  $(id).addEventListener('change', configChanged);
}

// ---------------------------------------------------------------------------------------------
// Train / pause / resume / reset

function setRunState(s: RunState, message?: string): void {
  state = s;
  document.body.dataset.state = s;
  const train = $('train') as HTMLButtonElement;
  const pause = $('pause') as HTMLButtonElement;
  pause.disabled = !(s === 'training' || s === 'paused');
  pause.textContent = s === 'paused' ? 'Resume' : 'Pause';
  ($('reset') as HTMLButtonElement).disabled = s === 'idle' && model === null;
  train.textContent = s === 'idle' ? 'Train' : 'Train anew';
  const text: Record<RunState, string> = {
    idle: model ? `A model is loaded (${model.origin}): sample from it below, or train a new one.` : 'Not started.',
    starting: 'Starting…',
    training: `Training on ${threadsUsed} thread${threadsUsed === 1 ? '' : 's'}…`,
    paused: 'Paused.',
    done: 'Done.',
    failed: 'Stopped.',
  };
  $('run-status').textContent = message ? `${text[s]} ${message}` : text[s];
  $('run-status').classList.toggle('error', s === 'failed');
}

/** Empties the views of a run. */
function clearRun(label = ''): void {
  chart.clear(label);
  lastVal = null;
  iteration = 0;
  for (const id of ['stat-iteration', 'stat-epoch', 'stat-train', 'stat-val', 'stat-speed', 'stat-lr']) $(id).textContent = '–';
  $('auto-sample').textContent = '';
  $('auto-sample-label').textContent = 'A sample appears every few seconds while it trains.';
  lastAutoSample = '';
  trace = null;
  $('trace-chars').replaceChildren();
  $('trace-focus').textContent = '';
}

function train(fromLoaded: boolean): void {
  const c = config();
  const s = source();
  if (typeof c === 'string') return setRunState('failed', c);
  if (s.text.length === 0) return setRunState('failed', 'There is no text: paste some, drop a file, or use the built-in sample.');
  clearTimeout(estimateTimer);
  const m = fromLoaded && model ? model : c;
  clearRun(`${m.model} ${m.numLayers}×${m.rnnSize}${fromLoaded ? ' (from the checkpoint)' : ''}`);
  $('run-status').textContent = 'Starting…';
  ignoreRun = true;
  send({ type: 'start', source: s, config: c, fromLoaded });
}
$('train').addEventListener('click', () => train(false));
$('train-from').addEventListener('click', () => train(true));
$('pause').addEventListener('click', () => send({ type: state === 'paused' ? 'resume' : 'pause' }));
$('reset').addEventListener('click', () => {
  send({ type: 'reset' });
  ignoreRun = true;
  clearRun();
  $('trace-status').textContent = 'Start training (or load a checkpoint) to look inside.';
});

// ---------------------------------------------------------------------------------------------
// Automatic samples

function autoSampleSettings(): void {
  const t = num('auto-temp');
  $('auto-temp-out').textContent = t.toFixed(2);
  send({ type: 'autoSample', seconds: Number(($('auto-every') as HTMLSelectElement).value), temperature: t });
}
$('auto-temp').addEventListener('input', autoSampleSettings);
$('auto-every').addEventListener('change', autoSampleSettings);

// ---------------------------------------------------------------------------------------------
// Cells and gates

function selection(): Selection {
  return {
    layer: Number(($('trace-layer') as HTMLSelectElement).value) || 0,
    lstm: ($('trace-lstm') as HTMLSelectElement).value as 'time' | 'depth',
    kind: ($('trace-kind') as HTMLSelectElement).value || 'h',
    unit: Math.max(0, Math.min((trace?.rnnSize ?? 1) - 1, Math.floor(num('trace-unit')) || 0)),
  };
}

function fillTraceControls(tr: TraceReply): void {
  const layer = $('trace-layer') as HTMLSelectElement;
  if (layer.options.length !== tr.layers.length) {
    const keep = Math.min(Number(layer.value) || 0, tr.layers.length - 1);
    layer.replaceChildren(...tr.layers.map((_, l) => new Option(String(l + 1), String(l))));
    layer.value = String(keep);
  }
  ($('trace-lstm-label') as HTMLElement).hidden = tr.model !== 'grid_lstm';
  if (tr.model !== 'grid_lstm') ($('trace-lstm') as HTMLSelectElement).value = 'time';
  const kinds = Object.keys(tr.layers[0].time);
  const kind = $('trace-kind') as HTMLSelectElement;
  if ([...kind.options].map((o) => o.value).join() !== kinds.join()) {
    const keep = kinds.includes(kind.value) ? kind.value : kinds.includes('c') ? 'c' : 'h';
    kind.replaceChildren(...kinds.map((k) => new Option(KIND_LABEL[k] ?? k, k)));
    kind.value = keep;
  }
  ($('trace-unit') as HTMLInputElement).max = String(tr.rnnSize - 1);
}

function focusChar(p: number): void {
  if (!trace) return;
  const s = selection();
  const v = ($('trace-chars').children[p] as HTMLElement | undefined)?.dataset.value;
  const ch = JSON.stringify(trace.chars[p]);
  const next = p + 1 < trace.chars.length ? `; loss of predicting ${JSON.stringify(trace.chars[p + 1])} next: ${trace.loss[p].toFixed(3)} nats` : '';
  $('trace-focus').textContent = `position ${p} ${ch}: ${KIND_LABEL[s.kind]} of unit ${s.unit} = ${v ?? '–'}${next}`;
}

function drawTrace(): void {
  if (!trace) return;
  const s = selection();
  drawText($('trace-chars'), trace, s, focusChar);
  drawHeatmap($('trace-heat') as HTMLCanvasElement, trace, s);
  const where = trace.model === 'grid_lstm' ? ` of the ${s.lstm} LSTM` : '';
  $('trace-heat-caption').textContent = `${KIND_LABEL[s.kind]}${where}, unit ${s.unit}, at every layer (rows, top layer first) and position (columns)${trace.model === 'grid_lstm' ? ': depth against time' : ''}.`;
}

let tracing = false;
async function runTrace(): Promise<void> {
  if (tracing || !model) return;
  const text = ($('trace-text') as HTMLInputElement).value;
  tracing = true;
  const r = await ask({ type: 'trace', text });
  tracing = false;
  if (!r.ok) {
    $('trace-status').textContent = r.error;
    return;
  }
  trace = r.trace!;
  fillTraceControls(trace);
  const dropped = trace.dropped.length > 0 ? ` Left out, not in the model's vocabulary: ${trace.dropped.map((c) => JSON.stringify(c)).join(' ')}.` : '';
  $('trace-status').textContent = `Step ${iteration}: ${trace.chars.length} characters. Hover or focus a character (arrow keys move) for its value.${dropped}`;
  drawTrace();
}
$('trace-run').addEventListener('click', () => void runTrace());
for (const id of ['trace-layer', 'trace-lstm', 'trace-kind', 'trace-unit']) $(id).addEventListener('change', drawTrace);
const moveUnit = (d: number) => {
  const u = $('trace-unit') as HTMLInputElement;
  const N = trace?.rnnSize ?? 1;
  u.value = String((((Number(u.value) || 0) + d) % N + N) % N);
  drawTrace();
};
$('unit-prev').addEventListener('click', () => moveUnit(-1));
$('unit-next').addEventListener('click', () => moveUnit(1));
setInterval(() => {
  if (state === 'training' && ($('trace-auto') as HTMLInputElement).checked) void runTrace();
}, 5000);

// ---------------------------------------------------------------------------------------------
// Checkpoints, sampling, loss on a text

$('save').addEventListener('click', async () => {
  const r = await ask({ type: 'save' });
  if (!r.ok) {
    $('model-info').textContent = r.error;
    return;
  }
  const url = URL.createObjectURL(new Blob([r.bytes!], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = r.name!;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
});

$('load-file').addEventListener('change', async () => {
  const input = $('load-file') as HTMLInputElement;
  const f = input.files?.[0];
  if (!f) return;
  const bytes = await f.arrayBuffer();
  const r = await ask({ type: 'load', name: f.name, bytes }, [bytes]);
  input.value = '';
  if (!r.ok) $('model-info').textContent = r.error;
});

$('sample-run').addEventListener('click', async () => {
  const temperature = num('temperature');
  const length = num('sample-length');
  const out = $('sample-out');
  out.classList.remove('error');
  const r = await ask({
    type: 'sample',
    request: { length, temperature, primetext: ($('primetext') as HTMLInputElement).value, argmax: ($('argmax') as HTMLInputElement).checked, seed: num('sample-seed') },
  });
  if (r.ok) {
    out.textContent = '';
    const prime = document.createElement('strong');
    prime.textContent = ($('primetext') as HTMLInputElement).value;
    out.append(prime, r.sample!);
    out.dataset.sample = r.sample!;
  } else {
    out.textContent = r.error;
    out.classList.add('error');
  }
});

$('eval-run').addEventListener('click', async () => {
  const r = await ask({ type: 'evalText', text: ($('eval-text') as HTMLTextAreaElement).value });
  const out = $('eval-out');
  out.classList.toggle('error', !r.ok);
  if (r.ok) {
    lastEval = r.loss!;
    out.textContent = `${r.loss!.loss.toFixed(6)} nats/char (${r.loss!.bpc.toFixed(4)} bits/char) over ${r.loss!.predictions} predictions`;
    out.dataset.loss = String(r.loss!.loss);
  } else out.textContent = r.error;
});

function showModel(info: ModelInfo | null): void {
  model = info;
  for (const id of ['save', 'sample-run', 'eval-run']) ($(id) as HTMLButtonElement).disabled = info === null;
  $('model-info').textContent = info
    ? `${info.model} ${info.numLayers}×${info.rnnSize}${info.model === 'grid_lstm' ? (info.tieWeights ? ', depth weights tied' : ', depth weights untied') : ''}, vocabulary ${info.vocabSize}, ${info.params.toLocaleString('en')} parameters — ${info.origin}.`
    : 'No model yet.';
  ($('reset') as HTMLButtonElement).disabled = state === 'idle' && info === null;
  // A loaded checkpoint (not a run of this page) can be trained from.
  ($('train-from') as HTMLButtonElement).hidden = !(info && !info.origin.startsWith('trained here'));
  if (info && ($('trace-text') as HTMLInputElement).value === '') ($('trace-text') as HTMLInputElement).value = defaultTraceText();
  if (info && state === 'idle') {
    setRunState('idle');
    void runTrace();
  }
}

function defaultTraceText(): string {
  const t = source().text;
  const from = Math.max(0, Math.floor(t.length * 0.97));
  const cut = t.slice(from).search(/[.!?]\s+[A-Z]/);
  const start = cut >= 0 ? from + cut + 2 : from;
  return t.slice(start, start + 160).replace(/\s+/g, ' ');
}

// ---------------------------------------------------------------------------------------------
// Messages from the worker

worker.onmessage = (ev: MessageEvent<FromWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case 'ready': {
      env = { kernels: m.kernels, isolated: m.isolated, cores: m.cores };
      const threads = $('threads') as HTMLInputElement;
      threads.max = String(m.threads);
      threads.disabled = m.threads === 1;
      // As the command line: as many threads as the cores (at most 8) where the step is big enough to share.
      const c = config();
      threads.value = String(typeof c === 'string' ? 1 : defaultBrowserThreads(c));
      // The library's reason (browserThreads().why), and how to get threads where there are none.
      $('threads-note').textContent = `${m.why[0].toUpperCase()}${m.why.slice(1)}.${m.isolated ? '' : ' npm run playground serves it with them.'}`;
      $('env').textContent = `Kernels: ${m.kernels}. ${m.isolated ? `Cross-origin isolated: threads available (${m.cores} cores).` : 'Not cross-origin isolated: one thread.'}`;
      document.body.dataset.ready = '1';
      configChanged();
      return;
    }
    case 'estimate':
      if (m.id !== estimateId) return;
      $('speed-estimate').textContent = m.error ? m.error : `About ${Math.round(m.charsPerSecond).toLocaleString('en')} characters/s on ${m.threads} thread${m.threads === 1 ? '' : 's'} (measured here).`;
      $('speed-estimate').classList.toggle('error', Boolean(m.error));
      return;
    case 'started':
      ignoreRun = false;
      threadsUsed = m.threads;
      $('speed-estimate').textContent = `${m.trainBatches} training and ${m.valBatches} validation batches of ${m.charsPerStep} characters; ${m.totalIterations} steps in all (${Math.round(m.totalIterations / m.trainBatches)} epochs).`;
      return;
    case 'progress': {
      if (ignoreRun) return;
      chart.addSteps(m.steps);
      iteration = m.iteration;
      $('stat-iteration').textContent = String(m.iteration);
      $('stat-epoch').textContent = m.epoch.toFixed(2);
      $('stat-train').textContent = m.steps[m.steps.length - 1][1].toFixed(4);
      $('stat-speed').textContent = m.charsPerSecond > 0 ? Math.round(m.charsPerSecond).toLocaleString('en') : '–';
      $('stat-lr').textContent = m.learningRate.toPrecision(3);
      return;
    }
    case 'val':
      if (ignoreRun) return;
      lastVal = m.loss;
      chart.addVal(m.iteration, m.loss);
      $('stat-val').textContent = m.loss.toFixed(4);
      return;
    case 'autoSample':
      if (ignoreRun) return;
      lastAutoSample = m.text;
      $('auto-sample').textContent = m.text;
      $('auto-sample-label').textContent = `At step ${m.iteration}, temperature ${m.temperature.toFixed(2)}:`;
      return;
    case 'state':
      setRunState(m.state, m.message);
      return;
    case 'model':
      showModel(m.info);
      return;
    case 'reply':
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
      return;
  }
};
worker.onerror = (e) => setRunState('failed', `The training worker failed: ${e.message}`);

// ---------------------------------------------------------------------------------------------
// Start: the built-in sample

async function loadSample(): Promise<void> {
  try {
    // A missing file is an error (not a 404 page to train on).
    const get = async (file: string) => {
      const r = await fetch(`./${file}`);
      if (!r.ok) throw new Error(`HTTP ${r.status} for ${file}`);
      return r;
    };
    const [text, meta] = await Promise.all([get('sample.txt').then((r) => r.text()), get('sample.json').then((r) => r.json())]);
    sampleText = text;
    sampleName = `sotu-${meta.from}-${meta.to}.txt`;
    $('sample-desc').textContent = `${meta.speeches} State of the Union addresses, ${meta.from}–${meta.to} (${(meta.chars / 1000).toFixed(0)} kB)`;
  } catch (e) {
    $('sample-desc').textContent = `cannot load it (${(e as Error).message}): use your own text`;
  }
  showTextStats();
}
autoSampleSettings();
setRunState('idle');
void loadSample();

/** What the page shows, for tests and scripts. */
(window as unknown as { playground: unknown }).playground = {
  snapshot: () => ({
    state,
    env,
    iteration,
    model,
    threads: threadsUsed,
    train: chart.train.slice(),
    val: chart.val.slice(),
    lastVal,
    autoSample: lastAutoSample,
    lastEval,
  }),
};
