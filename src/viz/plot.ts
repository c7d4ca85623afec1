/**
 * Loss curves: the training and validation losses that checkpoints carry, drawn as a standalone
 * SVG figure or as a small plot for the terminal. Pure functions (no file system); the CLI's
 * `grid-lstm plot` (src/cli.ts) reads the checkpoints and writes the files.
 *
 *   const ck = loadCheckpoint('cv/lm_grid_lstm_epoch1.00_1.9498.safetensors');
 *   const svg = plotLossCurves([lossRunFromCheckpoint(ck, { x: 'epoch' })], { x: 'epoch', bits: true });
 *   console.log(plotLossCurvesAscii([lossRunFromCheckpoint(ck)]));
 *
 * What the figure shows, per run (one colour per run):
 * - the training loss of every step, which is noisy, as a thin translucent line after a centred
 *   moving average over `smoothing` (default 1%) of the run's steps (no lag: the window shrinks
 *   symmetrically at the ends, so the first point is the first step's loss);
 * - the validation loss, bold, with a marker at each evaluation.
 * Output is deterministic: the same runs and options give the same bytes.
 */
import type { TrainingState } from '../train/checkpoint-core.js';
import { splitCounts } from '../train/data-core.js';
import { ADDITION_EPOCH_BATCHES } from '../train/addition.js';

/** What the x axis counts: optimiser steps, epochs (passes over the train split), or training characters (steps × B × T). */
export type PlotXAxis = 'iteration' | 'epoch' | 'chars';

/** Which curves to draw. */
export type PlotCurves = 'both' | 'train' | 'val';

/** `auto`: transparent background, light colours with a `prefers-color-scheme: dark` override; `light`/`dark`: that palette on an opaque background. */
export type PlotTheme = 'auto' | 'light' | 'dark';

/** One run's losses, in nats per character, at x positions in the units of the x axis. */
export interface LossRun {
  /** Legend text, e.g. "grid_lstm 2×128 (demo)". */
  label: string;
  /** [x, loss] of every training step. */
  train: readonly (readonly [number, number])[];
  /** [x, loss] of every validation pass. */
  val: readonly (readonly [number, number])[];
}

/** Options shared by {@link plotLossCurves} and {@link plotLossCurvesAscii}. */
export interface LossPlotOptions {
  /** What the runs' x values count (it labels the axis). Default 'iteration'. */
  x?: PlotXAxis;
  /** Show bits per character (losses / ln 2) instead of nats. Default false. */
  bits?: boolean;
  /** Default 'both'. */
  curves?: PlotCurves;
  /**
   * Width of the centred moving average of the training curve, as a fraction of each run's
   * training points (rounded to an odd count; below 3 points no smoothing). Default 0.01; 0 draws
   * the raw per-step losses.
   */
  smoothing?: number;
  /** A title above the plot. Default none. */
  title?: string;
  /**
   * The y axis's title, for values other than losses (e.g. the addition task's accuracy,
   * {@link accuracyRunFromCheckpoint}). Default: the loss's, in nats or bits per character.
   */
  yTitle?: string;
}

export interface LossSvgOptions extends LossPlotOptions {
  /** Pixels. Default 720. */
  width?: number;
  /** Pixels (the legend takes some of it; grown when the legend would leave the plot less than 100). Default 440. */
  height?: number;
  /** Default 'auto'. */
  theme?: PlotTheme;
}

export interface LossAsciiOptions extends LossPlotOptions {
  /** Columns of the whole output, at least 40. Default 80. */
  width?: number;
  /** Rows of the plot area, at least 5. Default 16. */
  height?: number;
}

/** A checkpoint (or anything shaped like one) lacks what a plot needs; the message is one line. */
export class PlotInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlotInputError';
  }
}

/** The parts of a loaded checkpoint (CheckpointContents) that {@link lossRunFromCheckpoint} reads. */
export interface CheckpointLike {
  training: Pick<TrainingState, 'history' | 'options' | 'iteration' | 'epoch' | 'batches'> | null;
  model: { config: { model: string; rnnSize: number; numLayers: number; tieWeights?: boolean } };
}

/** "grid_lstm 2×128 (demo)": model, layers × size (" untied" for an untied grid), the run's --savefile. */
export function runLabel(ck: CheckpointLike): string {
  const c = ck.model.config;
  const untied = c.model === 'grid_lstm' && c.tieWeights === false ? ' untied' : '';
  const savefile = ck.training?.options?.savefile;
  return `${c.model} ${c.numLayers}×${c.rnnSize}${untied}${typeof savefile === 'string' && savefile !== '' ? ` (${savefile})` : ''}`;
}

