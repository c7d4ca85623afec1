/**
 * The cells (src/nn/cells.ts) one at a time, outside any model: each cell's forwardStep against
 * its update written out here from the table at the top of cells.ts (char-rnn's LSTM.lua,
 * GRU.lua, RNN.lua), with every gate found by the name the cell gives its block (so the names
 * are the layout the kernels use); backwardStep over a few steps against central differences
 * (fourth order) of ⟨w, h_T⟩ (+ ⟨v, c_T⟩); partsOf's views; cellOf. The model-level checks (gradcheck,
 * reference) see the cells only through whole models.
 */
import { describe, expect, it } from 'vitest';
import { Rng, TsKernels } from '../src/index.js';
import { type Cell, type CellSteps, GRU, LSTM, RNN, cellOf, partsOf } from '../src/nn/cells.js';
import type { Linear } from '../src/nn/layers.js';

const k = new TsKernels('float64');
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const cells: Cell[] = [LSTM, GRU, RNN];

/** Random numbers in [−s, s). */
function rand(rng: Rng, n: number, s = 1): Float64Array {
  return Float64Array.from({ length: n }, () => rng.uniformRange(-s, s));
}

/** The recurrent maps of a cell, one Linear per part ([blocks·N, N]), random. */
function h2hOf(cell: Cell, N: number, rng: Rng): Linear[] {
  return cell.parts.map(({ blocks }) => ({
    W: rand(rng, blocks * N * N),
    b: rand(rng, blocks * N),
    dW: new Float64Array(blocks * N * N),
    db: new Float64Array(blocks * N),
    inSize: N,
    outSize: blocks * N,
  }));
}

/** Views for T steps of B rows: a[p][t] = the part from below (given), h[0], c[0] the initial state. */
function stepsOf(cell: Cell, below: Float64Array[][], h0: Float64Array, c0: Float64Array, B: number, N: number, T: number): CellSteps {
  const bn = B * N;
  const zeros = (n: number) => new Float64Array(n);
  return {
    a: below.map((byT) => byT.map((x) => x.slice())),
    h: Array.from({ length: T + 1 }, (_, t) => (t === 0 ? h0.slice() : zeros(bn))),
    c: Array.from({ length: T + 1 }, (_, t) => (cell.hasCell ? (t === 0 ? c0.slice() : zeros(bn)) : zeros(0))),
    tc: Array.from({ length: T }, () => zeros(cell.hasCell ? bn : 0)),
    rh: Array.from({ length: T }, () => zeros(cell.kind === 'gru' ? bn : 0)),
    dA: cell.parts.map(({ blocks }) => Array.from({ length: T }, () => zeros(blocks * bn))),
    dh: Array.from({ length: T + 1 }, () => zeros(bn)),
    dRh: zeros(cell.kind === 'gru' ? bn : 0),
  };
}

/** Where block `name` of the cell lies: its part and its first column in that part's rows. */
function blockAt(cell: Cell, name: string, N: number): { part: number; col: number } {
  const j = cell.blocks.indexOf(name);
  expect(j, `${cell.kind} has a block ${name}`).toBeGreaterThanOrEqual(0);
  let first = 0;
  for (let p = 0; p < cell.parts.length; p++) {
    if (j < first + cell.parts[p].blocks) return { part: p, col: (j - first) * N };
    first += cell.parts[p].blocks;
  }
  throw new Error('unreachable');
}

/** y[b, :] = x[b, :]·Wᵀ + bias, written out. */
function affine(x: ArrayLike<number>, lin: Linear, B: number): number[] {
  const { inSize: K, outSize: O } = lin;
  const y: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < O; o++) {
      let s = lin.b[o];
      for (let q = 0; q < K; q++) s += x[b * K + q] * lin.W[o * K + q];
      y.push(s);
    }
  }
  return y;
}

