/**
 * The dense kernels that the models call: matrix products, the fused cell updates (LSTM, GRU, RNN),
 * log-softmax + NLL, row gathers / scatter-adds by token id, and the sampling weights. The model
 * code (src/nn/model.ts) never loops over a matrix itself; it calls one of these, so an
 * implementation in WebAssembly can take the place of the plain TypeScript one below without
 * touching the model.
 *
 * Conventions: every matrix is a dense row-major view (a typed array or a `subarray` of one);
 * shapes are given in the comments as [rows, cols]. A linear map is y = x·Wᵀ + b with W shaped
 * [out, in], as in Torch's nn.Linear and PyTorch.
 *
 * Gate order inside a 4N-wide LSTM pre-activation row: i, f, o, g (input, forget, output, cell
 * candidate), each a block of N columns. The GRU's are two matrices (src/nn/cells.ts): [z r]
 * (update, reset) of width 2N, and the candidate n of width N.
 */

import { embeddingBackward, embeddingForward } from './layers.js';

export type Float = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';

export interface Kernels {
  /** Element type of every buffer these kernels work on. */
  readonly dtype: DType;
  /** A short name for reports ("ts", "wasm-simd", ...). */
  readonly name: string;

  /** A zero-filled buffer of n elements that these kernels can work on. */
  alloc(n: number): Float;

  /**
   * Y[M,N] = X[M,K]·W[N,K]ᵀ (+ b[N] broadcast over rows), or Y += ... when `accumulate`.
   * The forward of a linear map.
   */
  matmulXWt(
    Y: Float, X: Float, W: Float, b: Float | null, M: number, N: number, K: number, accumulate: boolean,
  ): void;

  /**
   * Y[M,N] = X1[M,K1]·W1[N,K1]ᵀ + X2[M,K2]·W2[N,K2]ᵀ (+ b1[N]) (+ b2[N]): two linear maps
   * of two inputs summed, as one product of the concatenated input [X1 X2] with [W1 W2].
   */
  matmulXWt2(
    Y: Float, X1: Float, W1: Float, X2: Float, W2: Float, b1: Float | null, b2: Float | null,
    M: number, N: number, K1: number, K2: number,
  ): void;

  /**
   * Runs `fn`, during which W[N,K] does not change: an implementation may then prepare W once
   * for all the matmulXWt / matmulXWt2 / matmulDyW calls with it inside `fn` (the recurrent map
   * of an LSTM is used once per time step; sampling uses every weight once per character).
   * Scopes nest and add up. The reference just runs `fn`.
   */
  withConstantWeights(W: Float, N: number, K: number, fn: () => void): void;

  /** dX[M,K] += dY[M,N]·W[N,K]. The input gradient of a linear map. */
  matmulDyW(dX: Float, dY: Float, W: Float, M: number, N: number, K: number): void;

  /**
   * dW[N,K] += dY[M,N]ᵀ·X[M,K] and, when db is given, db[N] += Σ_rows dY.
   * The weight and bias gradients of a linear map, summed over all M rows at once.
   */
  matmulDyTX(dW: Float, db: Float | null, dY: Float, X: Float, M: number, N: number, K: number): void;

  /**
   * The LSTM cell update for M rows of N units (paper eq. 2-7, char-rnn's gate order).
   *   in:  gates[M,4N] holds the pre-activations a = [a_i a_f a_o a_g]; cPrev[M,N]
   *   out: gates[M,4N] overwritten with the activations [i f o g], i,f,o = σ(a), g = tanh(a);
   *        c[M,N] = f⊙cPrev + i⊙g;  tc[M,N] = tanh(c);  h[M,N] = o⊙tc.
   */
  lstmForward(gates: Float, cPrev: Float, c: Float, tc: Float, h: Float, M: number, N: number): void;

  /**
   * Backward of lstmForward. gates/cPrev/tc are what the forward left.
   *   in:  dh[M,N] = ∂ℓ/∂h,  dc[M,N] = ∂ℓ/∂c coming from later uses of c (zero if none)
   *   out: dGates[M,4N] = ∂ℓ/∂a (pre-activations), dcPrev[M,N] = ∂ℓ/∂cPrev (overwritten).
   * dcPrev may alias dc (it is read before it is written, row by row).
   */
  lstmBackward(
    gates: Float, cPrev: Float, tc: Float, dh: Float, dc: Float, dGates: Float, dcPrev: Float,
    M: number, N: number,
  ): void;