/**
 * Training batches per epoch of the run a checkpoint comes from: the train split of its
 * `training.batches` with the run's --train-frac and --val-frac (as the trainer splits them),
 * or else iteration / epoch (the trainer saves epoch = iteration / batches per epoch).
 *
 * @throws PlotInputError when the checkpoint holds neither
 */
export function batchesPerEpoch(training: CheckpointLike['training']): number {
  if (!training) throw new PlotInputError('it holds no training state');
  const o = training.options ?? {};
  if ((o as { task?: unknown }).task === 'addition') return ADDITION_EPOCH_BATCHES; // (an endless stream: a nominal epoch)
  const { trainFrac, valFrac } = o as { trainFrac?: unknown; valFrac?: unknown };
  if (
    typeof training.batches === 'number' &&
    training.batches > 0 &&
    typeof trainFrac === 'number' &&
    typeof valFrac === 'number' &&
    trainFrac > 0 &&
    valFrac > 0 &&
    trainFrac + valFrac <= 1 + 1e-9
  ) {
    const n = splitCounts(training.batches, { trainFrac, valFrac }).train;
    if (n > 0) return n;
  }
  if (training.iteration > 0 && training.epoch > 0) {
    const n = Math.round(training.iteration / training.epoch);
    if (n > 0) return n;
  }
  throw new PlotInputError(
    'its training state records neither the batch count with --train-frac/--val-frac nor an epoch > 0, so iterations cannot be turned into epochs; plot with --x iteration',
  );
}

/**
 * A checkpoint's loss history as a run to plot, x in the units `x` asks for: iterations as
 * recorded, epochs (iteration / {@link batchesPerEpoch}) or training characters (iteration ×
 * the run's --batch-size × --seq-length).
 *
 * @throws PlotInputError when the checkpoint has no training state, an empty history, or lacks
 *   what the x axis needs
 */
export function lossRunFromCheckpoint(ck: CheckpointLike, options: { x?: PlotXAxis; label?: string } = {}): LossRun {
  const t = ck.training;
  if (!t) {
    throw new PlotInputError('holds no training history (it was saved without training state, e.g. by the library); plot checkpoints written by grid-lstm train');
  }
  if (t.history.train.length === 0 && t.history.val.length === 0) {
    throw new PlotInputError('its loss history is empty (saved before the first training step); plot a checkpoint from later in the run');
  }
  const x = options.x ?? 'iteration';
  let scale = 1;
  if (x === 'epoch') scale = 1 / batchesPerEpoch(t);
  else if (x === 'chars') {
    const { batchSize, seqLength } = (t.options ?? {}) as { batchSize?: unknown; seqLength?: unknown };
    const ok = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
    if (!ok(batchSize) || !ok(seqLength)) {
      throw new PlotInputError("its training options do not record the run's --batch-size and --seq-length, so iterations cannot be turned into characters; plot with --x iteration");
    }
    scale = batchSize * seqLength;
  } else if (x !== 'iteration') throw new PlotInputError(`unknown x axis ${JSON.stringify(x)}; use iteration, epoch or chars`);
  const map = (h: readonly (readonly [number, number])[]) => h.map(([i, loss]): [number, number] => [i * scale, loss]);
  return { label: options.label ?? runLabel(ck), train: map(t.history.train), val: map(t.history.val) };
}

/**
 * The addition task's validation accuracy of a checkpoint as a run to plot (`val`: [x, percent
 * right], no training curve; plot it with curves 'val' and a yTitle): of whole sums
 * (`numbers`) or of the answers' characters (`chars`), x as in {@link lossRunFromCheckpoint}.
 *
 * @throws PlotInputError when the checkpoint records no accuracy (not an addition run)
 */
export function accuracyRunFromCheckpoint(ck: CheckpointLike, what: 'numbers' | 'chars', options: { x?: PlotXAxis; label?: string } = {}): LossRun {
  const acc = ck.training?.history.accuracy;
  if (!acc || acc.length === 0) {
    throw new PlotInputError('records no accuracy (only runs of --task addition do, from their first validation on); plot its losses without --accuracy');
  }
  // The x scale of the losses': a run whose validation losses are these iterations.
  const run = lossRunFromCheckpoint({ ...ck, training: { ...ck.training!, history: { train: [], val: acc.map(([i]) => [i, 0]) } } }, options);
  return { label: run.label, train: [], val: acc.map(([, chars, numbers], j) => [run.val[j][0], 100 * (what === 'numbers' ? numbers : chars)]) };
}

// ---------------------------------------------------------------------------------------------
// Numbers: smoothing, ticks, labels

type Pt = [number, number];

