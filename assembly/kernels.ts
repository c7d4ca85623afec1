/**
 * Float32 WebAssembly SIMD kernels for grid-lstm: the `Kernels` interface of src/kernels.ts
 * (matrix products, the fused LSTM, GRU and RNN cell updates, log-softmax + NLL) and the
 * element-wise optimiser updates of src/optim.ts. src/wasm.ts loads the compiled module and wraps it.
 *
 * Every pointer argument is a byte offset into the imported (shared) linear memory; every
 * matrix is dense and row-major, as in src/kernels.ts. Nothing here allocates: below
 * `heapBase()` sit the static constants and the matmuls' scratch space (packed operands,
 * ≈ 272 KiB); the JS side owns everything above it (a bump allocator).
 *
 * Two builds share this file (asconfig.json): `simd` and `relaxed`. The compile-time constant
 * ASC_FEATURE_RELAXED_SIMD (true when built with `--enable relaxed-simd`) switches the matmul
 * inner loops from f32x4.mul + f32x4.add to f32x4.relaxed_madd (a fused multiply-add where the
 * hardware has one); everything else is the same code.
 *
 * Accuracy notes (what the tests in test/wasm.test.ts rely on):
 *  - matmuls accumulate in float32 (the reference rounds to float32 at the end, or after every
 *    step for the two gradient products); the difference is bounded by the usual float32
 *    summation bound.
 *  - lstmBackward, the GRU's and the RNN's backward kernels and the optimiser updates are
 *    computed in float64 with exactly the reference's operation order, so they agree with the
 *    TypeScript reference bit for bit.
 *  - exp, σ and tanh are float32 polynomial approximations (relative error a few 1e-7),
 *    finite and saturating correctly for any finite input; NaN propagates.
 */

// ---------------------------------------------------------------------------------------------
// Small helpers

/** a·b + c: one fused op in the relaxed build, mul then add otherwise. */
// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

/** c − a·b: one fused op in the relaxed build, mul then sub otherwise. */
// @ts-ignore: decorator
@inline function nmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_nmadd(a, b, c);
  } else {
    return f32x4.sub(c, f32x4.mul(a, b));
  }
}

/** Loads r ∈ {1,2,3} floats from p into the low lanes of a vector; the other lanes are 0. */
// @ts-ignore: decorator
@inline function loadTail(p: usize, r: i32): v128 {
  if (r == 1) return v128.load32_zero(p);
  if (r == 2) return v128.load64_zero(p);
  return v128.load32_lane(p, v128.load64_zero(p), 2, 8);
}

/** Stores the low r ∈ {1,2,3} lanes of v to p. */
// @ts-ignore: decorator
@inline function storeTail(p: usize, v: v128, r: i32): void {
  if (r == 1) {
    v128.store32_lane(p, v, 0);
  } else if (r == 2) {
    v128.store64_lane(p, v, 0);
  } else {
    v128.store64_lane(p, v, 0);
    v128.store32_lane(p, v, 2, 8);
  }
}

/** Start of the memory the JS side may use (below: static data and the kernels' scratch space). */
export function heapBase(): usize {
  return ((__heap_base + 15) & ~15) + SCRATCH_BYTES;
}

// ---------------------------------------------------------------------------------------------
// Element-wise exp, σ, tanh on four lanes (float32)

// exp(x) = 2ⁿ·e^r with n = round(x·log2 e) and r = x − n·ln 2 (ln 2 split in two parts so that
// n·LN2_HI is exact for |n| < 2¹⁴), e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2 (a minimax polynomial,
// relative error ≈ 1e-7). n is rounded with the 1.5·2²³ trick (adding it leaves round(v) in the
// low mantissa bits), which avoids float→int conversion sequences. 2ⁿ is applied as two factors
// 2^(n>>1)·2^(n−n>>1) so that results down into the subnormal range (n ≥ −150) and up to 2¹²⁸
// are formed without overflow in the scale. pmin/pmax (one x64 instruction each, unlike min/max)
// clamp the argument; a NaN argument stays NaN through them.
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const EXP_P0: f32 = 1.9875691500e-4;
const EXP_P1: f32 = 1.3981999507e-3;
const EXP_P2: f32 = 8.3334519073e-3;
const EXP_P3: f32 = 4.1665795894e-2;
const EXP_P4: f32 = 1.6666665459e-1;
const EXP_P5: f32 = 5.0000001201e-1;
/** Below this e^x rounds to 0 in float32 (e^−103.98 < 2⁻¹⁵⁰). */
const EXP_LO: f32 = -104.0;
/** Above this e^x overflows float32; callers never need more (tanh clamps to 44). */
const EXP_HI: f32 = 88.5;
/** 1.5·2²³: for |v| < 2²², v + ROUNDER is round(v) + ROUNDER exactly, bits 0x4B400000 + round(v). */
const ROUNDER: f32 = 12582912.0;

// tanh(x) = sign(x)·m/(m + 2) with m = e^{2|x|} − 1 computed as expm1 (2ⁿ·(1 + p) − 1, p the
// polynomial e^r − 1 of the reduced argument, so that it keeps full relative accuracy near 0,
// where m ≈ 2|x|). |x| is clamped to 44 (tanh = 1 in float32 long before), so 2ⁿ ≤ 2¹²⁷ is one
// normal float and m stays finite for any input, including ±1e30 and ±Infinity.

// Constant vectors are broadcast-loaded from this table rather than written as v128.const: V8
// materialises each v128.const inside a loop with several instructions, a broadcast load is one.
const K_EXP_HI: i32 = 0;
const K_EXP_LO: i32 = 1;
const K_LOG2E: i32 = 2;
const K_ROUNDER: i32 = 3;
const K_LN2_HI: i32 = 4;
const K_LN2_LO: i32 = 5;
const K_P0: i32 = 6; // .. K_P0 + 5
const K_ONE: i32 = 12;
const K_TWO: i32 = 13;
const K_TANH_CLAMP: i32 = 14;
const K_NEG_ZERO: i32 = 15;
const CONSTS: usize = memory.data<f32>([
  EXP_HI, EXP_LO, LOG2E, ROUNDER, LN2_HI, LN2_LO,
  EXP_P0, EXP_P1, EXP_P2, EXP_P3, EXP_P4, EXP_P5,
  1.0, 2.0, 44.0, -0.0,
], 16);
const CONSTS_F64: usize = memory.data<f64>([1.0], 16);

/** The constant CONSTS[i] in all four lanes. */
// @ts-ignore: decorator
@inline function kv(i: i32): v128 {
  return v128.load32_splat(CONSTS + (<usize>i << 2));
}

/** e^r − 1 ≈ r + r²·P(r) for the reduced argument |r| ≤ ln2/2. */
// @ts-ignore: decorator
@inline function expm1Reduced(r: v128): v128 {
  let p = kv(K_P0);
  p = madd(p, r, kv(K_P0 + 1));
  p = madd(p, r, kv(K_P0 + 2));
  p = madd(p, r, kv(K_P0 + 3));
  p = madd(p, r, kv(K_P0 + 4));
  p = madd(p, r, kv(K_P0 + 5));
  return madd(f32x4.mul(p, r), r, r);
}

/** e^x on four lanes, for x ≤ 88.5 (larger inputs are treated as 88.5); NaN gives NaN. */
// @ts-ignore: decorator
@inline function exp4(x0: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(x0, kv(K_EXP_HI)), kv(K_EXP_LO));
  const rounder = kv(K_ROUNDER);
  const z = madd(x, kv(K_LOG2E), rounder);
  const fn = f32x4.sub(z, rounder);
  const n = i32x4.sub(z, rounder); // round(x·log2 e) as an integer
  let r = nmadd(fn, kv(K_LN2_HI), x);
  r = nmadd(fn, kv(K_LN2_LO), r);
  const one = kv(K_ONE);
  const p = f32x4.add(expm1Reduced(r), one);
  // 2^k as float bits: (k + 127) << 23 = (k << 23) + bits(1.0)
  const n1 = i32x4.shr_s(n, 1);
  const n2 = i32x4.sub(n, n1);
  const s1 = i32x4.add(i32x4.shl(n1, 23), one);
  const s2 = i32x4.add(i32x4.shl(n2, 23), one);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

/** σ(x) = 1/(1+e^−x) for x ≥ 0, e^x/(1+e^x) for x < 0: no overflow, full relative accuracy. */
// @ts-ignore: decorator
@inline function sigmoid4(x: v128): v128 {
  const e = exp4(f32x4.neg(f32x4.abs(x))); // e^−|x| ∈ [0, 1]
  const one = kv(K_ONE);
  const s = f32x4.div(one, f32x4.add(one, e));
  return v128.bitselect(s, f32x4.mul(e, s), f32x4.ge(x, f32x4.splat(0.0)));
}

/** tanh on four lanes (see the constants above); NaN gives NaN. */
// @ts-ignore: decorator
@inline function tanh4(x: v128): v128 {
  // y = 2·min(|x|, 44) = n·ln 2 + r, m = e^y − 1 = 2ⁿ·(1 + p) − 1 = 2ⁿ·p + (2ⁿ − 1)
  const a = f32x4.pmin(f32x4.abs(x), kv(K_TANH_CLAMP)); // pmin keeps a NaN
  const y = f32x4.add(a, a);
  const rounder = kv(K_ROUNDER);
  const z = madd(y, kv(K_LOG2E), rounder);
  const fn = f32x4.sub(z, rounder);
  const n = i32x4.sub(z, rounder); // round(y·log2 e) ∈ [0, 127]
  let r = nmadd(fn, kv(K_LN2_HI), y);
  r = nmadd(fn, kv(K_LN2_LO), r);
  const one = kv(K_ONE);
  const s = i32x4.add(i32x4.shl(n, 23), one); // 2ⁿ
  const m = madd(s, expm1Reduced(r), f32x4.sub(s, one));
  const t = f32x4.div(m, f32x4.add(m, kv(K_TWO)));
  return v128.or(t, v128.and(x, kv(K_NEG_ZERO)));
}

/** One of the vector functions by number: 0 e^x, 1 σ(x), 2 tanh(x). */
// @ts-ignore: decorator
@inline function apply4(fn: i32, x: v128): v128 {
  if (fn == 0) return exp4(x);
  if (fn == 1) return sigmoid4(x);
  return tanh4(x);
}

/** e^x (fn 0), σ(x) (fn 1) or tanh(x) (fn 2) in place on a[n] (exposed for testing the approximations). */
export function vmap(fn: i32, a: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const p = a + (<usize>j << 2);
    v128.store(p, apply4(fn, v128.load(p)));
  }
  const r = n - j;
  if (r > 0) {
    const p = a + (<usize>j << 2);
    storeTail(p, apply4(fn, loadTail(p, r)), r);
  }
}

