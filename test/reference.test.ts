/**
 * The reference (src/reference/: both models step by step in float64, written for reading)
 * against the fast Model, and on its own.
 *
 * Relative error of two numbers a, b: |a − b| / max(|a| + |b|, floor), the worst over a tensor.
 * The loss and the objective use no floor (1e-300). Everything else (gradients, states) uses
 * FLOOR = 1e-6, for this reason: the reference and the Model add the same contributions in
 * different orders (step by step here; one product over T·B rows, first-layer tables, the depth
 * LSTM's two maps in one product there). Where contributions of ~1e-2…1 cancel to a small sum,
 * float64 leaves that sum an absolute error of ~1e-16·Σ|contributions|, which is large relative
 * to the sum itself: over 6 000 random cases the pure relative error reached 1.8e-8. With the
 * floor, an element smaller than 1e-6 must still agree to 1e-15 absolute (1e-9 × 1e-6); the
 * worst measured over those cases was then 6.7e-11. A wrong formula changes gradients by far
 * more than 1e-15. Bugs applied by hand that tests 1 and 2 caught (and test 3 too, unless the
 * bug is a consistent but different model): the depth LSTM reading h_{t−1} instead of the new
 * h_t (in the reference, forward only or forward and backward; in src/nn/model.ts), the value of
 * do written where di belongs in an LSTM backward (in the reference; in TsKernels), and the
 * reference missing the dropout before the decoder.
 *
 *  1. Model (float64, TsKernels) = reference: loss, objective, final state, every parameter
 *     gradient and dInitialState to 1e-9, with dropout masks drawn from the same Rng, for
 *     V ≤ B·T (the Model tabulates its first layer) and V > B·T; and the evaluation forward.
 *  1b. The same with targets not scored (−1, the addition task's masked loss), and the
 *     reference's masked loss against its definition.
 *  2. The same over two chunks with the state carried forward and, backward, chunk 2's
 *     dInitialState given to chunk 1 as dFinalState, compared chunk by chunk.
 *  3. The reference alone against fourth-order central differences (as src/nn/gradcheck.ts).
 *  4. Bad arguments throw one-line errors that name the argument.
 *  5. The public entry points: `reference` from the main module, package.json's subpaths.
 */
import { readFileSync, existsSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Batch,
  type ForwardBackwardResult,
  Model,
  type ModelConfig,
  Rng,
  type State,
  TsKernels,
  numericalGradient,
  reference,
  relativeError,
} from '../src/index.js';
import * as ref from '../src/reference/models.js';
import { arbBatch, arbConfig, arbModelState, arbShape, maxRelDiff, randomModel, runs } from '../src/testing.js';

const FLOOR = 1e-6;
const TOL = 1e-9;

function within(what: string, err: number, tol: number, context: unknown): void {
  if (!(err <= tol)) throw new Error(`${what}: relative error ${err} > ${tol} for ${JSON.stringify(context)}`);
}
const relDiff = (a: number, b: number) => relativeError(a, b, 1e-300); // pure relative error

/** The model's parameters as the reference takes them: name → values. */
const paramsOf = (model: Model) => new Map(model.parameterNames().map((n) => [n, model.param(n)]));

function stateDiff(a: State | ref.State, b: State | ref.State): number {
  expect(a.h.length).toBe(b.h.length);
  expect(a.c.length).toBe(b.c.length);
  let e = 0;
  for (let l = 0; l < a.h.length; l++) e = Math.max(e, maxRelDiff(a.h[l], b.h[l], FLOOR), maxRelDiff(a.c[l], b.c[l], FLOOR));
  return e;
}

/** The Model's forwardBackward result (gradients: grad(name)) against the reference's. */
function expectSame(
  what: string,
  grad: (name: string) => ArrayLike<number>,
  fb: ForwardBackwardResult,
  r: ref.Result,
  ctx: unknown,
): void {
  within(`${what} loss`, relDiff(fb.loss, r.loss), TOL, ctx);
  within(`${what} objective`, relDiff(fb.objective, r.objective), TOL, ctx);
  within(`${what} final state`, stateDiff(fb.finalState, r.finalState), TOL, ctx);
  within(`${what} dInitialState`, stateDiff(fb.dInitialState, r.dInitialState), TOL, ctx);
  for (const [name, g] of r.grads) within(`${what} gradient of ${name}`, maxRelDiff(grad(name), g, FLOOR), TOL, ctx);
}

