/**
 * The data of a `viz` report: a model traced over a window of a text (src/infer/trace.ts), the
 * summaries computed from the full-precision values (units ranked by their correlation with text
 * features, gate saturation, the top-5 predictions and the loss at every position), and the
 * activations themselves, quantized to one byte per value and compressed. The same object is
 * what `grid-lstm viz --json` writes and what src/viz/report.ts turns into a self-contained HTML
 * page. Its schema: {@link ReportData} (format "grid-lstm/viz-1").
 *
 * Storage of the activations: one block per (layer, LSTM, kind), a uint8 array [N, n],
 * unit-major (unit j's n values are bytes j·n … j·n + n − 1, so one unit's series is contiguous);
 * byte q in 0 … levels (levels = 2^bits − 1, 63 by default) stands for the value
 * lo[j] + q·(hi[j] − lo[j])/levels, the nearest one: the gates i, f, o (the GRU's z, r) over
 * [0, 1], g, h, tanh(c) (the GRU's n) over [−1, 1] (the ranges they cannot leave), c over the
 * unit's own minimum and maximum in the window. Filter "delta" stores each unit's first byte and then the differences of
 * consecutive bytes modulo 256, "none" the bytes themselves (by default each block gets the one
 * that compresses its first units better: delta suits slowly changing units); the bytes are then
 * compressed (zlib, RFC 1950) and base64-encoded.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import type { Vocab } from '../train/data.js';
import type { Model } from '../nn/model.js';
import { type ModelKind, aModel } from '../nn/params.js';
import { type LstmName, type TraceKind, type TraceSpan, TRACE_KINDS, traceChunks, traceKinds } from '../infer/trace.js';
import { TEXT_FEATURES, type TextFeatureInfo, textFeatures } from './report-features.js';

export const REPORT_FORMAT = 'grid-lstm/viz-1';

/** The kinds stored by default for the LSTMs: all but tanh(c), which the page computes from c. */
export const DEFAULT_REPORT_KINDS: readonly TraceKind[] = ['i', 'f', 'o', 'g', 'c', 'h'];

/** The kinds stored by default for a model: all its cells have but tanh(c) (gru: h z r n; rnn: h). */
export function defaultReportKinds(model: ModelKind): TraceKind[] {
  return traceKinds(model).filter((k) => k !== 'tc');
}

/** The gates whose saturation a report plots: the LSTMs' i, f, o; the GRU's z, r; the RNN has none. */
export type SaturationGate = 'i' | 'f' | 'o' | 'z' | 'r';
const GATES: readonly TraceKind[] = ['i', 'f', 'o', 'z', 'r'];

/**
 * Bits per stored value by default: 64 levels, as many as the page has colours (each bit less
 * saves about an eighth of the file; the ranking, saturation and predictions are computed from
 * the full-precision values either way).
 */
export const DEFAULT_REPORT_BITS = 6;

/** Units whose standard deviation over the window is below this are left out of the ranking. */
export const MIN_RANKED_SD = 1e-3;

/** Gate values below this count as left-saturated, above 1 − this as right-saturated. */
export const SATURATION_THRESHOLD = 0.1;

/** How many predictions are kept per position. */
export const TOP_K = 5;

export interface ReportOptions {
  /** The first character of the window (default 0); the model runs from the text's beginning. */
  start?: number;
  /** The number of characters in the window (default 2000, cut at the end of the text). */
  length?: number;
  /** The kinds whose values are stored (default defaultReportKinds(model)); the model's cells must have them. */
  kinds?: readonly TraceKind[];
  /** Shown in the report's title, e.g. the checkpoint's file name. */
  label?: string;
  /** Bits per stored value, 1–8 (default DEFAULT_REPORT_BITS): fewer make a smaller file and coarser values. */
  bits?: number;
  /** Byte filter before compression (default "auto": per block, whichever compresses a sample better). */
  filter?: 'auto' | 'delta' | 'none';
  /** zlib compression level 0–9 (default 3: on trained models' values within 1% of level 6's size, 2.5 times as fast). */
  level?: number;
}

/** One block of activations: the values of one kind of one LSTM of one layer over the window. */
export interface ReportBlock {
  layer: number;
  lstm: LstmName;
  kind: TraceKind;
  /** Per unit j: byte q stands for lo[j] + q·(hi[j] − lo[j])/levels. */
  lo: number[];
  hi: number[];
  /** 2^bits − 1: the largest byte. */
  levels: number;
  filter: 'delta' | 'none';
  /** The uint8 array [N, n] (unit-major), filtered, zlib-compressed, base64. */
  data: string;
}

