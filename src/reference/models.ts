/**
 * The models written to be read (src/nn/model.ts computes the same numbers, organised for speed):
 * one batch, float64, step by step over time (t outer, layers inner, as the paper's equations
 * read), then the backward pass over the same blocks in mirror order (t from T−1 down, layers
 * from the top down). test/reference.test.ts holds Model.forwardBackward equal to this to 1e-9.
 *
 * Shapes: B batch, T time steps (seqLength), N hidden units (rnnSize), V vocabulary, L layers
 * (numLayers). x, y: [B, T] row-major ids, y[b,t] the character after x[b,t]. A state: h and c
 * [B, N] per layer (gru and rnn: c empty, they carry h only). Parameters: the names and shapes
 * of src/nn/params.ts.
 * A target y[b,t] = −1 is not scored (the addition task's, src/train/addition.ts): it adds
 * nothing to the loss and gets no gradient. Objective: (Σ over the scored (b, t) of
 * −log p(y[b,t])) / B, plus ⟨dFinalState, final state⟩ when that is given; with every target
 * scored, char-rnn's Σ_t mean_b NLL. loss = the mean NLL over the scored targets (0 when none
 * is), NLL per character.
 * Dropout (inverted), when masks are given: masks[t][s] [B, N] multiplies the input of layer s+1
 * (s < L−1) and the top hidden state before the decoder (s = L−1); never a recurrent connection.
 *
 * Stacked LSTM (char-rnn's lstm), block (t, l), x = embedding[x_t] or the h_t of layer l−1:
 *   a = i2h(x) + h2h(h_{t−1});   (h_t, c_t) = LSTM(a, c_{t−1});   h_t goes up and to step t+1.
 * Stacked GRU (char-rnn's gru), the same wiring with h only (the reset gate acts before h2h's
 * candidate block, so h2h is applied inside the cell): h_t = GRU(i2h(x), h_{t−1}, h2h).
 * Stacked RNN (char-rnn's rnn): h_t = tanh(i2h(x) + h2h(h_{t−1})).
 *
 * 2D Grid LSTM (the paper's), block (t, l), (h_d, c_d) coming from below:
 *   1. time LSTM:   a = time.t2h(h_{t−1}) + time.d2h(h_d);   (h_t, c_t) = LSTM(a, c_{t−1})
 *   2. depth LSTM:  a = depth.t2h(h_t) + depth.d2h(h_d);     (h_d, c_d) = LSTM(a, c_d)
 *      prioritised (§3.2): it reads the NEW h_t of step 1, not h_{t−1}
 *   3. (h_t, c_t) go on to step t+1, (h_d, c_d) up to layer l+1; the top h_d to the decoder.
 *   Into layer 0: h_d = embedding[x_t], c_d = 0 (§4.3). Tied (§3.5): one depth.t2h, depth.d2h
 *   for all layers, their gradients summed over the layers; untied: layers.{l}.depth.* each.
 */
import { type ModelConfig, checkPositiveInt, normalizeConfig, paramLayout } from '../nn/params.js';
import type { Rng } from '../nn/rng.js';
import * as op from './ops.js';

export * from './ops.js';
type F = Float64Array;
export interface Batch { x: ArrayLike<number>; y: ArrayLike<number>; batchSize: number; seqLength: number }
export interface State { h: F[]; c: F[] }
export interface StateInput { h: ArrayLike<number>[]; c: ArrayLike<number>[] }
export type Params = Map<string, ArrayLike<number>> | Record<string, ArrayLike<number>>;
/** masks[t][s], each [B, N]: site s < L−1 is the input of layer s+1, site L−1 the top h. */
export type Masks = ArrayLike<number>[][];
export interface Gradients { grads: Map<string, F>; dInitialState: State }
export interface Pass { loss: number; objective: number; finalState: State; backward(dFinalState?: StateInput): Gradients }
export interface Result extends Gradients { loss: number; objective: number; finalState: State }

/** Draws masks as Model does from the same Rng: t outer, sites bottom to top, B·N each. */
export function dropoutMasks(config: ModelConfig, batchSize: number, seqLength: number, rng: Rng): F[][] | undefined {
  const { dropout: p, rnnSize: N, numLayers: L } = normalizeConfig(config);
  if (p === 0) return undefined; // the model draws nothing
  const draw = () => Float64Array.from({ length: batchSize * N }, () => (rng.uniform() < p ? 0 : 1 / (1 - p)));
  return Array.from({ length: seqLength }, () => Array.from({ length: L }, draw));
}

