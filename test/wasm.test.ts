/**
 * The WebAssembly SIMD kernels (src/nn/wasm.ts, assembly/kernels.ts) against the TypeScript
 * reference TsKernels('float32'), which computes in float64 and rounds to float32 on store.
 * Inputs are copied into both kernels' buffers (the wasm copies at random offsets, as subarrays);
 * shapes are drawn to include sizes that are not multiples of 4 or 8, the sizes of the 4×8
 * register tile (1, 3, 5, 17, 63, 129 and random small ones), and fixed larger shapes cross the
 * cache-blocking boundaries.
 *
 * Tolerances (u = 2⁻²⁴, the float32 unit roundoff; rel = 1e-5 for the SIMD build and 1e-4 for
 * the relaxed-SIMD build):
 *  - matmuls: |w − r| ≤ rel·(|w| + |r|) + 2·γₙ·S, with S = Σ|tᵢ| over the n terms summed into
 *    the element (the products, the bias, the previous value when accumulating) and
 *    γₙ = n·u/(1 − n·u). γₙ·S bounds the error of any float32 evaluation order of an n-term sum
 *    of products, fused or not (Higham, Accuracy and Stability of Numerical Algorithms, §3.1),
 *    and both implementations are within it of the exact sum; it only matters where the terms
 *    cancel. The bias sum db is bit-identical (same float32 additions in the same order).
 *  - lstmForward: gates |w − r| ≤ rel·(|w| + |r|) + 2⁻¹⁴⁷ (the floor: both sides round at most
 *    twice onto the subnormal grid 2⁻¹⁴⁹ when σ(x) underflows); c, tanh(c), h:
 *    |w − r| ≤ rel·(|w| + |r|) + rel·(|f·cPrev| + |i·g|) + 2⁻¹⁴⁷·(2 + |cPrev|): the activations
 *    carry a relative error (and, when subnormal, that absolute one), so c = f·cPrev + i·g
 *    carries it relative to its terms (where they cancel), and tanh and the product with o
 *    (both of slope ≤ 1) pass that on.
 *  - gruResetForward / gruForward / rnnForward: σ and tanh outputs as the gates above;
 *    r⊙h within rel of itself; the GRU's h = z·n + (1 − z)·hPrev within rel of itself plus rel
 *    of its terms |z|·(|n| + |hPrev|) + |hPrev| (where they cancel).
 *  - lstmBackward, the GRU's and the RNN's backward kernels, the optimiser updates and clipping:
 *    bit-identical (float64 arithmetic in the reference's order).
 *  - logSoftmaxNll: log-probabilities |w − r| ≤ rel·(|w| + |r|) + 2⁻⁵⁰·(V + |max| + |r|), the NLL
 *    likewise with the floors of its terms summed. The wasm kernel's error is relative to |logp|
 *    (Σ exp(x − max) in float64 with the max term exactly 1, logp = (x − max) − log Σ); the
 *    floor is the reference's own float64 rounding: it sums V exponentials, forms
 *    lse = max + log Σ and then x − lse, which cancels when logp ≈ 0 and leaves an absolute
 *    error up to 2⁻⁵³·(V + 2 + |max| + log V + |logp|).
 *  - logSoftmaxNllBackward: |w − r| ≤ rel·(|w| + |r|) + rel·|s|·e^logp + 2⁻¹⁴⁷·(1 + |s|): the
 *    target entry is s·(p − 1), which cancels, so the error of s·p stays relative to s·p.
 *  - softmaxScaled: p = e^a with a = (x − max)·invT, which the wasm kernel rounds twice in
 *    float32 (an absolute error up to 2⁻²³·|a| in a, relative in p):
 *    |w − r| ≤ (rel + 2⁻²²·|a|)·r + 2⁻¹⁴⁷; the sum within the sum of those; the largest p is 1.
 * The float32 exp/σ/tanh themselves are checked to be within 1e-6 relative of float64 Math.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Model, type ModelConfig, Rng, TsKernels, buildVocab, sample, sigmoid } from '../src/index.js';
import { Optimizer, clipGradients } from '../src/train/optim.js';
import { WasmKernels, type WasmVariant } from '../src/nn/wasm.js';
import { loadWasmKernels, loadWasmKernelsSync, wasmAvailable } from '../src/nn/wasm-node.js';
import { arbConfig, arbShape, randomIds, runs } from './helpers/arbitraries.js';

const U = 2 ** -24;
const gamma = (n: number): number => (n * U) / (1 - n * U);
const SUBNORMAL_FLOOR = 2 ** -147;

const ts = new TsKernels('float32');

// The SIMD build must be there (npm run build:wasm); the relaxed one runs where it validates
// (Node 20: once src/nn/wasm-node.ts has turned on --experimental-wasm-relaxed-simd in-process).
const VARIANTS: { variant: WasmVariant; rel: number; available: boolean }[] = [
  { variant: 'simd', rel: 1e-5, available: true },
  { variant: 'relaxed', rel: 1e-4, available: wasmAvailable('relaxed') },
];

const arbDim = fc.oneof(fc.constantFrom(1, 3, 5, 17, 63, 129), fc.integer({ min: 1, max: 24 }));
const arbScale = fc.constantFrom(1, 1e-3, 1e3);
const arbSeed = fc.integer({ min: 1, max: 2 ** 31 - 1 });

function randomArray(rng: Rng, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let j = 0; j < n; j++) a[j] = rng.uniformRange(-scale, scale);
  return a;
}

/**
 * A copy of `src` in wasm memory, at a random float offset 0..3 from the 16-byte aligned
 * allocation (the model passes subarrays at any offset).
 */
/**
 * A copy of src in wasm memory at a random offset (0–3 floats from 16-byte alignment), with NaN
 * in the 4 floats on each side: a kernel that lets values past the end of an input (as a whole
 * vector load at a ragged edge would read them) into its results gives NaN.
 */
function toWasm(k: WasmKernels, src: Float32Array, rng: Rng): Float32Array {
  const off = rng.int(4);
  const whole = k.alloc(src.length + off + 8);
  whole.fill(Number.NaN);
  const a = whole.subarray(4 + off, 4 + off + src.length);
  a.set(src);
  return a;
}

/**
 * toWasm for an output: 8 guard floats on each side of the copy hold a sentinel, and
 * `expectGuardsIntact(a)` checks that the kernel wrote nothing outside the output's elements.
 */
const GUARD = 8;
const SENTINEL = 12345.5;
function toWasmGuarded(k: WasmKernels, src: Float32Array, rng: Rng): Float32Array {
  const off = rng.int(4);
  const whole = k.alloc(src.length + off + 2 * GUARD);
  whole.fill(SENTINEL);
  const a = whole.subarray(GUARD + off, GUARD + off + src.length);
  a.set(src);
  return a;
}

function expectGuardsIntact(what: string, a: Float32Array): void {
  const before = new Float32Array(a.buffer, a.byteOffset - 4 * GUARD, GUARD);
  const after = new Float32Array(a.buffer, a.byteOffset + 4 * a.length, GUARD);
  for (const [side, g] of [['before', before], ['after', after]] as const) {
    for (let j = 0; j < GUARD; j++) {
      if (g[j] !== SENTINEL) throw new Error(`${what}: the kernel wrote ${g[j]} ${side} the output (guard element ${j})`);
    }
  }
}

/** Throws with the worst element when some |w − r| > tol(j). */
function expectClose(what: string, w: ArrayLike<number>, r: ArrayLike<number>, tol: (j: number) => number): void {
  expect(w.length).toBe(r.length);
  let worst = -1;
  let worstRatio = 0;
  for (let j = 0; j < w.length; j++) {
    const d = Math.abs(w[j] - r[j]);
    const t = tol(j);
    if (!(d <= t)) {
      const ratio = Number.isNaN(d) ? Infinity : d / t;
      if (worst < 0 || ratio > worstRatio) {
        worst = j;
        worstRatio = ratio;
      }
    }
  }
  if (worst >= 0) {
    throw new Error(`${what}[${worst}]: wasm ${w[worst]} vs reference ${r[worst]}, tolerance ${tol(worst)}`);
  }
}

function expectIdentical(what: string, w: ArrayLike<number>, r: ArrayLike<number>): void {
  expect(w.length).toBe(r.length);
  for (let j = 0; j < w.length; j++) {
    if (!(w[j] === r[j] || (Number.isNaN(w[j]) && Number.isNaN(r[j])))) {
      throw new Error(`${what}[${j}]: wasm ${w[j]} vs reference ${r[j]} (expected bit-identical)`);
    }
  }
}

const relTol = (rel: number, w: ArrayLike<number>, r: ArrayLike<number>) => (j: number) =>
  rel * (Math.abs(w[j]) + Math.abs(r[j]));

