/**
 * Tracing: what every cell of a model computes at every position of a text, for looking inside
 * a trained model (the `viz` command, src/viz/).
 *
 * Positions: the text is read as one stream (batch 1), position p being the step that reads
 * id p. The values at position p are those after reading it; `logp[p]` is the model's
 * distribution of id p+1, and `loss[p]` = −logp[p][id p+1] when that id is known (p < n−1).
 *
 * The model runs exactly as evaluation does (evaluateIds, `grid-lstm eval`): inside
 * model.inference(), from a zero state (or a given one), in chunks of `seqLength` = 100 steps
 * starting at position 0, through the same chunk loop (forwardChunks). So the per-position losses
 * are the very numbers evaluation sums: their sum over a chunk is the kernels' NLL of that chunk,
 * bit for bit. The last position, which has no next id, runs as one more step after the chunks.
 *
 * Memory stays bounded for long texts in either of two ways:
 * - {@link traceChunks} streams: it hands each chunk (at most `seqLength` positions) to a
 *   callback and keeps nothing;
 * - {@link trace} returns a range `{ start, end }` of positions; the positions before `start` are
 *   run (in the same chunks, from the zero or given state) but not kept, and nothing after the
 *   chunk that holds `end − 1` is run. A range gives the same numbers as the whole text.
 *
 * Shapes: n positions (of the chunk or range), N = rnnSize, L = numLayers, V = vocabulary size.
 */
import { type Vocab, encode } from '../train/data-core.js';
import { forwardChunks } from './generate.js';
import type { Float } from '../nn/kernels.js';
import type { Activations, Model, State } from '../nn/model.js';
import type { FullModelConfig, ModelKind } from '../nn/params.js';

/**
 * What is traced of a cell. An LSTM: its gates i (input), f (forget), o (output), g (cell
 * candidate, the tanh one), its cell c, tanh(c), and its hidden output h = o⊙tanh(c). A GRU: its
 * update and reset gates z, r, its candidate n and h = z⊙n + (1 − z)⊙h_prev. An RNN: h.
 */
export type TraceKind = 'i' | 'f' | 'o' | 'g' | 'c' | 'tc' | 'h' | 'z' | 'r' | 'n';

/** Every kind, in this order. */
export const TRACE_KINDS: readonly TraceKind[] = ['i', 'f', 'o', 'g', 'c', 'tc', 'h', 'z', 'r', 'n'];

const KINDS_OF: Record<ModelKind, readonly TraceKind[]> = {
  grid_lstm: ['i', 'f', 'o', 'g', 'c', 'tc', 'h'],
  lstm: ['i', 'f', 'o', 'g', 'c', 'tc', 'h'],
  gru: ['h', 'z', 'r', 'n'],
  rnn: ['h'],
};

/** The kinds a model's cells have, in TRACE_KINDS order: the LSTMs' i f o g c tc h, the GRU's h z r n, the RNN's h. */
export function traceKinds(model: ModelKind): readonly TraceKind[] {
  return KINDS_OF[model];
}

/**
 * The two LSTMs of a grid_lstm layer: `time` along the text (its c and h are carried to the next
 * position) and `depth` across the layers. A stacked lstm, gru or rnn has one cell per layer,
 * along time: `time`.
 */
export type LstmName = 'time' | 'depth';

/**
 * One cell at n positions: each of its model's kinds ({@link traceKinds}; the others are absent)
 * is [n, N], position-major (unit j at position p: p·N + j).
 */
export type CellTrace = Partial<Record<TraceKind, Float>>;

/** The trace of a cell (the name from when every cell was an LSTM). */
export type LstmTrace = CellTrace;

/** One layer at n positions. */
export interface LayerTrace {
  /**
   * lstm, gru, rnn: the layer's cell. grid_lstm: the layer's time LSTM,
   * `a = time.t2h(h_t) + time.d2h(h_d)`, whose (c, h) is carried along the text.
   */
  time: CellTrace;
  /**
   * grid_lstm: the layer's depth LSTM (prioritised: it reads the time LSTM's new h),
   * `a = depth.t2h(h_t') + depth.d2h(h_d)`. Its input (c_d, h_d) comes from layer l−1 (for the
   * first layer c_d = 0 and h_d = embedding[x]); its output c_d, h_d goes to layer l+1, and the
   * top layer's h_d to the decoder. null for the stacked models.
   */
  depth: CellTrace | null;
}

/** A run of n consecutive positions of a trace. */
export interface TraceSpan {
  /** The first position (an index into the ids). */
  start: number;
  /** n, the number of positions. */
  length: number;
  /** [n] the id read at each position. */
  ids: Int32Array;
  /** [n] the next id (the one predicted), −1 at the last position of the text. */
  targets: Int32Array;
  /** [n, V] the log-probabilities of the next id. */
  logp: Float;
  /** [n] −logp[p][targets[p]] in nats (float64 of the stored log-probability); NaN where the target is −1. */
  loss: Float64Array;
  /** [L] the layers, bottom first. */
  layers: LayerTrace[];
}