/** A unit that tracks a text feature: |r| is among the largest of the window. */
export interface RankedUnit {
  layer: number;
  lstm: LstmName;
  kind: TraceKind;
  unit: number;
  /** The feature's name (TEXT_FEATURES). */
  feature: string;
  /** Pearson's correlation of the unit's values with the feature over the window. */
  r: number;
}

/** Gate saturation of one gate of one cell: per unit, the fractions of the window's positions. */
export interface SaturationPlot {
  layer: number;
  lstm: LstmName;
  gate: SaturationGate;
  /** [N] fraction of positions where the gate is below SATURATION_THRESHOLD. */
  left: number[];
  /** [N] fraction of positions where the gate is above 1 − SATURATION_THRESHOLD. */
  right: number[];
}

/** Everything a report shows ("grid-lstm/viz-1"; `grid-lstm viz --json` writes it as JSON). */
export interface ReportData {
  format: typeof REPORT_FORMAT;
  model: { kind: ModelKind; numLayers: number; rnnSize: number; vocabSize: number; tieWeights: boolean; label: string };
  /** The vocabulary, in id order. */
  vocab: string[];
  /** The window's first character's index in the text, and the text's length (characters). */
  start: number;
  textLength: number;
  /** The window's characters (n of them). */
  text: string;
  /** [n] the id of each character. */
  ids: number[];
  /** The id of the character after the window, null at the end of the text. */
  after: number | null;
  /** [n] the loss at each position, −ln p(next character), nats; null where the text ends. */
  loss: (number | null)[];
  /** The mean of the non-null losses (null when there are none). */
  meanLoss: number | null;
  /** [n] the TOP_K most likely next characters: [id, p, id, p, …], most likely first. */
  top: number[][];
  /** The cells of a layer: ["time"] (lstm, gru, rnn) or ["time", "depth"] (grid_lstm). */
  lstms: LstmName[];
  /** The kinds stored in `blocks`. */
  kinds: TraceKind[];
  features: TextFeatureInfo[];
  /** [F][n] each feature's value at each position. */
  featureValues: number[][];
  /** The units most correlated with a feature, |r| descending (see rankUnits). */
  ranking: RankedUnit[];
  saturation: SaturationPlot[];
  /** For every layer, LSTM and stored kind (in that order of nesting). */
  blocks: ReportBlock[];
}

/** Running sums for Pearson's r of every unit of one block with every feature. */
interface BlockStats {
  layer: number;
  lstm: LstmName;
  kind: TraceKind;
  shift: Float64Array; // [N] each unit's first value (sums are of x − shift, for accuracy)
  sx: Float64Array; // [N]
  sxx: Float64Array; // [N]
  sxf: Float64Array; // [F, N]
  left: Uint32Array | null; // [N] gates i, f, o, z, r: positions below the threshold
  right: Uint32Array | null;
  q: Uint8Array | null; // [N, n] the quantized values of a stored kind with a fixed range
  raw: Float32Array | null; // [N, n] a stored c, quantized at the end over each unit's range
}

const FIXED_RANGE: Partial<Record<TraceKind, [number, number]>> = {
  i: [0, 1], f: [0, 1], o: [0, 1], g: [-1, 1], h: [-1, 1], tc: [-1, 1], z: [0, 1], r: [0, 1], n: [-1, 1],
};

/**
 * Runs the model over `ids` up to the end of the window (as `grid-lstm eval` does; the state
 * carried from the beginning of the text) and gathers the report's data.
 */