/** Runs `body` and gives back everything it allocated in wasm memory. */
function scoped<T>(k: WasmKernels, body: () => T): T {
  const mark = k.mark();
  try {
    return body();
  } finally {
    k.release(mark);
  }
}

describe('loading', () => {
  it('loads the SIMD build, sync and async, with a clear name and dtype', async () => {
    const a = loadWasmKernelsSync({ variant: 'simd' });
    expect(a.name).toBe('wasm-simd');
    expect(a.dtype).toBe('float32');
    const b = await loadWasmKernels({ variant: 'simd' });
    expect(b.name).toBe('wasm-simd');
    expect(wasmAvailable()).toBe(true);
  });

  it("'auto' picks the relaxed build exactly when the runtime validates it", () => {
    const k = loadWasmKernelsSync();
    expect(k.name).toBe(wasmAvailable('relaxed') ? 'wasm-relaxed-simd' : 'wasm-simd');
    if (!wasmAvailable('relaxed')) {
      expect(() => loadWasmKernelsSync({ variant: 'relaxed' })).toThrow(/relaxed SIMD/);
    }
  });

  it('alloc returns zero-filled, 16-byte aligned views; foreign and short arrays are refused', () => {
    const k = loadWasmKernelsSync({ variant: 'simd' });
    for (const n of [0, 1, 3, 5, 1000]) {
      const a = k.alloc(n);
      expect(a).toBeInstanceOf(Float32Array);
      expect(a.length).toBe(n);
      expect(a.byteOffset % 16).toBe(0);
      expect(a.every((v) => v === 0)).toBe(true);
      a.fill(7);
    }
    const Y = k.alloc(4);
    const X = k.alloc(4);
    expect(() => k.matmulXWt(Y, new Float32Array(4), X, null, 2, 2, 2, false)).toThrow(TypeError);
    expect(() => k.matmulXWt(Y, X, X, null, 2, 2, 3, false)).toThrow(RangeError);
    expect(() => k.logSoftmaxNll(Y, Int32Array.of(0, 2), 2, 2)).toThrow(RangeError);
    // Views are remembered once accepted, but only by the kernels that accepted them, and the
    // length is checked on every call.
    k.matmulXWt(Y, X, X, null, 2, 2, 2, false);
    const other = loadWasmKernelsSync({ variant: 'simd' });
    expect(() => other.matmulXWt(other.alloc(4), X, other.alloc(4), null, 2, 2, 2, false)).toThrow(/allocated by these kernels/);
    expect(() => k.matmulXWt(Y, X, X, null, 3, 2, 2, false)).toThrow(/Y has 4 elements, the shape needs 6/);
    expect(() => k.matmulXWt(Y, new Float64Array(4) as unknown as Float32Array, X, null, 2, 2, 2, false)).toThrow(TypeError);
    // released memory comes back zeroed
    const mark = k.mark();
    k.alloc(100).fill(1);
    k.release(mark);
    expect(k.alloc(100).every((v) => v === 0)).toBe(true);
  });

  it('views stay valid and usable after the shared memory grows', () => {
    const k = loadWasmKernelsSync({ variant: 'simd', initialBytes: 1 << 16 });
    const rng = new Rng(7);
    const [M, N, K] = [5, 7, 9];
    const X = toWasm(k, randomArray(rng, M * K, 1), rng);
    const W = toWasm(k, randomArray(rng, N * K, 1), rng);
    const before = X.slice();
    const bytesBefore = k.memory.buffer.byteLength;
    // Grow the memory many times over (64 MiB in uneven pieces).
    const big: Float32Array[] = [];
    for (let j = 0; j < 16; j++) big.push(k.alloc((1 << 20) + 13 * j));
    expect(k.memory.buffer.byteLength).toBeGreaterThan(bytesBefore + 64 * 1024 * 1024);
    // The old views are not detached and still see (and share) the same bytes.
    expect(X.length).toBe(M * K);
    expectIdentical('X after growth', X, before);
    expect(X.buffer.byteLength).toBe(bytesBefore);
    const alias = new Float32Array(k.memory.buffer, X.byteOffset, X.length);
    alias[0] = 42;
    expect(X[0]).toBe(42);
    X[0] = before[0];
    // Old and new views mixed in one call.
    const Y = big[15].subarray(0, M * N);
    k.matmulXWt(Y, X, W, null, M, N, K, false);
    const Yr = new Float32Array(M * N);
    ts.matmulXWt(Yr, X.slice(), W.slice(), null, M, N, K, false);
    // the matmul bound with S ≤ K (|x|, |w| < 1)
    expectClose('Y', Y, Yr, (j) => 1e-5 * (Math.abs(Y[j]) + Math.abs(Yr[j])) + 2 * gamma(K) * K);
  });
});

describe.each(VARIANTS.filter((v) => v.available).map((v) => v.variant))('float32 exp, σ, tanh (%s build)', (variant) => {
  it('are within 1e-6 relative of float64 Math over the whole range, and saturate cleanly', () => {
    const k = loadWasmKernelsSync({ variant });
    scoped(k, () => {
      const n = 200_003; // not a multiple of 4: exercises the tail path too
      const x = k.alloc(n);
      const rng = new Rng(11);
      for (let j = 0; j < n; j++) x[j] = (rng.uniform() < 0.5 ? -1 : 1) * Math.exp(rng.uniformRange(-30, 5));
      const cases = [
        { fn: 'exp' as const, ref: Math.exp, clampHi: 88 },
        { fn: 'sigmoid' as const, ref: sigmoid, clampHi: Infinity },
        { fn: 'tanh' as const, ref: Math.tanh, clampHi: Infinity },
      ];
      for (const { fn, ref, clampHi } of cases) {
        const a = k.alloc(n);
        for (let j = 0; j < n; j++) a[j] = Math.min(clampHi, fn === 'exp' ? 20 * x[j] : x[j]);
        const input = a.slice();
        k.mapInPlace(fn, a);
        const want = Array.from(input, (v) => ref(v));
        expectClose(fn, a, want, (j) => 1e-6 * Math.abs(want[j]) + SUBNORMAL_FLOOR);
      }
      const extremes = [0, -0, 1e-30, -1e-30, 1e4, -1e4, 1e30, -1e30, 3e38, -3e38, Infinity, -Infinity, 88, -88, -100, -104, -200];
      const s = k.alloc(extremes.length);
      s.set(extremes);
      k.mapInPlace('sigmoid', s);
      expectClose('σ extremes', s, extremes.map(sigmoid), (j) => 1e-6 * Math.abs(sigmoid(extremes[j])) + SUBNORMAL_FLOOR);
      const t = k.alloc(extremes.length);
      t.set(extremes);
      k.mapInPlace('tanh', t);
      expectClose('tanh extremes', t, extremes.map(Math.tanh), (j) => 1e-6 * Math.abs(Math.tanh(extremes[j])));
      const nan = k.alloc(3);
      nan.fill(Number.NaN);
      k.mapInPlace('tanh', nan);
      expect(Number.isNaN(nan[0]) && Number.isNaN(nan[2])).toBe(true);
    });
  });
});