/** Finite points sorted by x (stable). */
function cleanPoints(points: readonly (readonly [number, number])[]): Pt[] {
  const out: Pt[] = [];
  for (const p of points) if (Number.isFinite(p[0]) && Number.isFinite(p[1])) out.push([p[0], p[1]]);
  return out.map((p, i) => [p, i] as const).sort((a, b) => a[0][0] - b[0][0] || a[1] - b[1]).map(([p]) => p);
}

/** The (odd) window of the moving average over `n` points for a `fraction`: 1 means none. */
export function smoothingWindow(n: number, fraction: number): number {
  return 2 * (Number.isFinite(fraction) && fraction > 0 ? Math.floor((fraction * n) / 2) : 0) + 1;
}

/**
 * Centred moving average of the losses over an odd window of about `fraction` of the points;
 * at the ends the window shrinks symmetrically (point i averages points i−k … i+k, k ≤ i and
 * k ≤ n−1−i), so the curve does not lag and keeps its first and last values. x is unchanged.
 */
export function smoothLosses(points: readonly (readonly [number, number])[], fraction: number): [number, number][] {
  const n = points.length;
  const half = (smoothingWindow(n, fraction) - 1) / 2;
  if (half < 1) return points.map(([x, y]) => [x, y]);
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + points[i][1];
  return points.map(([x], i) => {
    const k = Math.min(half, i, n - 1 - i);
    return [x, (prefix[i + k + 1] - prefix[i - k]) / (2 * k + 1)];
  });
}

/** At most `max` of the points, evenly spaced by index, always keeping the first and the last. */
function decimate(points: Pt[], max: number): Pt[] {
  if (points.length <= max) return points;
  const out: Pt[] = [];
  for (let j = 0; j < max; j++) out.push(points[Math.round((j * (points.length - 1)) / (max - 1))]);
  return out;
}

/** A round step (1, 2 or 5 × 10^k) that cuts `span` into about `target` parts. */
function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

/** `v` without floating-point dust (15 significant digits). */
function clean(v: number): number {
  const r = Number(v.toPrecision(15));
  return r === 0 ? 0 : r;
}

/** An axis: its domain [lo, hi], tick positions (increasing, inside the domain) and step. */
interface Axis {
  lo: number;
  hi: number;
  ticks: number[];
  step: number;
}

/**
 * The axis for data in [min, max]: ticks at multiples of a round step. `snap` extends the domain
 * to whole steps at both ends (the y axis); otherwise the domain is the data's (from 0 when
 * `fromZero` and the data are ≥ 0).
 */
function makeAxis(min: number, max: number, target: number, snap: boolean, fromZero: boolean): Axis {
  if (!(Number.isFinite(min) && Number.isFinite(max))) [min, max] = [0, 1];
  if (fromZero && min >= 0) min = 0;
  if (max - min <= Math.abs(max) * 1e-9 || max - min < 1e-300) {
    const pad = Math.abs(max) > 1e-300 ? Math.abs(max) * 0.05 : 0.5;
    [min, max] = [min - pad, max + pad];
    if (fromZero && min < 0 && max - 2 * pad >= 0) min = 0;
  }
  let step = niceStep(max - min, target);
  let lo = min;
  let hi = max;
  if (snap) {
    lo = clean(Math.floor(min / step + 1e-9) * step);
    hi = clean(Math.ceil(max / step - 1e-9) * step);
    if (hi <= lo) hi = clean(lo + step);
  }
  const ticks: number[] = [];
  const k0 = Math.ceil(lo / step - 1e-9);
  const k1 = Math.floor(hi / step + 1e-9);
  for (let k = k0; k <= k1 && ticks.length < 100; k++) ticks.push(clean(k * step));
  if (ticks.length === 0) step = hi - lo;
  return { lo, hi, ticks, step };
}

/** Decimals that show multiples of `step` exactly (for steps from niceStep). */
function decimalsFor(step: number): number {
  return Math.max(0, Math.min(12, Math.ceil(-Math.log10(step) - 1e-9)));
}

/**
 * Tick labels of an axis: decimals enough for its step; or, when `si`, each value with the
 * k/M/G/T suffix of its own size and no trailing zeros (800k, 1M, 1.2M).
 */
function tickLabels(axis: Axis, si: boolean): string[] {
  if (!si) {
    const d = decimalsFor(axis.step);
    return axis.ticks.map((v) => (v === 0 ? '0' : v.toFixed(d)));
  }
  return axis.ticks.map((v) => {
    const a = Math.abs(v);
    const [div, suffix] = a >= 1e12 ? [1e12, 'T'] : a >= 1e9 ? [1e9, 'G'] : a >= 1e6 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'k'] : [1, ''];
    if (v === 0) return '0';
    const text = clean(v / div).toFixed(decimalsFor(axis.step / div));
    return (text.includes('.') ? text.replace(/\.?0+$/, '') : text) + suffix;
  });
}