/** The result of {@link trace}: the positions [start, end). */
export interface TraceResult extends TraceSpan {
  config: FullModelConfig;
  /** The (time) state after the last traced position: continue from it with `initialState`. */
  state: State;
}

/** The ids of a text: ids, or a text with the vocabulary to encode it with. */
export type TraceInput = ArrayLike<number> | { text: string; vocab: Vocab };

export interface TraceOptions {
  /** The first position to return (default 0). The positions before it are run but not kept. */
  start?: number;
  /** One past the last position to return (default: the number of ids). */
  end?: number;
  /** The state at position 0 (batch 1; copied, not changed). Default: zero, as evaluation. */
  initialState?: State;
  /** The chunk length. Default 100, as evaluateIds and `grid-lstm eval`. */
  seqLength?: number;
}

/**
 * Traces positions [start, end) of `input` (default: all). Memory: the returned arrays, about
 * n·L·7·N numbers per LSTM plus n·V; nothing else grows with the text.
 */
export function trace(model: Model, input: TraceInput, options: TraceOptions = {}): TraceResult {
  const ids = toIds(model, input);
  const { start, end } = range(ids.length, options);
  const span = allocSpan(model, start, end - start);
  const state = run(model, ids, start, end, options, (from, _to, copy) => copy(span, from - start));
  return { ...span, config: model.config, state };
}

/**
 * Traces positions [start, end) of `input` (default: all) chunk by chunk: `onChunk` gets each
 * chunk of evaluation (at most `seqLength` positions; the first and last may be cut by the
 * range, and the last position of the text comes as a chunk of its own) as a fresh span it may
 * keep. Returns the state after the last traced position. `onChunk` runs inside
 * model.inference(): it must not change the model's parameters.
 */
export function traceChunks(model: Model, input: TraceInput, onChunk: (chunk: TraceSpan) => void, options: TraceOptions = {}): State {
  const ids = toIds(model, input);
  const { start, end } = range(ids.length, options);
  return run(model, ids, start, end, options, (from, to, copy) => {
    const span = allocSpan(model, from, to - from);
    copy(span, 0);
    onChunk(span);
  });
}

/** Copies the rows of positions [from, to) of the current pass into `span` from row `offset` on. */
type Copy = (span: TraceSpan, offset: number) => void;

/** The ids of a trace input, checked against the model's vocabulary size. */
function toIds(model: Model, input: TraceInput): ArrayLike<number> {
  const V = model.config.vocabSize;
  if (input !== null && typeof input === 'object' && 'text' in input && typeof input.text === 'string') {
    if (input.vocab.chars.length !== V) throw new Error(`the vocabulary has ${input.vocab.chars.length} characters but the model has ${V}`);
    return encode(input.text, input.vocab);
  }
  const ids = input as ArrayLike<number>;
  if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') throw new Error('trace needs ids (an array of token ids) or { text, vocab }');
  for (let p = 0; p < ids.length; p++) {
    const id = ids[p];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`token id ids[${p}] = ${id} is out of range: ids must be integers in [0, ${V})`);
  }
  return ids;
}

function range(n: number, options: TraceOptions): { start: number; end: number } {
  if (n < 1) throw new Error('the text is empty: there is nothing to trace');
  const start = options.start ?? 0;
  const end = options.end ?? n;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start >= end) {
    throw new Error(`the range of positions [${start}, ${end}) must be whole numbers with 0 ≤ start < end ≤ ${n} (the number of ids)`);
  }
  return { start, end };
}

function allocSpan(model: Model, start: number, n: number): TraceSpan {
  const { rnnSize: N, numLayers: L, vocabSize: V } = model.config;
  const make = (len: number): Float => (model.kernels.dtype === 'float64' ? new Float64Array(len) : new Float32Array(len));
  const cell = (): CellTrace => Object.fromEntries(traceKinds(model.config.model).map((k) => [k, make(n * N)]));
  const grid = model.config.model === 'grid_lstm';
  return {
    start,
    length: n,
    ids: new Int32Array(n),
    targets: new Int32Array(n),
    logp: make(n * V),
    loss: new Float64Array(n),
    layers: Array.from({ length: L }, () => ({ time: cell(), depth: grid ? cell() : null })),
  };
}

/**
 * Runs the model over ids as evaluation does and, for every chunk that overlaps [start, end),
 * calls onRows with its positions [from, to) and a function that copies them. Returns the state
 * after position end − 1.
 */