/** One step of the cell's update as cells.ts's table writes it: returns h', c' (c' empty without a cell). */
function expectedStep(cell: Cell, below: ArrayLike<number>[], h: ArrayLike<number>, c: ArrayLike<number>, h2h: Linear[], B: number, N: number) {
  const width = (p: number) => cell.parts[p].blocks * N;
  const pre = (p: number, rec: number[]) => Array.from({ length: B * width(p) }, (_, j) => below[p][j] + rec[j]);
  const h1: number[] = [];
  const c1: number[] = [];
  if (cell.kind === 'lstm') {
    const a = pre(0, affine(h, h2h[0], B));
    const at = (name: string, b: number, n: number) => a[b * width(0) + blockAt(cell, name, N).col + n];
    for (let b = 0; b < B; b++) {
      for (let n = 0; n < N; n++) {
        const [i, f, o, g] = [sigmoid(at('i', b, n)), sigmoid(at('f', b, n)), sigmoid(at('o', b, n)), Math.tanh(at('g', b, n))];
        const cn = f * c[b * N + n] + i * g;
        c1.push(cn);
        h1.push(o * Math.tanh(cn));
      }
    }
  } else if (cell.kind === 'gru') {
    const z = blockAt(cell, 'z', N);
    const r = blockAt(cell, 'r', N);
    const cand = blockAt(cell, 'n', N);
    expect(z.part).toBe(r.part);
    const gates = pre(z.part, affine(h, h2h[z.part], B));
    const rh = Array.from({ length: B * N }, (_, j) => sigmoid(gates[Math.floor(j / N) * width(r.part) + r.col + (j % N)]) * h[j]);
    const an = pre(cand.part, affine(rh, h2h[cand.part], B));
    for (let b = 0; b < B; b++) {
      for (let n = 0; n < N; n++) {
        const zz = sigmoid(gates[b * width(z.part) + z.col + n]);
        const nn = Math.tanh(an[b * width(cand.part) + cand.col + n]);
        h1.push(zz * nn + (1 - zz) * h[b * N + n]);
      }
    }
  } else {
    const a = pre(0, affine(h, h2h[0], B));
    for (let j = 0; j < B * N; j++) h1.push(Math.tanh(a[j]));
  }
  return { h: h1, c: c1 };
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  for (let j = 0; j < expected.length; j++) {
    const err = Math.abs(actual[j] - expected[j]) / Math.max(Math.abs(actual[j]) + Math.abs(expected[j]), 1e-5);
    if (!(err <= tol)) expect.fail(`${what}[${j}]: ${actual[j]} vs ${expected[j]}`);
  }
}

const shapes = [
  { B: 1, N: 1, T: 1 },
  { B: 2, N: 3, T: 3 },
  { B: 3, N: 2, T: 2 },
];