// ---------------------------------------------------------------------------------------------
// One block (t, l) of each model, forward beside backward. Forward: `below` = (h, c) coming up
// from layer l−1, `prev` = (h_{t−1}, c_{t−1}) of layer l. Backward: dUp = ∂/∂ what the block
// sent up, dNext = ∂/∂ what it sent to step t+1; it returns the same for `below` and `prev`.
type HC = { h: F; c: F }; // [B, N] each
type Weights = Record<string, op.Linear>; // i2h, h2h or time.t2h, time.d2h, depth.t2h, depth.d2h
interface Block { x: F; prev: HC; time: HC; depth?: op.Cell } // what the backward needs (time: the cell's own type)

function lstmBlock(w: Weights, below: HC, prev: HC, B: number, N: number): Block {
  const a = op.add(op.linear(w.i2h, below.h, B), op.linear(w.h2h, prev.h, B)); // [B, 4N]
  return { x: below.h, prev, time: op.lstmCell(a, prev.c, B, N) }; // (h_t, c_t): up and right
}
function lstmBlockBackward(w: Weights, k: Block, dUp: HC, dNext: HC, B: number, N: number) {
  const { da, dcPrev } = op.lstmCellBackward(k.time as op.Cell, op.add(dUp.h, dNext.h), dNext.c, B, N); // h_t went up and right
  const dPrev = { h: op.linearBackward(w.h2h, da, k.prev.h, B), c: dcPrev };
  return { dBelow: { h: op.linearBackward(w.i2h, da, k.x, B), c: dUp.c /* 0: no c goes up */ }, dPrev };
}

function gruBlock(w: Weights, below: HC, prev: HC, B: number, N: number): Block {
  return { x: below.h, prev, time: op.gruCell(op.linear(w.i2h, below.h, B), prev.h, w.h2h, B, N) }; // h_t: up and right
}
function gruBlockBackward(w: Weights, k: Block, dUp: HC, dNext: HC, B: number, N: number) {
  const { dax, dhPrev } = op.gruCellBackward(k.time as op.GruCell, w.h2h, op.add(dUp.h, dNext.h), B, N);
  return { dBelow: { h: op.linearBackward(w.i2h, dax, k.x, B), c: dUp.c }, dPrev: { h: dhPrev, c: dNext.c /* empty */ } };
}

function rnnBlock(w: Weights, below: HC, prev: HC, B: number): Block {
  return { x: below.h, prev, time: op.rnnCell(op.add(op.linear(w.i2h, below.h, B), op.linear(w.h2h, prev.h, B))) };
}
function rnnBlockBackward(w: Weights, k: Block, dUp: HC, dNext: HC, B: number) {
  const da = op.rnnCellBackward(k.time, op.add(dUp.h, dNext.h));
  const dPrev = { h: op.linearBackward(w.h2h, da, k.prev.h, B), c: dNext.c /* empty */ };
  return { dBelow: { h: op.linearBackward(w.i2h, da, k.x, B), c: dUp.c }, dPrev };
}

function gridBlock(w: Weights, below: HC, prev: HC, B: number, N: number): Block {
  const hd = below.h; // [B, N]
  // 1. time LSTM
  const time = op.lstmCell(op.add(op.linear(w['time.t2h'], prev.h, B), op.linear(w['time.d2h'], hd, B)), prev.c, B, N);
  // 2. depth LSTM, prioritised (§3.2): depth.t2h reads the NEW h_t = time.h
  const depth = op.lstmCell(op.add(op.linear(w['depth.t2h'], time.h, B), op.linear(w['depth.d2h'], hd, B)), below.c, B, N);
  // 3. time = (h_t, c_t) goes to step t+1, depth = (h_d, c_d) up to layer l+1
  return { x: hd, prev, time, depth };
}
function gridBlockBackward(w: Weights, k: Block, dUp: HC, dNext: HC, B: number, N: number) {
  // 3. dUp = ∂/∂(h_d, c_d) from layer l+1, dNext = ∂/∂(h_t, c_t) from step t+1
  // 2. depth LSTM (tied, §3.5: every layer adds into the same dW, db)
  const depth = op.lstmCellBackward(k.depth!, dUp.h, dUp.c, B, N);
  const dh = op.add(dNext.h, op.linearBackward(w['depth.t2h'], depth.da, k.time.h, B)); // h_t went right and up
  const dhdDepth = op.linearBackward(w['depth.d2h'], depth.da, k.x, B);
  // 1. time LSTM
  const time = op.lstmCellBackward(k.time as op.Cell, dh, dNext.c, B, N);
  const dhd = op.add(dhdDepth, op.linearBackward(w['time.d2h'], time.da, k.x, B)); // h_d went into both LSTMs
  const dPrev = { h: op.linearBackward(w['time.t2h'], time.da, k.prev.h, B), c: time.dcPrev };
  return { dBelow: { h: dhd, c: depth.dcPrev }, dPrev };
}