for (const { variant, rel, available } of VARIANTS) {
  describe.skipIf(!available)(`${variant} kernels equal TsKernels('float32')`, () => {
    const k = available ? loadWasmKernelsSync({ variant }) : (null as unknown as WasmKernels);

    it('has the expected name', () => {
      expect(k.name).toBe(variant === 'relaxed' ? 'wasm-relaxed-simd' : 'wasm-simd');
    });

    it('matmulXWt: Y (+)= X·Wᵀ (+ b), any shape, with and without bias and accumulation', () => {
      fc.assert(
        fc.property(arbDim, arbDim, arbDim, fc.boolean(), fc.boolean(), arbScale, arbSeed, (M, N, K, bias, accumulate, scale, seed) =>
          scoped(k, () => checkXWt(k, rel, M, N, K, bias, accumulate, scale, seed)),
        ),
        { numRuns: runs(80) },
      );
    });

    it('matmulXWt2: Y = X1·W1ᵀ + X2·W2ᵀ (+ b1) (+ b2), any shapes of the two parts', () => {
      fc.assert(
        fc.property(arbDim, arbDim, arbDim, arbDim, fc.boolean(), fc.boolean(), arbScale, arbSeed, (M, N, K1, K2, b1, b2, scale, seed) =>
          scoped(k, () => checkXWt2(k, rel, M, N, K1, K2, b1, b2, scale, seed)),
        ),
        { numRuns: runs(80) },
      );
      // Parts that split a chunk of 512 values of p (K1 + K2 > 512, the boundary inside part 1,
      // at its end, or inside part 2), a zero-width part, and the unpacked path (M < 8).
      for (const [M, N, K1, K2] of [[130, 33, 300, 400], [9, 17, 512, 3], [64, 9, 5, 600], [20, 40, 0, 7], [20, 40, 7, 0], [3, 70, 129, 63]]) {
        scoped(k, () => checkXWt2(k, rel, M, N, K1, K2, true, true, 1, M + N + K1 + 7 * K2));
      }
    });

    it('one-row products with W declared constant (sampling: W packed for the row path) equal the reference', () => {
      fc.assert(
        fc.property(arbDim, arbDim, arbDim, fc.boolean(), fc.boolean(), arbScale, arbSeed, (N, K, K2, bias, accumulate, scale, seed) =>
          scoped(k, () => {
            checkXWt(k, rel, 1, N, K, bias, accumulate, scale, seed, true);
            checkXWt2(k, rel, 1, N, K, K2, bias, !bias, scale, seed + 1, true);
          }),
        ),
        { numRuns: runs(80) },
      );
      // The sizes sampling uses (4N = 512, the decoder's V = 98 rows), and rows above a block of 6.
      for (const [N, K] of [[512, 128], [98, 128], [2048, 512], [7, 3], [13, 130]]) {
        scoped(k, () => checkXWt(k, rel, 1, N, K, true, true, 1, N + K, true));
      }
    });

    it('matmulDyW: dX += dY·W, any shape', () => {
      fc.assert(
        fc.property(arbDim, arbDim, arbDim, arbScale, arbSeed, (M, N, K, scale, seed) =>
          scoped(k, () => checkDyW(k, rel, M, N, K, scale, seed)),
        ),
        { numRuns: runs(80) },
      );
    });

    it('matmulDyTX: dW += dYᵀ·X and db += Σ dY, any shape', () => {
      fc.assert(
        fc.property(arbDim, arbDim, arbDim, fc.boolean(), arbScale, arbSeed, (M, N, K, withDb, scale, seed) =>
          scoped(k, () => checkDyTX(k, rel, M, N, K, withDb, scale, seed)),
        ),
        { numRuns: runs(80) },
      );
    });

    it('matmuls at shapes that cross the cache-blocking boundaries (several row / p chunks)', () => {
      // All three run C[I,J] += A[I,P]·B[P,J] with p in chunks of 512 and, within one, rows of
      // A in chunks of ⌊65536/np⌋ & ~3 (128 rows when np = 512): XWt has I = M, P = K; dX has
      // I = M, P = N; dW has I = N, P = M. Each shape below crosses both kinds of boundary for
      // at least one of them. dW with more rows than one chunk holds (140×530×9, 600×300×17)
      // packs X whole first (dytxPackFloats).
      for (const [M, N, K] of [[300, 9, 600], [140, 530, 9], [530, 140, 9], [257, 33, 129], [130, 250, 601], [600, 300, 17]]) {
        scoped(k, () => {
          checkXWt(k, rel, M, N, K, true, true, 1, M + N + K);
          checkXWt(k, rel, M, N, K, false, false, 1, M * N * K);
          checkDyW(k, rel, M, N, K, 1, M + 2 * N);
          checkDyW(k, rel, N, M, K, 1, M + 3 * N);
          checkDyTX(k, rel, M, N, K, true, 1, 5 * M + N);
        });
      }
    });

    it('matmuls with few rows (M < 8: the unpacked paths), every M, odd and even N and K', () => {
      // M = 1 is sampling at batch 1. matmulXWt: pairs of rows and a last odd row take different
      // kernels; a single row takes W 8 rows at a time, then the N mod 8 left 4 at a time (N = 9,
      // 12, 15, 17, 98: 1, 4, 7, 1, 2 left); N ≢ 0 (mod 4) ends in a partial group of W rows,
      // K ≢ 0 (mod 4) in a partial vector. matmulDyW / matmulDyTX: the output rows are walked
      // 16, then 4 columns at a time, then a partial vector (K = 129, 21, 7, …). M = 8 is the
      // packed path again.
      let seed = 1;
      for (let M = 1; M <= 8; M++) {
        for (const [N, K] of [[1, 1], [3, 5], [5, 4], [17, 3], [98, 128], [33, 129], [4, 7], [9, 21], [12, 6], [15, 9], [512, 128]]) {
          scoped(k, () => {
            checkXWt(k, rel, M, N, K, true, false, 1, seed++);
            checkXWt(k, rel, M, N, K, false, true, 1e-3, seed++);
            checkXWt(k, rel, M, N, K, true, true, 1e3, seed++);
            checkXWt(k, rel, M, N, K, false, false, 1, seed++);
            checkDyW(k, rel, M, N, K, 1, seed++);
            checkDyW(k, rel, M, N, K, 1e-3, seed++);
            checkDyTX(k, rel, M, N, K, true, 1, seed++);
            checkDyTX(k, rel, M, N, K, false, 1e3, seed++);
          });
        }
      }
    });

    it('withConstantWeights: products with the declared W give bit-identical results with W packed once', () => {
      // [M, N, K]: the packed paths (M ≥ 2 for X·Wᵀ with a declared W, M ≥ 1 for dY·W with one, M ≥ 4 without) and the unpacked ones, N and
      // K not multiples of 8, K and N above the 512-long p chunks; M mod 4 = 1, 2, 3 with the
      // columns a multiple of 16 and not (the last rows' kernel of a packed W, 16 columns at a
      // time, then edge blocks), against the plain path, which pads them to a block of 4 rows.
      // X·Wᵀ with a declared W takes the packed path from 2 rows (XWT_PACKED_M), the plain one
      // from 8 (XWT_SMALL_M): between, the declared W's Y is checked against the plain product
      // over 8 rows whose first M are X's (each row's sums run in the same order whatever the
      // number of rows, so its first M rows are the packed path's bits).
      const packedFrom = 2, plainFrom = 8;
      for (const [M, N, K] of [
        [50, 512, 128], [9, 17, 5], [3, 20, 13], [12, 33, 600], [5, 700, 9], [64, 8, 8], [1, 512, 128], [1, 98, 127], [1, 5, 7], [1, 13, 1],
        [25, 96, 64], [26, 72, 40], [11, 40, 96], [13, 40, 600], [6, 64, 33], [25, 60, 28],
      ]) {
        scoped(k, () => {
          const rng = new Rng(M * 1000 + N * 10 + K);
          const W = toWasm(k, randomArray(rng, N * K, 1), rng);
          const other = toWasm(k, randomArray(rng, N * K, 1), rng);
          const b = toWasm(k, randomArray(rng, N, 1), rng);
          const X = toWasm(k, randomArray(rng, M * K, 1), rng);
          const dY = toWasm(k, randomArray(rng, M * N, 1), rng);
          // R ≥ M rows for X·Wᵀ: X's M and R − M more (Y's first M·N start values are the same).
          const run = (Wx: Float32Array, R = M) => {
            const Y = toWasm(k, randomArray(new Rng(1), R * N, 1), rng);
            const dX = toWasm(k, randomArray(new Rng(2), M * K, 1), rng);
            const XR = R === M ? X : toWasm(k, Float32Array.from([...X, ...randomArray(new Rng(3), (R - M) * K, 1)]), rng);
            k.matmulXWt(Y, XR, Wx, b, R, N, K, true);
            k.matmulXWt(Y, XR, Wx, null, R, N, K, true); // a second product with the packed copy
            k.matmulDyW(dX, dY, Wx, M, N, K);
            k.matmulDyW(dX, dY, Wx, M, N, K);
            return [Y.slice(0, M * N), dX.slice()];
          };
          const plain = run(W, M >= packedFrom && M < plainFrom ? plainFrom : M);
          const plainOther = run(other);
          let inside: Float32Array[] = [];
          let insideOther: Float32Array[] = [];
          k.withConstantWeights(W, N, K, () => {
            inside = run(W);
            insideOther = run(other); // not the declared weights: packed per call as usual
            scoped(k, () => k.alloc(1000)); // allocations released inside do not disturb the packed copy
            inside.push(...run(W));
          });
          expectIdentical('Y', inside[0], plain[0]);
          expectIdentical('dX', inside[1], plain[1]);
          expectIdentical('Y again', inside[2], plain[0]);
          expectIdentical('dX again', inside[3], plain[1]);
          expectIdentical('Y other W', insideOther[0], plainOther[0]);
          expectIdentical('dX other W', insideOther[1], plainOther[1]);
          if (M >= packedFrom && M < plainFrom) {
            // and the plain path over M rows is not those bits (it sums in lanes): the paths differ
            const alone = run(W);
            expect(alone[0].some((v, j) => v !== inside[0][j])).toBe(true);
          }
        });
      }
    });

    it('sharePacked: a declared W uses the copies packWeight made (bit-identical), other weights and one-row products their own', () => {
      for (const [M, N, K] of [[50, 512, 128], [9, 17, 5], [12, 33, 600], [5, 700, 9]]) {
        scoped(k, () => {
          const rng = new Rng(M + N + K);
          const W = toWasm(k, randomArray(rng, N * K, 1), rng);
          const other = toWasm(k, randomArray(rng, N * K, 1), rng);
          const X = toWasm(k, randomArray(rng, M * K, 1), rng);
          const dY = toWasm(k, randomArray(rng, M * N, 1), rng);
          // As in the test before: R ≥ M rows for X·Wᵀ (between 2 and 8 rows, a declared W's
          // product has the bits of the plain one over 8 rows).
          const run = (Wx: Float32Array, R = M) => {
            const Y = k.alloc(R * N);
            const dX = k.alloc(M * K);
            const XR = R === M ? X : toWasm(k, Float32Array.from([...X, ...randomArray(new Rng(3), (R - M) * K, 1)]), rng);
            k.matmulXWt(Y, XR, Wx, null, R, N, K, false);
            k.matmulDyW(dX, dY, Wx, M, N, K);
            return [Y.slice(0, M * N), dX];
          };
          const R = M >= 2 && M < 8 ? 8 : M;
          const plain = run(W, R);
          const plainOther = run(other, R);
          const copy = { W, N, K, xwt: k.alloc(k.packedFloats('xwt', N, K)), dyw: k.alloc(k.packedFloats('dyw', N, K)) };
          k.packWeight('xwt', copy.xwt, W, N, K);
          k.packWeight('dyw', copy.dyw, W, N, K);
          let shared: Float32Array[] = [];
          let sharedOther: Float32Array[] = [];
          let stale: Float32Array[] = [];
          k.sharePacked([copy]);
          try {
            k.withConstantWeights(W, N, K, () => (shared = run(W)));
            k.withConstantWeights(other, N, K, () => (sharedOther = run(other)));
            // The copies are what the products read (from their packed rows on): a copy of
            // another W gives that W's products.
            k.packWeight('xwt', copy.xwt, other, N, K);
            k.packWeight('dyw', copy.dyw, other, N, K);
            k.withConstantWeights(W, N, K, () => (stale = run(W)));
          } finally {
            k.sharePacked(null);
          }
          expectIdentical('Y', shared[0], plain[0]);
          expectIdentical('dX', shared[1], plain[1]);
          expectIdentical('Y other W', sharedOther[0], plainOther[0]);
          expectIdentical('dX other W', sharedOther[1], plainOther[1]);
          expectIdentical('Y from the copy', stale[0], M >= 2 ? plainOther[0] : plain[0]);
          expectIdentical('dX from the copy', stale[1], plainOther[1]); // from 1 row on
        });
      }
    });

    it('withConstantWeights scopes nest: one-row matmulXWt2 with both, one or none of its weights declared is bit-identical', () => {
      for (const [N, K1, K2] of [[512, 128, 128], [98, 5, 131], [6, 4, 4], [17, 0, 9]]) {
        scoped(k, () => {
          const rng = new Rng(N + K1 * 7 + K2);
          const [W1, W2] = [toWasm(k, randomArray(rng, N * K1, 1), rng), toWasm(k, randomArray(rng, N * K2, 1), rng)];
          const [X1, X2] = [toWasm(k, randomArray(rng, K1, 1), rng), toWasm(k, randomArray(rng, K2, 1), rng)];
          const [b1, b2] = [toWasm(k, randomArray(rng, N, 1), rng), toWasm(k, randomArray(rng, N, 1), rng)];
          const run = () => {
            const Y = k.alloc(N);
            k.matmulXWt2(Y, X1, W1, X2, W2, b1, b2, 1, N, K1, K2);
            return Y.slice();
          };
          const plain = run();
          const results: Record<string, Float32Array> = {};
          k.withConstantWeights(W1, N, K1, () => {
            results.first = run();
            k.withConstantWeights(W2, N, K2, () => {
              results.both = run();
              k.withConstantWeights(W1, N, K1, () => (results.again = run())); // declared twice
            });
            results.firstAfter = run(); // the inner scope has closed
          });
          k.withConstantWeights(W2, N, K2, () => (results.second = run()));
          for (const [what, r] of Object.entries(results)) expectIdentical(`${what} ${N}x(${K1}+${K2})`, r, plain);
        });
      }
    });

    it('gatherRows and scatterAddRows equal the reference bit for bit, any width, repeated ids', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 40 }), arbDim, fc.integer({ min: 1, max: 12 }), arbSeed, (M, width, rows, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            const ids = Int32Array.from({ length: M }, () => rng.int(rows));
            const table = randomArray(rng, rows * width, 1);
            const src = randomArray(rng, M * width, 1);
            const dst0 = randomArray(rng, rows * width, 1);
            const out = toWasmGuarded(k, randomArray(rng, M * width, 1), rng);
            k.gatherRows(out, toWasm(k, table, rng), ids, M, width, rows);
            const outRef = new Float32Array(M * width);
            ts.gatherRows(outRef, table, ids, M, width, rows);
            expectIdentical(`gather ${M}x${width}`, out, outRef);
            expectGuardsIntact(`gather ${M}x${width}`, out);
            const dst = toWasmGuarded(k, dst0, rng);
            k.scatterAddRows(dst, toWasm(k, src, rng), ids, M, width, rows);
            const dstRef = dst0.slice();
            ts.scatterAddRows(dstRef, src, ids, M, width, rows);
            expectIdentical(`scatter ${M}x${width}`, dst, dstRef);
            expectGuardsIntact(`scatter ${M}x${width}`, dst);
          }),
        ),
        { numRuns: runs(60) },
      );
      scoped(k, () => {
        const t = k.alloc(8);
        expect(() => k.gatherRows(k.alloc(4), t, Int32Array.of(0, 2), 2, 2, 2)).toThrow(/id 1 is 2, outside \[0, 2\)/);
        expect(() => k.scatterAddRows(t, k.alloc(4), Int32Array.of(-1, 0), 2, 2, 4)).toThrow(/id 0 is -1/);
        expect(() => k.gatherRows(k.alloc(3), t, Int32Array.of(0, 1), 2, 2, 4)).toThrow(/out has 3 elements, the shape needs 4/);
        // An id array is remembered where it lives once seen, but its ids are read and checked
        // on every call: outside wasm memory (copied) and inside it (read in place).
        t.set([1, 2, 3, 4, 5, 6, 7, 8]);
        for (const ids of [Int32Array.of(0, 1), k.allocInt32(2)]) {
          ids.set([0, 1]);
          const out = k.alloc(4);
          k.gatherRows(out, t, ids, 2, 2, 4);
          expectIdentical('first gather', out, [1, 2, 3, 4]);
          ids.set([3, 2]);
          k.gatherRows(out, t, ids, 2, 2, 4);
          expectIdentical('second gather', out, [7, 8, 5, 6]);
          k.gatherRows(out, t, ids, 1, 2, 4);
          expectIdentical('one row', out, [7, 8, 5, 6]);
          ids[1] = 4;
          expect(() => k.gatherRows(out, t, ids, 2, 2, 4)).toThrow(/id 1 is 4, outside \[0, 4\)/);
        }
      });
    });

    it('matmuls with a zero dimension leave outputs as the reference does', () => {
      scoped(k, () => {
        const Y = k.alloc(6);
        Y.fill(3);
        const b = k.alloc(3);
        b.set([1, 2, 3]);
        k.matmulXWt(Y, k.alloc(0), k.alloc(0), b, 2, 3, 0, true);
        expectIdentical('Y', Y, [4, 5, 6, 4, 5, 6]);
        const dX = k.alloc(6);
        k.matmulDyW(dX, k.alloc(0), k.alloc(0), 2, 0, 3);
        expectIdentical('dX', dX, [0, 0, 0, 0, 0, 0]);
        k.matmulDyTX(k.alloc(6), b, k.alloc(0), k.alloc(0), 0, 3, 2);
        expectIdentical('db', b, [1, 2, 3]);
      });
    });

    it('lstmForward: activations, cell, tanh(cell) and hidden state', () => {
      fc.assert(
        fc.property(arbDim, arbDim, fc.constantFrom(1, 10, 100), arbSeed, (M, N, scale, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            const s = M * N;
            const gates = randomArray(rng, 4 * s, scale);
            const cPrev = randomArray(rng, s, 3);
            const gw = toWasm(k, gates, rng);
            const [cw, tcw, hw] = [k.alloc(s), k.alloc(s), k.alloc(s)];
            k.lstmForward(gw, toWasm(k, cPrev, rng), cw, tcw, hw, M, N);
            const gr = gates.slice();
            const [cr, tcr, hr] = [new Float32Array(s), new Float32Array(s), new Float32Array(s)];
            ts.lstmForward(gr, cPrev, cr, tcr, hr, M, N);
            expectClose('gates', gw, gr, (j) => rel * (Math.abs(gw[j]) + Math.abs(gr[j])) + SUBNORMAL_FLOOR);
            // |f·cPrev| + |i·g| at state element j (reference activations)
            const terms = (j: number) => {
              const m = Math.floor(j / N);
              const n = j % N;
              const go = 4 * N * m;
              return Math.abs(gr[go + N + n] * cPrev[j]) + Math.abs(gr[go + n] * gr[go + 3 * N + n]);
            };
            for (const [what, w, r] of [['c', cw, cr], ['tanh(c)', tcw, tcr], ['h', hw, hr]] as const) {
              expectClose(what, w, r, (j) =>
                rel * (Math.abs(w[j]) + Math.abs(r[j])) + rel * terms(j) + SUBNORMAL_FLOOR * (2 + Math.abs(cPrev[j])),
              );
            }
          }),
        ),
        { numRuns: runs(60) },
      );
    });

    it('lstmBackward: bit-identical, with dcPrev separate from or aliasing dc', () => {
      fc.assert(
        fc.property(arbDim, arbDim, fc.boolean(), arbSeed, (M, N, alias, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            const s = M * N;
            // Realistic inputs: activations and tanh(c) from a forward pass.
            const gates = randomArray(rng, 4 * s, 4);
            const cPrev = randomArray(rng, s, 2);
            const [c, tc, h] = [new Float32Array(s), new Float32Array(s), new Float32Array(s)];
            ts.lstmForward(gates, cPrev, c, tc, h, M, N);
            const dh = randomArray(rng, s, 1);
            const dc = randomArray(rng, s, 1);
            const dcw = toWasm(k, dc, rng);
            const dGw = k.alloc(4 * s);
            const dcPrevW = alias ? dcw : k.alloc(s);
            k.lstmBackward(toWasm(k, gates, rng), toWasm(k, cPrev, rng), toWasm(k, tc, rng), toWasm(k, dh, rng), dcw, dGw, dcPrevW, M, N);
            const dcr = dc.slice();
            const dGr = new Float32Array(4 * s);
            const dcPrevR = alias ? dcr : new Float32Array(s);
            ts.lstmBackward(gates, cPrev, tc, dh, dcr, dGr, dcPrevR, M, N);
            expectIdentical('dGates', dGw, dGr);
            expectIdentical('dcPrev', dcPrevW, dcPrevR);
            if (!alias) expectIdentical('dc (untouched)', dcw, dc);
          }),
        ),
        { numRuns: runs(60) },
      );
    });

    it('gruResetForward and gruForward: gates, r⊙h, candidate and hidden state', () => {
      fc.assert(
        fc.property(arbDim, arbDim, fc.constantFrom(1, 10, 100), arbSeed, (M, N, scale, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            const s = M * N;
            const [zr, n, h] = [randomArray(rng, 2 * s, scale), randomArray(rng, s, scale), randomArray(rng, s, 3)];
            const [zrw, hw, rhw] = [toWasm(k, zr, rng), toWasm(k, h, rng), toWasmGuarded(k, new Float32Array(s), rng)];
            k.gruResetForward(zrw, hw, rhw, M, N);
            const [zrr, rhr] = [zr.slice(), new Float32Array(s)];
            ts.gruResetForward(zrr, h, rhr, M, N);
            expectClose('z, r', zrw, zrr, (j) => rel * (Math.abs(zrw[j]) + Math.abs(zrr[j])) + SUBNORMAL_FLOOR);
            expectClose('r⊙h', rhw, rhr, (j) => rel * (Math.abs(rhw[j]) + Math.abs(rhr[j])) + SUBNORMAL_FLOOR * (1 + Math.abs(h[j])));
            expectGuardsIntact('rh', rhw);
            // The second half from the same gates (the reference's), so that only its own error shows.
            const [nw, gw, hNew] = [toWasm(k, n, rng), toWasm(k, zrr, rng), toWasmGuarded(k, new Float32Array(s), rng)];
            k.gruForward(gw, nw, hw, hNew, M, N);
            const [nr, hr] = [n.slice(), new Float32Array(s)];
            ts.gruForward(zrr, nr, h, hr, M, N);
            expectClose('n', nw, nr, (j) => rel * (Math.abs(nw[j]) + Math.abs(nr[j])) + SUBNORMAL_FLOOR);
            // h = z·n + (1 − z)·hPrev: the candidate's relative error, relative to the terms where they cancel.
            const terms = (j: number) => Math.abs(zrr[2 * N * Math.floor(j / N) + (j % N)]) * (Math.abs(nr[j]) + Math.abs(h[j])) + Math.abs(h[j]);
            expectClose('h', hNew, hr, (j) => rel * (Math.abs(hNew[j]) + Math.abs(hr[j])) + rel * terms(j) + SUBNORMAL_FLOOR);
            expectGuardsIntact('h', hNew);
            expectIdentical('zr (untouched by gruForward)', gw, zrr);
          }),
        ),
        { numRuns: runs(40) },
      );
    });

    it('gruBackward and gruResetBackward: bit-identical, each writing only its block of dzr', () => {
      fc.assert(
        fc.property(arbDim, arbDim, arbSeed, (M, N, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            const s = M * N;
            // Realistic inputs: the activations of a forward pass.
            const [zr, n, hPrev] = [randomArray(rng, 2 * s, 4), randomArray(rng, s, 4), randomArray(rng, s, 1)];
            const [rh, h] = [new Float32Array(s), new Float32Array(s)];
            ts.gruResetForward(zr, hPrev, rh, M, N);
            ts.gruForward(zr, n, hPrev, h, M, N);
            const [dh, drh, dhPrev, dzr0] = [randomArray(rng, s, 1), randomArray(rng, s, 1), randomArray(rng, s, 1), randomArray(rng, 2 * s, 1)];
            const [dzrW, dnW, dhPrevW] = [toWasm(k, dzr0, rng), toWasmGuarded(k, new Float32Array(s), rng), toWasm(k, dhPrev, rng)];
            const [zrW, hPrevW] = [toWasm(k, zr, rng), toWasm(k, hPrev, rng)];
            k.gruBackward(zrW, toWasm(k, n, rng), hPrevW, toWasm(k, dh, rng), dzrW, dnW, dhPrevW, M, N);
            const [dzrR, dnR, dhPrevR] = [dzr0.slice(), new Float32Array(s), dhPrev.slice()];
            ts.gruBackward(zr, n, hPrev, dh, dzrR, dnR, dhPrevR, M, N);
            expectIdentical('dn', dnW, dnR);
            expectIdentical('dzr after gruBackward (z written, r untouched)', dzrW, dzrR);
            expectIdentical('dhPrev after gruBackward', dhPrevW, dhPrevR);
            expectGuardsIntact('dn', dnW);
            k.gruResetBackward(zrW, hPrevW, toWasm(k, drh, rng), dzrW, dhPrevW, M, N);
            ts.gruResetBackward(zr, hPrev, drh, dzrR, dhPrevR, M, N);
            expectIdentical('dzr', dzrW, dzrR);
            expectIdentical('dhPrev', dhPrevW, dhPrevR);
          }),
        ),
        { numRuns: runs(40) },
      );
    });

    it('rnnForward (tanh) within the tolerance, rnnBackward bit-identical, da separate from or aliasing dh', () => {
      fc.assert(
        fc.property(arbDim, arbDim, fc.constantFrom(1, 10, 100), fc.boolean(), arbSeed, (M, N, scale, alias, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            const s = M * N;
            const a = randomArray(rng, s, scale);
            const aw = toWasm(k, a, rng);
            const hw = toWasmGuarded(k, new Float32Array(s), rng);
            k.rnnForward(aw, hw, M, N);
            const hr = new Float32Array(s);
            ts.rnnForward(a, hr, M, N);
            expectClose('h', hw, hr, (j) => rel * (Math.abs(hw[j]) + Math.abs(hr[j])) + SUBNORMAL_FLOOR);
            expectIdentical('a (untouched)', aw, a);
            expectGuardsIntact('h', hw);
            const dh = randomArray(rng, s, 1);
            const dhw = toWasm(k, dh, rng);
            const daw = alias ? dhw : toWasmGuarded(k, new Float32Array(s), rng);
            k.rnnBackward(toWasm(k, hr, rng), dhw, daw, M, N);
            const dar = new Float32Array(s);
            ts.rnnBackward(hr, dh, dar, M, N);
            expectIdentical('da', daw, dar);
            if (!alias) expectGuardsIntact('da', daw);
          }),
        ),
        { numRuns: runs(40) },
      );
    });

    it('logSoftmaxNll and its backward, targets inside or outside wasm memory, some not scored (−1)', () => {
      fc.assert(
        fc.property(
          arbDim, fc.oneof(arbDim, fc.constantFrom(2, 65, 100)), fc.constantFrom(1, 10, 100), fc.constantFrom(1, 1 / 7, 0.02),
          fc.boolean(), fc.boolean(), fc.boolean(), arbSeed,
          (M, V, scale, s, targetsInWasm, inPlace, masked, seed) =>
            scoped(k, () => {
              const rng = new Rng(seed);
              const logits = randomArray(rng, M * V, scale);
              const t = Int32Array.from({ length: M }, () => rng.int(V));
              if (masked) for (let m = 0; m < M; m++) if (rng.uniform() < 0.4) t[m] = -1;
              let targets: Int32Array = t;
              if (targetsInWasm) {
                targets = k.allocInt32(M);
                targets.set(t);
              }
              const lw = toWasm(k, logits, rng);
              const lr = logits.slice();
              const nllW = k.logSoftmaxNll(lw, targets, M, V);
              const nllR = ts.logSoftmaxNll(lr, t, M, V);
              const floor = lseFloors(logits, lr, M, V);
              expectClose('logp', lw, lr, (j) => rel * (Math.abs(lw[j]) + Math.abs(lr[j])) + floor[j]);
              let nllFloor = 0;
              for (let m = 0; m < M; m++) if (t[m] >= 0) nllFloor += floor[m * V + t[m]];
              expectClose('nll', [nllW], [nllR], () => rel * (Math.abs(nllW) + Math.abs(nllR)) + nllFloor);
              // Backward from the same log-probabilities on both sides.
              const logp = lr.slice();
              const pw = toWasm(k, logp, rng);
              const dw = inPlace ? pw : k.alloc(M * V);
              k.logSoftmaxNllBackward(dw, pw, targets, M, V, s);
              const dr = inPlace ? logp.slice() : new Float32Array(M * V);
              ts.logSoftmaxNllBackward(dr, inPlace ? dr : logp, t, M, V, s);
              expectClose('dLogits', dw, dr, (j) =>
                rel * (Math.abs(dw[j]) + Math.abs(dr[j])) + rel * Math.abs(s) * Math.exp(logp[j]) + SUBNORMAL_FLOOR * (1 + Math.abs(s)),
              );
              // A row not scored: no loss, and a gradient of exactly 0 on both sides.
              for (let m = 0; m < M; m++) {
                if (t[m] >= 0) continue;
                for (let v = 0; v < V; v++) expect(dw[m * V + v] === 0 && dr[m * V + v] === 0).toBe(true);
              }
              if (masked && t.every((v) => v < 0)) expect(nllW === 0 && nllR === 0).toBe(true);
            }),
        ),
        { numRuns: runs(80) },
      );
    });

    it('softmaxScaled: the sampling weights exp((x − max)·invT) and their sum, any V', () => {
      fc.assert(
        fc.property(
          fc.oneof(arbDim, fc.constantFrom(65, 98, 100, 1000)), fc.constantFrom(1, 10, 100), fc.constantFrom(1, 1 / 0.7, 1 / 3, 4), arbSeed,
          (V, scale, invT, seed) =>
            scoped(k, () => {
              const rng = new Rng(seed);
              const x = randomArray(rng, V, scale);
              const xw = toWasm(k, x, rng);
              const pw = toWasmGuarded(k, new Float32Array(V), rng);
              const pr = new Float32Array(V);
              const sumW = k.softmaxScaled(pw, xw, V, invT);
              const sumR = ts.softmaxScaled(pr, x, V, invT);
              expectGuardsIntact('p', pw);
              let max = -Infinity;
              for (const v of x) max = Math.max(max, v);
              const tol = (j: number) => (rel + 2 ** -22 * Math.abs((x[j] - max) * invT)) * pr[j] + SUBNORMAL_FLOOR;
              expectClose('p', pw, pr, tol);
              let sumTol = 0;
              for (let j = 0; j < V; j++) sumTol += tol(j);
              expectClose('Σ p', [sumW], [sumR], () => sumTol);
              expect(Math.max(...pw)).toBe(1);
            }),
        ),
        { numRuns: runs(80) },
      );
      // A NaN entry makes the sum NaN (sample() then stops with an error), whichever the build.
      scoped(k, () => {
        const x = toWasm(k, Float32Array.of(-1, Number.NaN, -2, -0.5, -3), new Rng(3));
        expect(k.softmaxScaled(k.alloc(5), x, 5, 1)).toBeNaN();
      });
    });

    it('stays finite and correct for pre-activations and logits of ±1e4 and ±1e30', () => {
      scoped(k, () => {
        const big = [1e4, -1e4, 1e30, -1e30, 0.5, -3, 1e4, -1e30];
        const M = 2;
        const N = big.length;
        const gates = new Float32Array(4 * M * N);
        for (let j = 0; j < gates.length; j++) gates[j] = big[(j * 5 + Math.floor(j / N)) % big.length];
        const cPrev = Float32Array.from({ length: M * N }, (_, j) => big[(j * 3) % big.length]);
        const rng = new Rng(1);
        const gw = toWasm(k, gates, rng);
        const [cw, tcw, hw] = [k.alloc(M * N), k.alloc(M * N), k.alloc(M * N)];
        k.lstmForward(gw, toWasm(k, cPrev, rng), cw, tcw, hw, M, N);
        const gr = gates.slice();
        const [cr, tcr, hr] = [new Float32Array(M * N), new Float32Array(M * N), new Float32Array(M * N)];
        ts.lstmForward(gr, cPrev, cr, tcr, hr, M, N);
        for (const [what, w, r] of [['gates', gw, gr], ['c', cw, cr], ['tanh(c)', tcw, tcr], ['h', hw, hr]] as const) {
          expect(Array.from(w).every(Number.isFinite), what).toBe(true);
          expectClose(what, w, r, relTol(rel, w, r));
        }
        const V = big.length;
        const logits = Float32Array.from({ length: M * V }, (_, j) => big[(j * 7) % big.length]);
        const targets = Int32Array.of(2, 3);
        const lw = toWasm(k, logits, rng);
        const lr = logits.slice();
        const nllW = k.logSoftmaxNll(lw, targets, M, V);
        const nllR = ts.logSoftmaxNll(lr, targets, M, V);
        expect(Number.isFinite(nllW)).toBe(true);
        expect(Array.from(lw).every(Number.isFinite)).toBe(true);
        const floor = lseFloors(logits, lr, M, V);
        expectClose('logp', lw, lr, (j) => rel * (Math.abs(lw[j]) + Math.abs(lr[j])) + floor[j]);
        expectClose('nll', [nllW], [nllR], () => rel * (Math.abs(nllW) + Math.abs(nllR)) + floor[2] + floor[V + 3]);
        k.logSoftmaxNllBackward(lw, lw, targets, M, V, 0.5);
        ts.logSoftmaxNllBackward(lr, lr, targets, M, V, 0.5);
        expect(Array.from(lw).every(Number.isFinite)).toBe(true);
        expectClose('dLogits', lw, lr, (j) => rel * (Math.abs(lw[j]) + Math.abs(lr[j])) + SUBNORMAL_FLOOR);
      });
    });

    it('rmsprop, adam and clipping are bit-identical to src/train/optim.ts', () => {
      fc.assert(
        fc.property(fc.oneof(fc.constantFrom(1, 2, 3, 5, 17, 63, 129), fc.integer({ min: 1, max: 300 })), arbSeed, (n, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            for (const name of ['rmsprop', 'adam'] as const) {
              const lr = rng.uniformRange(1e-4, 1e-2);
              const ref = new Optimizer(name, n, { learningRate: lr, decayRate: rng.uniformRange(0.5, 0.99) });
              const xr = randomArray(rng, n, 1);
              const xw = toWasm(k, xr, rng);
              const mw = k.alloc(n);
              const vw = k.alloc(n);
              for (let step = 1; step <= 3; step++) {
                const g = randomArray(rng, n, step === 2 ? 1e-6 : 1);
                const gw = toWasm(k, g, rng);
                ref.step(xr, g);
                if (name === 'rmsprop') {
                  k.rmsprop(xw, gw, mw, lr, ref.decayRate, ref.epsilon);
                } else {
                  const t = ref.stepCount;
                  const stepSize = (lr * Math.sqrt(1 - ref.beta2 ** t)) / (1 - ref.beta1 ** t);
                  k.adam(xw, gw, mw, vw, lr, ref.beta1, ref.beta2, ref.epsilon, stepSize);
                }
                expectIdentical(`${name} x`, xw, xr);
                expectIdentical(`${name} m`, mw, ref.state.get('m')!);
                if (name === 'adam') expectIdentical('adam v', vw, ref.state.get('v')!);
              }
            }
            const g = randomArray(rng, n, 2);
            g[0] = Number.NaN;
            const gw = toWasm(k, g, rng);
            const c = rng.uniformRange(0.1, 1.5);
            clipGradients(g, c);
            k.clip(gw, c);
            expectIdentical('clip', gw, g);
          }),
        ),
        { numRuns: runs(40) },
      );
    });

    it('firstNonFinite and sumSquares2 (the Trainer\'s check and norms) equal TsKernels\' plain loops, any length', () => {
      const ts = new TsKernels('float32');
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: -1, max: 199 }), fc.constantFrom(Number.NaN, Infinity, -Infinity), arbSeed, (n, bad, v, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            const a = randomArray(rng, n, 1e3);
            const b = randomArray(rng, n, 1e-3);
            if (bad >= 0 && bad < n) a[bad] = v;
            if (bad >= 0 && bad + 7 < n) a[bad + 7] = Number.NaN; // only the first counts
            const aw = toWasm(k, a, rng);
            const bw = toWasm(k, b, rng);
            expect(k.firstNonFinite(aw)).toBe(bad >= 0 && bad < n ? bad : -1);
            expect(k.firstNonFinite(aw)).toBe(ts.firstNonFinite(a));
            expect(k.sumSquares2(bw, aw)).toEqual(ts.sumSquares2(b, a));
            let s = 0;
            for (let j = 0; j < n; j++) s += b[j] * b[j];
            expect(k.sumSquares2(bw, bw)[0]).toBe(s);
          }),
        ),
        { numRuns: runs(40) },
      );
      expect(() => k.sumSquares2(k.alloc(3), k.alloc(4))).toThrow(/sumSquares2 of 3 and 4 elements/);
    });

    it('addInPlace: dst += src bit-identical to a JS loop over Float32Arrays, any length', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 200 }), arbSeed, (n, seed) =>
          scoped(k, () => {
            const rng = new Rng(seed);
            const a = randomArray(rng, n, 1);
            const b = randomArray(rng, n, 1e3);
            if (n > 2) b[1] = Number.POSITIVE_INFINITY;
            const aw = toWasmGuarded(k, a, rng);
            const bw = toWasm(k, b, rng);
            for (let j = 0; j < n; j++) a[j] += b[j];
            k.addInPlace(aw, bw);
            expectIdentical('dst', aw, a);
            expectGuardsIntact('dst', aw);
          }),
        ),
        { numRuns: runs(40) },
      );
      expect(() => k.addInPlace(k.alloc(3), k.alloc(4))).toThrow(/addInPlace of 4 elements into 3/);
    });

    it('whole model: loss and gradients agree with a float64 model holding the same weights', () => {
      // loss: |ℓ32 − ℓ64| ≤ 1e-4·|ℓ64|.
      // gradients, per parameter tensor P with G = max_j |∂ℓ64/∂P_j|:
      //   |g32 − g64| ≤ 1e-4·(|g32| + |g64|) + 1e-4·G.
      // The floor: every gradient element is a float32 sum over all T·B positions (and over time
      // through the recurrence), so its absolute error scales with the size of the terms summed,
      // i.e. with the tensor's gradient scale G, not with the element itself, which can be a
      // near-cancellation close to 0. Float32 rounding puts that error near 1e-7·G; the floor
      // is 1e-4·G, still far below any real mistake (a wrong term is of order G).
      const configs = fc.record({
        config: arbConfig.map((c) => ({ ...c, rnnSize: c.rnnSize * 3 + 1, vocabSize: c.vocabSize + 5 })),
        shape: arbShape,
        seed: arbSeed,
      });
      fc.assert(
        fc.property(configs, ({ config, shape, seed }) => {
          const mark = k.mark();
          try {
            checkModel(k, config, shape.batchSize, shape.seqLength + 2, seed);
          } finally {
            k.release(mark);
          }
        }),
        { numRuns: runs(12) },
      );
      // And at a size where the tiles are full (rnnSize a multiple of 4, 4N = 512; the GRU's 2N, N).
      scoped(k, () => checkModel(k, { model: 'grid_lstm', vocabSize: 67, rnnSize: 128, numLayers: 2, dropout: 0 }, 5, 8, 3));
      scoped(k, () => checkModel(k, { model: 'gru', vocabSize: 67, rnnSize: 128, numLayers: 2, dropout: 0 }, 5, 8, 4));
    });

    it('model.inference(): steps inside equal steps outside (lstm, gru, rnn bit-identical, grid_lstm 1e-4), and sample() gives their text', () => {
      const chars = [...'abcdefghijklmnopqrstuvwxyz ,.;:!?ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n'];
      const vocab = buildVocab(chars.join(''));
      const models = [['lstm', 128, 2], ['grid_lstm', 128, 2], ['lstm', 13, 3], ['grid_lstm', 7, 1], ['gru', 128, 2], ['gru', 13, 1], ['rnn', 9, 3]] as const;
      for (const [model, rnnSize, numLayers] of models) {
        scoped(k, () => {
          const m = new Model({ model, vocabSize: vocab.chars.length, rnnSize, numLayers }, { kernels: k, seed: rnnSize });
          const rng = new Rng(rnnSize + numLayers);
          for (let j = 0; j < m.params.length; j++) m.params[j] = rng.uniformRange(-0.3, 0.3);
          // Greedy decoding from a prime text, step by step outside inference().
          const prime = 'The quick';
          const greedy = (n: number) => {
            const state = m.zeroState(1);
            const logps: Float32Array[] = [];
            let logp: Float32Array = new Float32Array(0);
            for (const ch of prime) logp = m.step([vocab.index.get(ch)!], state) as Float32Array;
            let text = '';
            for (let i = 0; i < n; i++) {
              let best = 0;
              for (let v = 1; v < logp.length; v++) if (logp[v] > logp[best]) best = v;
              text += vocab.chars[best];
              logps.push(logp.slice());
              logp = m.step([best], state) as Float32Array;
            }
            return { text, logps };
          };
          const outside = greedy(40);
          const inside = m.inference(() => greedy(40));
          const what = `${model} ${numLayers}×${rnnSize}`;
          // (The stacked models' steps make the same one-row products inside as outside; the
          // grid's depth LSTM adds a table row to a product instead of making one product of two.)
          const stacked = model !== 'grid_lstm';
          outside.logps.forEach((lp, i) => {
            if (stacked) expectIdentical(`${what} step ${i}`, inside.logps[i], lp);
            else expectClose(`${what} step ${i}`, inside.logps[i], lp, (j) => 1e-4 * (Math.abs(lp[j]) + Math.abs(inside.logps[i][j])) + 1e-6);
          });
          if (stacked) {
            expect(inside.text).toBe(outside.text);
            expect(sample(m, vocab, { length: 40, primetext: prime, argmax: true })).toBe(outside.text);
          }
          // A temperature so low that 1/T overflows float32 samples the most likely character.
          const greedyText = sample(m, vocab, { length: 40, primetext: prime, argmax: true });
          expect(sample(m, vocab, { length: 40, primetext: prime, temperature: 1e-200 })).toBe(greedyText);
        });
      }
    });

    it('sample() keeps its working buffer with the model: models in successive mark/release scopes of one kernels sample as on kernels of their own', () => {
      const vocab = buildVocab('abcdefghij klmnop');
      const V = vocab.chars.length;
      const text = (kernels: WasmKernels, rnnSize: number) => {
        const m = new Model({ model: 'lstm', vocabSize: V, rnnSize, numLayers: 2 }, { kernels, seed: rnnSize });
        const params = m.params.slice();
        const grads = m.grads.slice();
        const out = sample(m, vocab, { length: 60, primetext: 'ab' });
        // sample() wrote nothing into the model's parameters or gradients
        expectIdentical('params', m.params, params);
        expectIdentical('grads', m.grads, grads);
        return out;
      };
      const shared = loadWasmKernelsSync({ variant });
      scoped(shared, () => text(shared, 4));
      // A larger model in the next scope takes the memory that the first one's buffers had.
      const second = scoped(shared, () => text(shared, 32));
      expect(second).toBe(text(loadWasmKernelsSync({ variant }), 32));
    });

    it('sample() stops with a one-line error when the model gives NaN log-probabilities', () => {
      const vocab = buildVocab('abcdef');
      scoped(k, () => {
        const m = new Model({ model: 'lstm', vocabSize: 6, rnnSize: 8, numLayers: 1 }, { kernels: k, seed: 1 });
        m.params[m.params.length - 1] = Number.NaN; // a decoder bias
        expect(() => sample(m, vocab, { length: 5, primetext: 'ab' })).toThrow(/NaN log-probabilities.*NaN or Infinity/);
      });
    });
  });
}