/** Whether the x axis labels its ticks with SI suffixes. */
function xUsesSi(x: PlotXAxis, axis: Axis): boolean {
  if (x === 'chars') return true;
  if (x === 'iteration') return Math.max(Math.abs(axis.lo), Math.abs(axis.hi)) >= 10_000;
  return false;
}

function xTitle(x: PlotXAxis): string {
  return x === 'epoch' ? 'epoch' : x === 'chars' ? 'training characters' : 'iteration';
}

function yTitle(curves: PlotCurves, bits: boolean): string {
  const what = curves === 'val' ? 'validation loss' : curves === 'train' ? 'training loss' : 'loss';
  return `${what} (${bits ? 'bits' : 'nats'}/char)`;
}

/** The curves to draw of one run, in display units, training already smoothed. */
interface Prepared {
  label: string;
  train: Pt[];
  val: Pt[];
}

function prepare(runs: readonly LossRun[], o: LossPlotOptions, maxTrainPoints: number): Prepared[] {
  const scale = o.bits ? 1 / Math.LN2 : 1;
  const curves = o.curves ?? 'both';
  const smoothing = o.smoothing ?? 0.01;
  return runs.map((r) => {
    const toUnits = (p: Pt): Pt => [p[0], p[1] * scale];
    const train = curves === 'val' ? [] : decimate(smoothLosses(cleanPoints(r.train ?? []), smoothing), maxTrainPoints).map(toUnits);
    const val = curves === 'train' ? [] : cleanPoints(r.val ?? []).map(toUnits);
    return { label: String(r.label ?? ''), train, val };
  });
}

/** Whether the moving average changes the training curve of any run. */
function smoothed(runs: readonly LossRun[], o: LossPlotOptions): boolean {
  return runs.some((r) => smoothingWindow(cleanPoints(r.train ?? []).length, o.smoothing ?? 0.01) > 1);
}

function extent(runs: Prepared[], k: 0 | 1): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of runs) {
    for (const p of r.train) [lo, hi] = [Math.min(lo, p[k]), Math.max(hi, p[k])];
    for (const p of r.val) [lo, hi] = [Math.min(lo, p[k]), Math.max(hi, p[k])];
  }
  return [lo, hi];
}

function checkOptions(o: LossPlotOptions): void {
  if (o.x !== undefined && !['iteration', 'epoch', 'chars'].includes(o.x)) throw new PlotInputError(`unknown x axis ${JSON.stringify(o.x)}; use iteration, epoch or chars`);
  if (o.curves !== undefined && !['both', 'train', 'val'].includes(o.curves)) throw new PlotInputError(`unknown curves ${JSON.stringify(o.curves)}; use both, train or val`);
  if (o.smoothing !== undefined && !(o.smoothing >= 0 && o.smoothing <= 1)) throw new PlotInputError(`smoothing must be a fraction in [0, 1], got ${o.smoothing}`);
}

// ---------------------------------------------------------------------------------------------
// SVG

/** Colours of one theme: text, axes, grid, background, and one colour per run (cycled). */
interface Palette {
  fg: string;
  axis: string;
  grid: string;
  bg: string;
  runs: string[];
}

/** Okabe–Ito based; every run colour has ≥ 3:1 contrast on its background. */
const LIGHT: Palette = {
  fg: '#24292f',
  axis: '#57606a',
  grid: '#d8dee4',
  bg: '#ffffff',
  runs: ['#0072b2', '#d55e00', '#009e73', '#cc4c9a', '#9a6f00', '#6a4fc8', '#00838f', '#6b7d1a'],
};
const DARK: Palette = {
  fg: '#e6edf3',
  axis: '#8b949e',
  grid: '#30363d',
  bg: '#0d1117',
  runs: ['#58b4f0', '#ff8a4c', '#3fd09c', '#f08ccc', '#e8c04a', '#b09cff', '#4dd0e1', '#b5cc4a'],
};

/**
 * The sans-serif fonts tried in order. Unquoted on purpose: resvg (the PNG renderer) skips a
 * quoted name after a missing one, and CSS allows multi-word names without quotes.
 */
export const FONT_FAMILY = 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, Liberation Sans, DejaVu Sans, sans-serif';

/** A coordinate with at most 2 decimals, never "-0". */
function num(v: number): string {
  const r = Math.round(v * 100) / 100;
  return String(r === 0 ? 0 : r);
}