export function buildReportData(model: Model, vocab: Vocab, ids: ArrayLike<number>, options: ReportOptions = {}): ReportData {
  const cfg = model.config;
  const { rnnSize: N, numLayers: L, vocabSize: V } = cfg;
  const total = ids.length;
  if (total < 1) throw new Error('the text is empty: there is nothing to show');
  const start = options.start ?? 0;
  if (!Number.isInteger(start) || start < 0 || start >= total) throw new Error(`--start must be a whole number in [0, ${total - 1}] (the text has ${total} characters), got ${start}`);
  const length = options.length ?? 2000;
  if (!Number.isInteger(length) || length < 1) throw new Error(`--length must be a whole number > 0, got ${length}`);
  const end = Math.min(total, start + length);
  const n = end - start;
  const has = traceKinds(cfg.model); // the kinds this model's cells have
  const kinds = [...new Set(options.kinds ?? defaultReportKinds(cfg.model))];
  for (const k of kinds) if (!TRACE_KINDS.includes(k)) throw new Error(`unknown kind ${JSON.stringify(k)}; the kinds are ${TRACE_KINDS.join(', ')}`);
  if (kinds.length === 0) throw new Error(`--kinds must name at least one of ${has.join(', ')}`);
  const absent = kinds.filter((k) => !has.includes(k));
  if (absent.length > 0) {
    throw new Error(`${aModel(cfg.model)} has no ${absent.join(', ')}: the kinds of its cells are ${has.join(', ')}`);
  }
  kinds.sort((a, b) => TRACE_KINDS.indexOf(a) - TRACE_KINDS.indexOf(b));
  const filter = options.filter ?? 'auto';
  const bits = options.bits ?? DEFAULT_REPORT_BITS;
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new Error(`--bits must be a whole number from 1 to 8, got ${bits}`);
  const levels = 2 ** bits - 1;
  const lstms: LstmName[] = cfg.model === 'grid_lstm' ? ['time', 'depth'] : ['time'];

  const features = textFeatures(ids, vocab.chars, start, end);
  const F = features.length;
  const stats: BlockStats[] = [];
  for (let l = 0; l < L; l++) {
    for (const lstm of lstms) {
      for (const kind of has) {
        const stored = kinds.includes(kind);
        const gate = GATES.includes(kind);
        stats.push({
          layer: l,
          lstm,
          kind,
          shift: new Float64Array(N),
          sx: new Float64Array(N),
          sxx: new Float64Array(N),
          sxf: new Float64Array(F * N),
          left: gate ? new Uint32Array(N) : null,
          right: gate ? new Uint32Array(N) : null,
          q: stored && FIXED_RANGE[kind] ? new Uint8Array(N * n) : null,
          raw: stored && !FIXED_RANGE[kind] ? new Float32Array(N * n) : null,
        });
      }
    }
  }

  const loss: (number | null)[] = new Array(n);
  const top: number[][] = new Array(n);
  const active: number[] = []; // the features that are not 0 at a position, and their values
  traceChunks(
    model,
    ids,
    (span: TraceSpan) => {
      for (let k = 0; k < span.length; k++) {
        const p = span.start + k - start; // position in the window
        loss[p] = Number.isNaN(span.loss[k]) ? null : span.loss[k];
        top[p] = topK(span.logp, k * V, V);
        active.length = 0;
        for (let f = 0; f < F; f++) if (features[f][p] !== 0) active.push(f, features[f][p]);
        for (const s of stats) {
          const row = span.layers[s.layer][s.lstm]![s.kind]!.subarray(k * N, (k + 1) * N);
          accumulate(s, row, p, n, active, levels);
        }
      }
    },
    { start, end },
  );

  // Pearson's r of every unit of every kind with every feature, from the sums.
  const fMean = features.map((v) => v.reduce((a, b) => a + b, 0) / n);
  const fVar = features.map((v, f) => v.reduce((a, b) => a + (b - fMean[f]) ** 2, 0) / n);
  const rankable = new Set<TraceKind>(kinds.includes('c') ? [...kinds, 'tc'] : kinds);
  const candidates: RankedUnit[] = [];
  for (const s of stats) {
    if (!rankable.has(s.kind)) continue;
    for (let j = 0; j < N; j++) {
      const mx = s.sx[j] / n;
      const vx = s.sxx[j] / n - mx * mx;
      if (!(vx >= MIN_RANKED_SD * MIN_RANKED_SD)) continue;
      for (let f = 0; f < F; f++) {
        if (!(fVar[f] > 0)) continue;
        const cov = s.sxf[f * N + j] / n - mx * fMean[f];
        const r = Math.max(-1, Math.min(1, cov / Math.sqrt(vx * fVar[f])));
        candidates.push({ layer: s.layer, lstm: s.lstm, kind: s.kind, unit: j, feature: TEXT_FEATURES[f].name, r });
      }
    }
  }

  const saturation: SaturationPlot[] = [];
  for (const s of stats) {
    if (s.left === null || s.right === null) continue;
    const frac = (c: Uint32Array) => Array.from(c, (x) => round(x / n, 4));
    saturation.push({ layer: s.layer, lstm: s.lstm, gate: s.kind as SaturationGate, left: frac(s.left), right: frac(s.right) });
  }

  const blocks: ReportBlock[] = [];
  for (const s of stats) {
    if (!kinds.includes(s.kind)) continue;
    let q = s.q;
    let lo: number[];
    let hi: number[];
    if (q !== null) {
      const [a, b] = FIXED_RANGE[s.kind]!;
      lo = new Array<number>(N).fill(a);
      hi = new Array<number>(N).fill(b);
    } else {
      ({ q, lo, hi } = quantizePerUnit(s.raw!, N, n, levels));
      s.raw = null;
    }
    const used = filter === 'auto' ? betterFilter(q, N, n) : filter;
    if (used === 'delta') deltaFilter(q, N, n);
    const z = deflateSync(q, { level: options.level ?? 3 });
    blocks.push({ layer: s.layer, lstm: s.lstm, kind: s.kind, lo, hi, levels, filter: used, data: z.toString('base64') });
    s.q = null;
  }

  const known = loss.filter((x): x is number => x !== null);
  return {
    format: REPORT_FORMAT,
    model: { kind: cfg.model, numLayers: L, rnnSize: N, vocabSize: V, tieWeights: cfg.tieWeights, label: options.label ?? '' },
    vocab: [...vocab.chars],
    start,
    textLength: total,
    text: Array.from({ length: n }, (_, p) => vocab.chars[ids[start + p]]).join(''),
    ids: Array.from({ length: n }, (_, p) => ids[start + p]),
    after: end < total ? ids[end] : null,
    loss: loss.map((x) => (x === null ? null : round(x, 5))),
    meanLoss: known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : null,
    top,
    lstms,
    kinds,
    features: TEXT_FEATURES.map((f) => ({ ...f })),
    featureValues: features.map((v) => Array.from(v)),
    ranking: rankUnits(candidates),
    saturation,
    blocks,
  };
}