  /**
   * The GRU's reset and update gates (char-rnn's GRU.lua), the first half of its step.
   *   in:  zr[M,2N] the pre-activations [a_z a_r] (both parts, from x and from h, summed); h[M,N]
   *   out: zr[M,2N] overwritten with [z r] = σ(a);  rh[M,N] = r⊙h, the candidate's recurrent input.
   */
  gruResetForward(zr: Float, h: Float, rh: Float, M: number, N: number): void;

  /**
   * The second half of the GRU's step: its candidate and the new hidden state.
   *   in:  zr[M,2N] = [z r] as gruResetForward left them; n[M,N] the candidate's pre-activations
   *        a_n = x·Wnᵀ + bn + (r⊙h)·Unᵀ + cn; hPrev[M,N]
   *   out: n[M,N] overwritten with tanh(a_n);  h[M,N] = z⊙n + (1 − z)⊙hPrev.
   */
  gruForward(zr: Float, n: Float, hPrev: Float, h: Float, M: number, N: number): void;

  /**
   * Backward of gruForward. zr, n, hPrev are what the forward left; dh[M,N] = ∂ℓ/∂h.
   *   out: dn[M,N] = ∂ℓ/∂a_n; the z block of dzr[M,2N] = ∂ℓ/∂a_z (its r block is left alone);
   *        dhPrev[M,N] += dh⊙(1 − z), the path of hPrev that skips the candidate.
   */
  gruBackward(zr: Float, n: Float, hPrev: Float, dh: Float, dzr: Float, dn: Float, dhPrev: Float, M: number, N: number): void;

  /**
   * Backward of gruResetForward, given drh[M,N] = ∂ℓ/∂(r⊙h):
   *   out: the r block of dzr[M,2N] = ∂ℓ/∂a_r (its z block is left alone); dhPrev[M,N] += drh⊙r.
   */
  gruResetBackward(zr: Float, hPrev: Float, drh: Float, dzr: Float, dhPrev: Float, M: number, N: number): void;

  /** The vanilla RNN's update: h[M,N] = tanh(a[M,N]) (a is left as it is). */
  rnnForward(a: Float, h: Float, M: number, N: number): void;

  /** Backward of rnnForward from the h it wrote: da[M,N] = dh⊙(1 − h²) (da may alias dh). */
  rnnBackward(h: Float, dh: Float, da: Float, M: number, N: number): void;

  /**
   * out[m,:] = table[ids[m],:] for m < M, rows of `width` (ids in [0, rows)). The embedding
   * lookup, and the first layer's tables.
   */
  gatherRows(out: Float, table: Float, ids: Int32Array, M: number, width: number, rows: number): void;

  /** dst[ids[m],:] += src[m,:] for m = 0 … M−1 in order (ids in [0, rows)). Backward of gatherRows. */
  scatterAddRows(dst: Float, src: Float, ids: Int32Array, M: number, width: number, rows: number): void;

  /**
   * Log-softmax over each row of logits[M,V] in place (they become log-probabilities), and the
   * summed negative log-likelihood of targets[M] (ids in [0,V)). Returns Σ_rows −logp[target].
   * A negative target means "not scored" (PyTorch's ignore_index): its row becomes
   * log-probabilities too but adds nothing to the sum.
   */
  logSoftmaxNll(logits: Float, targets: Int32Array, M: number, V: number): number;

  /**
   * Backward of logSoftmaxNll for a loss scale s (ℓ = s·Σ NLL):
   * dLogits[M,V] = s·(softmax − onehot(target)), computed from the log-probabilities; a row
   * whose target is negative (not scored) gets 0. dLogits may alias logp.
   */
  logSoftmaxNllBackward(dLogits: Float, logp: Float, targets: Int32Array, M: number, V: number, scale: number): void;

  /**
   * p[j] = exp((x[j] − max x)·invTemperature) for j < V (NaN entries of x do not count for the
   * max); returns Σ p. Sampling: with x the log-probabilities, p ∝ softmax(x / temperature).
   */
  softmaxScaled(p: Float, x: Float, V: number, invTemperature: number): number;

  /** RMSprop over whole buffers (Torch's optim.rmsprop): m = α·m + (1−α)·g²;  x −= lr·g/(√m + ε). */
  rmsprop(x: Float, g: Float, m: Float, lr: number, alpha: number, eps: number): void;

