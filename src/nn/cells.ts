/**
 * The recurrent cells, and what a layer that runs along time needs from its cell. One driver in
 * src/nn/model.ts (forwardThroughTime / backwardThroughTime) runs every layer of lstm, gru and
 * rnn, and the time LSTM of each grid_lstm layer, through this interface; the grid's depth LSTM
 * is the LSTM cell's element-wise update (lstmForward / lstmBackward) applied to all T·B
 * positions at once. To add a cell: write its element-wise kernels (src/nn/kernels.ts), one
 * object below, its step in src/reference/ to test it against, and a ModelKind in params.ts.
 *
 * A layer's pre-activations are a = i2h(x) + h2h(·), in blocks of N units each; the updates are
 * those of char-rnn's LSTM.lua, GRU.lua and RNN.lua:
 *
 *   cell  blocks   parts                   state   update
 *   lstm  i f o g  [i f o g] ← h           h, c    i,f,o = σ(a), g = tanh(a);  c' = f⊙c + i⊙g;  h' = o⊙tanh(c')
 *   gru   z r n    [z r] ← h, [n] ← r⊙h    h       z,r = σ(a);  n = tanh(x·Wnᵀ + bn + (r⊙h)·Unᵀ + cn);
 *                                                  h' = z⊙n + (1 − z)⊙h
 *   rnn   a        [a] ← h                 h       h' = tanh(a)
 *
 * Parts: the blocks whose recurrent product reads the same input. The LSTM's and the RNN's all
 * read h_{t−1}; the GRU's candidate n reads r⊙h_{t−1}, which exists only once its reset gate r
 * is computed from the first part, so its product runs inside the step, between the two halves
 * of the cell's update (each cell's forwardStep does its own recurrent products: the hook). Each
 * part is a matrix of its own, [T·B, blocks·N] (time-major), fed by the rows of i2h and h2h that
 * compute it: a Linear of their own ({@link partsOf}, views of the same parameters).
 *
 * Shapes: B batch, N units; "step t" reads h_t (the state before it, h[0] the initial state)
 * and writes h_{t+1}.
 */
import type { Float, Kernels } from './kernels.js';
import { type Linear, linearForward } from './layers.js';

export type CellKind = 'lstm' | 'gru' | 'rnn';

/** One part of a cell's pre-activations: its width in blocks and its recurrent input. */
export interface CellPart {
  blocks: number;
  /** 'h': h_{t−1};  'rh': r⊙h_{t−1} (the GRU's candidate). */
  reads: 'h' | 'rh';
}

/**
 * Views of one layer's activations and gradients step by step, each [B, ·], made once per
 * workspace (the kernels check every view they are given once, then remember it).
 */
export interface CellSteps {
  /** [part][t]: step t's pre-activations (from below: i2h, or a table row), its activations after forwardStep. */
  a: Float[][];
  /** [t], t = 0 … T: h_t; h[0] is the state the pass started from. */
  h: Float[];
  /** lstm, [t], t = 0 … T: c_t (as h). Empty views for the other cells. */
  c: Float[];
  /** lstm, [t], t < T: tanh(c_{t+1}). */
  tc: Float[];
  /** gru, [t], t < T: r⊙h_t, the candidate's recurrent input. */
  rh: Float[];
  /** Backward: [part][t] ∂/∂a of step t. */
  dA: Float[][];
  /** Backward: [t], t = 0 … T: ∂/∂h_t. */
  dh: Float[];
  /** Backward, gru: scratch for ∂/∂(r⊙h) of one step. */
  dRh: Float;
}

export interface Cell {
  readonly kind: CellKind;
  /** The gate blocks of a pre-activation row, in order (each N wide). */
  readonly blocks: readonly string[];
  readonly parts: readonly CellPart[];
  /** Whether it carries a cell state c beside h. Without one, a State's c[l] has length 0. */
  readonly hasCell: boolean;
  /**
   * Bias blocks of the cell's first linear map that char-rnn sets after its uniform(±0.08)
   * initialisation: [block, value]. The LSTM's forget gate starts at 1; the others have none.
   */
  readonly biasInit: readonly (readonly [block: number, value: number])[];
  /**
   * Step t forward: adds the recurrent products (h2h, one Linear per part) to s.a[·][t], which
   * holds the part from below, applies the update, and writes h_{t+1} (and c_{t+1}, tanh, r⊙h).
   */
  forwardStep(k: Kernels, s: CellSteps, t: number, h2h: readonly Linear[], B: number, N: number): void;
  /**
   * Step t backward. In: s.dh[t+1] = ∂/∂h_{t+1}, complete; dc = ∂/∂c_{t+1} (lstm). Out:
   * s.dA[·][t] = ∂/∂a; s.dh[t] += the gradient through the recurrence; dc = ∂/∂c_t. (The weight
   * gradients of h2h come after the loop, one product over all steps per part.)
   */
  backwardStep(k: Kernels, s: CellSteps, t: number, h2h: readonly Linear[], dc: Float, B: number, N: number): void;
}