/** Scratch for accumulate(): one position's values minus the shift. */
let scratch = new Float64Array(0);

/** Adds one position's values of a block to its sums, counts and stored bytes. */
function accumulate(s: BlockStats, row: ArrayLike<number>, p: number, n: number, active: number[], levels: number): void {
  const N = row.length;
  const { shift, sx, sxx, sxf, left, right, q, raw } = s;
  if (p === 0) for (let j = 0; j < N; j++) shift[j] = row[j];
  const d = scratch.length >= N ? scratch : (scratch = new Float64Array(N));
  for (let j = 0; j < N; j++) {
    const x = row[j] - shift[j];
    d[j] = x;
    sx[j] += x;
    sxx[j] += x * x;
  }
  for (let a = 0; a < active.length; a += 2) {
    const o = active[a] * N;
    const v = active[a + 1];
    if (v === 1) for (let j = 0; j < N; j++) sxf[o + j] += d[j];
    else for (let j = 0; j < N; j++) sxf[o + j] += v * d[j];
  }
  if (left !== null && right !== null) {
    for (let j = 0; j < N; j++) {
      if (row[j] < SATURATION_THRESHOLD) left[j]++;
      else if (row[j] > 1 - SATURATION_THRESHOLD) right[j]++;
    }
  }
  if (q !== null) {
    const [lo, hi] = FIXED_RANGE[s.kind]!;
    const scale = levels / (hi - lo);
    for (let j = 0; j < N; j++) q[j * n + p] = quantize((row[j] - lo) * scale, levels);
  }
  if (raw !== null) for (let j = 0; j < N; j++) raw[j * n + p] = row[j];
}

/** round(x) clamped to [0, levels] (NaN → 0). */
function quantize(x: number, levels: number): number {
  const r = Math.round(x);
  return r > levels ? levels : r >= 0 ? r : 0;
}

/** Quantizes [N, n] values unit by unit over each unit's own [min, max]. */
function quantizePerUnit(raw: Float32Array, N: number, n: number, levels: number): { q: Uint8Array; lo: number[]; hi: number[] } {
  const q = new Uint8Array(N * n);
  const lo: number[] = [];
  const hi: number[] = [];
  for (let j = 0; j < N; j++) {
    const row = raw.subarray(j * n, (j + 1) * n);
    let min = Infinity;
    let max = -Infinity;
    for (let p = 0; p < n; p++) {
      if (row[p] < min) min = row[p];
      if (row[p] > max) max = row[p];
    }
    if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = [0, 0];
    const a = min;
    const b = max > min ? max : min + 1;
    lo.push(a);
    hi.push(b);
    const scale = levels / (b - a);
    for (let p = 0; p < n; p++) q[j * n + p] = quantize((row[p] - a) * scale, levels);
  }
  return { q, lo, hi };
}