// ---------------------------------------------------------------------------------------------
// The whole pass: forward over t = 0 … T−1 keeping every block, then backward over t = T−1 … 0.

/** Forward over the batch from `state` (dropout when masks are given); returns its backward. */
export function forward(config: ModelConfig, params: Params, batch: Batch, state: StateInput, masks?: Masks): Pass {
  const cfg = normalizeConfig(config);
  const { rnnSize: N, numLayers: L, vocabSize: V } = cfg;
  const [B, T] = [checkPositiveInt('batchSize', batch.batchSize), checkPositiveInt('seqLength', batch.seqLength)];
  for (const k of ['x', 'y'] as const) {
    if (batch[k]?.length !== B * T) throw new Error(`${k} must hold B·T = ${B * T} ids, got ${batch[k]?.length}`);
    const min = k === 'y' ? -1 : 0; // a target −1: not scored
    const j = Array.from(batch[k]).findIndex((v) => !Number.isInteger(v) || v < min || v >= V);
    if (j >= 0) throw new Error(`${k}[${j}] = ${batch[k][j]} is not an id in [0, ${V})${k === 'y' ? ', or −1 (not scored)' : ''}`);
  }
  const cellSize = cfg.model === 'gru' || cfg.model === 'rnn' ? 0 : B * N; // gru and rnn carry h only
  const s = checkState('state', state, L, B * N, cellSize); // s.h[l], s.c[l]: (h_t, c_t) of layer l
  if (masks && (masks.length !== T || masks.some((m) => m.length !== L || m.some((a) => a.length !== B * N)))) {
    throw new Error(`masks must be T = ${T} arrays of L = ${L} masks of B·N = ${B * N} values`);
  }
  const { E, dE, decoder, layers, grads } = weights(cfg, params);
  type Step = [(w: Weights, below: HC, prev: HC, B: number, N: number) => Block,
    (w: Weights, k: Block, dUp: HC, dNext: HC, B: number, N: number) => { dBelow: HC; dPrev: HC }];
  const [block, blockBackward] = ({
    lstm: [lstmBlock, lstmBlockBackward], gru: [gruBlock, gruBlockBackward], rnn: [rnnBlock, rnnBlockBackward],
    grid_lstm: [gridBlock, gridBlockBackward],
  } satisfies Record<string, Step>)[cfg.model];
  const ids = (a: ArrayLike<number>, t: number) => Array.from({ length: B }, (_, b) => a[b * T + t]); // [B] at step t
  const steps: { blocks: Block[]; top: F; logp: F }[] = [];
  let nll = 0; // Σ over the scored targets
  let scored = 0;
  for (let t = 0; t < T; t++) {
    // Into layer 0: h = embedding[x_t] [B, N] and c = 0 (the grid's h_d and c_d, §4.3).
    let up: HC = { h: new Float64Array(B * N), c: new Float64Array(B * N) };
    ids(batch.x, t).forEach((v, b) => up.h.set(E.subarray(v * N, (v + 1) * N), b * N));
    const blocks: Block[] = [];
    for (let l = 0; l < L; l++) {
      const below = l > 0 && masks ? { h: op.mul(up.h, masks[t][l - 1]), c: up.c } : up; // dropout on h
      const k = block(layers[l], below, { h: s.h[l], c: s.c[l] }, B, N);
      [s.h[l], s.c[l]] = [k.time.h, k.time.c];
      up = k.depth ?? k.time;
      blocks.push(k);
    }
    const top = masks ? op.mul(up.h, masks[t][L - 1]) : up.h; // dropout before the decoder
    const { logp, nll: n, scored: m } = op.logSoftmaxNll(op.linear(decoder, top, B), ids(batch.y, t), B, V); // [B, V]
    nll += n;
    scored += m;
    steps.push({ blocks, top, logp });
  }

  // Backward, the mirror image: every parameter's gradient and ∂/∂(initial state).
  const backward = (dFinalState?: StateInput): Gradients => {
    const zeros = (n: number) => Array.from({ length: L }, () => new Float64Array(n));
    const ds = dFinalState ? checkState('dFinalState', dFinalState, L, B * N, cellSize) : { h: zeros(B * N), c: zeros(cellSize) };
    for (const g of grads.values()) g.fill(0);
    for (let t = T - 1; t >= 0; t--) {
      const { blocks, top, logp } = steps[t];
      const dlogits = op.logSoftmaxNllBackward(logp, ids(batch.y, t), B, V, 1 / B); // 1/B: the batch mean
      const dtop = op.linearBackward(decoder, dlogits, top, B);
      let dUp: HC = { h: masks ? op.mul(dtop, masks[t][L - 1]) : dtop, c: new Float64Array(B * N) }; // top c: unused
      for (let l = L - 1; l >= 0; l--) {
        const { dBelow, dPrev } = blockBackward(layers[l], blocks[l], dUp, { h: ds.h[l], c: ds.c[l] }, B, N);
        [ds.h[l], ds.c[l]] = [dPrev.h, dPrev.c];
        dUp = l > 0 && masks ? { h: op.mul(dBelow.h, masks[t][l - 1]), c: dBelow.c } : dBelow;
      }
      ids(batch.x, t).forEach((v, b) => { for (let n = 0; n < N; n++) dE[v * N + n] += dUp.h[b * N + n]; }); // embedding
    }
    return { grads: new Map([...grads].map(([name, g]) => [name, g.slice()])), dInitialState: ds };
  };
  return { loss: scored === 0 ? 0 : nll / scored, objective: nll / B, finalState: s, backward };
}