// ---------------------------------------------------------------------------------------------
// Matrix products
//
// All three products are one operation, C[I,J] += A[I,P]·B[P,J], with A and B given through
// strides (Y = X·Wᵀ: A = X, B = Wᵀ; dX = dY·W: A = dY, B = W; dW = dYᵀ·X: A = dYᵀ, B = X), and
// one register-blocked micro-kernel, bcp4x8: it holds a 4×8 block of C in 8 f32x4 registers and,
// for each p, broadcasts the 4 values A(i..i+3, p) and multiplies them with the 8 floats
// B[p, j..j+7] (2 vector loads): 8 multiply-adds per 6 loads and no horizontal sums. 8
// accumulators + 2 B vectors + 1 broadcast (+ 1 product temporary without FMA) fit in the 16
// xmm registers of x64, so nothing spills.
//
// Both operands are packed first, so the kernel reads two contiguous streams with constant
// offsets whatever the layouts (and never walks a power-of-two stride, which would map every
// row to the same few L1 sets):
//   A, per chunk of rows, as blocks of 4 rows [p][4] (16 bytes per p) — for A = dYᵀ the 4 values
//     are already adjacent, for row-major A it takes 4×4 SIMD transposes;
//   B, per 8 columns, as a panel [p][8] — a copy, or for B = Wᵀ 4×4 transposes of W.
// Loops: p in chunks of PC (the panel, PC·32 bytes, stays in L1), then rows in chunks that fill
// the packed-A area (256 KiB, in L2), then panels of 8 columns, then blocks of 4 rows; each
// panel is packed once per row chunk and used by all its row blocks — or not at all when the
// caller passes B packed whole (packXWt / packDyW: the recurrent weights, packed once per pass
// instead of once per time step).
//
// Remainders run the same loop: a block of fewer than 4 rows is packed zero-padded, a panel of
// fewer than 8 columns likewise, and bcp4x8Edge reads and writes only the part of the 4×8 block
// that lies in C (partial vector loads and stores; missing rows go to a spare row) — except the
// last 1 or 2 rows of a chunk when B is packed whole, which bcp2x16 takes 16 columns at a time
// (gemmLastRows). Every element of C gets its products added in p order, one float32 rounding
// each (none for the product with relaxed-SIMD FMA), whichever kernel computes it.
//
// gemm2 runs the sum over the concatenation of two operand pairs ([A1 A2]·[B1; B2]): the two
// linear maps of the Grid LSTM's depth LSTM, whose inputs are both known before it runs, go
// through one product of the concatenated input (matmulXWt2) instead of two passes over C.
//
// Packing costs O(I·P + J·P) per call whatever the number of rows, which dominates when the
// products are matrix–vector or nearly (sampling runs at M = 1): below a few rows the three
// products take unpacked paths instead (dotXWt, axpyRow, further down) — unless B comes packed
// whole (a weight declared constant), which leaves only A's packing, small at few rows.

// Scratch space lives right after the static data (at __heap_base, which the runtime stub never
// uses since nothing here allocates); heapBase() reports where the JS side's buffers may start.

/** Packed A: blocks of 4 rows as [p][4]. 256 KiB. */
const PACK_A_FLOATS: i32 = 65536;
/** p chunk: the packed B panel [PC][8] is 16 KiB. */
const PC: i32 = 512;
const SCRATCH_BYTES: usize = <usize>PACK_A_FLOATS * 4 + <usize>PC * 32 + 128;

/**
 * Where this instance's scratch space starts. By default right after the static data; a second
 * thread running these kernels over the same shared memory gives its instance a scratch area of
 * its own (setScratch, an area the owning thread allocated), since two threads packing operands
 * into one area would overwrite each other's. A global is per instance, never shared.
 */
let scratchAt: usize = (__heap_base + 15) & ~15;

/** Moves this instance's scratch space to [ptr, ptr + scratchBytes()) (16-byte aligned). */
export function setScratch(ptr: usize): void {
  scratchAt = ptr;
}

/** The bytes of scratch space each instance needs. */
export function scratchBytes(): usize {
  return SCRATCH_BYTES;
}

// @ts-ignore: decorator
@inline function scratchBase(): usize {
  return scratchAt;
}
/** PACK_A_FLOATS floats. */
// @ts-ignore: decorator
@inline function packAPtr(): usize {
  return scratchBase();
}
/** PC × 8 floats. */
// @ts-ignore: decorator
@inline function panelPtr(): usize {
  return scratchBase() + <usize>PACK_A_FLOATS * 4;
}
/** A spare row of C (up to 64 bytes) for the missing rows of an edge block and of bcp2x16. */
// @ts-ignore: decorator
@inline function spareRowPtr(): usize {
  return scratchBase() + <usize>PACK_A_FLOATS * 4 + <usize>PC * 32;
}

/** C[0..3][0..7] += Σ_{p<P} Apk[p][0..3]·Bpk[p][0..7] (C row stride ldc bytes; A, B packed). */
function bcp4x8(C: usize, ldc: usize, Apk: usize, Bpk: usize, P: i32): void {
  const C1 = C + ldc;
  const C2 = C1 + ldc;
  const C3 = C2 + ldc;
  let c00 = v128.load(C), c01 = v128.load(C, 16);
  let c10 = v128.load(C1), c11 = v128.load(C1, 16);
  let c20 = v128.load(C2), c21 = v128.load(C2, 16);
  let c30 = v128.load(C3), c31 = v128.load(C3, 16);
  let pa = Apk;
  let pb = Bpk;
  const end = Apk + (<usize>P << 4);
  while (pa < end) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    pa += 16;
    pb += 32;
  }
  v128.store(C, c00); v128.store(C, c01, 16);
  v128.store(C1, c10); v128.store(C1, c11, 16);
  v128.store(C2, c20); v128.store(C2, c21, 16);
  v128.store(C3, c30); v128.store(C3, c31, 16);
}

// The last 1 or 2 rows of a chunk, when B is packed whole (the per-step products: a thread's
// half of the batch, 25 rows, is 6 blocks of 4 and 1 row). Padded to a block of 4 rows, such a
// row cost as much as 4. bcp2x16 takes 2 rows × 16 columns (two panels at once, which only a B
// packed whole has side by side): still 8 accumulators, as many as bcp4x8, enough to cover the
// latency of the additions (or of the fused multiply-add). A single row takes it too, with a
// spare row for the second (its packed lane is zero), so it costs 2 rows instead of 4. (Measured
// and not kept: one row × 32 columns, four panels, whose reads of B outrun L2 — 2.2 to 3.5 rows'
// time; and a 5×8 block, a block of 4 taking the extra row, which V8 runs 4× slower than a 4×8
// one — too many live registers.) Every element still gets its products added in p order, as in
// bcp4x8: the same bits.

/**
 * C0[0..15] += Σ_{p<P} Apk[p][0]·B[p][0..15] and C1[0..15] likewise with Apk[p][1]: Apk 16 bytes
 * per p, B two panels [p][8] at Bpk and Bpk + ps.
 */
function bcp2x16(C0: usize, C1: usize, Apk: usize, Bpk: usize, ps: usize, P: i32): void {
  let c00 = v128.load(C0), c01 = v128.load(C0, 16), c02 = v128.load(C0, 32), c03 = v128.load(C0, 48);
  let c10 = v128.load(C1), c11 = v128.load(C1, 16), c12 = v128.load(C1, 32), c13 = v128.load(C1, 48);
  let pa = Apk;
  let pb = Bpk;
  let pc = Bpk + ps;
  const end = Apk + (<usize>P << 4);
  while (pa < end) {
    const a0 = v128.load32_splat(pa);
    const a1 = v128.load32_splat(pa, 4);
    let b = v128.load(pb);
    c00 = madd(a0, b, c00); c10 = madd(a1, b, c10);
    b = v128.load(pb, 16);
    c01 = madd(a0, b, c01); c11 = madd(a1, b, c11);
    b = v128.load(pc);
    c02 = madd(a0, b, c02); c12 = madd(a1, b, c12);
    b = v128.load(pc, 16);
    c03 = madd(a0, b, c03); c13 = madd(a1, b, c13);
    pa += 16;
    pb += 32;
    pc += 32;
  }
  v128.store(C0, c00); v128.store(C0, c01, 16); v128.store(C0, c02, 32); v128.store(C0, c03, 48);
  v128.store(C1, c10); v128.store(C1, c11, 16); v128.store(C1, c12, 32); v128.store(C1, c13, 48);
}

/**
 * Columns j0..j1−1 of the last rows ∈ {1,2} rows of C (at C), in one packed block of A (Ab, a
 * row per lane), with B packed whole (panel j/8 of this p chunk at Bpk + (j/8)·ps): 16 columns
 * at a time through bcp2x16, the columns past the last multiple of 16 as an edge block.
 */
function gemmLastRows(C: usize, ldc: usize, rows: i32, j0: i32, j1: i32, Ab: usize, Bpk: usize, ps: usize, np: i32): void {
  const spare = spareRowPtr();
  let j = j0;
  for (; j + 16 <= j1; j += 16) {
    const Cj = C + (<usize>j << 2);
    bcp2x16(Cj, rows == 2 ? Cj + ldc : spare, Ab, Bpk + <usize>(j >> 3) * ps, ps, np);
  }
  for (; j < j1; j += 8) bcp4x8Edge(C + (<usize>j << 2), ldc, rows, min(8, j1 - j), Ab, Bpk + <usize>(j >> 3) * ps, np);
}

/** The first n ∈ {0..4} floats at p in the low lanes (n = 0: zeros). */
// @ts-ignore: decorator
@inline function loadUpTo4(p: usize, n: i32): v128 {
  if (n == 4) return v128.load(p);
  if (n == 0) return f32x4.splat(0);
  return loadTail(p, n);
}

/** Stores the low n ∈ {0..4} lanes of v at p. */
// @ts-ignore: decorator
@inline function storeUpTo4(p: usize, v: v128, n: i32): void {
  if (n == 4) v128.store(p, v);
  else if (n > 0) storeTail(p, v, n);
}

/**
 * bcp4x8 for a block at an edge of C: rows ≤ 4, cols ≤ 8. Only the first `cols` floats of the
 * first `rows` rows of C are read and written; the missing rows work on a scratch row instead
 * (their packed A is zero). The loop is bcp4x8's, written out again on purpose: one function
 * for both, with the row pointers and column counts live across the loop, measured 5–15% slower
 * on full blocks (X·Wᵀ over all steps 26.5 → 23 GFLOP/s, side by side).
 */