/** Columns [from, from + len) of a [B, T] row-major id array. */
function sliceTime(ids: ArrayLike<number>, B: number, T: number, from: number, len: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) for (let t = 0; t < len; t++) out.push(ids[b * T + from + t]);
  return out;
}

const arbSeed = fc.integer({ min: 1, max: 1e6 });
const arbScale = fc.double({ min: 0.08, max: 1, noNaN: true });

/** A config, shape, batch, initial state, optional dFinalState, and seeds; V ≤ B·T when `tables`. */
const arbCase = (tables: boolean) =>
  fc
    .tuple(arbConfig, arbShape)
    .filter(([c, s]) => (c.vocabSize <= s.batchSize * s.seqLength) === tables)
    .chain(([config, { batchSize: B, seqLength: T }]) =>
      fc.record({
        config: fc.constant(config),
        batch: arbBatch(config.vocabSize, B, T),
        state: arbModelState(config, B),
        dFinal: fc.option(arbModelState(config, B), { nil: undefined }),
        seed: arbSeed,
        scale: arbScale,
      }),
    );

describe('reference', () => {
  for (const tables of [true, false]) {
    it(`1. Model (float64) = reference to 1e-9, ${tables ? 'V ≤ B·T (first-layer tables)' : 'V > B·T (no tables)'}`, () => {
      let withDropout = 0;
      // Layer wiring needs several layers of several units with dropout: count those cases per model.
      const wired = { grid_lstm: 0, lstm: 0, gru: 0, rnn: 0 };
      fc.assert(
        fc.property(arbCase(tables), ({ config, batch, state, dFinal, seed, scale }) => {
          const { batchSize: B, seqLength: T } = batch;
          const ctx = { config, B, T, seed, scale, dFinal: dFinal !== undefined };
          expect(config.vocabSize <= B * T).toBe(tables);
          const model = randomModel(config, seed, scale);
          expect(model.kernels).toBeInstanceOf(TsKernels);
          expect(model.kernels.dtype).toBe('float64');
          const fb = model.forwardBackward(batch, state, { dFinalState: dFinal, rng: new Rng(seed) });
          const masks = ref.dropoutMasks(config, B, T, new Rng(seed));
          expect(masks === undefined).toBe(config.dropout === 0);
          if (masks) withDropout++;
          if (masks && config.numLayers >= 2 && config.rnnSize >= 2) wired[config.model]++;
          const r = ref.forwardBackward(config, paramsOf(model), batch, state, { masks, dFinalState: dFinal });
          expect([...r.grads.keys()]).toEqual(model.parameterNames()); // every parameter, same names
          expectSame('', (name) => model.grad(name), fb, r, ctx);
          // Evaluation (no dropout): Model.forward against the reference's forward without masks.
          const ev = model.forward(batch, state);
          const rev = ref.forward(config, paramsOf(model), batch, state);
          within('evaluation loss', relDiff(ev.loss, rev.loss), TOL, ctx);
          within('evaluation final state', stateDiff(ev.finalState, rev.finalState), TOL, ctx);
        }),
        { numRuns: runs(200) },
      );
      expect(withDropout).toBeGreaterThan(0);
      // (Each case is one of these with probability about 0.08: 200 runs give about 16 of each.)
      if (runs(200) >= 100) for (const n of Object.values(wired)) expect(n).toBeGreaterThanOrEqual(5);
    });
  }

  it('1b. targets not scored (−1): Model (float64) = reference to 1e-9; the reference as defined (a partition of the targets adds up)', () => {
    const arbMasked = fc.tuple(arbConfig, arbShape).chain(([config, { batchSize: B, seqLength: T }]) =>
      fc.record({
        config: fc.constant(config),
        batch: arbBatch(config.vocabSize, B, T),
        state: arbModelState(config, B),
        scoredAt: fc.array(fc.boolean(), { minLength: B * T, maxLength: B * T }),
        seed: arbSeed,
        scale: arbScale,
      }),
    );
    fc.assert(
      fc.property(arbMasked, ({ config, batch, state, scoredAt, seed, scale }) => {
        const { batchSize: B, seqLength: T } = batch;
        const ctx = { config, B, T, seed, scale, scoredAt };
        const only = (keep: boolean) => ({ ...batch, y: Array.from(batch.y, (v, j) => (scoredAt[j] === keep ? v : -1)) });
        const masked = only(true);
        const model = randomModel(config, seed, scale);
        const fb = model.forwardBackward(masked, state, { rng: new Rng(seed) });
        const masks = ref.dropoutMasks(config, B, T, new Rng(seed));
        const r = ref.forwardBackward(config, paramsOf(model), masked, state, { masks });
        expectSame('masked', (name) => model.grad(name), fb, r, ctx);
        // The reference against the definition: objective = Σ scored NLL / B, loss = Σ scored NLL /
        // (scored count), so the objectives of the scored targets and of the rest add up to that
        // of all of them, and loss·scored = objective·B.
        const scored = scoredAt.filter(Boolean).length;
        const [all, rest] = [ref.forward(config, paramsOf(model), batch, state, masks), ref.forward(config, paramsOf(model), only(false), state, masks)];
        within('objectives of a partition', relDiff(r.objective + rest.objective, all.objective), 1e-12, ctx);
        within('loss·scored = objective·B', relDiff(r.loss * scored, r.objective * B), 1e-12, ctx);
        within('every target scored: loss·B·T = objective·B', relDiff(all.loss * T, all.objective), 1e-12, ctx);
        if (scored === 0) expect([r.loss, r.objective, fb.loss]).toEqual([0, 0, 0]);
      }),
      { numRuns: runs(100) },
    );
  });

  it('2. two chunks with the state carried (and dInitialState → dFinalState): Model = reference chunk by chunk', () => {
    const arbChunked = fc
      .tuple(arbConfig, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }))
      .chain(([config, B, T1, T2]) =>
        fc.record({
          config: fc.constant(config),
          T1: fc.constant(T1),
          T2: fc.constant(T2),
          whole: arbBatch(config.vocabSize, B, T1 + T2),
          s0: arbModelState(config, B),
          dFinal: arbModelState(config, B),
          seed: arbSeed,
          scale: arbScale,
        }),
      );
    fc.assert(
      fc.property(arbChunked, ({ config, T1, T2, whole, s0, dFinal, seed, scale }) => {
        const [B, T] = [whole.batchSize, T1 + T2];
        const ctx = { config, B, T1, T2, seed, scale };
        const model = randomModel(config, seed, scale);
        const params = paramsOf(model);
        const chunk = (from: number, len: number): Batch => ({
          x: sliceTime(whole.x, B, T, from, len),
          y: sliceTime(whole.y, B, T, from, len),
          batchSize: B,
          seqLength: len,
        });
        const [c1, c2] = [chunk(0, T1), chunk(T1, T2)];
        // The Model: chunk 1 forward, chunk 2 forward-backward from its final state (with the
        // masks drawn after chunk 1's), then chunk 1 forward-backward with chunk 2's dInitialState.
        const rng = new Rng(seed);
        const f1 = model.forward(c1, s0, { training: true, rng });
        const fb2 = model.forwardBackward(c2, f1.finalState, { dFinalState: dFinal, rng });
        const g2 = model.grads.slice();
        const fb1 = model.forwardBackward(c1, s0, { dFinalState: fb2.dInitialState, rng: new Rng(seed) });
        // The reference, the same way, its masks drawn in the same order.
        const maskRng = new Rng(seed);
        const [m1, m2] = [ref.dropoutMasks(config, B, T1, maskRng), ref.dropoutMasks(config, B, T2, maskRng)];
        const r1f = ref.forward(config, params, c1, s0, m1);
        within('chunk 1 final state', stateDiff(f1.finalState, r1f.finalState), TOL, ctx);
        const r2 = ref.forwardBackward(config, params, c2, r1f.finalState, { masks: m2, dFinalState: dFinal });
        const r1 = ref.forwardBackward(config, params, c1, s0, { masks: m1, dFinalState: r2.dInitialState });
        const spec = new Map(model.layout.map((s) => [s.name, s]));
        const view = (all: Float64Array | Float32Array) => (name: string) => {
          const { offset, size } = spec.get(name)!;
          return all.subarray(offset, offset + size);
        };
        expectSame('chunk 2', view(g2), fb2, r2, ctx);
        expectSame('chunk 1', view(model.grads), fb1, r1, ctx);
      }),
      { numRuns: runs(100) },
    );
  });

  describe('3. the reference alone: every gradient against fourth-order central differences (1e-6, floor 1e-5)', () => {
    const configs: ModelConfig[] = [
      { model: 'grid_lstm', vocabSize: 5, rnnSize: 3, numLayers: 2, tieWeights: true, dropout: 0.3 },
      { model: 'grid_lstm', vocabSize: 4, rnnSize: 2, numLayers: 3, tieWeights: false },
      { model: 'lstm', vocabSize: 6, rnnSize: 3, numLayers: 2, dropout: 0.4 },
      { model: 'gru', vocabSize: 5, rnnSize: 3, numLayers: 2, dropout: 0.3 },
      { model: 'rnn', vocabSize: 4, rnnSize: 3, numLayers: 2, dropout: 0.4 },
    ];
    for (const config of configs) {
      it(JSON.stringify(config), () => {
        fc.assert(
          fc.property(arbSeed, arbScale, (seed, scale) => {
            const [B, T, L] = [2, 3, config.numLayers];
            const rng = new Rng(seed);
            const params = paramsOf(randomModel(config, seed, scale));
            const { x, y: all } = fc.sample(arbBatch(config.vocabSize, B, T), { seed, numRuns: 1 })[0];
            // An odd seed leaves every third target not scored (−1): its gradient is checked too.
            const y = seed % 2 === 1 ? Array.from(all, (v, j) => (j % 3 === seed % 3 ? -1 : v)) : all;
            const batch = { x, y, batchSize: B, seqLength: T };
            const [s0, r] = fc.sample(arbModelState(config, B), { seed: seed + 1, numRuns: 2 });
            const masks = ref.dropoutMasks(config, B, T, rng);
            // f = objective + ⟨r, final state⟩, by the forward pass only.
            const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, j) => s + v * b[j], 0);
            const f = () => {
              const { objective, finalState: s } = ref.forward(config, params, batch, s0, masks);
              return objective + s.h.reduce((acc, _, l) => acc + dot(r.h[l], s.h[l]) + dot(r.c[l], s.c[l]), 0);
            };
            const res = ref.forwardBackward(config, params, batch, s0, { masks, dFinalState: r });
            within('objective', relDiff(res.objective, f()), 1e-12, { seed });
            const check = (name: string, values: Float64Array | Float32Array, grad: Float64Array) => {
              expect(grad.length).toBe(values.length);
              const numeric = numericalGradient(f, values); // gradcheck's fourth-order difference, ε = 2e-3
              for (let j = 0; j < values.length; j++) {
                const what = `${name}[${j}] (analytic ${grad[j]}, numeric ${numeric[j]})`;
                within(what, relativeError(grad[j], numeric[j], 1e-5), 1e-6, { seed, scale });
              }
            };
            for (const [name, values] of params) check(name, values, res.grads.get(name)!);
            for (let l = 0; l < L; l++) {
              check(`state.h[${l}]`, s0.h[l], res.dInitialState.h[l]);
              check(`state.c[${l}]`, s0.c[l], res.dInitialState.c[l]); // (empty for gru and rnn)
            }
          }),
          { numRuns: runs(3) },
        );
      });
    }
  });

  it('4. bad arguments throw one-line errors that name the argument', () => {
    const config: ModelConfig = { model: 'grid_lstm', vocabSize: 4, rnnSize: 2, numLayers: 2, tieWeights: false };
    const model = randomModel(config, 1, 0.5);
    const params = paramsOf(model);
    const batch = { x: [0, 1, 2, 3, 0, 1], y: [1, 2, 3, 0, 1, 2], batchSize: 2, seqLength: 3 };
    const state = model.zeroState(2);
    const gru: ModelConfig = { model: 'gru', vocabSize: 4, rnnSize: 2, numLayers: 1 };
    /** The T = 3 steps of L = 2 masks of B·N = 4 ones, each step passed through `f`. */
    const masksWith = (f: (m: Float64Array[], t: number) => Float64Array[]) =>
      Array.from({ length: 3 }, (_, t) => f([new Float64Array(4).fill(1), new Float64Array(4).fill(1)], t));
    type Args = { config?: ModelConfig; params?: ref.Params; batch?: Partial<Batch>; state?: unknown; masks?: unknown; dFinalState?: unknown };
    const run = (o: Args) => () =>
      ref.forwardBackward(o.config ?? config, o.params ?? params, { ...batch, ...o.batch } as Batch, (o.state ?? state) as State, {
        masks: o.masks as ref.Masks,
        dFinalState: o.dFinalState as State,
      });
    const cases: [() => unknown, RegExp][] = [
      [run({ batch: { x: [0, 1, 2] } }), /^x must hold B·T = 6 ids, got 3$/],
      [run({ batch: { y: [0, 1, 2, 3, 4, 0] } }), /^y\[4\] = 4 is not an id in \[0, 4\), or −1 \(not scored\)$/],
      [run({ batch: { y: [0, 1, -2, 3, 0, 1] } }), /^y\[2\] = -2 is not an id in \[0, 4\), or −1 \(not scored\)$/],
      [run({ batch: { x: [0, 1, 2, 3, 0, 1.5] } }), /^x\[5\] = 1.5 is not an id/],
      [run({ batch: { x: [0, 1, -1, 3, 0, 1] } }), /^x\[2\] = -1 is not an id/],
      [run({ batch: { batchSize: 0 } }), /^batchSize must be a positive integer/],
      [run({ batch: { seqLength: 2.5 } }), /^seqLength must be a positive integer/],
      [run({ config: { ...config, rnnSize: 0 } }), /^rnnSize must be a positive integer/],
      [
        run({ params: new Map([...params].filter(([n]) => n !== 'layers.1.depth.d2h.bias')) }),
        /^params layers\.1\.depth\.d2h\.bias must have 8 values, got undefined$/,
      ],
      [run({ params: new Map([...params, ['decoder.bias', new Float64Array(3)]]) }), /^params decoder\.bias must have 4 values, got 3$/],
      [
        run({ params: new Map([...params, ['depth.t2h.weight', new Float64Array(16)]]) }),
        /^params depth\.t2h\.weight is not a parameter of this grid_lstm$/,
      ],
      [run({ state: { h: [state.h[0]], c: state.c } }), /^state must have h and c arrays of L = 2 layers$/],
      [run({ state: { h: state.h, c: [state.c[0], new Float64Array(3)] } }), /^state\.c\[1\] must have B·N = 4 values, got 3$/],
      [run({ masks: [[new Float64Array(4), new Float64Array(4)]] }), /^masks must be T = 3 arrays of L = 2 masks of B·N = 4 values/],
      [run({ dFinalState: { h: state.h } }), /^dFinalState must have h and c arrays/],
      // Missing or half-given arguments still get the message, not a TypeError.
      [run({ batch: { x: undefined } }), /^x must hold B·T = 6 ids, got undefined$/],
      [run({ batch: { x: [4, 1, 2, 3, 0, 1] } }), /^x\[0\] = 4 is not an id in \[0, 4\)$/],
      [() => ref.forwardBackward(config, undefined as unknown as ref.Params, batch, state), /^params embedding\.weight must have 8 values, got undefined$/],
      [() => ref.forwardBackward(config, params, batch, undefined as unknown as State), /^state must have h and c arrays of L = 2 layers$/],
      [run({ state: { h: state.h, c: [state.c[0]] } }), /^state must have h and c arrays of L = 2 layers$/],
      [run({ state: { h: [state.h[0], undefined], c: state.c } }), /^state\.h\[1\] must have B·N = 4 values, got undefined$/],
      // Masks: right count of steps, one step with a mask missing; right counts, one mask short.
      [run({ masks: masksWith((m, t) => (t === 2 ? m.slice(1) : m)) }), /^masks must be T = 3 arrays of L = 2 masks of B·N = 4 values$/],
      [run({ masks: masksWith((m, t) => (t === 1 ? [m[0], m[1].subarray(1)] : m)) }), /^masks must be T = 3 arrays of L = 2 masks of B·N = 4 values$/],
      // A gru carries h only: its c must be empty.
      [
        () => ref.forward(gru, paramsOf(randomModel(gru, 1, 0.5)), batch, { h: [new Float64Array(4)], c: [new Float64Array(4)] }),
        /^state\.c\[0\] must have 0 \(no cell\) values, got 4$/,
      ],
    ];
    for (const [fn, message] of cases) {
      expect(fn).toThrow(message);
      try {
        fn();
      } catch (e) {
        expect((e as Error).message).not.toContain('\n');
      }
    }
    // And the happy path of the same arguments runs, with masks of the right shape too.
    expect(run({})().grads.size).toBe(model.parameterNames().length);
    expect(run({ masks: masksWith((m) => m) })().loss).toBe(run({})().loss);
  });

  it('6. by hand: log-softmax far from 0, the dropout draw at u = p, a backward called twice', () => {
    // Log-softmax with logits 800 apart: e^(800 − max) would overflow; shifted by the max it is
    // exact: logp = [−800, 0], the NLL of target 0 is 800. Small logits: z − log Σ e^z unshifted.
    const far = ref.logSoftmaxNll(Float64Array.from([0, 800, 1, 1, 2, 3]), [0, -1], 2, 3);
    expect(Array.from(far.logp.subarray(0, 3))).toEqual([-800, 0, -799]);
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    for (let v = 0; v < 3; v++) expect(far.logp[3 + v]).toBeCloseTo(v + 1 - lse, 14);
    expect([far.nll, far.scored]).toEqual([800, 1]);
    // Dropout p: drop when u < p, keep (×1/(1−p)) when u ≥ p — so with p equal to the first
    // draw u of the generator, the first element is kept.
    const p = new Rng(7).uniform();
    const masks = ref.dropoutMasks({ model: 'lstm', vocabSize: 3, rnnSize: 1, numLayers: 1, dropout: p }, 1, 1, new Rng(7))!;
    expect(masks[0][0][0]).toBe(1 / (1 - p));
    // backward() may be called again (e.g. with a dFinalState): the gradients it returned before
    // are copies, left as they were.
    const config: ModelConfig = { model: 'lstm', vocabSize: 3, rnnSize: 2, numLayers: 1 };
    const model = randomModel(config, 3, 0.5);
    const pass = ref.forward(config, paramsOf(model), { x: [0, 1, 2], y: [1, 2, 0], batchSize: 1, seqLength: 3 }, model.zeroState(1));
    const first = pass.backward();
    const kept = new Map([...first.grads].map(([n, g]) => [n, g.slice()]));
    const second = pass.backward({ h: [Float64Array.from([1, -1])], c: [Float64Array.from([2, 0.5])] });
    expect(first.grads).toEqual(kept);
    expect(second.grads.get('layers.0.h2h.weight')).not.toEqual(kept.get('layers.0.h2h.weight'));
  });

  it('5. exported as `reference` from the main module and as grid-lstm/reference; grid-lstm/testing is its own subpath', () => {
    expect(reference.forwardBackward).toBe(ref.forwardBackward);
    expect(reference.forward).toBe(ref.forward);
    expect(reference.dropoutMasks).toBe(ref.dropoutMasks);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    for (const [subpath, source] of [['./reference', 'src/reference/models.ts'], ['./testing', 'src/testing.ts']]) {
      const entry = pkg.exports[subpath];
      expect(entry.import).toBe(`./dist/${source.slice(4, -3)}.js`);
      expect(entry.types).toBe(`./dist/${source.slice(4, -3)}.d.ts`);
      expect(existsSync(new URL(`../${source}`, import.meta.url))).toBe(true);
    }
    expect(pkg.peerDependenciesMeta['fast-check']).toEqual({ optional: true });
    expect(pkg.peerDependencies['fast-check']).toBe(pkg.devDependencies['fast-check']);
    // The main module does not load fast-check (the testing module does).
    expect(readFileSync(new URL('../src/index.ts', import.meta.url), 'utf8')).not.toMatch(/\.\/testing\.js|fast-check/);
  });
});