/** Forward then backward: what Model.forwardBackward gives, with the gradients keyed by parameter name. */
export function forwardBackward(config: ModelConfig, params: Params, batch: Batch, state: StateInput,
  options: { masks?: Masks; dFinalState?: StateInput } = {}): Result {
  const { loss, objective, finalState, backward } = forward(config, params, batch, state, options.masks);
  const { grads, dInitialState } = backward(options.dFinalState);
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((sum, v, j) => sum + v * b[j], 0);
  const dF = options.dFinalState; // the objective's term ⟨dFinalState, final state⟩:
  const extra = dF ? finalState.h.reduce((sum, h, l) => sum + dot(dF.h[l], h) + dot(dF.c[l], finalState.c[l]), 0) : 0;
  return { loss, objective: objective + extra, finalState, grads, dInitialState };
}

// ---------------------------------------------------------------------------------------------
// Parameters and argument checks.

/** Float64 copies of the parameters as linear maps per layer, and their zeroed gradients. */
function weights(cfg: ReturnType<typeof normalizeConfig>, params: Params) {
  const given: Map<string, ArrayLike<number>> = params instanceof Map ? params : new Map(Object.entries(params ?? {}));
  const [p, grads] = [new Map<string, F>(), new Map<string, F>()];
  for (const { name, size } of paramLayout(cfg)) {
    const v = given.get(name);
    if (v?.length !== size) throw new Error(`params ${name} must have ${size} values, got ${v?.length}`);
    p.set(name, Float64Array.from(v));
    grads.set(name, new Float64Array(size));
  }
  for (const name of given.keys()) if (!p.has(name)) throw new Error(`params ${name} is not a parameter of this ${cfg.model}`);
  const N = cfg.rnnSize;
  const [w, b] = [(at: string) => `${at}.weight`, (at: string) => `${at}.bias`];
  const G = { lstm: 4, gru: 3, rnn: 1, grid_lstm: 4 }[cfg.model]; // blocks of N: i f o g; z r n; a
  const lin = (at: string, nOut = G * N): op.Linear =>
    ({ W: p.get(w(at))!, b: p.get(b(at))!, dW: grads.get(w(at))!, db: grads.get(b(at))!, nIn: N, nOut });
  const layers = Array.from({ length: cfg.numLayers }, (_, l): Weights => {
    if (cfg.model !== 'grid_lstm') return { i2h: lin(`layers.${l}.i2h`), h2h: lin(`layers.${l}.h2h`) };
    const [time, depth] = [`layers.${l}.time`, cfg.tieWeights ? 'depth' : `layers.${l}.depth`]; // §3.5 tied: shared arrays
    const [t2h, d2h] = [lin(`${time}.t2h`), lin(`${time}.d2h`)];
    return { 'time.t2h': t2h, 'time.d2h': d2h, 'depth.t2h': lin(`${depth}.t2h`), 'depth.d2h': lin(`${depth}.d2h`) };
  });
  const [E, dE] = [p.get('embedding.weight')!, grads.get('embedding.weight')!];
  return { E, dE, decoder: lin('decoder', cfg.vocabSize), layers, grads };
}

/** A float64 copy of a state, after checking that it has L layers of h of n = B·N values and c of nc (n, or 0: no cell). */
function checkState(name: string, s: StateInput, L: number, n: number, nc: number): State {
  if (!Array.isArray(s?.h) || !Array.isArray(s?.c) || s.h.length !== L || s.c.length !== L) {
    throw new Error(`${name} must have h and c arrays of L = ${L} layers`);
  }
  const copy = (k: 'h' | 'c', size: number) => s[k].map((a, l) => {
    if (a?.length !== size) throw new Error(`${name}.${k}[${l}] must have ${size === 0 ? '0 (no cell)' : `B·N = ${size}`} values, got ${a?.length}`);
    return Float64Array.from(a);
  });
  return { h: copy('h', n), c: copy('c', nc) };
}