describe('each cell on its own', () => {
  for (const cell of cells) {
    it(`${cell.kind}: forwardStep is the table's update, each gate found by its block name`, () => {
      let seed = 1;
      for (const { B, N, T } of shapes) {
        const rng = new Rng(seed++);
        const h2h = h2hOf(cell, N, rng);
        const below = cell.parts.map(({ blocks }) => Array.from({ length: T }, () => rand(rng, B * blocks * N, 2)));
        const h0 = rand(rng, B * N);
        const c0 = rand(rng, cell.hasCell ? B * N : 0, 2);
        const s = stepsOf(cell, below, h0, c0, B, N, T);
        let [h, c]: ArrayLike<number>[] = [h0, c0];
        for (let t = 0; t < T; t++) {
          cell.forwardStep(k, s, t, h2h, B, N);
          const want = expectedStep(cell, below.map((byT) => byT[t]), h, c, h2h, B, N);
          close(s.h[t + 1], want.h, 1e-12, `${cell.kind} B${B} N${N} h_${t + 1}`);
          close(s.c[t + 1], want.c, 1e-12, `${cell.kind} B${B} N${N} c_${t + 1}`);
          if (cell.hasCell) close(s.tc[t], want.c.map(Math.tanh), 1e-12, `${cell.kind} tanh(c_${t + 1})`);
          [h, c] = [want.h, want.c];
        }
      }
    });

    it(`${cell.kind}: backwardStep over T steps gives ∂/∂a of every step and ∂/∂(initial state) as central differences do`, () => {
      let seed = 100;
      for (const { B, N, T } of shapes) {
        const rng = new Rng(seed++);
        const h2h = h2hOf(cell, N, rng);
        const below = cell.parts.map(({ blocks }) => Array.from({ length: T }, () => rand(rng, B * blocks * N, 2)));
        const h0 = rand(rng, B * N);
        const c0 = rand(rng, cell.hasCell ? B * N : 0, 2);
        const wh = rand(rng, B * N);
        const wc = rand(rng, cell.hasCell ? B * N : 0);
        // J = ⟨wh, h_T⟩ + ⟨wc, c_T⟩
        const J = (bl: Float64Array[][], h: Float64Array, c: Float64Array) => {
          const s = stepsOf(cell, bl, h, c, B, N, T);
          for (let t = 0; t < T; t++) cell.forwardStep(k, s, t, h2h, B, N);
          let sum = 0;
          for (let j = 0; j < B * N; j++) sum += wh[j] * s.h[T][j] + (cell.hasCell ? wc[j] * s.c[T][j] : 0);
          return sum;
        };
        const s = stepsOf(cell, below, h0, c0, B, N, T);
        for (let t = 0; t < T; t++) cell.forwardStep(k, s, t, h2h, B, N);
        s.dh[T].set(wh);
        const dc = wc.slice();
        // dRh starts dirty: each step must clear what it uses.
        s.dRh.fill(7);
        for (let t = T - 1; t >= 0; t--) cell.backwardStep(k, s, t, h2h, dc, B, N);
        // Fourth-order central difference (as test/gradcheck.test.ts): error O(ε⁴) + rounding/ε.
        const eps = 1e-3;
        const numeric = (x: Float64Array, j: number) => {
          const v = x[j];
          const at = (d: number) => ((x[j] = v + d), J(below, h0, c0));
          const n = (8 * (at(eps) - at(-eps)) - (at(2 * eps) - at(-2 * eps))) / (12 * eps);
          x[j] = v;
          return n;
        };
        const fd = (x: Float64Array) => Array.from(x, (_, j) => numeric(x, j));
        for (let p = 0; p < cell.parts.length; p++) {
          for (let t = 0; t < T; t++) close(s.dA[p][t], fd(below[p][t]), 1e-6, `${cell.kind} B${B} N${N} ∂a part ${p} step ${t}`);
        }
        close(s.dh[0], fd(h0), 1e-6, `${cell.kind} B${B} N${N} ∂h_0`);
        if (cell.hasCell) close(dc, fd(c0), 1e-6, `${cell.kind} B${B} N${N} ∂c_0`);
      }
    });
  }

  it('the LSTM starts its forget gate at 1 and only it; gru and rnn set no bias', () => {
    expect(LSTM.biasInit).toEqual([[LSTM.blocks.indexOf('f'), 1]]);
    expect(GRU.biasInit).toEqual([]);
    expect(RNN.biasInit).toEqual([]);
  });
});

describe('cellOf and partsOf', () => {
  it('cellOf gives the cell of each model kind: the LSTM for lstm and grid_lstm', () => {
    for (const kind of ['lstm', 'gru', 'rnn'] as const) expect(cellOf(kind).kind).toBe(kind);
    expect(cellOf('grid_lstm')).toBe(LSTM);
  });

  it("partsOf: views of the rows of W, b, dW, db that compute each part, in the cell's order", () => {
    const N = 3;
    const K = 2;
    const G = GRU.blocks.length;
    const rng = new Rng(5);
    const lin: Linear = { W: rand(rng, G * N * K), b: rand(rng, G * N), dW: rand(rng, G * N * K), db: rand(rng, G * N), inSize: K, outSize: G * N };
    const parts = partsOf(lin, GRU, N);
    expect(parts.map((p) => [p.inSize, p.outSize])).toEqual([[K, 2 * N], [K, N]]);
    let row = 0;
    for (const p of parts) {
      expect(Array.from(p.W)).toEqual(Array.from(lin.W.subarray(row * K, (row + p.outSize) * K)));
      expect(Array.from(p.b)).toEqual(Array.from(lin.b.subarray(row, row + p.outSize)));
      expect(Array.from(p.dW)).toEqual(Array.from(lin.dW.subarray(row * K, (row + p.outSize) * K)));
      expect(Array.from(p.db)).toEqual(Array.from(lin.db.subarray(row, row + p.outSize)));
      row += p.outSize;
    }
    // Views, not copies: a gradient written through a part is the layer's.
    parts[1].db[0] = 42;
    expect(lin.db[2 * N]).toBe(42);
    parts[1].dW[K * N - 1] = 43;
    expect(lin.dW[G * N * K - 1]).toBe(43);
    // A cell of one part gets the Linear itself.
    expect(partsOf(lin, LSTM, N)[0]).toBe(lin);
    expect(partsOf(lin, RNN, N)).toEqual([lin]);
  });
});