/**
 * Text safe inside an XML element or attribute: escaped; characters XML forbids dropped (control
 * characters, U+FFFE/U+FFFF) or replaced by U+FFFD (unpaired surrogates); tabs and line breaks
 * become spaces.
 */
export function xmlText(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/[\t\n\r]/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Rough width in pixels of `s` at font size `size` (sans-serif, a little generous). */
function textWidth(s: string, size: number): number {
  return [...s].length * size * 0.6;
}

/**
 * The `<style>` of a figure: `classes(dark)` gives the class rules of one palette; `auto` adds
 * the dark ones under `@media (prefers-color-scheme: dark)`. (The elements carry the colours of
 * their theme as attributes too, for renderers without CSS.)
 */
export function themeStyle(theme: PlotTheme, classes: (dark: boolean) => string): string {
  const base = classes(theme === 'dark');
  const dark = theme === 'auto' ? `@media (prefers-color-scheme: dark){${classes(true)}}` : '';
  return `<style>${base}${dark}</style>`;
}

function plotClasses(p: Palette): string {
  const runs = p.runs.map((c, i) => `.s${i}{stroke:${c}}.f${i}{fill:${c}}`).join('');
  return `.fg{fill:${p.fg}}.ax{stroke:${p.axis}}.fa{fill:${p.axis}}.gr{stroke:${p.grid}}.bg{fill:${p.bg}}${runs}`;
}

/**
 * The loss curves of `runs` as a standalone SVG document (a string): axes with round ticks and
 * units, a grid, a legend (a key to the two line styles, then each run's label in its colour),
 * per run the smoothed training loss (thin, translucent) and the validation loss (bold, with a
 * marker at each evaluation when there are at most 200). Exactly one `<path>` per run and drawn
 * curve kind (none for an empty one), with `data-run` (the run's index) and `data-curve`
 * (`train` or `val`); markers are `<circle>`s, the legend's swatches `<line>`s.
 */
export function plotLossCurves(runs: readonly LossRun[], options: LossSvgOptions = {}): string {
  checkOptions(options);
  const W = Math.max(240, Math.round(options.width ?? 720));
  const requestedH = Math.max(180, Math.round(options.height ?? 440));
  const theme = options.theme ?? 'auto';
  const pal = theme === 'dark' ? DARK : LIGHT;
  const x = options.x ?? 'iteration';
  const curves = options.curves ?? 'both';
  const data = prepare(runs, options, Math.max(50, W));
  const color = (i: number) => pal.runs[i % pal.runs.length];
  const cls = (i: number) => i % pal.runs.length;

  const TICK = 12;
  const LABEL = 13;
  const LEG = 12;
  const TITLE = 15;

  const [x0, x1] = extent(data, 0);
  const [y0, y1] = extent(data, 1);
  const xa = makeAxis(x0, x1, Math.max(2, Math.floor(W / 110)), false, true);
  const ya = makeAxis(y0, y1, Math.max(2, Math.floor(requestedH / 70)), true, false);
  const xLabels = tickLabels(xa, xUsesSi(x, xa));
  const yLabels = tickLabels(ya, false);

  // Legend items: the key to the line styles (when both kinds are drawn), then the runs.
  type Item = { kind: 'train' | 'val' | 'run'; text: string; run?: number };
  const items: Item[] = [];
  if (curves === 'both') {
    items.push({ kind: 'train', text: smoothed(runs, options) ? 'training (moving average)' : 'training' });
    items.push({ kind: 'val', text: 'validation' });
  }
  const SW = 26; // swatch length
  const itemWidth = (it: Item) => SW + 6 + textWidth(it.text, LEG) + 20;

  const top0 = options.title ? 12 + TITLE + 8 : 12;
  const left = 22 + LABEL + 6 + Math.max(...yLabels.map((s) => textWidth(s, TICK)), 10);
  const lastX = xLabels.length ? textWidth(xLabels[xLabels.length - 1], TICK) / 2 : 0;
  const right = W - Math.max(16, lastX + 6);
  // A label longer than the plot is wide is cut (with "…"); the <title> has them all in full.
  const maxChars = Math.max(4, Math.floor((right - left - SW - 26) / (LEG * 0.6)));
  data.forEach((r, i) => items.push({ kind: 'run', text: [...r.label].length > maxChars ? [...r.label].slice(0, maxChars - 1).join('') + '…' : r.label, run: i }));
  // Lay the legend out in rows across the plot's width.
  const rows: Item[][] = [[]];
  let rowW = 0;
  for (const it of items) {
    const w = itemWidth(it);
    const row = rows[rows.length - 1];
    if (row.length > 0 && (rowW + w > right - left || (it.kind === 'run' && row[0].kind !== 'run'))) {
      rows.push([it]);
      rowW = w;
    } else {
      row.push(it);
      rowW += w;
    }
  }
  if (rows[0].length === 0) rows.pop();
  const ROW = LEG + 8;
  const top = top0 + rows.length * ROW + 10;
  // The figure grows taller when the legend would leave the plot less than 100 pixels.
  const H = Math.max(requestedH, Math.ceil(top + 100 + TICK + 8 + LABEL + 14));
  const bottom = H - (TICK + 8 + LABEL + 14);
  const px = (v: number) => left + ((v - xa.lo) / (xa.hi - xa.lo)) * (right - left);
  const py = (v: number) => bottom - ((v - ya.lo) / (ya.hi - ya.lo)) * (bottom - top);

  const out: string[] = [];
  // The figure's name for screen readers (<title>): the given title, else what the y axis shows.
  const yName = options.yTitle ? options.yTitle[0].toUpperCase() + options.yTitle.slice(1) : 'Loss curves';
  const title = xmlText(options.title ? options.title : yName);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT_FAMILY}" role="img">`,
    `<title>${title}: ${data.map((r) => xmlText(r.label)).join(', ')}</title>`,
    themeStyle(theme, (dark) => plotClasses(dark ? DARK : LIGHT)),
  );
  if (theme !== 'auto') out.push(`<rect class="bg" x="0" y="0" width="${W}" height="${H}" fill="${pal.bg}"/>`);
  if (options.title) out.push(`<text class="fg" x="${num(left)}" y="${12 + TITLE}" font-size="${TITLE}" font-weight="bold" fill="${pal.fg}">${title}</text>`);

  // Grid and axes.
  const grid: string[] = [];
  for (const t of ya.ticks) grid.push(`<line x1="${num(left)}" y1="${num(py(t))}" x2="${num(right)}" y2="${num(py(t))}"/>`);
  for (const t of xa.ticks) grid.push(`<line x1="${num(px(t))}" y1="${num(top)}" x2="${num(px(t))}" y2="${num(bottom)}"/>`);
  out.push(`<g class="gr" stroke="${pal.grid}" stroke-width="1">${grid.join('')}</g>`);
  const axes: string[] = [
    `<line x1="${num(left)}" y1="${num(bottom)}" x2="${num(right)}" y2="${num(bottom)}"/>`,
    `<line x1="${num(left)}" y1="${num(top)}" x2="${num(left)}" y2="${num(bottom)}"/>`,
  ];
  for (const t of xa.ticks) axes.push(`<line x1="${num(px(t))}" y1="${num(bottom)}" x2="${num(px(t))}" y2="${num(bottom + 5)}"/>`);
  for (const t of ya.ticks) axes.push(`<line x1="${num(left - 5)}" y1="${num(py(t))}" x2="${num(left)}" y2="${num(py(t))}"/>`);
  out.push(`<g class="ax" stroke="${pal.axis}" stroke-width="1">${axes.join('')}</g>`);
  const texts: string[] = [];
  xa.ticks.forEach((t, i) => texts.push(`<text data-axis="x" data-value="${t}" x="${num(px(t))}" y="${num(bottom + 8 + TICK)}" text-anchor="middle">${xLabels[i]}</text>`));
  ya.ticks.forEach((t, i) => texts.push(`<text data-axis="y" data-value="${t}" x="${num(left - 8)}" y="${num(py(t) + TICK * 0.35)}" text-anchor="end">${yLabels[i]}</text>`));
  out.push(`<g class="fg" fill="${pal.fg}" font-size="${TICK}">${texts.join('')}</g>`);
  const yMid = (top + bottom) / 2;
  out.push(
    `<g class="fg" fill="${pal.fg}" font-size="${LABEL}">` +
      `<text data-axis="x" x="${num((left + right) / 2)}" y="${num(H - 10)}" text-anchor="middle">${xTitle(x)}</text>` +
      `<text data-axis="y" x="${num(18 + LABEL / 2)}" y="${num(yMid)}" text-anchor="middle" transform="rotate(-90 ${num(18 + LABEL / 2)} ${num(yMid)})">${xmlText(options.yTitle ?? yTitle(curves, !!options.bits))}</text>` +
      `</g>`,
  );

  // Legend.
  const leg: string[] = [];
  rows.forEach((row, r) => {
    let lx = left;
    const cy = top0 + r * ROW + ROW / 2;
    for (const it of row) {
      const sx = num(lx);
      const ex = num(lx + SW);
      if (it.kind === 'train') {
        leg.push(`<line x1="${sx}" y1="${num(cy)}" x2="${ex}" y2="${num(cy)}" class="ax" stroke="${pal.axis}" stroke-width="1.25" stroke-opacity="0.6"/>`);
      } else if (it.kind === 'val') {
        leg.push(`<line x1="${sx}" y1="${num(cy)}" x2="${ex}" y2="${num(cy)}" class="ax" stroke="${pal.axis}" stroke-width="2.5"/>`);
        leg.push(`<circle cx="${num(lx + SW / 2)}" cy="${num(cy)}" r="3.5" class="fa" fill="${pal.axis}" stroke="none"/>`);
      } else {
        const i = it.run!;
        leg.push(`<line x1="${sx}" y1="${num(cy)}" x2="${ex}" y2="${num(cy)}" class="s${cls(i)}" stroke="${color(i)}" stroke-width="4" stroke-linecap="round"/>`);
      }
      const label = `<text x="${num(lx + SW + 6)}" y="${num(cy + LEG * 0.35)}" class="fg" fill="${pal.fg}"${it.kind === 'run' ? ` data-run="${it.run}"` : ''}>${xmlText(it.text)}</text>`;
      leg.push(label);
      lx += itemWidth(it);
    }
  });
  out.push(`<g font-size="${LEG}" data-legend="">${leg.join('')}</g>`);

  // Curves: all training curves first, so that validation curves are drawn on top of them.
  const path = (pts: Pt[]) => pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${num(px(p[0]))} ${num(py(p[1]))}`).join('');
  const curveEls: string[] = [];
  data.forEach((r, i) => {
    if (r.train.length > 0) {
      curveEls.push(
        `<path data-run="${i}" data-curve="train" class="s${cls(i)}" d="${path(r.train)}" fill="none" stroke="${color(i)}" stroke-width="1.25" stroke-opacity="0.6" stroke-linejoin="round"/>`,
      );
    }
  });
  data.forEach((r, i) => {
    if (r.val.length === 0) return;
    curveEls.push(
      `<path data-run="${i}" data-curve="val" class="s${cls(i)}" d="${path(r.val)}" fill="none" stroke="${color(i)}" stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"/>`,
    );
    if (r.val.length <= 200) {
      curveEls.push(
        `<g data-run="${i}" data-markers="val" class="f${cls(i)}" fill="${color(i)}">` +
          r.val.map((p) => `<circle cx="${num(px(p[0]))}" cy="${num(py(p[1]))}" r="3.5"/>`).join('') +
          `</g>`,
      );
    }
  });
  out.push(`<g data-plot-area="${num(left)} ${num(top)} ${num(right)} ${num(bottom)}">${curveEls.join('')}</g>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// ASCII

/** Marks of the runs in the terminal plot, cycled. */
export const ASCII_MARKS = ['*', 'o', '+', 'x', '#', '@', '%', '&'] as const;

/** Truncates to `n` code points (with "..." when cut). */
function fit(s: string, n: number): string {
  const cps = [...s];
  return cps.length <= n ? s : cps.slice(0, Math.max(0, n - 3)).join('') + '...';
}

/**
 * The loss curves as a small plain-ASCII plot for a terminal: y ticks on the left, the x range
 * and round ticks below, one mark character per run (`*`, `o`, `+`, ...) for its validation
 * losses (linearly joined between evaluations) and `.` for the smoothed training loss, then a
 * legend. Every line has at most `width` code points. With several runs and `curves` 'both',
 * only the validation curves are drawn (dots of several runs could not be told apart).
 */
export function plotLossCurvesAscii(runs: readonly LossRun[], options: LossAsciiOptions = {}): string {
  checkOptions(options);
  const width = Math.max(40, Math.floor(options.width ?? 80));
  const rowsN = Math.max(5, Math.floor(options.height ?? 16));
  const x = options.x ?? 'iteration';
  let curves = options.curves ?? 'both';
  const droppedTrain = curves === 'both' && runs.length > 1;
  if (droppedTrain) curves = 'val';
  const data = prepare(runs, { ...options, curves }, 4000);

  const [x0, x1] = extent(data, 0);
  const [y0, y1] = extent(data, 1);
  const ya = makeAxis(y0, y1, Math.max(2, Math.floor(rowsN / 4)), true, false);
  const yLabels = tickLabels(ya, false);
  const yw = Math.max(...yLabels.map((s) => s.length));
  const cols = width - yw - 2; // "label |" then the plot
  const xa = makeAxis(x0, x1, Math.max(2, Math.floor(cols / 14)), false, true);
  const xLabels = tickLabels(xa, xUsesSi(x, xa));
  const col = (v: number) => Math.round(((v - xa.lo) / (xa.hi - xa.lo)) * (cols - 1));
  const row = (v: number) => Math.round(((ya.hi - v) / (ya.hi - ya.lo)) * (rowsN - 1));
  const grid: string[][] = Array.from({ length: rowsN }, () => Array<string>(cols).fill(' '));
  const put = (c: number, r: number, ch: string) => {
    if (c >= 0 && c < cols && r >= 0 && r < rowsN) grid[r][c] = ch;
  };

  /** A training curve: the mean of its points in each column, one `ch` per column. */
  const drawColumns = (pts: Pt[], ch: string) => {
    const sum = new Map<number, [number, number]>();
    for (const p of pts) {
      const c = col(p[0]);
      const s = sum.get(c) ?? [0, 0];
      sum.set(c, [s[0] + p[1], s[1] + 1]);
    }
    for (const [c, [s, n]] of sum) put(c, row(s / n), ch);
  };
  data.forEach((r, i) => {
    const mark = ASCII_MARKS[i % ASCII_MARKS.length];
    if (curves === 'train') return drawColumns(r.train, mark);
    drawColumns(r.train, '.'); // empty unless curves is 'both' (a single run)
  });
  // Validation curves on top: joined linearly column by column, the mark at every evaluation.
  data.forEach((r, i) => {
    const mark = ASCII_MARKS[i % ASCII_MARKS.length];
    for (let j = 0; j + 1 < r.val.length; j++) {
      const [ax, ay] = r.val[j];
      const [bx, by] = r.val[j + 1];
      const ca = col(ax);
      const cb = col(bx);
      for (let c = ca + 1; c < cb; c++) put(c, row(ay + ((by - ay) * (c - ca)) / (cb - ca)), mark);
    }
    for (const p of r.val) put(col(p[0]), row(p[1]), mark);
  });

  const lines: string[] = [];
  if (options.title) lines.push(fit(options.title, width));
  lines.push(fit(options.yTitle ?? yTitle(options.curves ?? 'both', !!options.bits), width));
  const labelAt = new Map<number, string>();
  ya.ticks.forEach((t, i) => {
    const r = row(t);
    if (!labelAt.has(r)) labelAt.set(r, yLabels[i]);
  });
  for (let r = 0; r < rowsN; r++) {
    const label = labelAt.get(r);
    lines.push(`${(label ?? '').padStart(yw)} ${label !== undefined ? '+' : '|'}${grid[r].join('')}`.trimEnd());
  }
  // The x axis: '+' at each tick, labels centred under them where they fit.
  const axis = Array<string>(cols).fill('-');
  const under = Array<string>(cols + yw + 2).fill(' ');
  let free = 0; // first column (in `under`) not yet used by a label
  xa.ticks.forEach((t, i) => {
    const c = col(t);
    axis[c] = '+';
    const s = xLabels[i];
    let start = yw + 2 + c - Math.floor(s.length / 2);
    start = Math.max(start, 0);
    if (start + s.length > under.length) start = under.length - s.length;
    if (start < free) return;
    for (let k = 0; k < s.length; k++) under[start + k] = s[k];
    free = start + s.length + 2;
  });
  lines.push(`${' '.repeat(yw)} +${axis.join('')}`);
  lines.push(under.join('').trimEnd());
  /** 3 significant digits, with the axis' k/M/G suffix when it has them. */
  const short = (v: number) => {
    const a = Math.abs(v);
    const [div, suffix] = !xUsesSi(x, xa) ? [1, ''] : a >= 1e12 ? [1e12, 'T'] : a >= 1e9 ? [1e9, 'G'] : a >= 1e6 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'k'] : [1, ''];
    return `${clean(Number((v / div).toPrecision(3)))}${suffix}`;
  };
  const xt = Number.isFinite(x0) ? `${xTitle(x)} (${short(x0)} to ${short(x1)})` : xTitle(x);
  lines.push(`${' '.repeat(Math.max(0, yw + 2 + Math.floor((cols - xt.length) / 2)))}${xt}`);
  // Legend: one line per run, then the key.
  data.forEach((r, i) => lines.push(fit(`${ASCII_MARKS[i % ASCII_MARKS.length]} ${r.label}`, width)));
  const key =
    curves === 'train'
      ? 'marks: training loss' + (smoothed(runs, options) ? ' (moving average)' : '')
      : curves === 'val'
        ? `marks: ${options.yTitle ?? 'validation loss'}${droppedTrain ? ' (training curves only with a single run)' : ''}`
        : `${ASCII_MARKS[0]} validation loss, . training loss${smoothed(runs, options) ? ' (moving average)' : ''}`;
  lines.push(fit(key, width));
  return lines.join('\n') + '\n';
}
