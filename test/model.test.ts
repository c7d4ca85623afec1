/**
 * Properties and worked examples of the models' forward and backward passes (src/nn/model.ts).
 *
 * Relative error (helpers/arbitraries.ts, maxRelDiff): |a − b| / max(|a| + |b|, floor) per
 * element, worst over the arrays; floor 1e-300 (pure relative) unless stated. Gradients that
 * two runs sum from the same contributions in different orders (1b: chunks, 2: tied layers)
 * use maxRelDiffScaled below: the floor of element j is Σ_k |contribution k to element j|.
 *
 *  1. Chunking: a sequence run whole equals the same sequence cut in two chunks with the state
 *     (and, backwards, dInitialState → dFinalState) carried between them; dropout masks too.
 *  2. Tied vs untied depth weights of the grid: same numbers, tied gradient = Σ over layers.
 *  3. float32 and float64 agree on the loss to 1e-4.
 *  4. The loss of a freshly initialised char-rnn sized model is ≈ ln V.
 *  5. Hand-computed 1-layer, N = 1, V = 2 examples: lstm and grid_lstm (forward and gradients),
 *     gru and rnn (forward; their gradients: test/gradcheck.test.ts, test/reference.test.ts).
 *  6. Bad arguments throw errors that name the argument and say why.
 *  7. step() (sampling) agrees with forward().
 * And what the mutation run of model.ts (issue 18) found reached only by code left out of
 * mutation runs (threads, tracer) or by nothing: activations() against the cell relations and
 * the decoder written out; a batch in parts adding up to the whole; the first layer's tables
 * against E·Wᵀ + b; weightMatrices(); the constant-weight scopes given to the kernels; nested
 * inference(); the defaults of construction and of forward / forwardBackward.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Batch, type Float, Model, type ModelConfig, Rng, type State, TsKernels, createModel } from '../src/index.js';
import { arbConfig, arbShape, maxRelDiff, randomIds, randomModel, randomState, runs } from './helpers/arbitraries.js';

// ---------------------------------------------------------------------------------------------
// Small helpers

function copyState(s: State): State {
  return { h: s.h.map((a) => a.slice()), c: s.c.map((a) => a.slice()) };
}

/** Worst relative error over every layer's h and c of two states. */
function stateRelDiff(a: State, b: State, floor = 1e-300): number {
  let e = 0;
  expect(a.h.length).toBe(b.h.length);
  expect(a.c.length).toBe(b.c.length);
  for (let l = 0; l < a.h.length; l++) {
    e = Math.max(e, maxRelDiff(a.h[l], b.h[l], floor), maxRelDiff(a.c[l], b.c[l], floor));
  }
  return e;
}

/**
 * Relative error of a quantity that two computations sum from the same contributions c_k in a
 * different order (layers, chunks): max over j of |a − b| / max(|a| + |b|, scale_j, 1e-300),
 * with scale_j = Σ_k |c_k[j]|. It is the pure relative error whenever the contributions do not
 * cancel (then |a| + |b| = 2·|Σ c_k| ≥ scale_j); when they cancel, float64 summation is only
 * accurate to ~1e-16·Σ|c_k| (not 1e-16·|Σ c_k|), so that is the scale the two orders are
 * compared at. (Measured over 20 000 random cases: without it, pure relative errors reach
 * 3e-10 at elements where per-layer or per-chunk contributions of ~1e-4 cancel to ~1e-7.)
 */
function maxRelDiffScaled(a: ArrayLike<number>, b: ArrayLike<number>, scale: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  expect(scale.length).toBe(a.length);
  let e = 0;
  for (let j = 0; j < a.length; j++) {
    const d = Math.abs(a[j] - b[j]) / Math.max(Math.abs(a[j]) + Math.abs(b[j]), scale[j], 1e-300);
    if (d > e) e = d;
  }
  return e;
}

/** Σ_k |c_k[j]| for each j. */
function absSum(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts[0].length);
  for (const p of parts) for (let j = 0; j < out.length; j++) out[j] += Math.abs(p[j]);
  return out;
}

function relDiff(a: number, b: number, floor = 1e-300): number {
  return Math.abs(a - b) / Math.max(Math.abs(a) + Math.abs(b), floor);
}

/** Columns [from, from + len) of a [B, T] row-major id array, as a [B, len] row-major array. */
function sliceTime(ids: number[], B: number, T: number, from: number, len: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) for (let t = 0; t < len; t++) out.push(ids[b * T + from + t]);
  return out;
}

/** Throws with the failing values when err > tol (fast-check then shrinks and reports them). */
function within(what: string, err: number, tol: number, context: unknown): void {
  if (!(err <= tol)) throw new Error(`${what}: relative error ${err} > ${tol} for ${JSON.stringify(context)}`);
}

const arbSeed = fc.integer({ min: 1, max: 1e6 });

// ---------------------------------------------------------------------------------------------

