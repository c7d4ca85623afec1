/**
 * The TypeScript kernels (src/nn/kernels.ts) where the WebAssembly comparison (test/wasm.test.ts)
 * cannot speak for them: the checks of the token ids that gatherRows and scatterAddRows read
 * (a bad id is a clear error, never a silent read outside the table); the cell kernels touch
 * only the M rows they are given; σ below −709, where 1/(1 + e^−x) would underflow to 0; the
 * reference's name and default element type; the log-softmax loss at infinite logits beside a
 * NaN or unscored; the softmax, log-softmax and its backward, and the four matrix products,
 * touch only the rows and entries given; sumSquares2's length check.
 */
import { describe, expect, it } from 'vitest';
import { TsKernels, sigmoid } from '../src/index.js';
import { Rng } from '../src/nn/rng.js';

describe("TsKernels' id checks", () => {
  const k = new TsKernels('float64');
  const rows = 4;
  const width = 2;
  const table = Float64Array.from({ length: rows * width }, (_, j) => j + 1);
  const calls = {
    gatherRows: (ids: Int32Array, M: number) => k.gatherRows(new Float64Array(M * width), table, ids, M, width, rows),
    scatterAddRows: (ids: Int32Array, M: number) => k.scatterAddRows(new Float64Array(rows * width), new Float64Array(M * width), ids, M, width, rows),
  };
  for (const [name, call] of Object.entries(calls)) {
    it(`${name}: ids must be an Int32Array of at least M ids in [0, rows); only the first M are read`, () => {
      expect(() => call([0, 1] as unknown as Int32Array, 2)).toThrow(new TypeError('ids must be an Int32Array'));
      expect(() => call(Float64Array.of(0, 1) as unknown as Int32Array, 2)).toThrow(TypeError);
      expect(() => call(Int32Array.of(0, 1), 3)).toThrow(new RangeError('ids has 2 elements, needs 3'));
      expect(() => call(Int32Array.of(0, 4, 1), 3)).toThrow(new RangeError('id 1 is 4, outside [0, 4)'));
      expect(() => call(Int32Array.of(0, 1, -1), 3)).toThrow(new RangeError('id 2 is -1, outside [0, 4)'));
      // Exactly M ids, the largest one rows − 1, and a bad id past the first M: accepted.
      expect(() => call(Int32Array.of(3, 0, 3), 3)).not.toThrow();
      expect(() => call(Int32Array.of(3, 0, 99), 2)).not.toThrow();
    });
  }

  it('gatherRows copies row ids[m] of the table; scatterAddRows adds row m back to row ids[m], repeats summed', () => {
    const ids = Int32Array.of(2, 0, 2);
    const out = new Float64Array(3 * width);
    k.gatherRows(out, table, ids, 3, width, rows);
    expect([...out]).toEqual([5, 6, 1, 2, 5, 6]);
    const dst = new Float64Array(rows * width);
    k.scatterAddRows(dst, Float64Array.of(1, 2, 3, 4, 5, 6), ids, 3, width, rows);
    expect([...dst]).toEqual([3, 4, 0, 0, 6, 8, 0, 0]);
  });
});