/** The LSTM (paper eq. 2-7; char-rnn's LSTM.lua): gates i f o g, cell c, h = o⊙tanh(c). */
export const LSTM: Cell = {
  kind: 'lstm',
  blocks: ['i', 'f', 'o', 'g'],
  parts: [{ blocks: 4, reads: 'h' }],
  hasCell: true,
  biasInit: [[1, 1]], // the forget gate: remember by default
  forwardStep(k, s, t, h2h, B, N) {
    const a = s.a[0][t];
    linearForward(k, a, s.h[t], h2h[0], B, true); // a += h2h(h_t)
    k.lstmForward(a, s.c[t], s.c[t + 1], s.tc[t], s.h[t + 1], B, N);
  },
  backwardStep(k, s, t, h2h, dc, B, N) {
    const da = s.dA[0][t];
    k.lstmBackward(s.a[0][t], s.c[t], s.tc[t], s.dh[t + 1], dc, da, dc, B, N);
    k.matmulDyW(s.dh[t], da, h2h[0].W, B, 4 * N, N); // h_t fed h2h
  },
};

/**
 * The GRU as char-rnn's GRU.lua computes it (Cho et al. 2014): the reset gate multiplies h
 * *before* the candidate's recurrent map, and z weighs the candidate (both unlike PyTorch's
 * nn.GRU). Parts: [z r] (2N, reads h) and [n] (N, reads r⊙h).
 */
export const GRU: Cell = {
  kind: 'gru',
  blocks: ['z', 'r', 'n'],
  parts: [{ blocks: 2, reads: 'h' }, { blocks: 1, reads: 'rh' }],
  hasCell: false,
  biasInit: [],
  forwardStep(k, s, t, h2h, B, N) {
    const zr = s.a[0][t]; // [B, 2N]
    const n = s.a[1][t]; // [B, N]
    linearForward(k, zr, s.h[t], h2h[0], B, true); // [a_z a_r] += h·U_zrᵀ + c_zr
    k.gruResetForward(zr, s.h[t], s.rh[t], B, N); // z, r = σ(·);  rh = r⊙h
    linearForward(k, n, s.rh[t], h2h[1], B, true); // a_n += (r⊙h)·Unᵀ + cn
    k.gruForward(zr, n, s.h[t], s.h[t + 1], B, N); // n = tanh(a_n);  h' = z⊙n + (1 − z)⊙h
  },
  backwardStep(k, s, t, h2h, _dc, B, N) {
    const zr = s.a[0][t];
    const dzr = s.dA[0][t];
    const dn = s.dA[1][t];
    k.gruBackward(zr, s.a[1][t], s.h[t], s.dh[t + 1], dzr, dn, s.dh[t], B, N); // ∂a_z, ∂a_n; h's direct path
    s.dRh.fill(0);
    k.matmulDyW(s.dRh, dn, h2h[1].W, B, N, N); // ∂/∂(r⊙h)
    k.gruResetBackward(zr, s.h[t], s.dRh, dzr, s.dh[t], B, N); // ∂a_r; h through r⊙h
    k.matmulDyW(s.dh[t], dzr, h2h[0].W, B, 2 * N, N); // h through the gates' map
  },
};

/** The vanilla RNN (char-rnn's RNN.lua): h' = tanh(i2h(x) + h2h(h)). */
export const RNN: Cell = {
  kind: 'rnn',
  blocks: ['a'],
  parts: [{ blocks: 1, reads: 'h' }],
  hasCell: false,
  biasInit: [],
  forwardStep(k, s, t, h2h, B, N) {
    const a = s.a[0][t];
    linearForward(k, a, s.h[t], h2h[0], B, true); // a += h2h(h_t)
    k.rnnForward(a, s.h[t + 1], B, N);
  },
  backwardStep(k, s, t, h2h, _dc, B, N) {
    const da = s.dA[0][t];
    k.rnnBackward(s.h[t + 1], s.dh[t + 1], da, B, N);
    k.matmulDyW(s.dh[t], da, h2h[0].W, B, N, N);
  },
};

/** The cell of each model kind (grid_lstm: the LSTM, along time and along depth). */
export function cellOf(model: 'lstm' | 'gru' | 'rnn' | 'grid_lstm'): Cell {
  return model === 'gru' ? GRU : model === 'rnn' ? RNN : LSTM;
}

/**
 * A linear map into a cell's pre-activations as one Linear per part: views of the rows of W, b
 * (and of their gradients) that compute each part. A cell of one part gets `lin` itself.
 */
export function partsOf(lin: Linear, cell: Cell, N: number): Linear[] {
  if (cell.parts.length === 1) return [lin];
  let row = 0;
  return cell.parts.map(({ blocks }) => {
    const [from, to] = [row, row + blocks * N];
    row = to;
    const K = lin.inSize;
    return {
      W: lin.W.subarray(from * K, to * K),
      b: lin.b.subarray(from, to),
      dW: lin.dW.subarray(from * K, to * K),
      db: lin.db.subarray(from, to),
      inSize: K,
      outSize: to - from,
    };
  });
}
