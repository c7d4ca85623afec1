/**
 * The operations the models are made of, each forward beside its backward. Shapes: M rows
 * (M = T·B positions, time-major), N hidden units, V vocabulary. Dense work goes through the
 * Kernels interface; what is left here is indexing and element-wise work.
 *
 * The LSTM cell update and log-softmax + NLL are kernels themselves (src/nn/kernels.ts,
 * `lstmForward`/`lstmBackward`, `logSoftmaxNll`/`logSoftmaxNllBackward`).
 */
import type { Float, Kernels } from './kernels.js';
import type { Rng } from './rng.js';

/** A linear map y = x·Wᵀ + b: views of the parameters and of their gradients. */
export interface Linear {
  W: Float; // [out, in]
  b: Float; // [out]
  dW: Float; // [out, in]
  db: Float; // [out]
  inSize: number;
  outSize: number;
}

// ---------------------------------------------------------------------------------------------
// Embedding: out[m,:] = E[ids[m],:]          E [V,N], ids [M], out [M,N]

export function embeddingForward(out: Float, E: Float, ids: Int32Array, M: number, N: number): void {
  for (let m = 0; m < M; m++) out.set(E.subarray(ids[m] * N, ids[m] * N + N), m * N);
}

/** dE[ids[m],:] += dOut[m,:] */
export function embeddingBackward(dE: Float, dOut: Float, ids: Int32Array, M: number, N: number): void {
  for (let m = 0; m < M; m++) {
    const eo = ids[m] * N;
    const oo = m * N;
    for (let n = 0; n < N; n++) dE[eo + n] += dOut[oo + n];
  }
}

// ---------------------------------------------------------------------------------------------
// Linear: Y[M,out] (+)= X[M,in]·Wᵀ + b

export function linearForward(k: Kernels, Y: Float, X: Float, lin: Linear, M: number, accumulate: boolean): void {
  k.matmulXWt(Y, X, lin.W, lin.b, M, lin.outSize, lin.inSize, accumulate);
}

/** Y[M,out] = X1·W1ᵀ + b1 + X2·W2ᵀ + b2: two linear maps of two inputs, as one product of [X1 X2]. */
export function linear2Forward(k: Kernels, Y: Float, X1: Float, lin1: Linear, X2: Float, lin2: Linear, M: number): void {
  k.matmulXWt2(Y, X1, lin1.W, X2, lin2.W, lin1.b, lin2.b, M, lin1.outSize, lin1.inSize, lin2.inSize);
}

/**
 * dW += dYᵀ·X, db += Σ_rows dY, and, when dX is given, dX[M,in] += dY·W.
 * Weight gradients are summed over all M rows in one product.
 */
export function linearBackward(k: Kernels, dX: Float | null, dY: Float, X: Float, lin: Linear, M: number): void {
  k.matmulDyTX(lin.dW, lin.db, dY, X, M, lin.outSize, lin.inSize);
  if (dX !== null) k.matmulDyW(dX, dY, lin.W, M, lin.outSize, lin.inSize);
}

// ---------------------------------------------------------------------------------------------
// Inverted dropout: out = x ⊙ mask, mask ∈ {0, 1/(1−p)}, drawn once per forward pass.

/** Fills mask[n] with 0 (probability p) or 1/(1−p). */
export function dropoutMask(mask: Float, p: number, rng: Rng, start: number, n: number): void {
  const keep = 1 / (1 - p);
  for (let j = start; j < start + n; j++) mask[j] = rng.uniform() < p ? 0 : keep;
}

export function dropoutForward(out: Float, x: Float, mask: Float, n: number): void {
  for (let j = 0; j < n; j++) out[j] = x[j] * mask[j];
}

/** dx = dOut ⊙ mask (dx may be dOut itself) */
export function dropoutBackward(dx: Float, dOut: Float, mask: Float, n: number): void {
  for (let j = 0; j < n; j++) dx[j] = dOut[j] * mask[j];
}

/** ⟨a, b⟩ of two buffers of the same length. */
export function dot(a: Float, b: Float): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j] * b[j];
  return s;
}