describe('TsKernels: what it is, σ, and the rows a cell kernel touches', () => {
  it("is named 'ts' (the CLI keys its default thread count on it) and computes in float64 unless told", () => {
    const k = new TsKernels();
    expect(k.name).toBe('ts');
    expect(k.dtype).toBe('float64');
    expect(k.alloc(3)).toBeInstanceOf(Float64Array);
    expect(new TsKernels('float32').alloc(3)).toBeInstanceOf(Float32Array);
  });

  it('σ(x) = e^x/(1 + e^x) keeps its value far below 0 (1/(1 + e^−x) underflows to 0 below −709), and σ(x) + σ(−x) = 1', () => {
    for (const x of [-720, -740, -1e4]) expect(sigmoid(x)).toBe(Math.exp(x) / (1 + Math.exp(x)));
    expect(sigmoid(-720)).toBeGreaterThan(0);
    for (const x of [0, 0.5, 3, 30, 700]) expect(sigmoid(x) + sigmoid(-x)).toBeCloseTo(1, 15);
    expect(sigmoid(0)).toBe(0.5);
  });

  it('each cell kernel reads and writes only the M rows it is given: a row past them is left as it was', () => {
    const k = new TsKernels('float64');
    const M = 2;
    const N = 3;
    const rng = new Rng(9);
    // Buffers of M + 1 rows; the last row holds a sentinel that must survive every call.
    const buf = (width: number) => {
      const a = Float64Array.from({ length: (M + 1) * width }, () => rng.uniformRange(-1, 1));
      a.fill(7, M * width);
      return a;
    };
    const untouched = (a: Float64Array, width: number, what: string) => expect([...a.subarray(M * width)], what).toEqual(new Array(width).fill(7));
    const [g4, cp, c, tc, h, dh, dc, dG, dcp] = [buf(4 * N), buf(N), buf(N), buf(N), buf(N), buf(N), buf(N), buf(4 * N), buf(N)];
    k.lstmForward(g4, cp, c, tc, h, M, N);
    for (const [a, w, name] of [[g4, 4 * N, 'gates'], [c, N, 'c'], [tc, N, 'tc'], [h, N, 'h']] as const) untouched(a, w, `lstmForward ${name}`);
    k.lstmBackward(g4, cp, tc, dh, dc, dG, dcp, M, N);
    untouched(dG, 4 * N, 'lstmBackward dGates');
    untouched(dcp, N, 'lstmBackward dcPrev');
    const [zr, hp, rh, n, h2, dzr, dn, dhp, drh] = [buf(2 * N), buf(N), buf(N), buf(N), buf(N), buf(2 * N), buf(N), buf(N), buf(N)];
    k.gruResetForward(zr, hp, rh, M, N);
    untouched(zr, 2 * N, 'gruResetForward zr');
    untouched(rh, N, 'gruResetForward rh');
    k.gruForward(zr, n, hp, h2, M, N);
    untouched(n, N, 'gruForward n');
    untouched(h2, N, 'gruForward h');
    k.gruBackward(zr, n, hp, dh, dzr, dn, dhp, M, N);
    untouched(dzr, 2 * N, 'gruBackward dzr');
    untouched(dn, N, 'gruBackward dn');
    untouched(dhp, N, 'gruBackward dhPrev');
    k.gruResetBackward(zr, hp, drh, dzr, dhp, M, N);
    untouched(dzr, 2 * N, 'gruResetBackward dzr');
    untouched(dhp, N, 'gruResetBackward dhPrev');
    const [a, hr, dhr, da] = [buf(N), buf(N), buf(N), buf(N)];
    k.rnnForward(a, hr, M, N);
    untouched(hr, N, 'rnnForward h');
    k.rnnBackward(hr, dhr, da, M, N);
    untouched(da, N, 'rnnBackward da');
  });
});

describe('TsKernels: the matrix products touch only the M rows given', () => {
  it('matmulXWt, matmulXWt2, matmulDyW and matmulDyTX: a row past M (in X, Y, dY, dX) is neither read nor written, nor an output past N of dW and db', () => {
    const k = new TsKernels('float64');
    const [M, N, K] = [2, 3, 2];
    const rng = new Rng(4);
    const rand = (n: number) => Float64Array.from({ length: n }, () => rng.uniformRange(-1, 1));
    // Row-major buffers of M + 1 rows, the last one a sentinel (7, or +∞ where it would be read).
    const rows = (width: number, last: number) => {
      const a = rand((M + 1) * width);
      a.fill(last, M * width);
      return a;
    };
    const W = rand(N * K);
    const W2 = rand(N * K);
    const b = rand(N);
    const X = rows(K, Infinity);
    const X2 = rows(K, Infinity);
    /** Y = X·Wᵀ + b over the M rows, written out. */
    const product = (x: Float64Array, w: Float64Array) =>
      Array.from({ length: M * N }, (_, j) => {
        const [m, n] = [Math.floor(j / N), j % N];
        let sum = 0;
        for (let kk = 0; kk < K; kk++) sum += x[m * K + kk] * w[n * K + kk];
        return sum;
      });
    const Y = rows(N, 7);
    k.matmulXWt(Y, X, W, b, M, N, K, false);
    const XWt = product(X, W);
    XWt.forEach((v, j) => expect(Y[j]).toBeCloseTo(v + b[j % N], 14));
    expect([...Y.subarray(M * N)]).toEqual([7, 7, 7]);
    const Y2 = rows(N, 7);
    k.matmulXWt2(Y2, X, W, X2, W2, b, null, M, N, K, K);
    const X2W2t = product(X2, W2);
    XWt.forEach((v, j) => expect(Y2[j]).toBeCloseTo(v + X2W2t[j] + b[j % N], 14));
    expect([...Y2.subarray(M * N)]).toEqual([7, 7, 7]);
    // Backward: dX += dY·W and dW += dYᵀ·X, db += Σ dY; dY's row past M is +∞.
    const dY = rows(N, Infinity);
    const dX = rows(K, 7);
    const dX0 = dX.slice();
    k.matmulDyW(dX, dY, W, M, N, K);
    for (let m = 0; m < M; m++) {
      for (let kk = 0; kk < K; kk++) {
        let sum = dX0[m * K + kk];
        for (let n = 0; n < N; n++) sum += dY[m * N + n] * W[n * K + kk];
        expect(dX[m * K + kk]).toBeCloseTo(sum, 14);
      }
    }
    expect([...dX.subarray(M * K)]).toEqual([7, 7]);
    // dW and db with one more output row past N (sentinels 7): an output n = N is not made.
    const dW = new Float64Array((N + 1) * K).fill(7, N * K);
    const db = Float64Array.of(...new Array(N).fill(0), 7);
    k.matmulDyTX(dW, db, dY, X, M, N, K);
    for (let n = 0; n < N; n++) {
      expect(db[n]).toBeCloseTo(dY[n] + dY[N + n], 14);
      for (let kk = 0; kk < K; kk++) expect(dW[n * K + kk]).toBeCloseTo(dY[n] * X[kk] + dY[N + n] * X[K + kk], 14);
    }
    expect([...dW.subarray(N * K)]).toEqual([7, 7]);
    expect(db[N]).toBe(7);
  });
});