  /**
   * Adam (Torch's optim.adam): m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
   * x −= stepSize·m/(√v + ε), with stepSize = lr·√(1−β2ᵗ)/(1−β1ᵗ) computed by the caller.
   */
  adam(x: Float, g: Float, m: Float, v: Float, lr: number, beta1: number, beta2: number, eps: number, stepSize: number): void;

  /** Element-wise clamp of g to [−c, c]; nothing when !(c > 0). */
  clip(g: Float, c: number): void;

  /** The index of the first element of a that is NaN or ±Infinity; −1 when all are finite. */
  firstNonFinite(a: Float): number;

  /**
   * [Σ a[j]², Σ b[j]²] (a and b of one length) in float64, each summed in index order: the
   * bits of a plain loop `s += a[j] * a[j]`.
   */
  sumSquares2(a: Float, b: Float): [number, number];
}

/** Throws unless ids[0..M) are integers in [0, rows). */
export function checkIds(ids: Int32Array, M: number, rows: number): void {
  if (!(ids instanceof Int32Array)) throw new TypeError('ids must be an Int32Array');
  if (ids.length < M) throw new RangeError(`ids has ${ids.length} elements, needs ${M}`);
  for (let m = 0; m < M; m++) {
    if (!(ids[m] >= 0 && ids[m] < rows)) throw new RangeError(`id ${m} is ${ids[m]}, outside [0, ${rows})`);
  }
}

/** σ(x) that neither overflows nor loses precision for large |x|. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * The reference kernels: plain TypeScript loops, readable and exact in float64. For float32
 * buffers the arithmetic is done in double precision and rounded on store.
 */
export class TsKernels implements Kernels {
  readonly name = 'ts';
  constructor(readonly dtype: DType = 'float64') {}

  alloc(n: number): Float {
    return this.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  }

  matmulXWt(Y: Float, X: Float, W: Float, b: Float | null, M: number, N: number, K: number, accumulate: boolean): void {
    for (let m = 0; m < M; m++) {
      const xo = m * K;
      const yo = m * N;
      for (let n = 0; n < N; n++) {
        const wo = n * K;
        let s = b === null ? 0 : b[n];
        for (let k = 0; k < K; k++) s += X[xo + k] * W[wo + k];
        Y[yo + n] = accumulate ? Y[yo + n] + s : s;
      }
    }
  }