/** The filter that compresses a block better, judged on its first eighth of units (at least 8). */
function betterFilter(q: Uint8Array, N: number, n: number): 'delta' | 'none' {
  const k = Math.min(N, Math.max(8, Math.ceil(N / 8)));
  const sample = q.slice(0, k * n);
  const plain = deflateSync(sample, { level: 1 }).length;
  deltaFilter(sample, k, n);
  return deflateSync(sample, { level: 1 }).length < plain ? 'delta' : 'none';
}

/** In place, per unit row: keeps the first byte, then each byte minus the one before, mod 256. */
function deltaFilter(q: Uint8Array, N: number, n: number): void {
  for (let j = 0; j < N; j++) {
    const o = j * n;
    for (let p = n - 1; p > 0; p--) q[o + p] = (q[o + p] - q[o + p - 1]) & 255;
  }
}

/** The k largest entries of logp[o … o + V): [id, p, id, p, …] with p = exp(logp), most likely first. */
function topK(logp: ArrayLike<number>, o: number, V: number, k = TOP_K): number[] {
  const best: number[] = [];
  for (let v = 0; v < V; v++) {
    const x = logp[o + v];
    if (best.length < k) best.push(v);
    else if (x > logp[o + best[best.length - 1]]) best[best.length - 1] = v;
    else continue;
    for (let a = best.length - 1; a > 0 && logp[o + best[a]] > logp[o + best[a - 1]]; a--) [best[a], best[a - 1]] = [best[a - 1], best[a]];
  }
  return best.flatMap((v) => [v, round(Math.exp(logp[o + v]), 5)]);
}

function round(x: number, digits: number): number {
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}

/**
 * The ranked list: of the kinds of one unit (e.g. its c, tanh(c) and h) only the one most
 * correlated with a feature is kept; then the 40 largest |r| of all, and the 10 largest of each
 * feature, |r| descending.
 */
export function rankUnits(candidates: RankedUnit[], overall = 40, perFeature = 10): RankedUnit[] {
  const best = new Map<string, RankedUnit>();
  for (const c of candidates) {
    const key = `${c.layer}/${c.lstm}/${c.unit}/${c.feature}`;
    const b = best.get(key);
    if (b === undefined || Math.abs(c.r) > Math.abs(b.r)) best.set(key, c);
  }
  const all = [...best.values()].sort((a, b) => Math.abs(b.r) - Math.abs(a.r));
  const chosen = new Set(all.slice(0, overall));
  const counts = new Map<string, number>();
  for (const c of all) {
    const k = counts.get(c.feature) ?? 0;
    if (k < perFeature) {
      chosen.add(c);
      counts.set(c.feature, k + 1);
    }
  }
  return all.filter((c) => chosen.has(c)).map((c) => ({ ...c, r: round(c.r, 4) }));
}

/**
 * The values a block stores, [N, n] unit-major (unit j at j·n … j·n + n − 1): its bytes
 * decoded (base64, zlib, the filter undone) and mapped back to lo[j] + q·(hi[j] − lo[j])/levels.
 * For a kind with a fixed range they are within (hi − lo)/(2·levels) of the traced values.
 */
export function decodeReportBlock(block: ReportBlock, n: number): Float32Array {
  const q = new Uint8Array(inflateSync(Buffer.from(block.data, 'base64')));
  const N = block.lo.length;
  if (q.length !== N * n) throw new Error(`the block holds ${q.length} bytes, not N·n = ${N}·${n}`);
  const out = new Float32Array(N * n);
  for (let j = 0; j < N; j++) {
    const o = j * n;
    if (block.filter === 'delta') for (let p = 1; p < n; p++) q[o + p] = (q[o + p] + q[o + p - 1]) & 255;
    const step = (block.hi[j] - block.lo[j]) / block.levels;
    for (let p = 0; p < n; p++) out[o + p] = block.lo[j] + q[o + p] * step;
  }
  return out;
}