function bcp4x8Edge(C: usize, ldc: usize, rows: i32, cols: i32, Apk: usize, Bpk: usize, P: i32): void {
  const spare = spareRowPtr();
  const C1 = rows > 1 ? C + ldc : spare;
  const C2 = rows > 2 ? C + 2 * ldc : spare;
  const C3 = rows > 3 ? C + 3 * ldc : spare;
  const lo = min(cols, 4); // floats in columns 0..3
  const hi = cols - lo; // and in 4..7
  let c00 = loadUpTo4(C, lo), c01 = loadUpTo4(C + 16, hi);
  let c10 = loadUpTo4(C1, lo), c11 = loadUpTo4(C1 + 16, hi);
  let c20 = loadUpTo4(C2, lo), c21 = loadUpTo4(C2 + 16, hi);
  let c30 = loadUpTo4(C3, lo), c31 = loadUpTo4(C3 + 16, hi);
  let pa = Apk;
  let pb = Bpk;
  const end = Apk + (<usize>P << 4);
  while (pa < end) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    pa += 16;
    pb += 32;
  }
  storeUpTo4(C, c00, lo); storeUpTo4(C + 16, c01, hi);
  storeUpTo4(C1, c10, lo); storeUpTo4(C1 + 16, c11, hi);
  storeUpTo4(C2, c20, lo); storeUpTo4(C2 + 16, c21, hi);
  storeUpTo4(C3, c30, lo); storeUpTo4(C3 + 16, c31, hi);
}