function run(
  model: Model,
  ids: ArrayLike<number>,
  start: number,
  end: number,
  options: TraceOptions,
  onRows: (from: number, to: number, copy: Copy) => void,
): State {
  const n = ids.length;
  const seqLength = options.seqLength ?? 100;
  if (!Number.isInteger(seqLength) || seqLength < 1) throw new Error(`seqLength must be a whole number > 0, got ${seqLength}`);
  let state: State;
  if (options.initialState) {
    const s = options.initialState;
    state = { h: s.h.map((a) => a.slice()), c: s.c.map((a) => a.slice()) };
  } else state = model.zeroState(1);
  return model.inference(() => {
    let result: State | null = null;
    // Positions 0 … n−2: evaluation's chunks.
    state = forwardChunks(model, ids, seqLength, state, (c0, T) => {
      const from = Math.max(start, c0);
      const to = Math.min(end, c0 + T);
      if (from < to) {
        const acts = model.activations()!;
        onRows(from, to, (span, offset) => copyRows(model, acts, ids, span, offset, from - c0, to - from, true));
        if (to === end) result = stateAt(model, acts, to - c0);
      }
      return c0 + T < end;
    });
    if (result !== null) return result;
    // The last position, which predicts what comes after the text: one more step.
    const r = model.forward({ x: [ids[n - 1]], y: [0], batchSize: 1, seqLength: 1 }, state);
    const acts = model.activations()!;
    onRows(n - 1, n, (span, offset) => copyRows(model, acts, ids, span, offset, 0, 1, false));
    return r.finalState;
  });
}

/** Copies rows [row, row + count) of a batch-1 pass into span from row `offset` on. */
function copyRows(model: Model, acts: Activations, ids: ArrayLike<number>, span: TraceSpan, offset: number, row: number, count: number, hasTargets: boolean): void {
  const { rnnSize: N, numLayers: L, vocabSize: V } = model.config;
  const first = span.start + offset; // the position of the first copied row
  for (let k = 0; k < count; k++) {
    const p = first + k;
    const r = row + k;
    const o = offset + k;
    span.ids[o] = ids[p];
    span.targets[o] = hasTargets ? ids[p + 1] : -1;
    const lp = acts.logp.subarray(r * V, (r + 1) * V);
    span.logp.set(lp, o * V);
    span.loss[o] = hasTargets ? -lp[ids[p + 1]] : NaN;
  }
  // Blocks of N of the rows of a [·, width] matrix (from column `at`) into the kinds of `out`.
  const split = (gates: Float, width: number, at: number, out: CellTrace, kinds: readonly TraceKind[]) => {
    for (let k = 0; k < count; k++) {
      const g = (row + k) * width + at;
      const d = (offset + k) * N;
      kinds.forEach((kind, b) => out[kind]!.set(gates.subarray(g + b * N, g + (b + 1) * N), d));
    }
  };
  const rows = (src: Float, firstRow: number, dst: Float) => dst.set(src.subarray(firstRow * N, (firstRow + count) * N), offset * N);
  const M = acts.T * acts.B; // the rows of the pass
  for (let l = 0; l < L; l++) {
    const { time, depth } = span.layers[l];
    rows(acts.h[l], row + 1, time.h!); // histories: row 0 is the state before the pass
    if (model.config.model === 'gru') {
      // Its gates [T·B, 2N] (z, r), then the candidate n [T·B, N] (Activations).
      split(acts.gates[l], 2 * N, 0, time, ['z', 'r']);
      split(acts.gates[l].subarray(M * 2 * N), N, 0, time, ['n']);
    } else if (model.config.model !== 'rnn') {
      split(acts.gates[l], 4 * N, 0, time, ['i', 'f', 'o', 'g']);
      rows(acts.c[l], row + 1, time.c!);
      rows(acts.tc[l], row, time.tc!);
    }
    if (depth !== null) {
      split(acts.depthGates[l], 4 * N, 0, depth, ['i', 'f', 'o', 'g']);
      rows(acts.cd[l], row, depth.c!);
      rows(acts.tcd[l], row, depth.tc!);
      rows(acts.hd[l], row, depth.h!);
    }
  }
}

/** The state after step t − 1 of the pass (history row t), as fresh buffers. */
function stateAt(model: Model, acts: Activations, t: number): State {
  const N = model.config.rnnSize;
  return { h: acts.h.map((h) => h.slice(t * N, (t + 1) * N)), c: acts.c.map((c) => c.slice(t * N, (t + 1) * N)) };
}

/** The values of one kind of one cell of one layer of a span, [n, N]. */
export function traceValues(span: TraceSpan, layer: number, lstm: LstmName, kind: TraceKind): Float {
  const t = span.layers[layer]?.[lstm];
  if (!t) throw new Error(`the trace has no ${lstm} ${lstm === 'depth' ? 'LSTM' : 'cell'} in layer ${layer}`);
  const v = t[kind];
  if (!v) throw new Error(`the trace has no ${kind} here: its cells have ${Object.keys(t).join(', ')}`);
  return v;
}