describe('TsKernels: the log-softmax loss at infinite logits, and sumSquares2', () => {
  const k = new TsKernels('float64');

  it('a row with an infinite logit and a NaN one is all NaN; an unscored row (−1) with an infinite logit adds nothing', () => {
    const row = Float64Array.of(Infinity, NaN, 0);
    expect(Number.isNaN(k.logSoftmaxNll(row, Int32Array.of(0), 1, 3))).toBe(true);
    expect([...row].every(Number.isNaN)).toBe(true);
    // Row 0 scored (target 1, log-probability −log 2), row 1 not scored: its −∞ entries must not reach the sum.
    const rows = Float64Array.of(Infinity, Infinity, 0, Infinity, 0, 1);
    expect(k.logSoftmaxNll(rows, Int32Array.of(1, -1), 2, 3)).toBe(Math.LN2);
  });

  it('softmaxScaled, logSoftmaxNll and its backward read and write only the V entries and M rows given: entries past them are left as they were', () => {
    // Buffers one row (or one entry) longer than given, ending in +∞ (or a target 0) that each
    // call must neither read nor overwrite; results against the formulas written out here.
    const M = 2;
    const V = 3;
    const x = Float64Array.of(0.5, -1, 2);
    const xs = Float64Array.of(...x, Infinity);
    const p = Float64Array.of(7, 7, 7, 7);
    const e = [...x].map((v) => Math.exp((v - 2) * 0.5));
    const sum = k.softmaxScaled(p, xs, V, 0.5);
    expect(sum).toBeCloseTo(e[0] + e[1] + e[2], 14);
    for (let j = 0; j < V; j++) expect(p[j]).toBeCloseTo(e[j], 14);
    expect(p[V]).toBe(7);
    expect(xs[V]).toBe(Infinity);

    // Two rows given, a third past them: a finite row, then a row whose first logit is +∞
    // (so the infinite branch runs on the last row given).
    const rows = [
      [0.3, -0.2, 1.1],
      [Infinity, 0, -1],
    ];
    const logits = Float64Array.of(...rows.flat(), Infinity, Infinity, Infinity);
    const targets = Int32Array.of(2, 0, 0);
    const logSum0 = Math.log(rows[0].reduce((s, v) => s + Math.exp(v), 0));
    const logp0 = rows[0].map((v) => v - logSum0);
    const nll = k.logSoftmaxNll(logits, targets, M, V);
    expect(nll).toBeCloseTo(-logp0[2], 14); // row 1's target is its +∞ entry: −log 1 = 0
    for (let v = 0; v < V; v++) expect(logits[v]).toBeCloseTo(logp0[v], 14);
    expect([...logits.subarray(V, 2 * V)].map((v) => v + 0)).toEqual([0, -Infinity, -Infinity]); // (+ 0: −log 1 is −0)
    expect([...logits.subarray(M * V)]).toEqual([Infinity, Infinity, Infinity]);
    // The other order: the finite row last, then an extra row whose first entry is +∞.
    const logits2 = Float64Array.of(...rows[1], ...rows[0], Infinity, 0, 0);
    expect(k.logSoftmaxNll(logits2, Int32Array.of(0, 2, 0), M, V)).toBeCloseTo(-logp0[2], 14);
    for (let v = 0; v < V; v++) expect(logits2[V + v]).toBeCloseTo(logp0[v], 14);
    expect([...logits2.subarray(M * V)]).toEqual([Infinity, 0, 0]);

    // Backward, scale 2: row 0 from logp0, row 1 p = (1, 0, 0) with target 0; a third row past them.
    const logp = Float64Array.of(...logp0, 0, -Infinity, -Infinity, 0, 0, 0);
    const dLogits = new Float64Array(3 * V).fill(7);
    k.logSoftmaxNllBackward(dLogits, logp, Int32Array.of(2, 0, 1), M, V, 2);
    const want0 = logp0.map((v, j) => 2 * Math.exp(v) - (j === 2 ? 2 : 0));
    for (let v = 0; v < V; v++) expect(dLogits[v]).toBeCloseTo(want0[v], 14);
    expect([...dLogits.subarray(V, 2 * V)]).toEqual([0, 0, 0]);
    expect([...dLogits.subarray(M * V)]).toEqual([7, 7, 7]);
  });

  it('sumSquares2: both sums of squares, and a one-line error for buffers of different lengths', () => {
    expect(k.sumSquares2(Float64Array.of(1, 2), Float64Array.of(3, -4))).toEqual([5, 25]);
    expect(() => k.sumSquares2(new Float64Array(2), new Float64Array(3))).toThrow(new RangeError('sumSquares2: lengths 2 and 3 differ'));
  });
});