// --- The matmul comparisons (one random instance each; see the tolerances at the top).

/** With `constant`, the WASM product runs with W declared constant (its packed paths). */
function checkXWt(
  k: WasmKernels, rel: number, M: number, N: number, K: number, bias: boolean, accumulate: boolean, scale: number, seed: number,
  constant = false,
): void {
  const rng = new Rng(seed);
  const X = randomArray(rng, M * K, scale);
  const W = randomArray(rng, N * K, 1);
  const b = randomArray(rng, N, scale);
  const Y0 = randomArray(rng, M * N, scale);
  const Yw = toWasmGuarded(k, Y0, rng);
  const Yr = Y0.slice();
  const [Xw, Ww, bw] = [toWasm(k, X, rng), toWasm(k, W, rng), bias ? toWasm(k, b, rng) : null];
  const product = () => k.matmulXWt(Yw, Xw, Ww, bw, M, N, K, accumulate);
  if (constant) k.withConstantWeights(Ww, N, K, product);
  else product();
  ts.matmulXWt(Yr, X, W, bias ? b : null, M, N, K, accumulate);
  const g = gamma(K + 2);
  expectClose(`Y ${M}x${N}x${K}`, Yw, Yr, (j) => {
    const m = Math.floor(j / N);
    const n = j % N;
    let S = (bias ? Math.abs(b[n]) : 0) + (accumulate ? Math.abs(Y0[j]) : 0);
    for (let q = 0; q < K; q++) S += Math.abs(X[m * K + q] * W[n * K + q]);
    return rel * (Math.abs(Yw[j]) + Math.abs(Yr[j])) + 2 * g * S;
  });
  expectGuardsIntact(`Y ${M}x${N}x${K}`, Yw);
}