/** dst[p][0..3] = rows 0..3 of a row-major block (row stride rs, bytes) at column p, p < n. */
function transpose4(dst: usize, ldd: usize, S0: usize, rs: usize, n: i32): void {
  const S1 = S0 + rs;
  const S2 = S1 + rs;
  const S3 = S2 + rs;
  const n4 = n & ~3;
  let k = 0;
  for (; k < n4; k += 4) {
    const o = <usize>k << 2;
    const r0 = v128.load(S0 + o), r1 = v128.load(S1 + o), r2 = v128.load(S2 + o), r3 = v128.load(S3 + o);
    const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5); // a0 b0 a1 b1
    const t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7); // a2 b2 a3 b3
    const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5); // c0 d0 c1 d1
    const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7); // c2 d2 c3 d3
    const d = dst + <usize>k * ldd;
    v128.store(d, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
    v128.store(d + ldd, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
    v128.store(d + 2 * ldd, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
    v128.store(d + 3 * ldd, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
  }
  for (; k < n; k++) {
    const o = <usize>k << 2;
    const d = dst + <usize>k * ldd;
    store<f32>(d, load<f32>(S0 + o));
    store<f32>(d, load<f32>(S1 + o), 4);
    store<f32>(d, load<f32>(S2 + o), 8);
    store<f32>(d, load<f32>(S3 + o), 12);
  }
}

/** dst[p][0..3] = A(i..i+rows−1, p) zero-padded to 4, p < np; A(i, p) at A + i·ars + p·acs. */
function packA(dst: usize, A: usize, ars: usize, acs: usize, np: i32, rows: i32): void {
  if (rows == 4 && ars == 4) {
    // A = dYᵀ: the 4 values are adjacent
    let a = A;
    for (let p = 0; p < np; p++) {
      v128.store(dst + (<usize>p << 4), v128.load(a));
      a += acs;
    }
  } else if (rows == 4 && acs == 4) {
    transpose4(dst, 16, A, ars, np); // row-major A
  } else {
    let a = A;
    for (let p = 0; p < np; p++) {
      const d = dst + (<usize>p << 4);
      for (let r = 0; r < 4; r++) store<f32>(d + (<usize>r << 2), r < rows ? load<f32>(a + <usize>r * ars) : 0);
      a += acs;
    }
  }
}

/**
 * packA for R4 adjacent rows (ars = 4; R4 a multiple of 4) as R4/4 blocks, block b at dst +
 * b·blockBytes. Four values of p at a time: they are four rows of the source (A = dYᵀ: rows of
 * dY), each read along R4 contiguous floats, and every block receives 64 contiguous bytes
 * (a whole cache line of it when aligned).
 */
function packAAdjacent(dst: usize, blockBytes: usize, A: usize, acs: usize, np: i32, R4: i32): void {
  const rowBytes = <usize>R4 << 2;
  let p = 0;
  for (; p + 4 <= np; p += 4) {
    const a0 = A + <usize>p * acs;
    const a1 = a0 + acs;
    const a2 = a1 + acs;
    const a3 = a2 + acs;
    let d = dst + (<usize>p << 4);
    for (let o: usize = 0; o < rowBytes; o += 16) {
      v128.store(d, v128.load(a0 + o));
      v128.store(d, v128.load(a1 + o), 16);
      v128.store(d, v128.load(a2 + o), 32);
      v128.store(d, v128.load(a3 + o), 48);
      d += blockBytes;
    }
  }
  for (; p < np; p++) {
    const a = A + <usize>p * acs;
    let d = dst + (<usize>p << 4);
    for (let o: usize = 0; o < rowBytes; o += 16) {
      v128.store(d, v128.load(a + o));
      d += blockBytes;
    }
  }
}

/**
 * The panel [p][0..7] = B(p, j..j+cols−1) zero-padded to 8, p < np, at `panel`. B(p, j) at B + p·brs + j·bcs:
 * either row-major (bcs = 4: a copy) or B = Wᵀ with W row-major (brs = 4: transposes).
 */
function packB(panel: usize, B: usize, brs: usize, bcs: usize, np: i32, cols: i32): void {
  if (cols == 8 && bcs == 4) {
    let b = B;
    for (let p = 0; p < np; p++) {
      const d = panel + (<usize>p << 5);
      v128.store(d, v128.load(b));
      v128.store(d, v128.load(b, 16), 16);
      b += brs;
    }
  } else if (cols == 8 && brs == 4) {
    transpose4(panel, 32, B, bcs, np);
    transpose4(panel + 16, 32, B + 4 * bcs, bcs, np);
  } else {
    for (let p = 0; p < np; p++) {
      const d = panel + (<usize>p << 5);
      const s = B + <usize>p * brs;
      for (let j = 0; j < 8; j++) store<f32>(d + (<usize>j << 2), j < cols ? load<f32>(s + <usize>j * bcs) : 0);
    }
  }
}

/** Packs rows 0..R−1 of A (np values of p each) as blocks of 4 rows, block b at dst + b·blockBytes. */
function packAChunk(dst: usize, blockBytes: usize, A: usize, ars: usize, acs: usize, np: i32, R: i32): void {
  let i = 0;
  if (ars == 4) {
    // A = dYᵀ: all the chunk's full blocks at once, reading each row of dY along the chunk.
    // (Packing 16 rows at a time walked all of dY's rows, a power-of-two stride apart, for every
    // 64 bytes of each: dW [2048, 8] over M = 2 500, mostly packing, took 8.2 ms, now 5.2.)
    i = R & ~3;
    packAAdjacent(dst, blockBytes, A, acs, np, i);
  }
  for (; i < R; i += 4) packA(dst + <usize>(i >> 2) * blockBytes, A + <usize>i * ars, ars, acs, np, min(4, R - i));
}

/**
 * C[I,J] += A[I,P]·B[P,J]; A(i,p) at A + i·ars + p·acs, B(p,j) at B + p·brs + j·bcs, C row stride
 * ldc. Bpk ≠ 0: B already packed whole by packPanels (the panels are then not packed again).
 */
function gemm(
  C: usize, ldc: usize, A: usize, ars: usize, acs: usize, B: usize, brs: usize, bcs: usize, I: i32, J: i32, P: i32, Bpk: usize,
): void {
  gemm2(C, ldc, I, J, A, ars, acs, B, brs, bcs, P, 0, 0, 0, 0, 0, 0, 0, Bpk);
}

/**
 * C[I,J] += [A1 A2]·[B1; B2]: the sum runs over p < P1 + P2, taking A1(i,p), B1(p,j) for
 * p < P1 and A2(i,p−P1), B2(p−P1,j) after (each part with its own strides, as in gemm). The two
 * parts are packed into the same blocks and panels, so a chunk of PC values of p may hold some
 * of each: one pass over C for both, with the longest runs of the micro-kernel.
 */
function gemm2(
  C: usize, ldc: usize, I: i32, J: i32,
  A1: usize, ars1: usize, acs1: usize, B1: usize, brs1: usize, bcs1: usize, P1: i32,
  A2: usize, ars2: usize, acs2: usize, B2: usize, brs2: usize, bcs2: usize, P2: i32, Bpk: usize,
): void {
  const P = P1 + P2;
  if (I <= 0 || J <= 0 || P <= 0) return;
  const packA0 = packAPtr();
  const panel = panelPtr();
  for (let p0 = 0; p0 < P; p0 += PC) {
    const np = min(P, p0 + PC) - p0;
    const n1 = max(0, min(np, P1 - p0)); // values of p from part 1 in this chunk, then n2 from part 2
    const n2 = np - n1;
    const q2 = max(0, p0 - P1); // the first p of part 2 in this chunk
    const blockBytes = <usize>np << 4; // one packed block of 4 rows of A
    const ic = (PACK_A_FLOATS / np) & ~3; // rows of A packed at once (≥ 128)
    for (let i0 = 0; i0 < I; i0 += ic) {
      const i1 = min(I, i0 + ic);
      // With B packed whole, the last 1 or 2 rows of the chunk go through gemmLastRows (3 rows
      // stay a block padded to 4: as fast as 2 + 1 there).
      const rest = (i1 - i0) & 3;
      const iLast = Bpk != 0 && rest < 3 ? i1 - rest : i1;
      const lastAb = packA0 + <usize>((iLast - i0) >> 2) * blockBytes; // their packed block
      if (n1 > 0) packAChunk(packA0, blockBytes, A1 + <usize>i0 * ars1 + <usize>p0 * acs1, ars1, acs1, n1, i1 - i0);
      if (n2 > 0) packAChunk(packA0 + (<usize>n1 << 4), blockBytes, A2 + <usize>i0 * ars2 + <usize>q2 * acs2, ars2, acs2, n2, i1 - i0);
      for (let j = 0; j < J; j += 8) {
        const cols = min(8, J - j);
        let pan = panel;
        if (Bpk != 0) {
          pan = Bpk + <usize>(j >> 3) * (<usize>P << 5) + (<usize>p0 << 5); // this chunk of the packed panel
        } else {
          if (n1 > 0) packB(panel, B1 + <usize>p0 * brs1 + <usize>j * bcs1, brs1, bcs1, n1, cols);
          if (n2 > 0) packB(panel + (<usize>n1 << 5), B2 + <usize>q2 * brs2 + <usize>j * bcs2, brs2, bcs2, n2, cols);
        }
        const Cj = C + (<usize>j << 2);
        for (let i = i0; i < iLast; i += 4) {
          const rows = min(4, i1 - i);
          const Ab = packA0 + <usize>((i - i0) >> 2) * blockBytes;
          if (rows == 4 && cols == 8) bcp4x8(Cj + <usize>i * ldc, ldc, Ab, pan, np);
          else bcp4x8Edge(Cj + <usize>i * ldc, ldc, rows, cols, Ab, pan, np);
        }
        // The last rows, every 16 columns, while those 2 panels are still in cache.
        if (iLast < i1 && (j & 8) != 0 && j + 8 <= J) {
          gemmLastRows(C + <usize>iLast * ldc, ldc, i1 - iLast, j - 8, j + 8, lastAb, Bpk + (<usize>p0 << 5), <usize>P << 5, np);
        }
      }
      if (iLast < i1 && (J & 15) != 0) {
        const jr = J & ~15; // the columns not done in the loop
        gemmLastRows(C + <usize>iLast * ldc, ldc, i1 - iLast, jr, J, lastAb, Bpk + (<usize>p0 << 5), <usize>P << 5, np);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Y = X·Wᵀ for a few rows of X (M < XWT_SMALL_M, or one row when W is packed whole for the
// product: XWT_PACKED_M; sampling runs at M = 1): the gemm's packing is not used. (It copies and transposes all of W on every call, which at M = 1 costs several
// times the product itself.) X [M,K] and W [N,K] are both row-major along K, so each element of
// Y is a dot product of two contiguous rows, accumulated in f32x4 lanes and summed across the
// lanes at the end (hsum4 sums four accumulators at once). Pairs of rows of X take 4 rows of W
// at a time (dotXWt2x4); a single row (M = 1, or the last of an odd M) takes 6 rows of W at a
// time with one accumulator each (dotXWtRow, or dotXWtRowPacked with W packed once for it when
// the caller declared W constant). The rows of X stay in L1; W is read once per pair of rows.

/**
 * Below this many rows of X, matmulXWt takes the unpacked dot-product path when W is not packed
 * whole for it (with a packed W: XWT_PACKED_M). Exported, as is XWT_PACKED_M: src/wasm.ts packs
 * a constant W only for products that take the packed path.
 */
export const XWT_SMALL_M: i32 = 8;

/**
 * With W packed whole for it (Wp ≠ 0: a weight declared constant), matmulXWt takes the packed
 * path from this many rows on instead: packing costs nothing more then, and the 4×8 blocks
 * beat the dot products from 2 rows (one thread, relaxed SIMD, [M, 512]·[2048, 512]ᵀ: 0.62–0.74×
 * the dot products' time at 2–7 rows). A thread's share of the batch has that few rows from 8
 * threads on at B 50. (Without a packed W, packing W per call costs more than it saves below 8.)
 */
export const XWT_PACKED_M: i32 = 2;

/** [Σ lanes of a0, Σ a1, Σ a2, Σ a3]. */
// @ts-ignore: decorator
@inline function hsum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t0 = f32x4.add(f32x4.shuffle(a0, a1, 0, 4, 1, 5), f32x4.shuffle(a0, a1, 2, 6, 3, 7)); // a0_02 a1_02 a0_13 a1_13
  const t1 = f32x4.add(f32x4.shuffle(a2, a3, 0, 4, 1, 5), f32x4.shuffle(a2, a3, 2, 6, 3, 7)); // a2_02 a3_02 a2_13 a3_13
  return f32x4.add(f32x4.shuffle(t0, t1, 0, 1, 4, 5), f32x4.shuffle(t0, t1, 2, 3, 6, 7));
}

/**
 * Finishes 4 (cols < 4: the low cols) elements of a row of Y at Yp: s (+ b at bp) (+ the old Y
 * when accumulate ≠ 0).
 */
// @ts-ignore: decorator
@inline function finishXWt(Yp: usize, s: v128, bp: usize, accumulate: i32, cols: i32): void {
  let v = s;
  if (cols == 4) {
    if (bp != 0) v = f32x4.add(v, v128.load(bp));
    if (accumulate != 0) v = f32x4.add(v128.load(Yp), v);
    v128.store(Yp, v);
  } else {
    if (bp != 0) v = f32x4.add(v, loadTail(bp, cols));
    if (accumulate != 0) v = f32x4.add(loadTail(Yp, cols), v);
    storeTail(Yp, v, cols);
  }
}

/**
 * Σ_k x[k]·w[k] over K floats (x, w contiguous) as 4 partial sums, one per lane: 4 independent
 * accumulators along K (16 floats per step, constant offsets from two pointers).
 */
function rowDot(x: usize, w: usize, K: i32): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const K16 = <usize>(K & ~15) << 2;
  let o: usize = 0;
  for (; o < K16; o += 64) {
    const px = x + o;
    const pw = w + o;
    a0 = madd(v128.load(px), v128.load(pw), a0);
    a1 = madd(v128.load(px, 16), v128.load(pw, 16), a1);
    a2 = madd(v128.load(px, 32), v128.load(pw, 32), a2);
    a3 = madd(v128.load(px, 48), v128.load(pw, 48), a3);
  }
  const K4 = <usize>(K & ~3) << 2;
  for (; o < K4; o += 16) a0 = madd(v128.load(x + o), v128.load(w + o), a0);
  const kr = K & 3;
  if (kr != 0) a1 = madd(loadTail(x + o, kr), loadTail(w + o, kr), a1);
  return f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
}

/**
 * One row of Y (Yp) from one row of X (X0). Six rows of W at a time, one accumulator each: one
 * load of x feeds 6 multiply-adds, and the 6 independent chains cover the multiply-add latency.
 * Why six: V8 issues all loads of an iteration before its multiply-adds, so k rows keep 2k + 1
 * vectors live; x64 gives wasm 15 vector registers, and with 8 rows one accumulator went to the
 * stack and back on every iteration (seen in V8's code; 6 rows measured about 1.3× the rate of
 * 8 on a weight matrix in L2). The last N mod 6 rows go 4 at a time through rowDot.
 */
function dotXWtRow(Yp: usize, X0: usize, W: usize, b: usize, N: i32, K: i32, accumulate: i32): void {
  const rk = <usize>K << 2;
  const K4 = <usize>(K & ~3) << 2;
  const kr = K & 3;
  let n = 0;
  for (; n + ROW_BLOCK <= N; n += ROW_BLOCK) {
    const w0 = W + <usize>n * rk;
    const w1 = w0 + rk, w2 = w1 + rk, w3 = w2 + rk, w4 = w3 + rk, w5 = w4 + rk;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0), a4 = f32x4.splat(0), a5 = f32x4.splat(0);
    let o: usize = 0;
    for (; o < K4; o += 16) {
      const x = v128.load(X0 + o);
      a0 = madd(x, v128.load(w0 + o), a0);
      a1 = madd(x, v128.load(w1 + o), a1);
      a2 = madd(x, v128.load(w2 + o), a2);
      a3 = madd(x, v128.load(w3 + o), a3);
      a4 = madd(x, v128.load(w4 + o), a4);
      a5 = madd(x, v128.load(w5 + o), a5);
    }
    if (kr != 0) {
      const x = loadTail(X0 + o, kr);
      a0 = madd(x, loadTail(w0 + o, kr), a0);
      a1 = madd(x, loadTail(w1 + o, kr), a1);
      a2 = madd(x, loadTail(w2 + o, kr), a2);
      a3 = madd(x, loadTail(w3 + o, kr), a3);
      a4 = madd(x, loadTail(w4 + o, kr), a4);
      a5 = madd(x, loadTail(w5 + o, kr), a5);
    }
    finishRowBlock(Yp, b, n, a0, a1, a2, a3, a4, a5, accumulate);
  }
  dotXWtRowTail(Yp, X0, W, b, n, N, K, accumulate);
}

/** Rows of W per block in dotXWtRow and dotXWtRowPacked. */
const ROW_BLOCK: i32 = 6;

/** Y[n..n+5] of a one-row product from the accumulators of rows n..n+5 (+ b) (+ the old Y). */
// @ts-ignore: decorator
@inline function finishRowBlock(
  Yp: usize, b: usize, n: i32, a0: v128, a1: v128, a2: v128, a3: v128, a4: v128, a5: v128, accumulate: i32,
): void {
  const bp = b != 0 ? b + (<usize>n << 2) : 0;
  finishXWt(Yp + (<usize>n << 2), hsum4(a0, a1, a2, a3), bp, accumulate, 4);
  finishXWt(Yp + (<usize>n << 2) + 16, hsum4(a4, a5, a4, a5), bp != 0 ? bp + 16 : 0, accumulate, 2);
}

/** Rows n0..N−1 of Y for dotXWtRow and dotXWtRowPacked (fewer than 6), 4 at a time through rowDot. */
function dotXWtRowTail(Yp: usize, X0: usize, W: usize, b: usize, n0: i32, N: i32, K: i32, accumulate: i32): void {
  const rk = <usize>K << 2;
  for (let n = n0; n < N; n += 4) {
    const nr = min(4, N - n);
    const w = W + <usize>n * rk;
    const z = f32x4.splat(0);
    const s0 = rowDot(X0, w, K);
    const s1 = nr > 1 ? rowDot(X0, w + rk, K) : z;
    const s2 = nr > 2 ? rowDot(X0, w + 2 * rk, K) : z;
    const s3 = nr > 3 ? rowDot(X0, w + 3 * rk, K) : z;
    finishXWt(Yp + (<usize>n << 2), hsum4(s0, s1, s2, s3), b != 0 ? b + (<usize>n << 2) : 0, accumulate, nr);
  }
}

// The same row product with W packed for it once (sampling: the same weights for every
// character). Six rows of W are interleaved by 4 floats, [N/6][⌈K/4⌉][6][4], K padded with
// zeros: the loop reads one contiguous stream through one pointer at constant offsets, which the
// hardware prefetcher follows and which needs no address arithmetic per row (measured about 1.2×
// the unpacked loop's rate from L2). The arithmetic is the unpacked loop's, in the same order, so
// the results are bit-identical.

/** Floats that packMv writes for W[N,K]: the full 6-row blocks, K rounded up to 4. */
export function packMvSize(N: i32, K: i32): i32 {
  return (N - N % ROW_BLOCK) * ((K + 3) & ~3);
}

/** W[N,K] packed for dotXWtRowPacked into dst (packMvSize(N, K) floats; the last N mod 6 rows are not packed). */
export function packMv(dst: usize, W: usize, N: i32, K: i32): void {
  const rk = <usize>K << 2;
  let d = dst;
  for (let n = 0; n + ROW_BLOCK <= N; n += ROW_BLOCK) {
    for (let k = 0; k < K; k += 4) {
      const kr = min(4, K - k);
      for (let r = 0; r < ROW_BLOCK; r++) {
        const w = W + <usize>(n + r) * rk + (<usize>k << 2);
        v128.store(d, kr == 4 ? v128.load(w) : loadTail(w, kr));
        d += 16;
      }
    }
  }
}

/** dotXWtRow with the full 6-row blocks of W read from Wq = packMv(W) (the rest from W). */
function dotXWtRowPacked(Yp: usize, X0: usize, W: usize, Wq: usize, b: usize, N: i32, K: i32, accumulate: i32): void {
  const K4 = <usize>(K & ~3) << 2;
  const kr = K & 3;
  let w = Wq;
  let n = 0;
  for (; n + ROW_BLOCK <= N; n += ROW_BLOCK) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0), a4 = f32x4.splat(0), a5 = f32x4.splat(0);
    let o: usize = 0;
    for (; o < K4; o += 16) {
      const x = v128.load(X0 + o);
      a0 = madd(x, v128.load(w), a0);
      a1 = madd(x, v128.load(w, 16), a1);
      a2 = madd(x, v128.load(w, 32), a2);
      a3 = madd(x, v128.load(w, 48), a3);
      a4 = madd(x, v128.load(w, 64), a4);
      a5 = madd(x, v128.load(w, 80), a5);
      w += 96;
    }
    if (kr != 0) {
      // The packed tail holds zeros past K, as loadTail gives in dotXWtRow.
      const x = loadTail(X0 + o, kr);
      a0 = madd(x, v128.load(w), a0);
      a1 = madd(x, v128.load(w, 16), a1);
      a2 = madd(x, v128.load(w, 32), a2);
      a3 = madd(x, v128.load(w, 48), a3);
      a4 = madd(x, v128.load(w, 64), a4);
      a5 = madd(x, v128.load(w, 80), a5);
      w += 96;
    }
    finishRowBlock(Yp, b, n, a0, a1, a2, a3, a4, a5, accumulate);
  }
  dotXWtRowTail(Yp, X0, W, b, n, N, K, accumulate);
}

/**
 * Y[m..m+1, n..n+cols−1] for two rows of X (X0, X1 = X0 + rk) and rows W0..W3 of W (cols ≤ 4;
 * unused rows repeat W0): 8 accumulators, 6 loads per 8 multiply-adds.
 */
function dotXWt2x4(
  Yp: usize, ldy: usize, X0: usize, rk: usize, W0: usize, W1: usize, W2: usize, W3: usize, K: i32, bp: usize, accumulate: i32, cols: i32,
): void {
  const X1 = X0 + rk;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  const K4 = <usize>(K & ~3) << 2;
  let o: usize = 0;
  for (; o < K4; o += 16) {
    const x = v128.load(X0 + o);
    const z = v128.load(X1 + o);
    let w = v128.load(W0 + o);
    a0 = madd(x, w, a0); c0 = madd(z, w, c0);
    w = v128.load(W1 + o);
    a1 = madd(x, w, a1); c1 = madd(z, w, c1);
    w = v128.load(W2 + o);
    a2 = madd(x, w, a2); c2 = madd(z, w, c2);
    w = v128.load(W3 + o);
    a3 = madd(x, w, a3); c3 = madd(z, w, c3);
  }
  const kr = K & 3;
  if (kr != 0) {
    const x = loadTail(X0 + o, kr);
    const z = loadTail(X1 + o, kr);
    let w = loadTail(W0 + o, kr);
    a0 = madd(x, w, a0); c0 = madd(z, w, c0);
    w = loadTail(W1 + o, kr);
    a1 = madd(x, w, a1); c1 = madd(z, w, c1);
    w = loadTail(W2 + o, kr);
    a2 = madd(x, w, a2); c2 = madd(z, w, c2);
    w = loadTail(W3 + o, kr);
    a3 = madd(x, w, a3); c3 = madd(z, w, c3);
  }
  finishXWt(Yp, hsum4(a0, a1, a2, a3), bp, accumulate, cols);
  finishXWt(Yp + ldy, hsum4(c0, c1, c2, c3), bp, accumulate, cols);
}

/** Y = X·Wᵀ (+ b) (+ Y) for rows 0..M−1 of X, all N columns (K > 0): pairs of rows, then the last one. */
function dotXWt(Y: usize, X: usize, W: usize, b: usize, M: i32, N: i32, K: i32, accumulate: i32): void {
  const rk = <usize>K << 2;
  const ldy = <usize>N << 2;
  let m = 0;
  for (; m + 2 <= M; m += 2) {
    const Ym = Y + <usize>m * ldy;
    const Xm = X + <usize>m * rk;
    for (let n = 0; n < N; n += 4) {
      const cols = min(4, N - n);
      const W0 = W + <usize>n * rk;
      const W1 = cols > 1 ? W0 + rk : W0;
      const W2 = cols > 2 ? W0 + 2 * rk : W0;
      const W3 = cols > 3 ? W0 + 3 * rk : W0;
      dotXWt2x4(Ym + (<usize>n << 2), ldy, Xm, rk, W0, W1, W2, W3, K, b != 0 ? b + (<usize>n << 2) : 0, accumulate, cols);
    }
  }
  if (m < M) dotXWtRow(Y + <usize>m * ldy, X + <usize>m * rk, W, b, N, K, accumulate);
}

// Products repeated with the same weights (the recurrent map, once per time step): the caller
// packs W once, as gemm's B operand would be packed on every call, and passes the packed copy.

/** All panels of B[P,J] (B(p,j) at B + p·brs + j·bcs): panel j/8, [P][8], at dst + (j/8)·P·32. */
function packPanels(dst: usize, B: usize, brs: usize, bcs: usize, P: i32, J: i32): void {
  for (let j = 0; j < J; j += 8) packB(dst + <usize>(j >> 3) * (<usize>P << 5), B + <usize>j * bcs, brs, bcs, P, min(8, J - j));
}

/** W[N,K] packed for matmulXWt (B = Wᵀ) into dst: ⌈N/8⌉·8·K floats. */
export function packXWt(dst: usize, W: usize, N: i32, K: i32): void {
  packPanels(dst, W, 4, <usize>K << 2, K, N);
}

/** W[N,K] packed for matmulDyW (B = W) into dst: ⌈K/8⌉·8·N floats. */
export function packDyW(dst: usize, W: usize, N: i32, K: i32): void {
  packPanels(dst, W, <usize>K << 2, 4, N, K);
}

/** row[0..N) += b[0..N). */
function addRow(row: usize, b: usize, N: i32): void {
  const N4 = N & ~3;
  let n = 0;
  for (; n < N4; n += 4) {
    const o = <usize>n << 2;
    v128.store(row + o, f32x4.add(v128.load(row + o), v128.load(b + o)));
  }
  const rn = N - N4;
  if (rn > 0) {
    const o = <usize>n << 2;
    storeTail(row + o, f32x4.add(loadTail(row + o, rn), loadTail(b + o, rn)), rn);
  }
}

/**
 * Before the products are added: Y = b (or 0), or Y += b when accumulate ≠ 0, then Y += b2
 * (b, b2 = 0: no bias). Row by row, so each row is touched once while it is in L1.
 */
function startY(Y: usize, b: usize, b2: usize, M: i32, N: i32, accumulate: i32): void {
  const ldy = <usize>N << 2;
  for (let m = 0; m < M; m++) {
    const row = Y + <usize>m * ldy;
    if (accumulate == 0) {
      if (b != 0) memory.copy(row, b, ldy);
      else memory.fill(row, 0, ldy);
    } else if (b != 0) addRow(row, b, N);
    if (b2 != 0) addRow(row, b2, N);
  }
}

/**
 * Y[M,N] = X[M,K]·W[N,K]ᵀ (+ b), or Y += ... when accumulate ≠ 0; b = 0 for no bias. Wp ≠ 0: W
 * as packed by packXWt, used from XWT_PACKED_M rows on; Wq ≠ 0: W as packed by packMv, used at
 * M = 1 (for repeated products with the same W; W itself is still needed).
 */
export function matmulXWt(Y: usize, X: usize, W: usize, b: usize, M: i32, N: i32, K: i32, accumulate: i32, Wp: usize, Wq: usize): void {
  if (M <= 0 || N <= 0) return;
  if (M == 1 && Wq != 0 && K > 0) {
    dotXWtRowPacked(Y, X, W, Wq, b, N, K, accumulate);
    return;
  }
  if (K > 0 && M < (Wp != 0 ? XWT_PACKED_M : XWT_SMALL_M)) {
    dotXWt(Y, X, W, b, M, N, K, accumulate);
    return;
  }
  // Start from b (or 0), or add b to Y; the products are then added in k order.
  startY(Y, b, 0, M, N, accumulate);
  // A = X (A(m,k) = X[m*K + k]), B = Wᵀ (B(k,n) = W[n*K + k]).
  gemm(Y, <usize>N << 2, X, <usize>K << 2, 4, W, 4, <usize>K << 2, M, N, K, Wp);
}

/**
 * Y[M,N] = X1[M,K1]·W1[N,K1]ᵀ + X2[M,K2]·W2[N,K2]ᵀ (+ b1) (+ b2): the product of the
 * concatenated input [X1 X2] with [W1 W2]. b1, b2 = 0 for no bias. Wq1, Wq2 ≠ 0: W1, W2 as
 * packed by packMv, used at M = 1.
 */
export function matmulXWt2(
  Y: usize, X1: usize, W1: usize, X2: usize, W2: usize, b1: usize, b2: usize, M: i32, N: i32, K1: i32, K2: i32,
  Wq1: usize, Wq2: usize,
): void {
  if (M <= 0 || N <= 0) return;
  startY(Y, b1, b2, M, N, 0);
  if (M == 1) {
    if (K1 > 0) {
      if (Wq1 != 0) dotXWtRowPacked(Y, X1, W1, Wq1, 0, N, K1, 1);
      else dotXWtRow(Y, X1, W1, 0, N, K1, 1);
    }
    if (K2 > 0) {
      if (Wq2 != 0) dotXWtRowPacked(Y, X2, W2, Wq2, 0, N, K2, 1);
      else dotXWtRow(Y, X2, W2, 0, N, K2, 1);
    }
    return;
  }
  if (M < XWT_SMALL_M) {
    if (K1 > 0) dotXWt(Y, X1, W1, 0, M, N, K1, 1);
    if (K2 > 0) dotXWt(Y, X2, W2, 0, M, N, K2, 1);
    return;
  }
  const r1 = <usize>K1 << 2;
  const r2 = <usize>K2 << 2;
  gemm2(Y, <usize>N << 2, M, N, X1, r1, 4, W1, 4, r1, K1, X2, r2, 4, W2, 4, r2, K2, 0);
}

// dX += dY·W and dW += dYᵀ·X for a few rows of dY: nothing is packed either.
// Both are, row by row of the result, C[0..J) += Σ_p a_p·B_p[0..J) with B_p a contiguous row
// (of W, or of X): per 16 columns, 4 accumulators start from C, take a_p (broadcast) times 16
// floats of B_p for p = 0, 1, … in order, and go back to C: the same additions in the same order
// as the packed path. (For dX each row of dY is a separate pass over W, with one multiply-add per
// accumulator per step: from 4 rows on, the packed path, which shares W between 4 rows, is as fast.)

/**
 * Rows of dY below which matmulDyW takes the unpacked path, unless W is packed whole for it (Wp ≠
 * 0: a weight declared constant): then the packed path runs from 1 row (1 or 2 rows through
 * bcp2x16, 3 as a padded block), 0.26–0.48× the unpacked path's time at 1–3 rows (one thread,
 * [M, 2048]·[2048, 512]; 0.48–0.89× at [M, 512]·[512, 128]) — the same bits.
 */
export const DYW_SMALL_M: i32 = 4;
/** Rows of dY below which matmulDyTX takes the unpacked path. */
const DYTX_SMALL_M: i32 = 8;

/** C[0..J) += Σ_{p<P} A(p)·B_p[0..J), in p order; A(p) at A + p·as, B_p at B + p·bs (P > 0). */
function axpyRow(C: usize, A: usize, as: usize, B: usize, bs: usize, P: i32, J: i32): void {
  const J16 = J & ~15;
  let j = 0;
  for (; j < J16; j += 16) {
    const c = C + (<usize>j << 2);
    let c0 = v128.load(c), c1 = v128.load(c, 16), c2 = v128.load(c, 32), c3 = v128.load(c, 48);
    let pa = A;
    let pb = B + (<usize>j << 2);
    for (let q = 0; q < P; q++) {
      const a = v128.load32_splat(pa);
      c0 = madd(a, v128.load(pb), c0);
      c1 = madd(a, v128.load(pb, 16), c1);
      c2 = madd(a, v128.load(pb, 32), c2);
      c3 = madd(a, v128.load(pb, 48), c3);
      pa += as;
      pb += bs;
    }
    v128.store(c, c0); v128.store(c, c1, 16); v128.store(c, c2, 32); v128.store(c, c3, 48);
  }
  for (; j < J; j += 4) {
    const r = min(4, J - j);
    const c = C + (<usize>j << 2);
    let c0 = r == 4 ? v128.load(c) : loadTail(c, r);
    let pa = A;
    let pb = B + (<usize>j << 2);
    for (let q = 0; q < P; q++) {
      c0 = madd(v128.load32_splat(pa), r == 4 ? v128.load(pb) : loadTail(pb, r), c0);
      pa += as;
      pb += bs;
    }
    if (r == 4) v128.store(c, c0);
    else storeTail(c, c0, r);
  }
}

/** dX[M,K] += dY[M,N]·W[N,K]. Wp ≠ 0: W as packed by packDyW. */
export function matmulDyW(dX: usize, dY: usize, W: usize, M: i32, N: i32, K: i32, Wp: usize): void {
  const rk = <usize>K << 2;
  if (M < DYW_SMALL_M && Wp == 0) {
    // row m of dX += Σ_n dY[m,n]·W[n,:]
    if (N > 0 && K > 0) for (let m = 0; m < M; m++) axpyRow(dX + <usize>m * rk, dY + <usize>m * (<usize>N << 2), 4, W, rk, N, K);
    return;
  }
  // A = dY (A(m,n) = dY[m*N + n]), B = W (B(n,k) = W[n*K + k]).
  gemm(dX, rk, dY, <usize>N << 2, 4, W, rk, 4, M, K, N, Wp);
}

/**
 * The floats of the packed copy of X that matmulDyTX wants (its Xpk argument), or 0. gemm packs
 * the panels of B = X once per chunk of rows of dW, so when dW's N rows take more than one chunk
 * (N > 128 from M ≥ 512 on), packing X whole once (packPanels, ⌈K/8⌉·8·M floats) saves packing
 * it again for every further chunk: 15 times for the 2048 rows of a 3×512 lstm's maps.
 */
export function dytxPackFloats(M: i32, N: i32, K: i32): i32 {
  if (M < DYTX_SMALL_M || K <= 0) return 0;
  const ic = (PACK_A_FLOATS / min(M, PC)) & ~3; // rows per chunk of the first p chunk (as in gemm2)
  return N > ic ? ((K + 7) >> 3) * 8 * M : 0;
}

/**
 * dW[N,K] += dY[M,N]ᵀ·X[M,K]; db[N] += Σ_m dY[m,:] when db ≠ 0. Xpk ≠ 0: room for
 * dytxPackFloats(M, N, K) floats, where X is packed whole first.
 */
export function matmulDyTX(dW: usize, db: usize, dY: usize, X: usize, M: i32, N: i32, K: i32, Xpk: usize): void {
  const rk = <usize>K << 2;
  const rn = <usize>N << 2;
  if (M < DYTX_SMALL_M) {
    // row n of dW += Σ_m dY[m,n]·X[m,:]
    if (M > 0 && K > 0) for (let n = 0; n < N; n++) axpyRow(dW + <usize>n * rk, dY + (<usize>n << 2), rn, X, rk, M, K);
  } else {
    // A = dYᵀ (A(n,m) = dY[m*N + n]), B = X (B(m,k) = X[m*K + k]).
    if (Xpk != 0) packPanels(Xpk, X, rk, 4, M, K);
    gemm(dW, rk, dY, 4, rn, X, rk, 4, N, K, M, Xpk);
  }
  if (db != 0 && N > 0) {
    // Row by row in m order, as the reference adds (float32 rounding after every addition).
    for (let m = 0; m < M; m++) addRow(db, dY + <usize>m * rn, N);
  }
}

// ---------------------------------------------------------------------------------------------
// LSTM cell

/** One group of 4 units of lstmForward (g: the i gate's address in the gate row; s: state). */
// @ts-ignore: decorator
@inline function lstmForward4(gi: usize, gs: usize, cp: usize, c: usize, tc: usize, h: usize, r: i32): void {
  const gf = gi + gs;
  const go = gf + gs;
  const gg = go + gs;
  let ai: v128, af: v128, ao: v128, ag: v128, cprev: v128;
  if (r == 4) {
    ai = v128.load(gi); af = v128.load(gf); ao = v128.load(go); ag = v128.load(gg); cprev = v128.load(cp);
  } else {
    ai = loadTail(gi, r); af = loadTail(gf, r); ao = loadTail(go, r); ag = loadTail(gg, r); cprev = loadTail(cp, r);
  }
  const i = sigmoid4(ai);
  const f = sigmoid4(af);
  const o = sigmoid4(ao);
  const g = tanh4(ag);
  const cn = f32x4.add(f32x4.mul(f, cprev), f32x4.mul(i, g));
  const t = tanh4(cn);
  const hn = f32x4.mul(o, t);
  if (r == 4) {
    v128.store(gi, i); v128.store(gf, f); v128.store(go, o); v128.store(gg, g);
    v128.store(c, cn); v128.store(tc, t); v128.store(h, hn);
  } else {
    storeTail(gi, i, r); storeTail(gf, f, r); storeTail(go, o, r); storeTail(gg, g, r);
    storeTail(c, cn, r); storeTail(tc, t, r); storeTail(h, hn, r);
  }
}

export function lstmForward(gates: usize, cPrev: usize, c: usize, tc: usize, h: usize, M: i32, N: i32): void {
  const gs = <usize>N << 2; // bytes per gate block
  const N4 = N & ~3;
  const r = N - N4;
  for (let m = 0; m < M; m++) {
    const grow = gates + <usize>m * (gs << 2);
    const so = <usize>m * gs;
    let n = 0;
    for (; n < N4; n += 4) {
      const o = <usize>n << 2;
      lstmForward4(grow + o, gs, cPrev + so + o, c + so + o, tc + so + o, h + so + o, 4);
    }
    if (r > 0) {
      const o = <usize>n << 2;
      lstmForward4(grow + o, gs, cPrev + so + o, c + so + o, tc + so + o, h + so + o, r);
    }
  }
}

// lstmBackward is pure arithmetic on stored activations, so it is done in float64 (two lanes at
// a time) with the reference's exact expressions and operation order: the results are the
// reference's, bit for bit. The kernel is memory-bound, so the wider arithmetic is free.

/** Loads 2 floats (or 1, zero-padded, when r == 1) from p as float64 lanes. */
// @ts-ignore: decorator
@inline function load2d(p: usize, r: i32): v128 {
  return f64x2.promote_low_f32x4(r == 2 ? v128.load64_zero(p) : v128.load32_zero(p));
}

/** Stores 2 (or 1) float64 lanes to p as floats. */
// @ts-ignore: decorator
@inline function store2d(p: usize, v: v128, r: i32): void {
  const f = f32x4.demote_f64x2_zero(v);
  if (r == 2) v128.store64_lane(p, f, 0);
  else v128.store32_lane(p, f, 0);
}

// @ts-ignore: decorator
@inline function lstmBackward2(
  gi: usize, gs: usize, cp: usize, tc: usize, dh: usize, dc: usize, dgi: usize, dcp: usize, r: i32,
): void {
  const one = v128.load64_splat(CONSTS_F64);
  const i = load2d(gi, r);
  const f = load2d(gi + gs, r);
  const o = load2d(gi + 2 * gs, r);
  const g = load2d(gi + 3 * gs, r);
  const t = load2d(tc, r);
  const dhn = load2d(dh, r);
  const cprev = load2d(cp, r);
  // dcn = dc + dhn * o * (1 - t * t)
  const dcn = f64x2.add(load2d(dc, r), f64x2.mul(f64x2.mul(dhn, o), f64x2.sub(one, f64x2.mul(t, t))));
  // dGates: dcn*g*i*(1-i), dcn*cPrev*f*(1-f), dhn*t*o*(1-o), dcn*i*(1-g*g)
  store2d(dgi, f64x2.mul(f64x2.mul(f64x2.mul(dcn, g), i), f64x2.sub(one, i)), r);
  store2d(dgi + gs, f64x2.mul(f64x2.mul(f64x2.mul(dcn, cprev), f), f64x2.sub(one, f)), r);
  store2d(dgi + 2 * gs, f64x2.mul(f64x2.mul(f64x2.mul(dhn, t), o), f64x2.sub(one, o)), r);
  store2d(dgi + 3 * gs, f64x2.mul(f64x2.mul(dcn, i), f64x2.sub(one, f64x2.mul(g, g))), r);
  store2d(dcp, f64x2.mul(dcn, f), r);
}

export function lstmBackward(
  gates: usize, cPrev: usize, tc: usize, dh: usize, dc: usize, dGates: usize, dcPrev: usize, M: i32, N: i32,
): void {
  const gs = <usize>N << 2;
  const N2 = N & ~1;
  for (let m = 0; m < M; m++) {
    const go = <usize>m * (gs << 2);
    const so = <usize>m * gs;
    let n = 0;
    for (; n < N2; n += 2) {
      const o = <usize>n << 2;
      lstmBackward2(gates + go + o, gs, cPrev + so + o, tc + so + o, dh + so + o, dc + so + o, dGates + go + o, dcPrev + so + o, 2);
    }
    if (n < N) {
      const o = <usize>n << 2;
      lstmBackward2(gates + go + o, gs, cPrev + so + o, tc + so + o, dh + so + o, dc + so + o, dGates + go + o, dcPrev + so + o, 1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GRU and vanilla RNN cells (src/nn/cells.ts): the forward halves in float32 SIMD with the
// approximations above, the backward halves in float64 with the reference's exact expressions
// and operation order (bit-identical to src/nn/kernels.ts), as for the LSTM.

/** Loads 4 floats, or r ∈ {1,2,3} zero-padded. */
// @ts-ignore: decorator
@inline function load4(p: usize, r: i32): v128 {
  return r == 4 ? v128.load(p) : loadTail(p, r);
}

/** Stores 4 lanes, or the low r ∈ {1,2,3}. */
// @ts-ignore: decorator
@inline function store4(p: usize, v: v128, r: i32): void {
  if (r == 4) v128.store(p, v);
  else storeTail(p, v, r);
}

/** zr[M,2N]: [a_z a_r] → [σ(a_z) σ(a_r)];  rh[M,N] = r⊙h. */
export function gruResetForward(zr: usize, h: usize, rh: usize, M: i32, N: i32): void {
  const gs = <usize>N << 2; // bytes per block
  for (let m = 0; m < M; m++) {
    const g = zr + <usize>m * (gs << 1);
    const s = <usize>m * gs;
    for (let n = 0; n < N; n += 4) {
      const r = min(4, N - n);
      const o = <usize>n << 2;
      const z4 = sigmoid4(load4(g + o, r));
      const r4 = sigmoid4(load4(g + gs + o, r));
      store4(g + o, z4, r);
      store4(g + gs + o, r4, r);
      store4(rh + s + o, f32x4.mul(r4, load4(h + s + o, r)), r);
    }
  }
}

/** n[M,N]: a_n → tanh(a_n);  h[M,N] = z⊙n + (1 − z)⊙hPrev (z from zr[M,2N]). */
export function gruForward(zr: usize, nn: usize, hPrev: usize, h: usize, M: i32, N: i32): void {
  const gs = <usize>N << 2;
  const one = kv(K_ONE);
  for (let m = 0; m < M; m++) {
    const g = zr + <usize>m * (gs << 1);
    const s = <usize>m * gs;
    for (let n = 0; n < N; n += 4) {
      const r = min(4, N - n);
      const o = <usize>n << 2;
      const z = load4(g + o, r);
      const c = tanh4(load4(nn + s + o, r));
      store4(nn + s + o, c, r);
      store4(h + s + o, f32x4.add(f32x4.mul(z, c), f32x4.mul(f32x4.sub(one, z), load4(hPrev + s + o, r))), r);
    }
  }
}

/**
 * Backward of gruForward: dn = dh·z·(1 − n²);  dz (the z block of dzr) = dh·(n − hPrev)·z·(1 − z);
 * dhPrev += dh·(1 − z).
 */
export function gruBackward(zr: usize, nn: usize, hPrev: usize, dh: usize, dzr: usize, dn: usize, dhPrev: usize, M: i32, N: i32): void {
  const gs = <usize>N << 2;
  const one = v128.load64_splat(CONSTS_F64);
  for (let m = 0; m < M; m++) {
    const g = <usize>m * (gs << 1);
    const s = <usize>m * gs;
    for (let n = 0; n < N; n += 2) {
      const r = min(2, N - n);
      const o = <usize>n << 2;
      const z = load2d(zr + g + o, r);
      const c = load2d(nn + s + o, r);
      const d = load2d(dh + s + o, r);
      store2d(dn + s + o, f64x2.mul(f64x2.mul(d, z), f64x2.sub(one, f64x2.mul(c, c))), r);
      const dz = f64x2.mul(f64x2.mul(f64x2.mul(d, f64x2.sub(c, load2d(hPrev + s + o, r))), z), f64x2.sub(one, z));
      store2d(dzr + g + o, dz, r);
      store2d(dhPrev + s + o, f64x2.add(load2d(dhPrev + s + o, r), f64x2.mul(d, f64x2.sub(one, z))), r);
    }
  }
}

/** Backward of gruResetForward: dr (the r block of dzr) = drh·hPrev·r·(1 − r);  dhPrev += drh·r. */
export function gruResetBackward(zr: usize, hPrev: usize, drh: usize, dzr: usize, dhPrev: usize, M: i32, N: i32): void {
  const gs = <usize>N << 2;
  const one = v128.load64_splat(CONSTS_F64);
  for (let m = 0; m < M; m++) {
    const g = <usize>m * (gs << 1) + gs;
    const s = <usize>m * gs;
    for (let n = 0; n < N; n += 2) {
      const r = min(2, N - n);
      const o = <usize>n << 2;
      const rr = load2d(zr + g + o, r);
      const d = load2d(drh + s + o, r);
      store2d(dzr + g + o, f64x2.mul(f64x2.mul(f64x2.mul(d, load2d(hPrev + s + o, r)), rr), f64x2.sub(one, rr)), r);
      store2d(dhPrev + s + o, f64x2.add(load2d(dhPrev + s + o, r), f64x2.mul(d, rr)), r);
    }
  }
}

/** h[count] = tanh(a[count]) (count = M·N; the rows are contiguous). */
export function rnnForward(a: usize, h: usize, count: i32): void {
  for (let j = 0; j < count; j += 4) {
    const r = min(4, count - j);
    const o = <usize>j << 2;
    store4(h + o, tanh4(load4(a + o, r)), r);
  }
}

/** da[count] = dh·(1 − h²) (da may alias dh). */
export function rnnBackward(h: usize, dh: usize, da: usize, count: i32): void {
  const one = v128.load64_splat(CONSTS_F64);
  for (let j = 0; j < count; j += 2) {
    const r = min(2, count - j);
    const o = <usize>j << 2;
    const hh = load2d(h + o, r);
    store2d(da + o, f64x2.mul(load2d(dh + o, r), f64x2.sub(one, f64x2.mul(hh, hh))), r);
  }
}

// ---------------------------------------------------------------------------------------------
// Rows by token id: the embedding lookup (and the first layer's tables), and its backward.

/** out[m,:] = table[ids[m],:] for m < M, rows of W floats (ids checked by the caller). */
export function gatherRows(out: usize, table: usize, ids: usize, M: i32, W: i32): void {
  const rb = <usize>W << 2;
  for (let m = 0; m < M; m++) {
    memory.copy(out + <usize>m * rb, table + <usize>load<i32>(ids + (<usize>m << 2)) * rb, rb);
  }
}

/** dst[ids[m],:] += src[m,:] for m = 0 … M−1 in order (ids checked by the caller). */
export function scatterAddRows(dst: usize, src: usize, ids: usize, M: i32, W: i32): void {
  const rb = <usize>W << 2;
  for (let m = 0; m < M; m++) addRow(dst + <usize>load<i32>(ids + (<usize>m << 2)) * rb, src + <usize>m * rb, W);
}

// ---------------------------------------------------------------------------------------------
// Log-softmax + NLL

/** max of row[0..V), by `x > max` tests as in the reference (NaN entries are passed over). */
// @ts-ignore: decorator
@inline function rowMax(row: usize, V: i32): f32 {
  const V4 = V & ~3;
  // pmax(m, x) = m < x ? x : m
  let mx = f32x4.splat(-Infinity);
  for (let v = 0; v < V4; v += 4) mx = f32x4.pmax(mx, v128.load(row + (<usize>v << 2)));
  let maxv: f32 = -Infinity;
  for (let j = 0; j < 4; j++) {
    const x = f32x4.extract_lane(mx, 0);
    if (x > maxv) maxv = x;
    mx = f32x4.shuffle(mx, mx, 1, 2, 3, 0);
  }
  for (let j = V4; j < V; j++) {
    const x = load<f32>(row + (<usize>j << 2));
    if (x > maxv) maxv = x;
  }
  return maxv;
}

/** The float64 sum of the 4 lanes of e added to s (two f64x2 lanes). */
// @ts-ignore: decorator
@inline function addLanesF64(s: v128, e: v128): v128 {
  return f64x2.add(s, f64x2.add(f64x2.promote_low_f32x4(e), f64x2.promote_low_f32x4(f32x4.shuffle(e, e, 2, 3, 0, 1))));
}

/** The float64 sum of the low r ∈ {1,2,3} lanes of e. */
// @ts-ignore: decorator
@inline function sumLowLanes(e: v128, r: i32): f64 {
  let sum = <f64>f32x4.extract_lane(e, 0);
  if (r > 1) sum += <f64>f32x4.extract_lane(e, 1);
  if (r > 2) sum += <f64>f32x4.extract_lane(e, 2);
  return sum;
}

/**
 * p[j] = e^{(x[j] − max x)·invT} for j < V; returns Σ p[j], accumulated in float64. Sampling
 * at temperature T: with x the log-probabilities and invT = 1/T, p is proportional to
 * softmax(x/T) and its largest entry is 1.
 */
export function softmaxScaled(p: usize, x: usize, V: i32, invT: f32): f64 {
  if (V <= 0) return 0;
  const V4 = V & ~3;
  const r = V - V4;
  const mv = f32x4.splat(rowMax(x, V));
  const tv = f32x4.splat(invT);
  let s = f64x2.splat(0);
  for (let v = 0; v < V4; v += 4) {
    const o = <usize>v << 2;
    const e = exp4(f32x4.mul(f32x4.sub(v128.load(x + o), mv), tv));
    v128.store(p + o, e);
    s = addLanesF64(s, e);
  }
  let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  if (r > 0) {
    const o = <usize>V4 << 2;
    const e = exp4(f32x4.mul(f32x4.sub(loadTail(x + o, r), mv), tv));
    storeTail(p + o, e, r);
    sum += sumLowLanes(e, r); // (the padding lanes are not entries)
  }
  return sum;
}

/**
 * Each row of logits[M,V] becomes log-probabilities; returns Σ_m −logp[m, targets[m]].
 * The max is exact, the exponentials are float32 (argument x − max ≤ 0; the max term is exactly
 * 1), their sum and its log are float64, so a dominant class keeps full relative accuracy in
 * logp ≈ 0; logp is formed in float64 and rounded once, as in the reference.
 */
export function logSoftmaxNll(logits: usize, targets: usize, M: i32, V: i32): f64 {
  let nll: f64 = 0;
  if (V <= 0) return nll;
  const V4 = V & ~3;
  const r = V - V4;
  const rowBytes = <usize>V << 2;
  for (let m = 0; m < M; m++) {
    const row = logits + <usize>m * rowBytes;
    const maxv = rowMax(row, V);
    let v = 0;
    // Σ exp(x − max), accumulated in float64
    const mv = f32x4.splat(maxv);
    let s = f64x2.splat(0);
    for (v = 0; v < V4; v += 4) {
      const e = exp4(f32x4.sub(v128.load(row + (<usize>v << 2)), mv));
      s = addLanesF64(s, e);
    }
    let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
    if (r > 0) {
      // Padding lanes are 0 − max → e^(−max) would be wrong: mask them out of the sum.
      const e = exp4(f32x4.sub(loadTail(row + (<usize>V4 << 2), r), mv));
      sum += sumLowLanes(e, r);
    }
    // logp = (x − max) − log Σ in float64 (x − max is exact there), rounded once. Subtracting
    // max and log Σ separately, rather than x − (max + log Σ), keeps logp accurate when it is
    // close to 0 (a dominant class with a large logit).
    const ls = Math.log(sum);
    const mx2 = f64x2.splat(<f64>maxv);
    const ls2 = f64x2.splat(ls);
    const V2 = V & ~1;
    for (v = 0; v < V2; v += 2) {
      const p = row + (<usize>v << 2);
      const d = f64x2.sub(f64x2.promote_low_f32x4(v128.load64_zero(p)), mx2);
      v128.store64_lane(p, f32x4.demote_f64x2_zero(f64x2.sub(d, ls2)), 0);
    }
    if (V2 < V) {
      const p = row + (<usize>V2 << 2);
      store<f32>(p, <f32>((<f64>load<f32>(p) - <f64>maxv) - ls));
    }
    const t = load<i32>(targets + (<usize>m << 2));
    if (t >= 0) nll -= <f64>load<f32>(row + (<usize>t << 2)); // (a negative target: not scored)
  }
  return nll;
}

/** dLogits[M,V] = scale·(exp(logp) − onehot(target)), 0 where target < 0 (not scored); dLogits may alias logp. */
export function logSoftmaxNllBackward(dLogits: usize, logp: usize, targets: usize, M: i32, V: i32, scale: f64): void {
  const V4 = V & ~3;
  const r = V - V4;
  const rowBytes = <usize>V << 2;
  const sv = f32x4.splat(<f32>scale);
  for (let m = 0; m < M; m++) {
    const src = logp + <usize>m * rowBytes;
    const dst = dLogits + <usize>m * rowBytes;
    const target = load<i32>(targets + (<usize>m << 2));
    if (target < 0) {
      memory.fill(dst, 0, rowBytes);
      continue;
    }
    let v = 0;
    for (; v < V4; v += 4) {
      const o = <usize>v << 2;
      v128.store(dst + o, f32x4.mul(sv, exp4(v128.load(src + o))));
    }
    if (r > 0) {
      const o = <usize>V4 << 2;
      storeTail(dst + o, f32x4.mul(sv, exp4(loadTail(src + o, r))), r);
    }
    const t = dst + (<usize>target << 2);
    store<f32>(t, <f32>(<f64>load<f32>(t) - scale));
  }
}

// ---------------------------------------------------------------------------------------------
// Optimisers (src/optim.ts), in float64 with the reference's operation order: bit-identical.

/** m = α·m + (1−α)·g²;  x −= lr·g / (√m + ε), over n elements. */
export function rmsprop(x: usize, g: usize, m: usize, n: i32, lr: f64, alpha: f64, eps: f64): void {
  const a = f64x2.splat(alpha);
  const oma = f64x2.splat(1 - alpha);
  const lrv = f64x2.splat(lr);
  const ev = f64x2.splat(eps);
  let j = 0;
  for (; j < n; j += 2) {
    const r = n - j >= 2 ? 2 : 1;
    const o = <usize>j << 2;
    const gj = load2d(g + o, r);
    const mj = f64x2.add(f64x2.mul(a, load2d(m + o, r)), f64x2.mul(f64x2.mul(oma, gj), gj));
    store2d(m + o, mj, r);
    const step = f64x2.div(f64x2.mul(lrv, gj), f64x2.add(f64x2.sqrt(mj), ev));
    store2d(x + o, f64x2.sub(load2d(x + o, r), step), r);
  }
}

/**
 * m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  x −= stepSize·m / (√v + ε), over n elements.
 * stepSize = lr·√(1−β2ᵗ)/(1−β1ᵗ) is computed by the caller (lr itself is not used here).
 */
export function adam(
  x: usize, g: usize, m: usize, v: usize, n: i32, lr: f64, beta1: f64, beta2: f64, eps: f64, stepSize: f64,
): void {
  const b1 = f64x2.splat(beta1);
  const omb1 = f64x2.splat(1 - beta1);
  const b2 = f64x2.splat(beta2);
  const omb2 = f64x2.splat(1 - beta2);
  const ss = f64x2.splat(stepSize);
  const ev = f64x2.splat(eps);
  let j = 0;
  for (; j < n; j += 2) {
    const r = n - j >= 2 ? 2 : 1;
    const o = <usize>j << 2;
    const gj = load2d(g + o, r);
    const mj = f64x2.add(f64x2.mul(b1, load2d(m + o, r)), f64x2.mul(omb1, gj));
    const vj = f64x2.add(f64x2.mul(b2, load2d(v + o, r)), f64x2.mul(f64x2.mul(omb2, gj), gj));
    store2d(m + o, mj, r);
    store2d(v + o, vj, r);
    const step = f64x2.div(f64x2.mul(ss, mj), f64x2.add(f64x2.sqrt(vj), ev));
    store2d(x + o, f64x2.sub(load2d(x + o, r), step), r);
  }
}

/**
 * g = clamp(g, −c, c) element-wise over n elements. pmin(v, c) = c < v ? c : v and
 * pmax(v, −c) = v < −c ? −c : v are exactly clipGradients' tests (NaN stays NaN).
 */
export function clip(g: usize, n: i32, c: f32): void {
  const hi = f32x4.splat(c);
  const lo = f32x4.splat(-c);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const p = g + (<usize>j << 2);
    v128.store(p, f32x4.pmax(f32x4.pmin(v128.load(p), hi), lo));
  }
  const r = n - j;
  if (r > 0) {
    const p = g + (<usize>j << 2);
    storeTail(p, f32x4.pmax(f32x4.pmin(loadTail(p, r), hi), lo), r);
  }
}

/**
 * The index of the first element of a[0..n) that is NaN or ±Infinity (v − v ≠ 0), or −1: the
 * Trainer's check of the gradients before an update, 16 elements at a time.
 */
export function firstNonFinite(a: usize, n: i32): i32 {
  const zero = f32x4.splat(0);
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const p = a + (<usize>j << 2);
    const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
    const bad0 = v128.or(f32x4.ne(f32x4.sub(v0, v0), zero), f32x4.ne(f32x4.sub(v1, v1), zero));
    const bad1 = v128.or(f32x4.ne(f32x4.sub(v2, v2), zero), f32x4.ne(f32x4.sub(v3, v3), zero));
    if (v128.any_true(v128.or(bad0, bad1))) break;
  }
  for (; j < n; j++) {
    const v = load<f32>(a + (<usize>j << 2));
    if (v - v != <f32>0) return j;
  }
  return -1;
}

/** sumSquares2's second sum (a wasm global: each instance has its own). */
let sumSquaresOfB: f64 = 0;

/**
 * Σ a[j]² and Σ b[j]² over j < n in float64, each summed in index order, as a plain loop would
 * (the same bits); the two sums in one pass, whose additions overlap. Returns the first;
 * sumSquaresSecond() the second.
 */
export function sumSquares2(a: usize, b: usize, n: i32): f64 {
  let sa: f64 = 0;
  let sb: f64 = 0;
  for (let j = 0; j < n; j++) {
    const o = <usize>j << 2;
    const x = <f64>load<f32>(a + o);
    const y = <f64>load<f32>(b + o);
    sa += x * x;
    sb += y * y;
  }
  sumSquaresOfB = sb;
  return sa;
}

export function sumSquaresSecond(): f64 {
  return sumSquaresOfB;
}

/**
 * dst[0..n) += src[0..n), element by element in float32 (the sum of several threads' gradients,
 * src/parallel/): the same additions as a JS loop `dst[j] += src[j]` over Float32Arrays.
 */
export function addInPlace(dst: usize, src: usize, n: i32): void {
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const d = dst + (<usize>j << 2);
    const s = src + (<usize>j << 2);
    v128.store(d, f32x4.add(v128.load(d), v128.load(s)));
    v128.store(d, f32x4.add(v128.load(d, 16), v128.load(s, 16)), 16);
    v128.store(d, f32x4.add(v128.load(d, 32), v128.load(s, 32)), 32);
    v128.store(d, f32x4.add(v128.load(d, 48), v128.load(s, 48)), 48);
  }
  for (; j < n; j += 4) {
    const r = min(4, n - j);
    const d = dst + (<usize>j << 2);
    const s = src + (<usize>j << 2);
    if (r == 4) v128.store(d, f32x4.add(v128.load(d), v128.load(s)));
    else storeTail(d, f32x4.add(loadTail(d, r), loadTail(s, r)), r);
  }
}

// ---------------------------------------------------------------------------------------------
// Benchmark only: the peak rate of f32x4 multiply-add on this machine, the bound the matmuls are
// measured against (bench/run.mjs). Twelve independent accumulators hide the add latency; each
// iteration does 12 × 4 lanes × 2 flops = 96 flops. Returns a value that depends on every
// accumulator so that nothing can be optimised away.
export function peakMulAdd(iters: i32): f32 {
  const x = f32x4.splat(0.9999999);
  const y = f32x4.splat(1e-7);
  let a0 = f32x4.splat(1.0), a1 = f32x4.splat(1.1), a2 = f32x4.splat(1.2), a3 = f32x4.splat(1.3);
  let a4 = f32x4.splat(1.4), a5 = f32x4.splat(1.5), a6 = f32x4.splat(1.6), a7 = f32x4.splat(1.7);
  let a8 = f32x4.splat(1.8), a9 = f32x4.splat(1.9), a10 = f32x4.splat(2.0), a11 = f32x4.splat(2.1);
  for (let i = 0; i < iters; i++) {
    a0 = madd(a0, x, y); a1 = madd(a1, x, y); a2 = madd(a2, x, y); a3 = madd(a3, x, y);
    a4 = madd(a4, x, y); a5 = madd(a5, x, y); a6 = madd(a6, x, y); a7 = madd(a7, x, y);
    a8 = madd(a8, x, y); a9 = madd(a9, x, y); a10 = madd(a10, x, y); a11 = madd(a11, x, y);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  const t = f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11)));
  return f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1) + f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3);
}