  matmulXWt2(
    Y: Float, X1: Float, W1: Float, X2: Float, W2: Float, b1: Float | null, b2: Float | null,
    M: number, N: number, K1: number, K2: number,
  ): void {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = (b1 === null ? 0 : b1[n]) + (b2 === null ? 0 : b2[n]);
        for (let k = 0; k < K1; k++) s += X1[m * K1 + k] * W1[n * K1 + k];
        for (let k = 0; k < K2; k++) s += X2[m * K2 + k] * W2[n * K2 + k];
        Y[m * N + n] = s;
      }
    }
  }

  withConstantWeights(_W: Float, _N: number, _K: number, fn: () => void): void {
    fn();
  }

  matmulDyW(dX: Float, dY: Float, W: Float, M: number, N: number, K: number): void {
    for (let m = 0; m < M; m++) {
      const xo = m * K;
      const yo = m * N;
      for (let n = 0; n < N; n++) {
        const d = dY[yo + n];
        if (d === 0) continue;
        const wo = n * K;
        for (let k = 0; k < K; k++) dX[xo + k] += d * W[wo + k];
      }
    }
  }

  matmulDyTX(dW: Float, db: Float | null, dY: Float, X: Float, M: number, N: number, K: number): void {
    for (let m = 0; m < M; m++) {
      const xo = m * K;
      const yo = m * N;
      for (let n = 0; n < N; n++) {
        const d = dY[yo + n];
        if (db !== null) db[n] += d;
        if (d === 0) continue;
        const wo = n * K;
        for (let k = 0; k < K; k++) dW[wo + k] += d * X[xo + k];
      }
    }
  }

  lstmForward(gates: Float, cPrev: Float, c: Float, tc: Float, h: Float, M: number, N: number): void {
    for (let m = 0; m < M; m++) {
      const go = m * 4 * N;
      const so = m * N;
      for (let n = 0; n < N; n++) {
        const i = sigmoid(gates[go + n]);
        const f = sigmoid(gates[go + N + n]);
        const o = sigmoid(gates[go + 2 * N + n]);
        const g = Math.tanh(gates[go + 3 * N + n]);
        gates[go + n] = i;
        gates[go + N + n] = f;
        gates[go + 2 * N + n] = o;
        gates[go + 3 * N + n] = g;
        const cn = f * cPrev[so + n] + i * g;
        c[so + n] = cn;
        const t = Math.tanh(cn);
        tc[so + n] = t;
        h[so + n] = o * t;
      }
    }
  }

  lstmBackward(
    gates: Float, cPrev: Float, tc: Float, dh: Float, dc: Float, dGates: Float, dcPrev: Float, M: number, N: number,
  ): void {
    for (let m = 0; m < M; m++) {
      const go = m * 4 * N;
      const so = m * N;
      for (let n = 0; n < N; n++) {
        const i = gates[go + n];
        const f = gates[go + N + n];
        const o = gates[go + 2 * N + n];
        const g = gates[go + 3 * N + n];
        const t = tc[so + n];
        const dhn = dh[so + n];
        // h = o·tanh(c): the gradient reaching c adds to what later uses of c sent back.
        const dcn = dc[so + n] + dhn * o * (1 - t * t);
        dGates[go + n] = dcn * g * i * (1 - i); // c = f·cPrev + i·g
        dGates[go + N + n] = dcn * cPrev[so + n] * f * (1 - f);
        dGates[go + 2 * N + n] = dhn * t * o * (1 - o);
        dGates[go + 3 * N + n] = dcn * i * (1 - g * g);
        dcPrev[so + n] = dcn * f;
      }
    }
  }

  gruResetForward(zr: Float, h: Float, rh: Float, M: number, N: number): void {
    for (let m = 0; m < M; m++) {
      const go = m * 2 * N;
      const so = m * N;
      for (let n = 0; n < N; n++) {
        const z = sigmoid(zr[go + n]);
        const r = sigmoid(zr[go + N + n]);
        zr[go + n] = z;
        zr[go + N + n] = r;
        rh[so + n] = r * h[so + n];
      }
    }
  }

  gruForward(zr: Float, n: Float, hPrev: Float, h: Float, M: number, N: number): void {
    for (let m = 0; m < M; m++) {
      const go = m * 2 * N;
      const so = m * N;
      for (let j = 0; j < N; j++) {
        const z = zr[go + j];
        const c = Math.tanh(n[so + j]);
        n[so + j] = c;
        h[so + j] = z * c + (1 - z) * hPrev[so + j];
      }
    }
  }

  gruBackward(zr: Float, n: Float, hPrev: Float, dh: Float, dzr: Float, dn: Float, dhPrev: Float, M: number, N: number): void {
    for (let m = 0; m < M; m++) {
      const go = m * 2 * N;
      const so = m * N;
      for (let j = 0; j < N; j++) {
        const z = zr[go + j];
        const c = n[so + j];
        const d = dh[so + j];
        // h = z⊙n + (1 − z)⊙hPrev
        dn[so + j] = d * z * (1 - c * c); // through tanh
        dzr[go + j] = d * (c - hPrev[so + j]) * z * (1 - z); // through σ
        dhPrev[so + j] += d * (1 - z);
      }
    }
  }

  gruResetBackward(zr: Float, hPrev: Float, drh: Float, dzr: Float, dhPrev: Float, M: number, N: number): void {
    for (let m = 0; m < M; m++) {
      const go = m * 2 * N;
      const so = m * N;
      for (let j = 0; j < N; j++) {
        const r = zr[go + N + j];
        const d = drh[so + j];
        // rh = r⊙hPrev
        dzr[go + N + j] = d * hPrev[so + j] * r * (1 - r);
        dhPrev[so + j] += d * r;
      }
    }
  }

  rnnForward(a: Float, h: Float, M: number, N: number): void {
    for (let j = 0; j < M * N; j++) h[j] = Math.tanh(a[j]);
  }

  rnnBackward(h: Float, dh: Float, da: Float, M: number, N: number): void {
    for (let j = 0; j < M * N; j++) da[j] = dh[j] * (1 - h[j] * h[j]);
  }

  gatherRows(out: Float, table: Float, ids: Int32Array, M: number, width: number, rows: number): void {
    checkIds(ids, M, rows);
    embeddingForward(out, table, ids, M, width);
  }

  scatterAddRows(dst: Float, src: Float, ids: Int32Array, M: number, width: number, rows: number): void {
    checkIds(ids, M, rows);
    embeddingBackward(dst, src, ids, M, width);
  }

  softmaxScaled(p: Float, x: Float, V: number, invTemperature: number): number {
    let max = -Infinity;
    for (let j = 0; j < V; j++) if (x[j] > max) max = x[j];
    let sum = 0;
    for (let j = 0; j < V; j++) {
      p[j] = Math.exp((x[j] - max) * invTemperature);
      sum += p[j];
    }
    return sum;
  }

  logSoftmaxNll(logits: Float, targets: Int32Array, M: number, V: number): number {
    let nll = 0;
    for (let m = 0; m < M; m++) {
      const o = m * V;
      const target = o + targets[m];
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (logits[o + v] > max) max = logits[o + v];
      if (max === Infinity || max === -Infinity) {
        // The limit of finite logits growing without bound: the entries at +∞ share all the
        // probability (log-probability −log k, the rest −∞); all at −∞ is uniform. Without
        // this, ∞ − ∞ would make every entry NaN. A NaN logit makes the whole row NaN.
        let k = 0;
        let nan = false;
        for (let v = 0; v < V; v++) {
          const x = logits[o + v];
          if (x === max) k++;
          else if (x !== x) nan = true;
        }
        const shared = nan ? NaN : -Math.log(k);
        const rest = nan ? NaN : -Infinity;
        for (let v = 0; v < V; v++) logits[o + v] = logits[o + v] === max ? shared : rest;
        if (targets[m] >= 0) nll -= logits[target];
        continue;
      }
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
      // (x − max) − log Σ rather than x − (max + log Σ): for huge logits max + log Σ rounds to
      // max, which would make every log-probability of a row of equal logits 0.
      const logSum = Math.log(sum);
      for (let v = 0; v < V; v++) logits[o + v] = logits[o + v] - max - logSum;
      if (targets[m] >= 0) nll -= logits[target];
    }
    return nll;
  }

  logSoftmaxNllBackward(dLogits: Float, logp: Float, targets: Int32Array, M: number, V: number, scale: number): void {
    for (let m = 0; m < M; m++) {
      const o = m * V;
      if (targets[m] < 0) {
        dLogits.fill(0, o, o + V); // not scored
        continue;
      }
      for (let v = 0; v < V; v++) dLogits[o + v] = scale * Math.exp(logp[o + v]);
      dLogits[o + targets[m]] -= scale;
    }
  }

  rmsprop(x: Float, g: Float, m: Float, lr: number, alpha: number, eps: number): void {
    for (let j = 0; j < x.length; j++) {
      const gj = g[j];
      const mj = alpha * m[j] + (1 - alpha) * gj * gj;
      m[j] = mj;
      x[j] -= (lr * gj) / (Math.sqrt(mj) + eps);
    }
  }

  adam(x: Float, g: Float, m: Float, v: Float, _lr: number, beta1: number, beta2: number, eps: number, stepSize: number): void {
    for (let j = 0; j < x.length; j++) {
      const gj = g[j];
      const mj = beta1 * m[j] + (1 - beta1) * gj;
      const vj = beta2 * v[j] + (1 - beta2) * gj * gj;
      m[j] = mj;
      v[j] = vj;
      x[j] -= (stepSize * mj) / (Math.sqrt(vj) + eps);
    }
  }

  clip(g: Float, c: number): void {
    if (!(c > 0)) return;
    for (let j = 0; j < g.length; j++) {
      const v = g[j];
      if (v > c) g[j] = c;
      else if (v < -c) g[j] = -c;
    }
  }

  firstNonFinite(a: Float): number {
    for (let j = 0; j < a.length; j++) {
      const v = a[j];
      if (v - v !== 0) return j; // NaN for NaN and ±Infinity
    }
    return -1;
  }

  sumSquares2(a: Float, b: Float): [number, number] {
    if (a.length !== b.length) throw new RangeError(`sumSquares2: lengths ${a.length} and ${b.length} differ`);
    let sa = 0;
    let sb = 0;
    for (let j = 0; j < a.length; j++) {
      sa += a[j] * a[j];
      sb += b[j] * b[j];
    }
    return [sa, sb];
  }
}