/** With `constant`, the WASM product runs with W1 and W2 declared constant (nested scopes). */
function checkXWt2(
  k: WasmKernels, rel: number, M: number, N: number, K1: number, K2: number, bias1: boolean, bias2: boolean, scale: number, seed: number,
  constant = false,
): void {
  const rng = new Rng(seed);
  const X1 = randomArray(rng, M * K1, scale);
  const X2 = randomArray(rng, M * K2, scale);
  const W1 = randomArray(rng, N * K1, 1);
  const W2 = randomArray(rng, N * K2, 1);
  const b1 = randomArray(rng, N, scale);
  const b2 = randomArray(rng, N, scale);
  const Yw = toWasmGuarded(k, randomArray(rng, M * N, scale), rng); // overwritten
  const Yr = new Float32Array(M * N);
  const [W1w, W2w] = [toWasm(k, W1, rng), toWasm(k, W2, rng)];
  const product = () =>
    k.matmulXWt2(
      Yw, toWasm(k, X1, rng), W1w, toWasm(k, X2, rng), W2w,
      bias1 ? toWasm(k, b1, rng) : null, bias2 ? toWasm(k, b2, rng) : null, M, N, K1, K2,
    );
  if (constant) k.withConstantWeights(W1w, N, K1, () => k.withConstantWeights(W2w, N, K2, product));
  else product();
  ts.matmulXWt2(Yr, X1, W1, X2, W2, bias1 ? b1 : null, bias2 ? b2 : null, M, N, K1, K2);
  const g = gamma(K1 + K2 + 3);
  expectClose(`Y ${M}x${N}x(${K1}+${K2})`, Yw, Yr, (j) => {
    const m = Math.floor(j / N);
    const n = j % N;
    let S = (bias1 ? Math.abs(b1[n]) : 0) + (bias2 ? Math.abs(b2[n]) : 0);
    for (let q = 0; q < K1; q++) S += Math.abs(X1[m * K1 + q] * W1[n * K1 + q]);
    for (let q = 0; q < K2; q++) S += Math.abs(X2[m * K2 + q] * W2[n * K2 + q]);
    return rel * (Math.abs(Yw[j]) + Math.abs(Yr[j])) + 2 * g * S;
  });
  expectGuardsIntact(`Y ${M}x${N}x(${K1}+${K2})`, Yw);
}