describe('Model', () => {
  it('1. chunking: whole sequence = chunk 1 then chunk 2 with the state carried (forward 1e-12, gradients 1e-10)', () => {
    fc.assert(
      fc.property(
        arbConfig,
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        arbSeed,
        (config, B, T1, T2, seed) => {
          const ctx = { config, B, T1, T2, seed };
          const model = randomModel(config, seed, 0.5);
          const T = T1 + T2;
          const V = config.vocabSize;
          const rng = new Rng(seed + 17);
          const x = randomIds(rng, B * T, V);
          const y = randomIds(rng, B * T, V);
          const s0 = randomState(model, B, rng);
          const r = randomState(model, B, rng);
          const dropSeed = rng.nextU32();
          const whole: Batch = { x, y, batchSize: B, seqLength: T };
          const c1: Batch = { x: sliceTime(x, B, T, 0, T1), y: sliceTime(y, B, T, 0, T1), batchSize: B, seqLength: T1 };
          const c2: Batch = { x: sliceTime(x, B, T, T1, T2), y: sliceTime(y, B, T, T1, T2), batchSize: B, seqLength: T2 };

          // (a) forward, in evaluation and in training (dropout masks drawn step by step).
          for (const training of [false, true]) {
            const fw = model.forward(whole, s0, { training, rng: new Rng(dropSeed) });
            const chunkRng = new Rng(dropSeed);
            const f1 = model.forward(c1, s0, { training, rng: chunkRng });
            const f2 = model.forward(c2, f1.finalState, { training, rng: chunkRng });
            within(`loss (training ${training})`, relDiff(fw.loss * T, f1.loss * T1 + f2.loss * T2), 1e-12, ctx);
            within(`final state (training ${training})`, stateRelDiff(fw.finalState, f2.finalState), 1e-12, ctx);
          }

          // (b) gradients: the whole run with dFinalState r ...
          const fbw = model.forwardBackward(whole, s0, { dFinalState: r, rng: new Rng(dropSeed) });
          const gWhole = model.grads.slice();
          // ... vs chunk 2 (from chunk 1's final state, with the masks that follow chunk 1's),
          // then chunk 1 with dFinalState = chunk 2's dInitialState, accumulating.
          const chunkRng = new Rng(dropSeed);
          const f1 = model.forward(c1, s0, { training: true, rng: chunkRng });
          const fb2 = model.forwardBackward(c2, f1.finalState, { dFinalState: r, rng: chunkRng });
          const g2 = model.grads.slice();
          const fb1 = model.forwardBackward(c1, s0, {
            dFinalState: fb2.dInitialState,
            rng: new Rng(dropSeed),
            accumulate: true,
          });
          const gChunked = model.grads.slice();
          within('training loss', relDiff(fbw.loss * T, fb1.loss * T1 + fb2.loss * T2), 1e-12, ctx);
          within('objective', relDiff(fbw.objective, fb1.loss * T1 + fb2.objective), 1e-12, ctx);
          // forwardBackward tabulates the first layer when V ≤ B·T, and forward() never does, so
          // for the Grid LSTM the states below may add the same terms in different orders (the
          // depth LSTM's two maps in one product, or a table row plus a product): compared with
          // the floor of 1 of tests 8 and 9 (terms ~1). A state element of 9.5e-6 differed by
          // 5.6e-17 (2.9e-12 relative; grid_lstm 4×7, V 2, B 3, T1 1, seed 999985).
          within('final state', stateRelDiff(fbw.finalState, fb2.finalState, 1), 1e-12, ctx);
          within('chunk 1 final state', stateRelDiff(f1.finalState, fb1.finalState, 1), 1e-12, ctx);

          // The scale of the contributions that the two runs add in different orders: chunk 1's
          // own NLL (chunk 1 without dFinalState), chunk 2's direct gradient, and what reaches
          // chunk 1 from chunk 2 through the state (the rest).
          const own = model.forwardBackward(c1, s0, { rng: new Rng(dropSeed) });
          const g1own = model.grads.slice();
          const viaState = gChunked.map((v, j) => v - g2[j] - g1own[j]);
          const gScale = absSum([g1own, g2, viaState]);
          for (const spec of model.layout) {
            const part = (a: Float) => a.subarray(spec.offset, spec.offset + spec.size);
            within(`gradient of ${spec.name}`, maxRelDiffScaled(part(gWhole), part(gChunked), part(gScale)), 1e-10, ctx);
          }
          for (let l = 0; l < config.numLayers; l++) {
            for (const k of ['h', 'c'] as const) {
              const a = fbw.dInitialState[k][l];
              const b = fb1.dInitialState[k][l];
              const mine = own.dInitialState[k][l];
              const scale = absSum([mine, b.map((v, j) => v - mine[j])]);
              within(`dInitialState.${k}[${l}]`, maxRelDiffScaled(a, b, scale), 1e-10, ctx);
            }
          }
        },
      ),
      { numRuns: runs(100) },
    );
  });

  it('2. grid: tied depth weights = untied with the same weights in every layer (1e-12; tied grad = Σ_l untied)', () => {
    fc.assert(
      fc.property(
        arbConfig.map((c) => ({ ...c, model: 'grid_lstm' as const, tieWeights: true })),
        arbShape,
        arbSeed,
        (config, { batchSize: B, seqLength: T }, seed) => {
          const ctx = { config, B, T, seed };
          const L = config.numLayers;
          const tied = randomModel(config, seed, 0.5);
          const untied = new Model({ ...config, tieWeights: false }, { dtype: 'float64' });
          for (const name of tied.parameterNames()) {
            if (name.startsWith('depth.')) {
              for (let l = 0; l < L; l++) untied.setParam(`layers.${l}.${name}`, tied.param(name));
            } else untied.setParam(name, tied.param(name));
          }
          // Every parameter of the untied model was set.
          const untiedDepth = untied.parameterNames().filter((n) => /^layers\.\d+\.depth\./.test(n));
          expect(untiedDepth.length).toBe(4 * L);
          expect(untied.parameterNames().length).toBe(tied.parameterNames().length - 4 + 4 * L);

          const V = config.vocabSize;
          const rng = new Rng(seed + 29);
          const batch: Batch = { x: randomIds(rng, B * T, V), y: randomIds(rng, B * T, V), batchSize: B, seqLength: T };
          const s0 = randomState(tied, B, rng);
          const r = randomState(tied, B, rng);
          const dropSeed = rng.nextU32();
          const a = tied.forwardBackward(batch, s0, { dFinalState: r, rng: new Rng(dropSeed) });
          const b = untied.forwardBackward(batch, s0, { dFinalState: r, rng: new Rng(dropSeed) });
          within('loss', relDiff(a.loss, b.loss), 1e-12, ctx);
          within('objective', relDiff(a.objective, b.objective), 1e-12, ctx);
          within('final state', stateRelDiff(a.finalState, b.finalState), 1e-12, ctx);
          within('dInitialState', stateRelDiff(a.dInitialState, b.dInitialState), 1e-12, ctx);
          for (const name of tied.parameterNames()) {
            if (name.startsWith('depth.')) {
              // Summed in the order the backward pass visits the layers (top first).
              const sum = new Float64Array(tied.grad(name).length);
              for (let l = L - 1; l >= 0; l--) {
                const g = untied.grad(`layers.${l}.${name}`);
                for (let j = 0; j < sum.length; j++) sum[j] += g[j];
              }
              // The tied model sums the layers' contributions in one running sum, in another
              // order: compared at the scale Σ_l |untied layer l gradient| (see maxRelDiffScaled).
              const scale = absSum(Array.from({ length: L }, (_, l) => untied.grad(`layers.${l}.${name}`)));
              within(`gradient of ${name}`, maxRelDiffScaled(tied.grad(name), sum, scale), 1e-12, ctx);
            } else {
              within(`gradient of ${name}`, maxRelDiff(tied.grad(name), untied.grad(name)), 1e-12, ctx);
            }
          }
        },
      ),
      { numRuns: runs(60) },
    );
  });

  it('3. float32 and float64 models with the same weights give losses equal to 1e-4 relative', () => {
    fc.assert(
      fc.property(arbConfig, arbShape, arbSeed, (config, { batchSize: B, seqLength: T }, seed) => {
        const ctx = { config, B, T, seed };
        const m64 = randomModel(config, seed, 0.5, 'float64');
        const m32 = new Model(config, { dtype: 'float32' });
        expect(m32.params).toBeInstanceOf(Float32Array);
        expect(m64.params).toBeInstanceOf(Float64Array);
        // The same weights: rounded to float32 once, then given to both.
        for (let j = 0; j < m64.params.length; j++) m64.params[j] = Math.fround(m64.params[j]);
        m32.params.set(m64.params);
        expect(Array.from(m32.params)).toEqual(Array.from(m64.params));

        const V = config.vocabSize;
        const rng = new Rng(seed + 41);
        const batch: Batch = { x: randomIds(rng, B * T, V), y: randomIds(rng, B * T, V), batchSize: B, seqLength: T };
        const s64 = randomState(m64, B, rng);
        for (const a of [...s64.h, ...s64.c]) for (let j = 0; j < a.length; j++) a[j] = Math.fround(a[j]);
        const s32 = m32.zeroState(B);
        for (let l = 0; l < config.numLayers; l++) {
          s32.h[l].set(s64.h[l]);
          s32.c[l].set(s64.c[l]);
        }
        const dropSeed = rng.nextU32();
        for (const training of [false, true]) {
          const l64 = m64.forward(batch, s64, { training, rng: new Rng(dropSeed) }).loss;
          const l32 = m32.forward(batch, s32, { training, rng: new Rng(dropSeed) }).loss;
          within(`loss (training ${training})`, relDiff(l32, l64), 1e-4, ctx);
        }
      }),
      { numRuns: runs(100) },
    );
  });

  describe('4. loss at initialisation is within 5% of ln V (char-rnn sizes, default init, seed 123)', () => {
    for (const model of ['grid_lstm', 'lstm', 'gru', 'rnn'] as const) {
      for (const vocabSize of model === 'gru' || model === 'rnn' ? [97] : [65, 97]) {
        for (const numLayers of model === 'gru' || model === 'rnn' ? [2] : [2, 3]) {
          it(`${model} V=${vocabSize} N=128 L=${numLayers}`, () => {
            const m = new Model({ model, vocabSize, rnnSize: 128, numLayers }, { seed: 123 });
            const B = 10;
            const T = 20;
            const rng = new Rng(7 * vocabSize + numLayers);
            const batch: Batch = {
              x: randomIds(rng, B * T, vocabSize),
              y: randomIds(rng, B * T, vocabSize),
              batchSize: B,
              seqLength: T,
            };
            const { loss } = m.forward(batch, m.zeroState(B));
            expect(Math.abs(loss - Math.log(vocabSize)) / Math.log(vocabSize)).toBeLessThan(0.05);
          });
        }
      }
    }
  });

  // -------------------------------------------------------------------------------------------
  // 5. Hand-computed examples. Every number below is worked out with scalar arithmetic written
  // out here, independently of the library (own σ, tanh from Math, own log-softmax).

  describe('5. hand-computed 1-layer, N=1, V=2 examples (1e-12)', () => {
    const sig = (a: number) => 1 / (1 + Math.exp(-a));
    const close = (what: string, actual: number, expected: number) =>
      within(what, relDiff(actual, expected), 1e-12, { actual, expected });

    // Parameters shared by both examples' embedding and decoder.
    const E = [0.3, -0.7]; // embedding.weight [2,1]: row 0, row 1
    const Wdec = [1.3, -0.6]; // decoder.weight [2,1]
    const bdec = [0.2, -0.1]; // decoder.bias [2]
    const h0 = 0.4;
    const c0 = -0.5;

    function initState(m: Model): State {
      const s = m.zeroState(1);
      s.h[0][0] = h0;
      s.c[0][0] = c0;
      return s;
    }

    describe('stacked LSTM', () => {
      // a = Wi·x + bi + Wh·h + bh, gate rows i, f, o, g.
      const Wi = [0.5, -0.4, 0.9, -1.2];
      const bi = [0.1, 0.6, -0.2, 0.05];
      const Wh = [-0.3, 0.8, 0.25, 0.7];
      const bh = [0.02, -0.1, 0.15, -0.05];
      const make = () => {
        const m = new Model({ model: 'lstm', vocabSize: 2, rnnSize: 1, numLayers: 1 }, { dtype: 'float64' });
        m.setParam('embedding.weight', E);
        m.setParam('layers.0.i2h.weight', Wi);
        m.setParam('layers.0.i2h.bias', bi);
        m.setParam('layers.0.h2h.weight', Wh);
        m.setParam('layers.0.h2h.bias', bh);
        m.setParam('decoder.weight', Wdec);
        m.setParam('decoder.bias', bdec);
        return m;
      };

      it('forward over T=2: loss and final h, c', () => {
        // x = [1, 0], y = [0, 1].
        // step 1: input e = E[1] = −0.7, from (h0, c0) = (0.4, −0.5)
        const e1 = E[1];
        const ai1 = Wi[0] * e1 + bi[0] + Wh[0] * h0 + bh[0];
        const af1 = Wi[1] * e1 + bi[1] + Wh[1] * h0 + bh[1];
        const ao1 = Wi[2] * e1 + bi[2] + Wh[2] * h0 + bh[2];
        const ag1 = Wi[3] * e1 + bi[3] + Wh[3] * h0 + bh[3];
        const i1 = sig(ai1);
        const f1 = sig(af1);
        const o1 = sig(ao1);
        const g1 = Math.tanh(ag1);
        const c1 = f1 * c0 + i1 * g1;
        const h1 = o1 * Math.tanh(c1);
        const z10 = Wdec[0] * h1 + bdec[0];
        const z11 = Wdec[1] * h1 + bdec[1];
        const nll1 = Math.log(Math.exp(z10) + Math.exp(z11)) - z10; // target 0
        // step 2: input e = E[0] = 0.3, from (h1, c1)
        const e2 = E[0];
        const ai2 = Wi[0] * e2 + bi[0] + Wh[0] * h1 + bh[0];
        const af2 = Wi[1] * e2 + bi[1] + Wh[1] * h1 + bh[1];
        const ao2 = Wi[2] * e2 + bi[2] + Wh[2] * h1 + bh[2];
        const ag2 = Wi[3] * e2 + bi[3] + Wh[3] * h1 + bh[3];
        const i2 = sig(ai2);
        const f2 = sig(af2);
        const o2 = sig(ao2);
        const g2 = Math.tanh(ag2);
        const c2 = f2 * c1 + i2 * g2;
        const h2 = o2 * Math.tanh(c2);
        const z20 = Wdec[0] * h2 + bdec[0];
        const z21 = Wdec[1] * h2 + bdec[1];
        const nll2 = Math.log(Math.exp(z20) + Math.exp(z21)) - z21; // target 1
        const loss = (nll1 + nll2) / 2;

        const m = make();
        const res = m.forward({ x: [1, 0], y: [0, 1], batchSize: 1, seqLength: 2 }, initState(m));
        close('loss', res.loss, loss);
        close('final h', res.finalState.h[0][0], h2);
        close('final c', res.finalState.c[0][0], c2);
        // Sanity of the example itself: the numbers are not degenerate.
        expect(Math.abs(h2)).toBeGreaterThan(0.01);
        expect(Math.abs(c2 - c1)).toBeGreaterThan(0.01);
      });

      it('gradients of the T=1 objective NLL + rh·h1 + rc·c1', () => {
        // x = [1], y = [0], dFinalState (rh, rc).
        const rh = 0.35;
        const rc = -0.45;
        const x = 1;
        const e = E[x];
        const ai = Wi[0] * e + bi[0] + Wh[0] * h0 + bh[0];
        const af = Wi[1] * e + bi[1] + Wh[1] * h0 + bh[1];
        const ao = Wi[2] * e + bi[2] + Wh[2] * h0 + bh[2];
        const ag = Wi[3] * e + bi[3] + Wh[3] * h0 + bh[3];
        const i = sig(ai);
        const f = sig(af);
        const o = sig(ao);
        const g = Math.tanh(ag);
        const c = f * c0 + i * g;
        const tc = Math.tanh(c);
        const h = o * tc;
        const z0 = Wdec[0] * h + bdec[0];
        const z1 = Wdec[1] * h + bdec[1];
        const lse = Math.log(Math.exp(z0) + Math.exp(z1));
        const objective = lse - z0 + rh * h + rc * c;
        // ∂/∂z_k = softmax_k − [k = y]
        const dz0 = Math.exp(z0 - lse) - 1;
        const dz1 = Math.exp(z1 - lse);
        // decoder: z_k = Wdec_k·h + bdec_k
        const dbdec = [dz0, dz1];
        const dWdec = [dz0 * h, dz1 * h];
        // ∂/∂h = Σ_k dz_k·Wdec_k + rh;  ∂/∂c = dh·o·(1 − tanh²c) + rc
        const dh = dz0 * Wdec[0] + dz1 * Wdec[1] + rh;
        const dc = dh * o * (1 - tc * tc) + rc;
        // pre-activations: i, f, o = σ(a) → σ' = s(1 − s); g = tanh(a) → 1 − g²
        const dai = dc * g * i * (1 - i);
        const daf = dc * c0 * f * (1 - f);
        const dao = dh * tc * o * (1 - o);
        const dag = dc * i * (1 - g * g);
        const da = [dai, daf, dao, dag];
        // a = Wi·e + bi + Wh·h0 + bh
        const dWh = da.map((d) => d * h0);
        const dbh = da;
        const dWi = da.map((d) => d * e);
        const dbi = da;
        const dE = [0, da[0] * Wi[0] + da[1] * Wi[1] + da[2] * Wi[2] + da[3] * Wi[3]]; // only row x = 1
        const dh0 = da[0] * Wh[0] + da[1] * Wh[1] + da[2] * Wh[2] + da[3] * Wh[3];
        const dc0 = dc * f;

        const m = make();
        const res = m.forwardBackward({ x: [x], y: [0], batchSize: 1, seqLength: 1 }, initState(m), {
          dFinalState: { h: [Float64Array.of(rh)], c: [Float64Array.of(rc)] },
        });
        close('objective', res.objective, objective);
        close('loss', res.loss, lse - z0);
        const expectAll = (name: string, expected: number[]) => {
          const got = m.grad(name);
          expect(got.length).toBe(expected.length);
          for (let j = 0; j < expected.length; j++) close(`${name}[${j}]`, got[j], expected[j]);
        };
        expectAll('decoder.bias', dbdec);
        expectAll('decoder.weight', dWdec);
        expectAll('layers.0.h2h.weight', dWh);
        expectAll('layers.0.h2h.bias', dbh);
        expectAll('layers.0.i2h.weight', dWi);
        expectAll('layers.0.i2h.bias', dbi);
        expectAll('embedding.weight', dE);
        close('dInitialState.h', res.dInitialState.h[0][0], dh0);
        close('dInitialState.c', res.dInitialState.c[0][0], dc0);
      });
    });

    describe('2D Grid LSTM', () => {
      // time LSTM:  a = Tt·h + bTt + Td·hd + bTd;  depth LSTM: a' = Dt·h_new + bDt + Dd·hd + bDd
      const Tt = [-0.3, 0.8, 0.25, 0.7];
      const bTt = [0.02, 0.9, 0.15, -0.05];
      const Td = [0.5, -0.4, 0.9, -1.2];
      const bTd = [0.1, -0.2, -0.2, 0.05];
      const Dt = [0.6, -0.5, -0.8, 1.1];
      const bDt = [-0.15, 1.0, 0.3, 0.12];
      const Dd = [-0.9, 0.45, 0.35, -0.65];
      const bDd = [0.07, -0.3, -0.11, 0.2];
      const make = () => {
        const m = new Model({ model: 'grid_lstm', vocabSize: 2, rnnSize: 1, numLayers: 1 }, { dtype: 'float64' });
        m.setParam('embedding.weight', E);
        m.setParam('layers.0.time.t2h.weight', Tt);
        m.setParam('layers.0.time.t2h.bias', bTt);
        m.setParam('layers.0.time.d2h.weight', Td);
        m.setParam('layers.0.time.d2h.bias', bTd);
        m.setParam('depth.t2h.weight', Dt);
        m.setParam('depth.t2h.bias', bDt);
        m.setParam('depth.d2h.weight', Dd);
        m.setParam('depth.d2h.bias', bDd);
        m.setParam('decoder.weight', Wdec);
        m.setParam('decoder.bias', bdec);
        return m;
      };

      it('forward over T=2: loss and final h, c', () => {
        // x = [1, 0], y = [0, 1].
        // step 1: hd = E[1] = −0.7 (cd = 0), time state (h0, c0) = (0.4, −0.5)
        const hd1 = E[1];
        const ai1 = Tt[0] * h0 + bTt[0] + Td[0] * hd1 + bTd[0];
        const af1 = Tt[1] * h0 + bTt[1] + Td[1] * hd1 + bTd[1];
        const ao1 = Tt[2] * h0 + bTt[2] + Td[2] * hd1 + bTd[2];
        const ag1 = Tt[3] * h0 + bTt[3] + Td[3] * hd1 + bTd[3];
        const c1 = sig(af1) * c0 + sig(ai1) * Math.tanh(ag1);
        const h1 = sig(ao1) * Math.tanh(c1);
        const di1 = Dt[0] * h1 + bDt[0] + Dd[0] * hd1 + bDd[0];
        const df1 = Dt[1] * h1 + bDt[1] + Dd[1] * hd1 + bDd[1];
        const do1 = Dt[2] * h1 + bDt[2] + Dd[2] * hd1 + bDd[2];
        const dg1 = Dt[3] * h1 + bDt[3] + Dd[3] * hd1 + bDd[3];
        const cd1 = sig(df1) * 0 + sig(di1) * Math.tanh(dg1);
        const hdOut1 = sig(do1) * Math.tanh(cd1);
        const z10 = Wdec[0] * hdOut1 + bdec[0];
        const z11 = Wdec[1] * hdOut1 + bdec[1];
        const nll1 = Math.log(Math.exp(z10) + Math.exp(z11)) - z10; // target 0
        // step 2: hd = E[0] = 0.3, time state (h1, c1)
        const hd2 = E[0];
        const ai2 = Tt[0] * h1 + bTt[0] + Td[0] * hd2 + bTd[0];
        const af2 = Tt[1] * h1 + bTt[1] + Td[1] * hd2 + bTd[1];
        const ao2 = Tt[2] * h1 + bTt[2] + Td[2] * hd2 + bTd[2];
        const ag2 = Tt[3] * h1 + bTt[3] + Td[3] * hd2 + bTd[3];
        const c2 = sig(af2) * c1 + sig(ai2) * Math.tanh(ag2);
        const h2 = sig(ao2) * Math.tanh(c2);
        const di2 = Dt[0] * h2 + bDt[0] + Dd[0] * hd2 + bDd[0];
        const df2 = Dt[1] * h2 + bDt[1] + Dd[1] * hd2 + bDd[1];
        const do2 = Dt[2] * h2 + bDt[2] + Dd[2] * hd2 + bDd[2];
        const dg2 = Dt[3] * h2 + bDt[3] + Dd[3] * hd2 + bDd[3];
        const cd2 = sig(df2) * 0 + sig(di2) * Math.tanh(dg2);
        const hdOut2 = sig(do2) * Math.tanh(cd2);
        const z20 = Wdec[0] * hdOut2 + bdec[0];
        const z21 = Wdec[1] * hdOut2 + bdec[1];
        const nll2 = Math.log(Math.exp(z20) + Math.exp(z21)) - z21; // target 1
        const loss = (nll1 + nll2) / 2;

        const m = make();
        const res = m.forward({ x: [1, 0], y: [0, 1], batchSize: 1, seqLength: 2 }, initState(m));
        close('loss', res.loss, loss);
        // The state carried in time is the time LSTM's.
        close('final h', res.finalState.h[0][0], h2);
        close('final c', res.finalState.c[0][0], c2);
        expect(Math.abs(h2)).toBeGreaterThan(0.01);
        expect(Math.abs(hdOut2 - h2)).toBeGreaterThan(0.01);
      });

      it('gradients of the T=1 objective NLL + rh·h1 + rc·c1', () => {
        // x = [1], y = [0], dFinalState (rh, rc) on the time state.
        const rh = 0.35;
        const rc = -0.45;
        const x = 1;
        const hd = E[x];
        // time LSTM
        const ai = Tt[0] * h0 + bTt[0] + Td[0] * hd + bTd[0];
        const af = Tt[1] * h0 + bTt[1] + Td[1] * hd + bTd[1];
        const ao = Tt[2] * h0 + bTt[2] + Td[2] * hd + bTd[2];
        const ag = Tt[3] * h0 + bTt[3] + Td[3] * hd + bTd[3];
        const i = sig(ai);
        const f = sig(af);
        const o = sig(ao);
        const g = Math.tanh(ag);
        const c = f * c0 + i * g;
        const tc = Math.tanh(c);
        const h = o * tc;
        // depth LSTM (reads the new h), depth cell enters as 0
        const bi_ = Dt[0] * h + bDt[0] + Dd[0] * hd + bDd[0];
        const bf_ = Dt[1] * h + bDt[1] + Dd[1] * hd + bDd[1];
        const bo_ = Dt[2] * h + bDt[2] + Dd[2] * hd + bDd[2];
        const bg_ = Dt[3] * h + bDt[3] + Dd[3] * hd + bDd[3];
        const i2 = sig(bi_);
        const f2 = sig(bf_);
        const o2 = sig(bo_);
        const g2 = Math.tanh(bg_);
        const cd = f2 * 0 + i2 * g2;
        const tcd = Math.tanh(cd);
        const hdOut = o2 * tcd;
        const z0 = Wdec[0] * hdOut + bdec[0];
        const z1 = Wdec[1] * hdOut + bdec[1];
        const lse = Math.log(Math.exp(z0) + Math.exp(z1));
        const objective = lse - z0 + rh * h + rc * c;
        // decoder
        const dz0 = Math.exp(z0 - lse) - 1;
        const dz1 = Math.exp(z1 - lse);
        const dbdec = [dz0, dz1];
        const dWdec = [dz0 * hdOut, dz1 * hdOut];
        // depth LSTM: ∂/∂hdOut, then its cell (nothing else uses cd)
        const dhd = dz0 * Wdec[0] + dz1 * Wdec[1];
        const dcd = dhd * o2 * (1 - tcd * tcd);
        const dDa = [
          dcd * g2 * i2 * (1 - i2), // i
          dcd * 0 * f2 * (1 - f2), // f: c_d entering is 0
          dhd * tcd * o2 * (1 - o2), // o
          dcd * i2 * (1 - g2 * g2), // g
        ];
        const dDt = dDa.map((d) => d * h);
        const dbDt = dDa;
        const dDd = dDa.map((d) => d * hd);
        const dbDd = dDa;
        // time LSTM: ∂/∂h = through the depth LSTM + rh; ∂/∂c = dh·o·(1 − tanh²c) + rc
        const dh = dDa[0] * Dt[0] + dDa[1] * Dt[1] + dDa[2] * Dt[2] + dDa[3] * Dt[3] + rh;
        const dc = dh * o * (1 - tc * tc) + rc;
        const dTa = [dc * g * i * (1 - i), dc * c0 * f * (1 - f), dh * tc * o * (1 - o), dc * i * (1 - g * g)];
        const dTt = dTa.map((d) => d * h0);
        const dbTt = dTa;
        const dTd = dTa.map((d) => d * hd);
        const dbTd = dTa;
        // the embedding row feeds both time.d2h and depth.d2h
        const dEx =
          dTa[0] * Td[0] + dTa[1] * Td[1] + dTa[2] * Td[2] + dTa[3] * Td[3] +
          (dDa[0] * Dd[0] + dDa[1] * Dd[1] + dDa[2] * Dd[2] + dDa[3] * Dd[3]);
        const dE = [0, dEx];
        const dh0 = dTa[0] * Tt[0] + dTa[1] * Tt[1] + dTa[2] * Tt[2] + dTa[3] * Tt[3];
        const dc0 = dc * f;

        const m = make();
        const res = m.forwardBackward({ x: [x], y: [0], batchSize: 1, seqLength: 1 }, initState(m), {
          dFinalState: { h: [Float64Array.of(rh)], c: [Float64Array.of(rc)] },
        });
        close('objective', res.objective, objective);
        close('loss', res.loss, lse - z0);
        const expectAll = (name: string, expected: number[]) => {
          const got = m.grad(name);
          expect(got.length).toBe(expected.length);
          for (let j = 0; j < expected.length; j++) close(`${name}[${j}]`, got[j], expected[j]);
        };
        expectAll('decoder.bias', dbdec);
        expectAll('decoder.weight', dWdec);
        expectAll('depth.t2h.weight', dDt);
        expectAll('depth.t2h.bias', dbDt);
        expectAll('depth.d2h.weight', dDd);
        expectAll('depth.d2h.bias', dbDd);
        expectAll('layers.0.time.t2h.weight', dTt);
        expectAll('layers.0.time.t2h.bias', dbTt);
        expectAll('layers.0.time.d2h.weight', dTd);
        expectAll('layers.0.time.d2h.bias', dbTd);
        expectAll('embedding.weight', dE);
        close('dInitialState.h', res.dInitialState.h[0][0], dh0);
        close('dInitialState.c', res.dInitialState.c[0][0], dc0);
      });
    });

    describe('stacked GRU and RNN (h only)', () => {
      // i2h and h2h rows: z, r, n for the GRU (the RNN uses the first row of each).
      const W = [0.5, -0.4, 0.9];
      const b = [0.1, 0.6, -0.2];
      const U = [-0.3, 0.8, 0.7];
      const c = [0.02, -0.1, 0.15];
      const make = (model: 'gru' | 'rnn') => {
        const G = model === 'gru' ? 3 : 1;
        const m = new Model({ model, vocabSize: 2, rnnSize: 1, numLayers: 1 }, { dtype: 'float64' });
        m.setParam('embedding.weight', E);
        m.setParam('layers.0.i2h.weight', W.slice(0, G));
        m.setParam('layers.0.i2h.bias', b.slice(0, G));
        m.setParam('layers.0.h2h.weight', U.slice(0, G));
        m.setParam('layers.0.h2h.bias', c.slice(0, G));
        m.setParam('decoder.weight', Wdec);
        m.setParam('decoder.bias', bdec);
        return m;
      };
      // NLL of target y from h through the decoder.
      const nll = (h: number, y: number) => {
        const z = [Wdec[0] * h + bdec[0], Wdec[1] * h + bdec[1]];
        return Math.log(Math.exp(z[0]) + Math.exp(z[1])) - z[y];
      };
      const run = (m: Model) => {
        const s = m.zeroState(1);
        expect(s.c[0]).toHaveLength(0);
        s.h[0][0] = h0;
        return m.forward({ x: [1, 0], y: [0, 1], batchSize: 1, seqLength: 2 }, s);
      };

      it("GRU forward over T=2 (char-rnn's GRU.lua: r multiplies h before Un; z weighs the candidate)", () => {
        const step = (e: number, h: number) => {
          const z = sig(W[0] * e + b[0] + U[0] * h + c[0]);
          const r = sig(W[1] * e + b[1] + U[1] * h + c[1]);
          const n = Math.tanh(W[2] * e + b[2] + U[2] * (r * h) + c[2]);
          return z * n + (1 - z) * h;
        };
        // PyTorch's nn.GRU, for contrast: n = tanh(W e + b + r·(U h + c)), h' = (1 − z)·n + z·h.
        const torchStep = (e: number, h: number) => {
          const z = sig(W[0] * e + b[0] + U[0] * h + c[0]);
          const r = sig(W[1] * e + b[1] + U[1] * h + c[1]);
          const n = Math.tanh(W[2] * e + b[2] + r * (U[2] * h + c[2]));
          return (1 - z) * n + z * h;
        };
        const h1 = step(E[1], h0);
        const h2 = step(E[0], h1);
        const res = run(make('gru'));
        close('loss', res.loss, (nll(h1, 0) + nll(h2, 1)) / 2);
        close('final h', res.finalState.h[0][0], h2);
        expect(res.finalState.c[0]).toHaveLength(0);
        // The example tells the two formulations apart.
        expect(Math.abs(h2 - torchStep(E[0], torchStep(E[1], h0)))).toBeGreaterThan(0.01);
      });

      it('RNN forward over T=2: h = tanh(i2h(x) + h2h(h))', () => {
        const h1 = Math.tanh(W[0] * E[1] + b[0] + U[0] * h0 + c[0]);
        const h2 = Math.tanh(W[0] * E[0] + b[0] + U[0] * h1 + c[0]);
        const res = run(make('rnn'));
        close('loss', res.loss, (nll(h1, 0) + nll(h2, 1)) / 2);
        close('final h', res.finalState.h[0][0], h2);
        expect(res.finalState.c[0]).toHaveLength(0);
      });
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('6. bad arguments throw errors naming the argument and the reason', () => {
    const config: ModelConfig = { model: 'lstm', vocabSize: 5, rnnSize: 3, numLayers: 2 };
    const m = new Model(config, { dtype: 'float64' });
    const B = 2;
    const T = 3;
    const ok = [0, 1, 2, 3, 4, 0];
    const batch = (x: ArrayLike<number>, y: ArrayLike<number> = ok): Batch => ({ x, y, batchSize: B, seqLength: T });

    it('token ids in x and y: out of range, non-integer, NaN', () => {
      const s = m.zeroState(B);
      expect(() => m.forward(batch([0, 1, 5, 0, 0, 0]), s)).toThrow(/token id x\[2\] = 5 is out of range: ids must be integers in \[0, 5\)/);
      expect(() => m.forward(batch([0, 1, 2, -1, 0, 0]), s)).toThrow(/token id x\[3\] = -1 is out of range.*\[0, 5\)/);
      expect(() => m.forward(batch([0, 1.5, 2, 0, 0, 0]), s)).toThrow(/token id x\[1\] = 1\.5 .*integers/);
      expect(() => m.forward(batch([0, 1, 2, 0, 0, NaN]), s)).toThrow(/token id x\[5\] = NaN .*integers/);
      expect(() => m.forward(batch(ok, [0, 0, 0, 0, 7, 0]), s)).toThrow(/target id y\[4\] = 7 is out of range: ids must be integers in \[0, 5\)/);
      expect(() => m.forward(batch(ok, [0.25, 0, 0, 0, 0, 0]), s)).toThrow(/target id y\[0\] = 0\.25 .*integers/);
      expect(() => m.forwardBackward(batch(ok, [0, 0, 0, 0, 0, -2]), s)).toThrow(/target id y\[5\] = -2 is out of range/);
      expect(() => m.step([0, 9], s)).toThrow(/token id x\[1\] = 9 is out of range/);
    });

    it('x and y of the wrong length', () => {
      const s = m.zeroState(B);
      expect(() => m.forward(batch([0, 1, 2, 3, 4]), s)).toThrow(/x must hold B·T = 2·3 = 6 token ids, got 5/);
      expect(() => m.forward(batch([0, 1, 2, 3, 4, 0, 1]), s)).toThrow(/x must hold .* got 7/);
      expect(() => m.forward(batch(ok, [0, 1]), s)).toThrow(/y must hold B·T = 2·3 = 6 token ids, got 2/);
      expect(() => m.forward({ x: ok, y: ok, batchSize: 0, seqLength: 3 }, s)).toThrow(/batchSize must be a positive integer, got 0/);
      expect(() => m.forward({ x: ok, y: ok, batchSize: 2, seqLength: 1.5 }, s)).toThrow(/seqLength must be a positive integer, got 1\.5/);
    });

    it('state of the wrong shape', () => {
      expect(() => m.forward(batch(ok), m.zeroState(3))).toThrow(/state layer 0 must have h and c of length B·N = 2·3 = 6, got 9 and 9/);
      const oneLayer = { h: [new Float64Array(6)], c: [new Float64Array(6)] };
      expect(() => m.forward(batch(ok), oneLayer)).toThrow(/state must have h and c arrays of 2 layers/);
      const s = m.zeroState(B);
      s.c[1] = new Float64Array(5);
      expect(() => m.forward(batch(ok), s)).toThrow(/state layer 1 must have h and c of length .* got 6 and 5/);
      expect(() => m.forward(batch(ok), undefined as unknown as State)).toThrow(/state must have h and c arrays/);
      expect(() => m.forwardBackward(batch(ok), m.zeroState(B), { dFinalState: m.zeroState(1) })).toThrow(
        /dFinalState layer 0 must have h and c of length/,
      );
      expect(() => m.step([0], m.zeroState(B))).toThrow(/state layer 0 must have h and c of length B·N = 1·3 = 3, got 6/);
    });

    it('rnnSize, numLayers, vocabSize: non-positive or non-integer', () => {
      for (const field of ['rnnSize', 'numLayers', 'vocabSize'] as const) {
        for (const bad of [0, -2, 2.5, NaN]) {
          const re = new RegExp(`${field} must be a positive integer, got ${bad === bad ? String(bad).replace('.', '\\.') : 'null'}`);
          expect(() => new Model({ ...config, [field]: bad })).toThrow(re);
        }
        expect(() => new Model({ ...config, [field]: '3' as unknown as number })).toThrow(
          new RegExp(`${field} must be a positive integer, got "3"`),
        );
      }
    });

    it('dropout outside [0, 1)', () => {
      for (const bad of [-0.1, 1, 1.5, NaN]) {
        expect(() => new Model({ ...config, dropout: bad })).toThrow(/dropout must be a number in \[0, 1\)/);
      }
      expect(() => new Model({ ...config, dropout: 0 })).not.toThrow();
      expect(() => new Model({ ...config, dropout: 0.999 })).not.toThrow();
    });

    it('unknown model kind', () => {
      expect(() => new Model({ ...config, model: 'lstn' as 'lstm' })).toThrow(/^model must be one of 'grid_lstm', 'lstm', 'gru', 'rnn', got "lstn"$/);
      expect(() => new Model({ ...config, model: undefined as unknown as 'lstm' })).toThrow(/model must be one of 'grid_lstm', 'lstm', 'gru', 'rnn'/);
    });

    it('unknown parameter names, and setParam with the wrong number of values', () => {
      expect(() => m.param('layers.2.i2h.weight')).toThrow(/no parameter named "layers\.2\.i2h\.weight"; this model has: embedding\.weight, /);
      expect(() => m.grad('depth.t2h.weight')).toThrow(/no parameter named "depth\.t2h\.weight"/);
      expect(() => m.shape('nope')).toThrow(/no parameter named "nope"/);
      expect(() => m.setParam('decoder.bais', [0, 0, 0, 0, 0])).toThrow(/no parameter named "decoder\.bais"/);
      expect(() => m.setParam('decoder.bias', [0, 0, 0])).toThrow(/parameter decoder\.bias has 5 elements \(shape \[5\]\), got 3 values/);
      expect(() => m.setParam('layers.0.h2h.weight', new Float64Array(37))).toThrow(
        /parameter layers\.0\.h2h\.weight has 36 elements \(shape \[12,3\]\), got 37 values/,
      );
    });
  });

  // -------------------------------------------------------------------------------------------

  it('7. step() token by token gives the same NLL and final state as forward() (1e-12) (B=2, T=5)', () => {
    fc.assert(
      fc.property(arbConfig, arbSeed, (config, seed) => {
        const ctx = { config, seed };
        const B = 2;
        const T = 5;
        const V = config.vocabSize;
        const model = randomModel(config, seed, 0.5);
        const rng = new Rng(seed + 53);
        // A text per sequence: x = text[0..T), y = text[1..T].
        const text = [randomIds(rng, T + 1, V), randomIds(rng, T + 1, V)];
        const x = text.flatMap((s) => s.slice(0, T));
        const y = text.flatMap((s) => s.slice(1, T + 1));
        const s0 = randomState(model, B, rng);
        const s0Copy = copyState(s0);
        const fw = model.forward({ x, y, batchSize: B, seqLength: T }, s0);

        const state = copyState(s0);
        let nll = 0;
        for (let t = 0; t < T; t++) {
          const logp: Float = model.step([text[0][t], text[1][t]], state);
          expect(logp.length).toBe(B * V);
          for (let b = 0; b < B; b++) {
            // log-probabilities: each row's probabilities sum to 1
            let p = 0;
            for (let v = 0; v < V; v++) p += Math.exp(logp[b * V + v]);
            within('Σ p', relDiff(p, 1), 1e-12, ctx);
            nll -= logp[b * V + text[b][t + 1]];
          }
        }
        within('NLL', relDiff(nll / (B * T), fw.loss), 1e-12, ctx);
        within('final state', stateRelDiff(state, fw.finalState), 1e-12, ctx);
        // forward() did not modify the state it was given (step() worked on a copy).
        within('initial state untouched', stateRelDiff(s0, s0Copy), 0, ctx);
      }),
      { numRuns: runs(100) },
    );
  });

  it('9. forwardBackward() with the first layer tabulated (V ≤ B·T) gives forward()\'s loss and final state (1e-12)', () => {
    fc.assert(
      fc.property(arbConfig, arbSeed, (config, seed) => {
        const ctx = { config, seed };
        const V = config.vocabSize;
        const B = 2;
        const T = Math.ceil(V / B) + (seed % 3); // B·T ≥ V: forwardBackward tabulates
        const model = randomModel({ ...config, dropout: 0 }, seed, 0.5);
        const rng = new Rng(seed + 11);
        const batch = { x: randomIds(rng, B * T, V), y: randomIds(rng, B * T, V), batchSize: B, seqLength: T };
        const s0 = randomState(model, B, rng);
        const fw = model.forward(batch, s0);
        const fb = model.forwardBackward(batch, s0);
        // (The two add the same terms in different orders: see test 8 for the floor.)
        within('loss', relDiff(fb.loss, fw.loss), 1e-12, ctx);
        within('final state', stateRelDiff(fb.finalState, fw.finalState, 1), 1e-12, ctx);
      }),
      { numRuns: runs(40) },
    );
  });

  it('8. inference(): forward() and step() inside give what they give outside (lstm steps bit-identical, else 1e-12)', () => {
    fc.assert(
      fc.property(arbConfig, arbShape, arbSeed, (config, { batchSize: B, seqLength: T }, seed) => {
        const ctx = { config, B, T, seed };
        const V = config.vocabSize;
        const model = randomModel(config, seed, 0.5);
        const rng = new Rng(seed + 7);
        const x = randomIds(rng, B * T, V);
        const y = randomIds(rng, B * T, V);
        const s0 = randomState(model, B, rng);
        const tokens = Array.from({ length: T }, () => randomIds(rng, B, V));
        const stepAll = () => {
          const state = copyState(s0);
          const logps = tokens.map((tok) => model.step(tok, state).slice());
          return { logps, state };
        };
        const run = () => ({ fw: model.forward({ x, y, batchSize: B, seqLength: T }, s0), steps: stepAll() });
        // Inside and outside add the same terms in different orders, so they differ by float64
        // rounding relative to the size of the terms (about 1 here), not of the result: an
        // element near 0 after cancellation is compared absolutely (floor 1 in the denominator).
        const compare = (inside: ReturnType<typeof run>, outside: ReturnType<typeof run>, what: string) => {
          within(`${what}: forward loss`, relDiff(inside.fw.loss, outside.fw.loss), 1e-12, ctx);
          within(`${what}: forward final state`, stateRelDiff(inside.fw.finalState, outside.fw.finalState, 1), 1e-12, ctx);
          const tol = config.model === 'lstm' ? 0 : 1e-12;
          inside.steps.logps.forEach((lp, t) => within(`${what}: step ${t} log-probabilities`, maxRelDiff(lp, outside.steps.logps[t], 1), tol, ctx));
          within(`${what}: state after the steps`, stateRelDiff(inside.steps.state, outside.steps.state, 1), tol, ctx);
        };
        compare(model.inference(run), run(), 'inside vs outside');
        // Nested calls run fn; training inside is refused.
        expect(model.inference(() => model.inference(() => 42))).toBe(42);
        expect(() => model.inference(() => model.forwardBackward({ x, y, batchSize: B, seqLength: T }, s0))).toThrow(
          /forwardBackward cannot run inside model\.inference\(\)/,
        );
        // The weights are read afresh at every inference(): change them all, and inside follows.
        for (let j = 0; j < model.params.length; j++) model.params[j] = -model.params[j] * 0.9;
        compare(model.inference(run), run(), 'after a parameter change');
      }),
      { numRuns: runs(60) },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// What the tests above reach only through code that is left out of mutation runs (the threads,
// the tracer) or not at all: found by Stryker (issue 18). Small fixed cases, checked against
// formulas written out here.

/** log-softmax(W·x + b) of each row of x [M, N], W [V, N]: the decoder, written out. */
function decodeRows(W: ArrayLike<number>, b: ArrayLike<number>, x: ArrayLike<number>, M: number, N: number, V: number): number[] {
  const out: number[] = [];
  for (let m = 0; m < M; m++) {
    const z = Array.from({ length: V }, (_, v) => {
      let s = b[v];
      for (let n = 0; n < N; n++) s += W[v * N + n] * x[m * N + n];
      return s;
    });
    const max = Math.max(...z);
    const logSum = max + Math.log(z.reduce((s, zv) => s + Math.exp(zv - max), 0));
    out.push(...z.map((zv) => zv - logSum));
  }
  return out;
}

/** The LSTM cell's relations between its activated gates [M, 4N] (i f o g), c_{t−1}, c, tanh(c), h. */
function expectLstmRelations(g: Float, cPrev: ArrayLike<number>, c: ArrayLike<number>, tc: ArrayLike<number>, h: ArrayLike<number>, M: number, N: number): void {
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const [i, f, o, gg] = [0, 1, 2, 3].map((blk) => g[m * 4 * N + blk * N + n]);
      const j = m * N + n;
      expect(c[j]).toBeCloseTo(f * cPrev[j] + i * gg, 12);
      expect(tc[j]).toBeCloseTo(Math.tanh(c[j]), 12);
      expect(h[j]).toBeCloseTo(o * tc[j], 12);
    }
  }
}

describe('Model: activations, parts of a batch, the first layer\'s tables, construction', () => {
  const B = 2;
  const T = 3;
  const batchOf = (V: number, seed: number, Bn = B, Tn = T): Batch => {
    const rng = new Rng(seed);
    return { x: randomIds(rng, Bn * Tn, V), y: randomIds(rng, Bn * Tn, V), batchSize: Bn, seqLength: Tn };
  };

  it('activations(): null before a pass; after one, the histories from the given state to the final one, cells and decoder consistent', () => {
    for (const model of ['lstm', 'grid_lstm'] as const) {
      const config: ModelConfig = { model, vocabSize: 5, rnnSize: 3, numLayers: 2 };
      const { vocabSize: V, rnnSize: N, numLayers: L } = config;
      const m = randomModel(config, 17, 0.6);
      expect(m.activations()).toBeNull();
      const s0 = randomState(m, B, new Rng(4));
      const fw = m.forward(batchOf(V, 5), s0);
      const a = m.activations()!;
      expect([a.B, a.T]).toEqual([B, T]);
      const bn = B * N;
      const M = T * B;
      for (let l = 0; l < L; l++) {
        expect([...a.h[l].subarray(0, bn)], `${model} h[${l}] starts at the state given`).toEqual([...s0.h[l]]);
        expect([...a.c[l].subarray(0, bn)]).toEqual([...s0.c[l]]);
        expect([...a.h[l].subarray(T * bn)], `${model} h[${l}] ends at the final state`).toEqual([...fw.finalState.h[l]]);
        expect([...a.c[l].subarray(T * bn)]).toEqual([...fw.finalState.c[l]]);
        expectLstmRelations(a.gates[l], a.c[l].subarray(0, T * bn), a.c[l].subarray(bn), a.tc[l], a.h[l].subarray(bn), M, N);
        if (model === 'grid_lstm') {
          // The depth LSTM: c_d enters layer 1 as 0, each layer's c_d the next one's.
          const cdIn = l === 0 ? new Float64Array(M * N) : a.cd[l - 1];
          expectLstmRelations(a.depthGates[l], cdIn, a.cd[l], a.tcd[l], a.hd[l], M, N);
        }
      }
      if (model === 'lstm') expect([a.depthGates, a.cd, a.tcd, a.hd].map((x) => x.length)).toEqual([0, 0, 0, 0]);
      // The decoder reads the top layer's output: h (lstm) or h_d (grid_lstm).
      const top = model === 'lstm' ? a.h[L - 1].subarray(bn) : a.hd[L - 1];
      const want = decodeRows(m.param('decoder.weight'), m.param('decoder.bias'), top, M, N, V);
      expect(maxRelDiff(a.logp, want, 1)).toBeLessThan(1e-12);
    }
  });

  it('a batch run in parts (as threads do, here one after another) adds up to the whole: loss, objective, gradients, final state, dropout draws', () => {
    for (const model of ['lstm', 'grid_lstm', 'gru'] as const) {
      const config: ModelConfig = { model, vocabSize: 4, rnnSize: 3, numLayers: 2, dropout: 0.4 };
      const N = config.rnnSize;
      const Bw = 3;
      const m = randomModel(config, 23, 0.6);
      const batch = batchOf(config.vocabSize, 8, Bw, T);
      (batch.y as number[])[4] = -1; // one target not scored: the parts' means are over the whole batch's 8
      const s0 = randomState(m, Bw, new Rng(6));
      const rngWhole = new Rng(99);
      const whole = m.forwardBackward(batch, s0, { rng: rngWhole });
      const gWhole = m.grads.slice();
      const sum = new Float64Array(m.grads.length);
      let loss = 0;
      let objective = 0;
      for (const [first, count] of [[0, 1], [1, 2]]) {
        const rows = (a: ArrayLike<number>, w: number) => Array.from(a).slice(first * w, (first + count) * w);
        const part = { x: rows(batch.x, T), y: rows(batch.y, T), batchSize: count, seqLength: T };
        const state = { h: s0.h.map((h) => Float64Array.from(rows(h, N))), c: s0.c.map((c) => Float64Array.from(rows(c, N))) };
        const rng = new Rng(99);
        const r = m.forwardBackward(part, state, { rng, part: { first, total: Bw, scored: 8 } });
        expect(rng.state, `${model}: the generator ends where the whole batch's does`).toBe(rngWhole.state);
        loss += r.loss;
        objective += r.objective;
        for (let j = 0; j < sum.length; j++) sum[j] += m.grads[j];
        for (let l = 0; l < config.numLayers; l++) {
          expect(maxRelDiff(r.finalState.h[l], rows(whole.finalState.h[l], N), 1)).toBeLessThan(1e-12);
          expect(maxRelDiff(r.dInitialState.h[l], rows(whole.dInitialState.h[l], N), 1)).toBeLessThan(1e-12);
        }
      }
      expect(gWhole.every(Number.isFinite), `${model} gradients finite`).toBe(true);
      expect(relDiff(loss, whole.loss), `${model} loss`).toBeLessThan(1e-12);
      expect(relDiff(objective, whole.objective), `${model} objective`).toBeLessThan(1e-12);
      expect(maxRelDiff(sum, gWhole, 1), `${model} gradients`).toBeLessThan(1e-12);
      // And the evaluation forward: the parts' losses add up too.
      const evalWhole = m.forward(batch, s0).loss;
      const evalParts = [[0, 1], [1, 2]].map(([first, count]) => {
        const rows = (a: ArrayLike<number>, w: number) => Array.from(a).slice(first * w, (first + count) * w);
        const state = { h: s0.h.map((h) => Float64Array.from(rows(h, N))), c: s0.c.map((c) => Float64Array.from(rows(c, N))) };
        return m.forward({ x: rows(batch.x, T), y: rows(batch.y, T), batchSize: count, seqLength: T }, state, { part: { first, total: Bw, scored: 8 } }).loss;
      });
      expect(relDiff(evalParts[0] + evalParts[1], evalWhole)).toBeLessThan(1e-12);
    }
  });

  it('a part that is not one: one-line errors naming first, total and scored', () => {
    const m = new Model({ model: 'lstm', vocabSize: 4, rnnSize: 2, numLayers: 1 }, { dtype: 'float64' });
    const batch = batchOf(4, 3); // B = 2, T = 3, every target scored
    const run = (part: { first: number; total: number; scored: number }) => () => m.forward(batch, m.zeroState(B), { part });
    expect(run({ first: 0, total: 2, scored: 6 })).not.toThrow();
    expect(run({ first: 1, total: 3, scored: 9 })).not.toThrow();
    for (const [first, total] of [[-1, 2], [2, 3], [0.5, 3], [0, 2.5]]) {
      expect(run({ first, total, scored: 6 })).toThrow(
        new Error(`part must be streams first … first + 2 − 1 of total, whole numbers with 0 ≤ first and first + 2 ≤ total, got first ${first}, total ${total}`),
      );
    }
    for (const scored of [5, 7.5, 10, NaN]) {
      expect(run({ first: 0, total: 3, scored })).toThrow(
        new Error(`part.scored must be the scored targets (≥ 0) of the whole batch: a whole number from this part's 6 to total·T = 9, got ${scored}`),
      );
    }
  });

  it("the first layer's tables: used when V ≤ B·T; rows E[v]·Wᵀ + b, filled row by row for any range or whole; bad ranges refused", () => {
    const lstm = randomModel({ model: 'lstm', vocabSize: 6, rnnSize: 2, numLayers: 2 }, 3, 0.5);
    expect([lstm.usesTables(2, 3), lstm.usesTables(1, 6), lstm.usesTables(1, 5), lstm.usesTables(5, 1)]).toEqual([true, true, false, false]);
    for (const config of [
      { model: 'lstm', vocabSize: 6, rnnSize: 2, numLayers: 2 },
      { model: 'grid_lstm', vocabSize: 6, rnnSize: 2, numLayers: 2 },
    ] as const) {
      const m = randomModel(config, 3, 0.5);
      const { vocabSize: V, rnnSize: N } = config;
      const E = m.param('embedding.weight');
      const row = (name: string, v: number) => {
        const W = m.param(`${name}.weight`);
        const b = m.param(`${name}.bias`);
        return Array.from(b, (bj, j) => bj + E[v * N] * W[j * N] + E[v * N + 1] * W[j * N + 1]);
      };
      const [firstName, depthName] = config.model === 'lstm' ? ['layers.0.i2h', null] : ['layers.0.time.d2h', 'depth.d2h'];
      const whole = m.newFirstLayerTables();
      expect(whole.first.length).toBe(1);
      expect(whole.depth === null).toBe(depthName === null);
      m.fillFirstLayerTables(whole, false);
      const part = m.newFirstLayerTables();
      m.fillFirstLayerTables(part, true, 2, 4);
      const w = 4 * N;
      for (let v = 0; v < V; v++) {
        expect(maxRelDiff(whole.first[0].subarray(v * w, (v + 1) * w), row(firstName, v), 1)).toBeLessThan(1e-14);
        if (depthName) expect(maxRelDiff(whole.depth!.subarray(v * w, (v + 1) * w), row(depthName, v), 1)).toBeLessThan(1e-14);
        const inRange = v >= 2 && v < 4;
        expect([...part.first[0].subarray(v * w, (v + 1) * w)], `row ${v}`).toEqual(inRange ? [...whole.first[0].subarray(v * w, (v + 1) * w)] : new Array(w).fill(0));
        if (depthName) expect([...part.depth!.subarray(v * w, (v + 1) * w)]).toEqual(inRange ? [...whole.depth!.subarray(v * w, (v + 1) * w)] : new Array(w).fill(0));
      }
      m.fillFirstLayerTables(part, true, 3, 3); // an empty range: nothing to fill, not an error
      m.fillFirstLayerTables(part, true); // the default range: all rows
      expect([...part.first[0]]).toEqual([...whole.first[0]]);
      for (const [from, to] of [[-1, 2], [3, 2], [0, 7], [0.5, 2]]) {
        expect(() => m.fillFirstLayerTables(part, true, from, to)).toThrow(new RangeError(`fillFirstLayerTables: rows [${from}, ${to}) must be within [0, 6)`));
      }
      expect(() => m.fillFirstLayerTables(part, false, 0, 5)).toThrow(
        new RangeError('fillFirstLayerTables: rows [0, 5) must be within [0, 6), all of them when not row by row'),
      );
      expect(() => m.fillFirstLayerTables(part, false, 1, 6)).toThrow(/all of them when not row by row/);
    }
  });

  it('weightMatrices(): each weight matrix once, its shape, and whether only the first layer\'s tables read it', () => {
    const named = (m: Model) => {
      const at = new Map(m.layout.map((s) => [s.offset, s.name]));
      return m.weightMatrices().map(({ W, outSize, inSize, tabulated }) => {
        const offset = W.byteOffset / W.BYTES_PER_ELEMENT - m.params.byteOffset / m.params.BYTES_PER_ELEMENT;
        expect(W.length).toBe(outSize * inSize);
        return `${at.get(offset)} ${outSize}x${inSize}${tabulated ? ' tabulated' : ''}`;
      });
    };
    const base = { vocabSize: 5, rnnSize: 2, numLayers: 2 };
    expect(named(new Model({ ...base, model: 'lstm' }))).toEqual([
      'decoder.weight 5x2',
      'layers.0.i2h.weight 8x2 tabulated',
      'layers.0.h2h.weight 8x2',
      'layers.1.i2h.weight 8x2',
      'layers.1.h2h.weight 8x2',
    ]);
    // Tied: depth.d2h serves every layer, so the tables do not replace it.
    expect(named(new Model({ ...base, model: 'grid_lstm' }))).toEqual([
      'decoder.weight 5x2',
      'layers.0.time.t2h.weight 8x2',
      'layers.0.time.d2h.weight 8x2 tabulated',
      'depth.t2h.weight 8x2',
      'depth.d2h.weight 8x2',
      'layers.1.time.t2h.weight 8x2',
      'layers.1.time.d2h.weight 8x2',
    ]);
    expect(named(new Model({ ...base, numLayers: 1, model: 'grid_lstm' }))).toContain('depth.d2h.weight 8x2 tabulated');
    const untied = named(new Model({ ...base, model: 'grid_lstm', tieWeights: false }));
    expect(untied).toContain('layers.0.depth.d2h.weight 8x2 tabulated');
    expect(untied).toContain('layers.1.depth.d2h.weight 8x2');
  });

  it('inference() nested inside inference() leaves the outer one in force (training still refused after it)', () => {
    const m = randomModel({ model: 'lstm', vocabSize: 4, rnnSize: 2, numLayers: 1 }, 5, 0.5);
    const batch = batchOf(4, 1);
    expect(() =>
      m.inference(() => {
        m.inference(() => m.forward(batch, m.zeroState(B)));
        return m.forwardBackward(batch, m.zeroState(B));
      }),
    ).toThrow(/forwardBackward cannot run inside model\.inference\(\)/);
    expect(() => m.forwardBackward(batch, m.zeroState(B))).not.toThrow();
  });

  it("defaults: forward() evaluates (no dropout), forwardBackward() trains, both drawing from the model's rng unless given one", () => {
    const m = randomModel({ model: 'lstm', vocabSize: 4, rnnSize: 3, numLayers: 2, dropout: 0.5 }, 9, 0.6);
    const batch = batchOf(4, 2);
    const s0 = m.zeroState(B);
    const start = m.rng.state;
    const evaluated = m.forward(batch, s0).loss;
    expect(m.rng.state).toBe(start); // no masks drawn
    expect(m.forward(batch, s0, { training: false }).loss).toBe(evaluated);
    const trained = m.forward(batch, s0, { training: true, rng: new Rng(1) }).loss;
    expect(trained).not.toBe(evaluated);
    expect(m.rng.state).toBe(start); // an rng given: the model's is left alone
    m.rng = new Rng(1);
    expect(m.forward(batch, s0, { training: true }).loss).toBe(trained);
    expect(m.rng.state).not.toBe(new Rng(1).state);
    m.rng = new Rng(1);
    const fb = m.forwardBackward(batch, s0);
    expect(fb.loss).toBe(trained);
    expect(m.forwardBackward(batch, s0, { training: false }).loss).toBe(evaluated);
  });

  it('getParams() and shape() return copies; a gru state says it has no cell', () => {
    const m = new Model({ model: 'gru', vocabSize: 4, rnnSize: 2, numLayers: 1 }, { dtype: 'float64' });
    const shape = m.shape('decoder.weight');
    expect(shape).toEqual([4, 2]);
    shape[0] = 9;
    expect(m.shape('decoder.weight')).toEqual([4, 2]);
    const got = m.getParams();
    expect([...got.keys()]).toEqual(m.parameterNames());
    const dec = got.get('decoder.weight')!;
    expect(dec.shape).toEqual([4, 2]);
    expect([...dec.data]).toEqual([...m.param('decoder.weight')]);
    dec.data[0] = 42;
    dec.shape[0] = 9;
    expect(m.param('decoder.weight')[0]).not.toBe(42);
    expect(m.getParams().get('decoder.weight')!.shape).toEqual([4, 2]);
    const s = m.zeroState(2);
    expect([s.h[0].length, s.c[0].length]).toEqual([4, 0]);
    const bad = { h: s.h, c: [new Float64Array(4)] };
    expect(() => m.forward(batchOf(4, 1), bad)).toThrow(new Error('state layer 0 must have h of length B·N = 2·2 = 4 and c of length 0 (a gru has no cell), got 4 and 4'));
    expect(() => m.zeroState(0)).toThrow(/batch size must be a positive integer, got 0/);
  });

  it('the kernels are told which weights stay constant: every product inside a scope of its matrix in training and sampling passes, each matrix once; h2h across the steps of forward(); nothing for one step()', () => {
    /** TsKernels that record the scopes of withConstantWeights and, for each product, whether its W is in one. */
    class Spy extends TsKernels {
      open: Float[] = [];
      declared: Float[] = [];
      unscoped: Float[] = [];
      override withConstantWeights(W: Float, N: number, K: number, fn: () => void): void {
        expect(W.length).toBe(N * K);
        this.declared.push(W);
        this.open.push(W);
        try {
          fn();
        } finally {
          this.open.pop();
        }
      }
      private use(W: Float): void {
        if (!this.open.includes(W)) this.unscoped.push(W);
      }
      override matmulXWt(Y: Float, X: Float, W: Float, b: Float | null, M: number, N: number, K: number, accumulate: boolean): void {
        this.use(W);
        super.matmulXWt(Y, X, W, b, M, N, K, accumulate);
      }
      override matmulXWt2(Y: Float, X1: Float, W1: Float, X2: Float, W2: Float, b1: Float | null, b2: Float | null, M: number, N: number, K1: number, K2: number): void {
        this.use(W1);
        this.use(W2);
        super.matmulXWt2(Y, X1, W1, X2, W2, b1, b2, M, N, K1, K2);
      }
      override matmulDyW(dX: Float, dY: Float, W: Float, M: number, N: number, K: number): void {
        this.use(W);
        super.matmulDyW(dX, dY, W, M, N, K);
      }
      reset(): void {
        this.declared = [];
        this.unscoped = [];
      }
    }
    for (const config of [
      { model: 'lstm', vocabSize: 7, rnnSize: 2, numLayers: 2 },
      { model: 'grid_lstm', vocabSize: 7, rnnSize: 2, numLayers: 2 },
      { model: 'gru', vocabSize: 3, rnnSize: 2, numLayers: 2 },
    ] as const) {
      const k = new Spy('float64');
      const m = new Model(config, { kernels: k });
      const all = m.weightMatrices().map((w) => w.W);
      const tensorOf = (W: Float) => {
        const at = (W.byteOffset - m.params.byteOffset) / W.BYTES_PER_ELEMENT;
        return m.layout.find((s) => s.offset <= at && at + W.length <= s.offset + s.size)!.name;
      };
      const sorted = (ws: Float[]) => ws.map((W) => all.indexOf(W)).sort((a, b) => a - b);
      const batch = batchOf(config.vocabSize, 3);
      const what = `${config.model}:`;
      for (const [name, pass] of [
        ['forwardBackward', () => m.forwardBackward(batch, m.zeroState(B))],
        ['inference', () => m.inference(() => m.step([0, 1], m.zeroState(B)))],
      ] as const) {
        k.reset();
        pass();
        // (inference() fills the first layer's tables before its scopes, one row at a time.)
        const tabled = /^(layers\.0\.(i2h|time\.d2h|depth\.d2h)|depth\.d2h)\.weight$/;
        const outside = k.unscoped.map(tensorOf).filter((n) => !(name === 'inference' && tabled.test(n)));
        expect(outside, `${what} ${name}: products outside a scope of their weights`).toEqual([]);
        // Each matrix once around the whole pass, and h2h again around its steps (T > 1),
        // forward and backward: one scope per layer and part of h2h (gru: two parts).
        expect(sorted(k.declared.slice(0, all.length)), `${what} ${name}`).toEqual(all.map((_, j) => j));
        const h2hScopes = name === 'inference' ? 0 : 2 * config.numLayers * (config.model === 'gru' ? 2 : 1);
        expect(k.declared.length, `${what} ${name}`).toBe(all.length + h2hScopes);
      }
      // forward() outside inference: only the recurrent maps, around the T steps of each layer.
      k.reset();
      m.forward(batch, m.zeroState(B));
      expect(k.declared.map(tensorOf).every((n) => /^layers\.\d\.(time\.t2h|h2h)\.weight$/.test(n)), `${what} ${k.declared.map(tensorOf)}`).toBe(true);
      expect(k.declared.length, what).toBe(config.model === 'gru' ? 4 : 2); // gru: two parts of h2h per layer
      k.reset();
      m.step([0, 1], m.zeroState(B)); // one step: nothing to prepare
      expect(k.declared, what).toEqual([]);
    }
  });

  it('bad states and batches (one part wrong at a time, or missing): one-line errors', () => {
    const m = new Model({ model: 'lstm', vocabSize: 5, rnnSize: 2, numLayers: 2 }, { dtype: 'float64' });
    const batch = batchOf(5, 1);
    const s = m.zeroState(B);
    const run = (state: unknown) => () => m.forward(batch, state as State);
    expect(run({ h: s.h, c: [s.c[0]] })).toThrow(new Error('state must have h and c arrays of 2 layers (use model.zeroState(2))'));
    expect(run({ h: [s.h[0]], c: s.c })).toThrow(new Error('state must have h and c arrays of 2 layers (use model.zeroState(2))'));
    expect(run({ h: [s.h[0], new Float64Array(3)], c: s.c })).toThrow(new Error('state layer 1 must have h and c of length B·N = 2·2 = 4, got 3 and 4'));
    expect(run({ h: [undefined, s.h[1]], c: s.c })).toThrow(new Error('state layer 0 must have h and c of length B·N = 2·2 = 4, got undefined and 4'));
    expect(run({ h: s.h, c: [s.c[0], undefined] })).toThrow(new Error('state layer 1 must have h and c of length B·N = 2·2 = 4, got 4 and undefined'));
    const bad = (x: unknown, y: unknown) => () => m.forward({ x, y, batchSize: B, seqLength: T } as Batch, s);
    expect(bad(undefined, batch.y)).toThrow(new Error('x must hold B·T = 2·3 = 6 token ids, got undefined'));
    expect(bad(batch.x, undefined)).toThrow(new Error('y must hold B·T = 2·3 = 6 token ids, got undefined'));
    expect(bad(batch.x, [0, 0, 0, 0, 0, 5])).toThrow(/target id y\[5\] = 5 is out of range/);
    expect(bad(batch.x, [4, 4, 4, -1, 4, 4])).not.toThrow();
  });

  it("after initialisation the model's rng has drawn exactly one number per parameter (dropout continues that stream)", () => {
    for (const seed of [123, 7]) {
      const m = new Model({ model: 'grid_lstm', vocabSize: 5, rnnSize: 2, numLayers: 2 }, { seed });
      const r = new Rng(seed);
      r.skip(m.params.length);
      expect(m.rng.state).toBe(r.state);
    }
    const made = createModel({ model: 'rnn', vocabSize: 3, rnnSize: 2, numLayers: 1 }, { dtype: 'float64', seed: 5 });
    expect(made).toBeInstanceOf(Model);
    expect([...made.params]).toEqual([...new Model({ model: 'rnn', vocabSize: 3, rnnSize: 2, numLayers: 1 }, { dtype: 'float64', seed: 5 }).params]);
  });

  it('workspaces: exact sizes at first (the buffers listed in model.ts), four shapes kept, then powers of two; a dropped block goes to the smallest shape it fits', () => {
    const allocs: number[] = [];
    class Counting extends TsKernels {
      override alloc(n: number): Float {
        allocs.push(n);
        return super.alloc(n);
      }
    }
    // lstm, no dropout, B = 4, N = 4, V = 4, L = 2: every buffer a multiple of 4 (no padding).
    const [Bw, N, V, L] = [4, 4, 4, 2];
    const m = new Model({ model: 'lstm', vocabSize: V, rnnSize: N, numLayers: L }, { kernels: new Counting('float64') });
    const s0 = m.zeroState(Bw);
    const blockOf = () => m.activations()!.logp.buffer;
    const run = (Tn: number) => {
      allocs.length = 0;
      m.forward(batchOf(V, Tn, Bw, Tn), s0);
      return allocs.filter((n) => n > 0);
    };
    // emb, per layer h, c, gates, tc; logits; dG, dH, dXa, dXb, dc (the Workspace interface).
    const size = (Tn: number) => {
      const M = Tn * Bw;
      const hist = (Tn + 1) * Bw * N;
      return M * N + L * (2 * hist + M * 4 * N + M * N) + M * V + M * 4 * N + hist + 2 * M * N + Bw * N;
    };
    const blocks = new Map<number, ArrayBufferLike>();
    for (const Tn of [1, 2, 3, 4]) {
      expect(run(Tn), `T = ${Tn}: one block of the exact size`).toEqual([size(Tn)]);
      blocks.set(Tn, blockOf());
    }
    for (const Tn of [2, 4, 1, 3]) expect(run(Tn), `T = ${Tn} kept`).toEqual([]);
    // A fifth shape drops the oldest (T = 1: too small for it), then blocks are powers of two.
    const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));
    expect(run(9)).toEqual([pow2(size(9))]);
    expect(run(1), 'T = 1 was dropped: made again, in the smallest free block that fits, its own').toEqual([]);
    expect(blockOf()).toBe(blocks.get(1));
    // Dropping T = 2, 3, 4 (in that order: oldest first) for new shapes larger than all of them.
    for (const Tn of [10, 11, 12]) expect(run(Tn)).toEqual([pow2(size(Tn))]);
    // Free now: the blocks of T = 2, 3, 4. T = 3 again takes its own (the smallest that fits),
    // dropping T = 9; T = 2 then takes its own, not 4's (dropping T = 1).
    expect(run(3)).toEqual([]);
    expect(blockOf()).toBe(blocks.get(3));
    expect(run(2)).toEqual([]);
    expect(blockOf()).toBe(blocks.get(2));
  });

  it("with the first layer's tables a pass neither gathers the embedding nor scatters into its gradient, and fills each table as one product; without them it does both", () => {
    class Spy extends TsKernels {
      log: string[] = [];
      /** The parameter (or gradient) tensor a buffer starts, by name. */
      names: (a: Float) => string = () => 'other';
      override gatherRows(out: Float, table: Float, ids: Int32Array, M: number, width: number, rows: number): void {
        this.log.push(`gather ${this.names(table)}`);
        super.gatherRows(out, table, ids, M, width, rows);
      }
      override scatterAddRows(dst: Float, src: Float, ids: Int32Array, M: number, width: number, rows: number): void {
        this.log.push(`scatter ${this.names(dst)} ${width}`);
        super.scatterAddRows(dst, src, ids, M, width, rows);
      }
      override matmulXWt(Y: Float, X: Float, W: Float, b: Float | null, M: number, N: number, K: number, accumulate: boolean): void {
        this.log.push(`product ${this.names(W)} ${M}`);
        super.matmulXWt(Y, X, W, b, M, N, K, accumulate);
      }
    }
    for (const model of ['lstm', 'grid_lstm'] as const) {
      const k = new Spy('float64');
      const m = new Model({ model, vocabSize: 5, rnnSize: 2, numLayers: 2 }, { kernels: k });
      k.names = (a: Float) => {
        const grad = a.buffer === m.grads.buffer;
        if (!grad && a.buffer !== m.params.buffer) return 'other';
        const at = (a.byteOffset - (grad ? m.grads : m.params).byteOffset) / a.BYTES_PER_ELEMENT;
        return `${grad ? 'grad of ' : ''}${m.layout.find((s) => s.offset === at)?.name ?? 'other'}`;
      };
      const first = model === 'lstm' ? 'layers.0.i2h.weight' : 'layers.0.time.d2h.weight';
      // V = 5 ≤ B·T = 6: tables.
      k.log = [];
      m.forwardBackward(batchOf(5, 2, 2, 3), m.zeroState(2));
      expect(k.log.filter((e) => /embedding/.test(e)), `${model}, tables`).toEqual([]);
      expect(k.log.filter((e) => e.startsWith(`product ${first}`)), `${model}, tables`).toEqual([`product ${first} 5`]);
      // V = 5 > B·T = 4: no tables.
      k.log = [];
      m.forwardBackward(batchOf(5, 2, 2, 2), m.zeroState(2));
      expect(k.log.filter((e) => /^(gather|scatter)/.test(e)), `${model}, no tables`).toEqual(['gather embedding.weight', 'scatter grad of embedding.weight 2']);
      k.log = [];
      const tables = m.newFirstLayerTables();
      m.fillFirstLayerTables(tables, false);
      expect(k.log.filter((e) => e.startsWith('product')).length, model).toBe(model === 'lstm' ? 1 : 2);
    }
  });

  it('construction: float32 TypeScript kernels and seed 123 unless told; kernels and dtype must agree; given buffers are used as they are', () => {
    const config: ModelConfig = { model: 'gru', vocabSize: 4, rnnSize: 2, numLayers: 2 };
    const m = new Model(config);
    expect([m.kernels.name, m.kernels.dtype]).toEqual(['ts', 'float32']);
    expect(m.params).toBeInstanceOf(Float32Array);
    const seeded = new Model(config, { seed: 123 });
    expect([...m.params]).toEqual([...seeded.params]);
    expect(m.rng.state).toBe(seeded.rng.state);
    expect([...new Model(config, { seed: 124 }).params]).not.toEqual([...m.params]);
    expect(new Model(config, { kernels: new TsKernels('float64'), dtype: 'float64' }).params).toBeInstanceOf(Float64Array);
    expect(() => new Model(config, { kernels: new TsKernels('float64'), dtype: 'float32' })).toThrow(
      new Error("dtype float32 does not match the kernels' dtype float64"),
    );
    const n = m.params.length;
    const params = new Float64Array(n).fill(0.25);
    const grads = new Float64Array(n);
    const shared = new Model(config, { dtype: 'float64', buffers: { params, grads } });
    expect(shared.params).toBe(params);
    expect(shared.grads).toBe(grads);
    expect(params.every((p) => p === 0.25)).toBe(true); // not initialised
    for (const bad of [{ params: new Float64Array(n + 1), grads }, { params, grads: new Float64Array(n - 1) }]) {
      expect(() => new Model(config, { dtype: 'float64', buffers: bad })).toThrow(new Error(`buffers must hold the ${n} parameters and gradients of this config`));
    }
  });
});
