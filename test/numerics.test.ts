/**
 * The TypeScript kernels' numerics (issue 5, moved here from test/reliability.test.ts so that
 * mutation runs, which leave out that file for its CLI runs, use them): the LSTM cell and the
 * log-softmax loss stay finite, and equal their exact limits, for pre-activations and logits of
 * any size up to ±Infinity, in float32 and float64.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Float, TsKernels } from '../src/nn/kernels.js';
import { runs } from './helpers/arbitraries.js';

describe('the TS kernels stay finite, and exact in the limit, for pre-activations of any size', () => {
  const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
  const HUGE = { float32: [1e4, 1e30, 3.4e38, Infinity], float64: [1e4, 1e30, 1e300, Number.MAX_VALUE, Infinity] };

  for (const dtype of ['float32', 'float64'] as const) {
    const k = new TsKernels(dtype);
    const round = (a: number[]) => Array.from(dtype === 'float32' ? Float32Array.from(a) : Float64Array.from(a));
    const expectClose = (got: ArrayLike<number>, want: number[], what: string) => {
      for (let j = 0; j < want.length; j++) {
        const g = got[j]!;
        const w = want[j]!;
        expect(Number.isNaN(g), `${what}[${j}] is NaN`).toBe(false);
        if (!Number.isFinite(w)) expect(g, `${what}[${j}]`).toBe(w);
        else expect(Math.abs(g - w), `${what}[${j}] = ${g}, want ${w}`).toBeLessThanOrEqual(Math.abs(w) * (dtype === 'float32' ? 1e-6 : 1e-14) + 1e-300);
      }
    };

    describe(dtype, () => {
      it('lstmForward and lstmBackward at ±huge pre-activations equal their saturated limits', () => {
        for (const big of HUGE[dtype]) {
          for (const sign of [1, -1]) {
            const N = 4;
            // Gate blocks i, f, o, g; each unit sees ±big in one gate and moderate values elsewhere.
            const a = [
              sign * big, 0.3, -big, 2, // i
              0.5, sign * big, big, -1, // f
              -0.2, 1, sign * big, -big, // o
              1.5, -0.7, 0.1, sign * big, // g
            ];
            const cPrev = [0.5, -2, 3, 1e3];
            const gates = k.alloc(4 * N);
            gates.set(a);
            const c = k.alloc(N);
            const tc = k.alloc(N);
            const h = k.alloc(N);
            const cp = k.alloc(N);
            cp.set(cPrev);
            k.lstmForward(gates, cp, c, tc, h, 1, N);
            const act = round(a.map((x, j) => (j >= 3 * N ? Math.tanh(x) : sigmoid(x))));
            expectClose(gates, act, `gates(${sign * big})`);
            const cWant = round([0, 1, 2, 3].map((n) => act[N + n]! * round(cPrev)[n]! + act[n]! * act[3 * N + n]!));
            expectClose(c, cWant, 'c');
            const tcWant = round(Array.from(c, Math.tanh));
            expectClose(tc, tcWant, 'tanh(c)');
            expectClose(h, round([0, 1, 2, 3].map((n) => act[2 * N + n]! * tcWant[n]!)), 'h');
            // Saturated gates are exactly 0 or 1, and tanh exactly ±1.
            expect(gates[0]).toBe(sign > 0 ? 1 : 0);
            expect(gates[2]).toBe(0);
            expect(gates[3 * N + 3]).toBe(sign > 0 ? 1 : -1);

            const dh = k.alloc(N);
            dh.set([1, -1, 0.5, 2]);
            const dc = k.alloc(N);
            dc.set([0.1, 0.2, -0.3, 0.4]);
            const dG = k.alloc(4 * N);
            const dcPrev = k.alloc(N);
            k.lstmBackward(gates, cp, tc, dh, dc, dG, dcPrev, 1, N);
            const want: number[] = new Array(4 * N);
            const wantPrev: number[] = new Array(N);
            for (let n = 0; n < N; n++) {
              const [i, f, o, g, t] = [gates[n]!, gates[N + n]!, gates[2 * N + n]!, gates[3 * N + n]!, tc[n]!];
              const dcn = dc[n]! + dh[n]! * o * (1 - t * t);
              want[n] = dcn * g * i * (1 - i);
              want[N + n] = dcn * cp[n]! * f * (1 - f);
              want[2 * N + n] = dh[n]! * t * o * (1 - o);
              want[3 * N + n] = dcn * i * (1 - g * g);
              wantPrev[n] = dcn * f;
            }
            expectClose(dG, round(want), 'dGates');
            expectClose(dcPrev, round(wantPrev), 'dcPrev');
            for (const v of [...gates, ...c, ...tc, ...h, ...dG, ...dcPrev]) expect(Number.isFinite(v)).toBe(true);
          }
        }
      });

      it('log-softmax + NLL and its backward at huge and infinite logits equal the exact limits', () => {
        const max = dtype === 'float32' ? 3.4e38 : Number.MAX_VALUE;
        // [logits, target, expected log-probabilities]
        const rows: [number[], number, number[]][] = [
          [[1e4, 0, -1e4], 1, [0, -1e4, -2e4]],
          [[1e30, 0, -1e30], 0, [0, -1e30, -2e30]],
          [[-1e30, -1e30, -1e30], 2, [-Math.log(3), -Math.log(3), -Math.log(3)]],
          [[1e30, 1e30, 0], 2, [-Math.LN2, -Math.LN2, -1e30]],
          [[max, 0], 1, [0, -max]],
          [[Infinity, 0, 1], 0, [0, -Infinity, -Infinity]],
          [[Infinity, Infinity, -Infinity], 1, [-Math.LN2, -Math.LN2, -Infinity]],
          [[-Infinity, -Infinity], 0, [-Math.LN2, -Math.LN2]],
          [[-Infinity, 3, 3], 1, [-Infinity, -Math.LN2, -Math.LN2]],
        ];
        for (const [logits, target, want] of rows) {
          const V = logits.length;
          const buf = k.alloc(V);
          buf.set(logits);
          const nll = k.logSoftmaxNll(buf, Int32Array.of(target), 1, V);
          const wantRounded = round(want);
          expectClose(buf, wantRounded, `logp(${logits})`);
          expect(nll).toBe(-wantRounded[target]! + 0);
          const d = k.alloc(V);
          k.logSoftmaxNllBackward(d, buf, Int32Array.of(target), 1, V, 0.5);
          const dWant = round(want.map((lp, v) => 0.5 * (Math.exp(round([lp])[0]!) - (v === target ? 1 : 0))));
          expectClose(d, dWant, `dLogits(${logits})`);
          for (const v of d) expect(Number.isFinite(v)).toBe(true);
        }
      });

      it('property: finite logits of any size give finite log-probabilities ≤ 0 that sum to one, and a finite gradient', () => {
        const bound = dtype === 'float32' ? 3.4e38 : 1e307;
        const logit = fc.oneof(
          fc.double({ min: -bound, max: bound, noNaN: true }),
          fc.double({ min: -100, max: 100, noNaN: true }),
          fc.constantFrom(bound, -bound, 0, 1e4, -1e4),
        );
        fc.assert(
          fc.property(fc.array(logit, { minLength: 2, maxLength: 8 }), fc.nat(), (logits, t) => {
            const V = logits.length;
            const target = t % V;
            const buf = k.alloc(V);
            buf.set(logits);
            // Spread ≤ 2·bound never overflows in float64 (the kernels' arithmetic).
            const nll = k.logSoftmaxNll(buf, Int32Array.of(target), 1, V);
            expect(Number.isNaN(nll)).toBe(false);
            expect(nll).toBeGreaterThanOrEqual(0);
            let sum = 0;
            for (const lp of buf) {
              expect(Number.isNaN(lp)).toBe(false);
              expect(lp).toBeLessThanOrEqual(0);
              sum += Math.exp(lp);
            }
            expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
            const d = k.alloc(V);
            k.logSoftmaxNllBackward(d, buf, Int32Array.of(target), 1, V, 1);
            for (const v of d) expect(Number.isFinite(v) && Math.abs(v) <= 1).toBe(true);
          }),
          { numRuns: runs(500) },
        );
      });

      it('property: gate pre-activations of any size keep every LSTM output finite and in range', () => {
        const bound = dtype === 'float32' ? 3.4e38 : Number.MAX_VALUE;
        const pre = fc.oneof(fc.double({ min: -bound, max: bound, noNaN: true }), fc.constantFrom(Infinity, -Infinity, 1e4, -1e4, 1e30, -1e30));
        fc.assert(
          fc.property(fc.array(pre, { minLength: 8, maxLength: 8 }), fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 2, maxLength: 2 }), (a, cPrev) => {
            const N = 2;
            const gates = k.alloc(4 * N);
            gates.set(a);
            const cp = k.alloc(N);
            cp.set(cPrev);
            const [c, tc, h] = [k.alloc(N), k.alloc(N), k.alloc(N)];
            k.lstmForward(gates, cp, c, tc, h, 1, N);
            for (let j = 0; j < 3 * N; j++) expect(gates[j]! >= 0 && gates[j]! <= 1).toBe(true);
            for (let j = 3 * N; j < 4 * N; j++) expect(gates[j]! >= -1 && gates[j]! <= 1).toBe(true);
            for (const v of [...c, ...tc, ...h]) expect(Number.isFinite(v)).toBe(true);
            const dG = k.alloc(4 * N);
            const dcPrev = k.alloc(N);
            k.lstmBackward(gates, cp, tc, Float64Array.of(1, -1) as unknown as Float, Float64Array.of(0.5, 0.5) as unknown as Float, dG, dcPrev, 1, N);
            for (const v of [...dG, ...dcPrev]) expect(Number.isFinite(v)).toBe(true);
          }),
          { numRuns: runs(500) },
        );
      });
    });
  }
});