function checkDyW(k: WasmKernels, rel: number, M: number, N: number, K: number, scale: number, seed: number): void {
  const rng = new Rng(seed);
  const dY = randomArray(rng, M * N, scale);
  const W = randomArray(rng, N * K, 1);
  const dX0 = randomArray(rng, M * K, scale);
  const dXw = toWasmGuarded(k, dX0, rng);
  const dXr = dX0.slice();
  k.matmulDyW(dXw, toWasm(k, dY, rng), toWasm(k, W, rng), M, N, K);
  ts.matmulDyW(dXr, dY, W, M, N, K);
  const g = gamma(N + 1);
  expectClose(`dX ${M}x${N}x${K}`, dXw, dXr, (j) => {
    const m = Math.floor(j / K);
    const q = j % K;
    let S = Math.abs(dX0[j]);
    for (let n = 0; n < N; n++) S += Math.abs(dY[m * N + n] * W[n * K + q]);
    return rel * (Math.abs(dXw[j]) + Math.abs(dXr[j])) + 2 * g * S;
  });
  expectGuardsIntact(`dX ${M}x${N}x${K}`, dXw);
}

function checkDyTX(
  k: WasmKernels, rel: number, M: number, N: number, K: number, withDb: boolean, scale: number, seed: number,
): void {
  const rng = new Rng(seed);
  const dY = randomArray(rng, M * N, scale);
  const X = randomArray(rng, M * K, 1);
  const dW0 = randomArray(rng, N * K, scale);
  const db0 = randomArray(rng, N, scale);
  const dWw = toWasmGuarded(k, dW0, rng);
  const dbw = toWasmGuarded(k, db0, rng);
  const dWr = dW0.slice();
  const dbr = db0.slice();
  k.matmulDyTX(dWw, withDb ? dbw : null, toWasm(k, dY, rng), toWasm(k, X, rng), M, N, K);
  ts.matmulDyTX(dWr, withDb ? dbr : null, dY, X, M, N, K);
  const g = gamma(M + 1);
  expectClose(`dW ${M}x${N}x${K}`, dWw, dWr, (j) => {
    const n = Math.floor(j / K);
    const q = j % K;
    let S = Math.abs(dW0[j]);
    for (let m = 0; m < M; m++) S += Math.abs(dY[m * N + n] * X[m * K + q]);
    return rel * (Math.abs(dWw[j]) + Math.abs(dWr[j])) + 2 * g * S;
  });
  expectIdentical('db', dbw, dbr);
  expectGuardsIntact(`dW ${M}x${N}x${K}`, dWw);
  expectGuardsIntact(`db ${M}x${N}x${K}`, dbw);
}

/** The reference's float64 rounding floor for each log-probability: 2⁻⁵⁰·(V + |max of row| + |logp|). */
function lseFloors(logits: Float32Array, logp: Float32Array, M: number, V: number): Float64Array {
  const f = new Float64Array(M * V);
  for (let m = 0; m < M; m++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[m * V + v]);
    for (let v = 0; v < V; v++) f[m * V + v] = 2 ** -50 * (V + Math.abs(max) + Math.abs(logp[m * V + v]));
  }
  return f;
}

function checkModel(k: WasmKernels, config: ModelConfig, B: number, T: number, seed: number): void {
  const m32 = new Model(config, { kernels: k, seed });
  const m64 = new Model(config, { dtype: 'float64', seed });
  const rng = new Rng(seed);
  for (let j = 0; j < m32.params.length; j++) m32.params[j] = rng.uniformRange(-0.3, 0.3);
  m64.params.set(m32.params); // the same float32 weights, exactly
  const V = m32.config.vocabSize;
  const batch = { x: randomIds(rng, B * T, V), y: randomIds(rng, B * T, V), batchSize: B, seqLength: T };
  const s32 = m32.zeroState(B);
  const s64 = m64.zeroState(B);
  for (let l = 0; l < m32.config.numLayers; l++) {
    for (const key of ['h', 'c'] as const) {
      for (let j = 0; j < s32[key][l].length; j++) s32[key][l][j] = rng.uniformRange(-0.5, 0.5);
      s64[key][l].set(s32[key][l]);
    }
  }
  // Dropout masks come from each model's own Rng, seeded alike, so they are the same draws.
  const r32 = m32.forwardBackward(batch, s32);
  const r64 = m64.forwardBackward(batch, s64);
  if (!(Math.abs(r32.loss - r64.loss) <= 1e-4 * Math.abs(r64.loss))) {
    throw new Error(`loss ${r32.loss} vs float64 ${r64.loss} for ${JSON.stringify(config)}`);
  }
  for (const name of m32.parameterNames()) {
    const g32 = m32.grad(name);
    const g64 = m64.grad(name);
    let G = 0;
    for (let j = 0; j < g64.length; j++) G = Math.max(G, Math.abs(g64[j]));
    expectClose(`${name} gradient (${JSON.stringify(config)})`, g32, g64, (j) => 1e-4 * (Math.abs(g32[j]) + Math.abs(g64[j])) + 1e-4 * G);
  }
}
