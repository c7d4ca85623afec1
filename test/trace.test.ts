/**
 * The trace API (src/infer/trace.ts) and the data of the viz report (src/viz/report-data.ts).
 *
 *  1. Per-position losses are evaluation's: within each chunk of evaluateIds' loop their sum (in
 *     order, in float64) is the kernels' NLL of the chunk, bit for bit — they are the very terms
 *     logSoftmaxNll adds, −(float64 of the stored log-probability), in the same order, and
 *     trace() runs the same chunks through the same forwardChunks loop inside model.inference().
 *     So the mean over all positions equals evaluateIds' loss up to evaluateIds' own rounding
 *     (it adds (NLL/T)·T per chunk, a few ulps): checked to 1e-12 relative.
 *  2. Ranges: the gates lie in [0, 1], g, n, tanh(c) and h in [−1, 1], tanh(c) = tanh(c); each
 *     model's trace has its cells' kinds only (the GRU's h follows from its z, n and h before).
 *  3. An independent path: model.step() fed the characters one by one (outside inference(),
 *     batch 1) gives the same time-LSTM state and log-probabilities at every position.
 *  4. A range, and the chunks of traceChunks, are the whole trace's numbers exactly; the state
 *     returned continues the text.
 *  5. The features of the report by hand; a model whose unit 3 of layer 0 copies "is a digit"
 *     (weights set by hand) has that unit at the top of the ranking, for random texts; the
 *     stored blocks decode to the traced values within half a quantization step.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildVocab,
  encode,
  evaluateIds,
  forwardChunks,
  loadWasmKernelsSync,
  Model,
  type ModelConfig,
  Rng,
  trace,
  traceChunks,
  TRACE_KINDS,
  traceKinds,
  type TraceSpan,
  TsKernels,
} from '../src/index.js';
import { buildReportData, decodeReportBlock } from '../src/viz/report-data.js';
import { TEXT_FEATURES, textFeatures } from '../src/viz/report-features.js';
import { maxRelDiff, randomIds, randomModel, runs } from './helpers/arbitraries.js';
import { digitUnitModel } from './helpers/digit-model.js';

const wasm = loadWasmKernelsSync();

const arbSmallConfig = fc.record({
  model: fc.constantFrom('grid_lstm' as const, 'lstm' as const, 'gru' as const, 'rnn' as const),
  numLayers: fc.integer({ min: 1, max: 3 }),
  rnnSize: fc.integer({ min: 1, max: 9 }),
  vocabSize: fc.integer({ min: 2, max: 12 }),
  tieWeights: fc.boolean(),
});

/** A model with parameters uniform(−scale, scale), float64 (TS) or float32 (WASM). */
function model(config: ModelConfig, seed: number, kernels: 'f64' | 'wasm', scale = 0.5): Model {
  if (kernels === 'f64') return randomModel(config, seed, scale, 'float64');
  const m = new Model(config, { kernels: wasm, seed });
  const rng = new Rng(seed ^ 0x2545f491);
  for (let j = 0; j < m.params.length; j++) m.params[j] = rng.uniformRange(-scale, scale);
  return m;
}

describe('trace: the per-position losses are those evaluation sums', () => {
  it('each chunk of evaluateIds: Σ loss = the kernels’ NLL bit for bit; the mean equals evaluateIds to 1e-12', () => {
    fc.assert(
      fc.property(arbSmallConfig, fc.integer({ min: 2, max: 330 }), fc.integer(), fc.constantFrom<'f64' | 'wasm'>('f64', 'wasm'), (config, n, seed, k) => {
        const m = model(config, seed, k);
        const ids = randomIds(new Rng(seed), n, config.vocabSize);
        const t = trace(m, ids);
        expect(t.length).toBe(n);
        // The chunk losses of evaluation's own loop.
        const chunkLoss: number[] = [];
        m.inference(() => forwardChunks(m, ids, 100, m.zeroState(1), (_s, _T, r) => void chunkLoss.push(r.loss)));
        expect(chunkLoss.length).toBe(Math.ceil((n - 1) / 100));
        let total = 0;
        chunkLoss.forEach((loss, c) => {
          const T = Math.min(100, n - 1 - c * 100);
          let nll = 0;
          for (let p = c * 100; p < c * 100 + T; p++) nll += t.loss[p];
          expect(nll / T).toBe(loss); // bit for bit
          total += nll;
        });
        expect(Number.isNaN(t.loss[n - 1])).toBe(true); // nothing follows the last character
        expect(t.targets[n - 1]).toBe(-1);
        const ev = evaluateIds(m, ids);
        expect(Math.abs(total / (n - 1) - ev.loss) / ev.loss).toBeLessThan(1e-12);
        // And each loss is −logp of the next id.
        for (let p = 0; p + 1 < n; p++) expect(t.loss[p]).toBe(-t.logp[p * config.vocabSize + ids[p + 1]]);
      }),
      { numRuns: runs(25) },
    );
  });
});

describe('trace: values', () => {
  it('gates in [0, 1], g, n, tanh(c) and h in [−1, 1], tanh(c) = tanh(c), the GRU\'s h from z, n and the h before; shapes [n, N], [n, V]', () => {
    fc.assert(
      fc.property(arbSmallConfig, fc.integer({ min: 1, max: 250 }), fc.integer(), fc.constantFrom<'f64' | 'wasm'>('f64', 'wasm'), (config, n, seed, k) => {
        const m = model(config, seed, k, 3); // large weights: saturated gates
        const t = trace(m, randomIds(new Rng(seed), n, config.vocabSize));
        const N = config.rnnSize;
        expect(t.logp.length).toBe(n * config.vocabSize);
        expect(t.layers.length).toBe(config.numLayers);
        const has = traceKinds(config.model);
        for (const layer of t.layers) {
          expect(layer.depth === null).toBe(config.model !== 'grid_lstm');
          for (const cell of [layer.time, layer.depth]) {
            if (cell === null) continue;
            for (const kind of TRACE_KINDS) expect(cell[kind]?.length).toBe(has.includes(kind) ? n * N : undefined);
            const unit = (kinds: string, lo: number) => {
              for (const kind of kinds) for (const v of cell[kind as 'h']!) expect(v >= lo && v <= 1).toBe(true);
            };
            if (config.model === 'rnn') unit('h', -1);
            else if (config.model === 'gru') {
              unit('zr', 0);
              unit('nh', -1);
              // h = z⊙n + (1 − z)⊙h_prev, from the zero state at position 0
              for (let j = 0; j < n * N; j++) {
                const prev = j < N ? 0 : cell.h![j - N];
                expect(cell.h![j]).toBeCloseTo(cell.z![j] * cell.n![j] + (1 - cell.z![j]) * prev, k === 'f64' ? 14 : 6);
              }
            } else {
              unit('ifo', 0);
              unit('g', -1);
              for (let j = 0; j < n * N; j++) {
                const want = Math.tanh(cell.c![j]);
                expect(Math.abs(cell.tc![j] - want)).toBeLessThanOrEqual(k === 'f64' ? 1e-15 : 1e-6 * Math.abs(want) + 1e-7);
                expect(cell.h![j]).toBeCloseTo(cell.o![j] * cell.tc![j], k === 'f64' ? 14 : 6);
              }
            }
          }
        }
        // The log-probabilities of each position sum to 1.
        for (let p = 0; p < n; p++) {
          let s = 0;
          for (let v = 0; v < config.vocabSize; v++) s += Math.exp(t.logp[p * config.vocabSize + v]);
          expect(Math.abs(s - 1)).toBeLessThan(1e-5);
        }
      }),
      { numRuns: runs(25) },
    );
  });

  it('the time LSTM’s h and c and the log-probabilities equal model.step() fed one character at a time', () => {
    fc.assert(
      fc.property(arbSmallConfig, fc.integer({ min: 1, max: 230 }), fc.integer(), fc.constantFrom<'f64' | 'wasm'>('f64', 'wasm'), (config, n, seed, k) => {
        const m = model(config, seed, k);
        const ids = randomIds(new Rng(seed), n, config.vocabSize);
        const t = trace(m, ids);
        const N = config.rnnSize;
        const V = config.vocabSize;
        const state = m.zeroState(1);
        // The same sums, grouped differently in places (inside inference() the first layer's
        // products come from a table: (b2 + x·W2) + (b1 + h·W1) instead of one sum), so they
        // round differently, and the differences carry along the text: measured up to 3e-12 in
        // float64; in float32 (WASM) up to 1.5e-7 absolute on h over 300 random cases.
        const tol = k === 'f64' ? 1e-9 : 1e-4;
        const floor = k === 'f64' ? 1e-12 : 1e-2;
        for (let p = 0; p < n; p++) {
          const logp = m.step([ids[p]], state);
          expect(maxRelDiff(logp, t.logp.subarray(p * V, (p + 1) * V), floor)).toBeLessThan(tol);
          for (let l = 0; l < config.numLayers; l++) {
            expect(maxRelDiff(state.h[l], t.layers[l].time.h!.subarray(p * N, (p + 1) * N), floor)).toBeLessThan(tol);
            if (state.c[l].length > 0) expect(maxRelDiff(state.c[l], t.layers[l].time.c!.subarray(p * N, (p + 1) * N), floor)).toBeLessThan(tol);
          }
        }
      }),
      { numRuns: runs(20) },
    );
  });

  it('grid_lstm: each depth LSTM makes its cell from the depth cell below (c_d = f⊙c_d(below) + i⊙g, c_d = 0 into layer 0; h_d = o⊙tanh(c_d)), and the top h_d feeds the decoder', () => {
    const config: ModelConfig = { model: 'grid_lstm', numLayers: 2, rnnSize: 4, vocabSize: 6, tieWeights: false };
    const m = model(config, 7, 'f64');
    const ids = randomIds(new Rng(3), 40, 6);
    const t = trace(m, ids);
    const N = 4;
    const V = 6;
    for (let l = 0; l < 2; l++) {
      const d = t.layers[l].depth!;
      for (let k = 0; k < 40 * N; k++) {
        const below = l === 0 ? 0 : t.layers[l - 1].depth!.c![k];
        expect(d.c![k]).toBeCloseTo(d.f![k] * below + d.i![k] * d.g![k], 12);
        expect(d.h![k]).toBeCloseTo(d.o![k] * Math.tanh(d.c![k]), 12);
      }
    }
    const W = m.param('decoder.weight');
    const b = m.param('decoder.bias');
    for (let p = 0; p < 40; p++) {
      // logits = decoder(h_d of the top layer) → log-softmax
      const hd = Array.from(t.layers[1].depth!.h!.subarray(p * N, (p + 1) * N));
      const logits = Array.from({ length: V }, (_, v) => b[v] + hd.reduce((s, x, j) => s + x * W[v * N + j], 0));
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((s, x) => s + Math.exp(x - max), 0));
      for (let v = 0; v < V; v++) expect(t.logp[p * V + v]).toBeCloseTo(logits[v] - lse, 12);
    }
  });
});

describe('trace: ranges and streaming', () => {
  it('trace({start, end}) and traceChunks give exactly the whole trace’s numbers; the state continues the text', () => {
    fc.assert(
      fc.property(
        arbSmallConfig,
        fc.integer({ min: 1, max: 330 }),
        fc.integer(),
        fc.constantFrom<'f64' | 'wasm'>('f64', 'wasm'),
        fc.tuple(fc.nat(), fc.nat()),
        (config, n, seed, k, [a, b]) => {
          const m = model(config, seed, k);
          const ids = randomIds(new Rng(seed), n, config.vocabSize);
          const whole = trace(m, ids);
          const start = a % n;
          const end = start + 1 + (b % (n - start));
          const part = trace(m, ids, { start, end });
          const N = config.rnnSize;
          const V = config.vocabSize;
          const same = (x: ArrayLike<number>, y: ArrayLike<number>) => expect(Array.from(x)).toEqual(Array.from(y));
          const slice = (s: TraceSpan, w: number) => ({ from: (start - s.start) * w, to: (end - s.start) * w });
          expect(part.start).toBe(start);
          expect(part.length).toBe(end - start);
          same(part.logp, whole.logp.subarray(slice(whole, V).from, slice(whole, V).to));
          same(part.loss, whole.loss.subarray(start, end));
          same(part.ids, whole.ids.subarray(start, end));
          for (let l = 0; l < config.numLayers; l++) {
            for (const lstm of ['time', 'depth'] as const) {
              if (whole.layers[l][lstm] === null) continue;
              for (const kind of traceKinds(config.model)) same(part.layers[l][lstm]![kind]!, whole.layers[l][lstm]![kind]!.subarray(start * N, end * N));
            }
            // The state after end − 1 is the time cell's h and c there (gru, rnn: no c).
            same(part.state.h[l], whole.layers[l].time.h!.subarray((end - 1) * N, end * N));
            same(part.state.c[l], whole.layers[l].time.c?.subarray((end - 1) * N, end * N) ?? []);
          }
          // Streaming: the chunks tile [start, end) in order and hold the same numbers.
          let next = start;
          const h0 = new Float64Array((end - start) * N);
          traceChunks(
            m,
            ids,
            (c) => {
              expect(c.start).toBe(next);
              expect(c.length).toBeGreaterThan(0);
              expect(c.length).toBeLessThanOrEqual(100);
              h0.set(c.layers[0].time.h!, (c.start - start) * N);
              same(c.loss, whole.loss.subarray(c.start, c.start + c.length));
              next += c.length;
            },
            { start, end },
          );
          expect(next).toBe(end);
          same(h0, whole.layers[0].time.h!.subarray(start * N, end * N));
        },
      ),
      { numRuns: runs(25) },
    );
  });

  it('an initial state: tracing a text in two parts with the state carried equals tracing it whole (float64)', () => {
    const config: ModelConfig = { model: 'grid_lstm', numLayers: 2, rnnSize: 5, vocabSize: 7 };
    const m = model(config, 11, 'f64');
    const ids = randomIds(new Rng(5), 260, 7);
    const whole = trace(m, ids);
    const first = trace(m, ids.slice(0, 150));
    const second = trace(m, ids.slice(150), { initialState: first.state });
    // The second part runs in chunks from position 150, so its products group differently.
    expect(maxRelDiff(second.layers[1].depth!.h!, whole.layers[1].depth!.h!.subarray(150 * 5), 1e-12)).toBeLessThan(1e-12);
    expect(maxRelDiff(second.logp, whole.logp.subarray(150 * 7), 1e-12)).toBeLessThan(1e-12);
  });

  it('input as text + vocabulary; bad input throws a message that names it', () => {
    const vocab = buildVocab('abc ');
    const m = model({ model: 'lstm', numLayers: 1, rnnSize: 3, vocabSize: 4 }, 1, 'f64');
    expect(trace(m, { text: 'a b c', vocab }).ids).toEqual(Int32Array.from(encode('a b c', vocab)));
    expect(() => trace(m, { text: 'abd', vocab })).toThrow(/"d"/);
    expect(() => trace(m, [])).toThrow(/empty/);
    expect(() => trace(m, [0, 4])).toThrow(/ids\[1\] = 4 is out of range/);
    expect(() => trace(m, [0, 1, 2], { start: 2, end: 2 })).toThrow(/0 ≤ start < end ≤ 3/);
    expect(() => trace(m, [0, 1, 2], { seqLength: 0 })).toThrow(/seqLength/);
  });
});

describe('viz report data', () => {
  it('the text features, by hand', () => {
    const text = 'Ab "c(1 2)"\n x”“y';
    const vocab = buildVocab(text);
    const f = textFeatures(encode(text, vocab), vocab.chars, 0, [...text].length);
    const get = (name: string) => Array.from(f[TEXT_FEATURES.findIndex((x) => x.name === name)]);
    //                     A  b  ␣  "  c  (  1  ␣  2  )  "  ↵  ␣  x  ”  “  y
    expect(get('quote')).toEqual([0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1]);
    expect(get('bracket')).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(get('column')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4]);
    expect(get('word_start')).toEqual([1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1]);
    expect(get('word_pos')).toEqual([1, 2, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1]);
    expect(get('digit')).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(get('upper')).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(get('space')).toEqual([0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0]);
    expect(get('newline')).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    // A window: the state comes from the text before it.
    const w = textFeatures(encode(text, vocab), vocab.chars, 5, 9);
    expect(Array.from(w[0])).toEqual([1, 1, 1, 1]);
    expect(Array.from(w[2])).toEqual([5, 6, 7, 8]);
  });

  it('a model whose unit 3 of layer 0 copies “is a digit” has that unit at the top of the ranking', () => {
    const alphabet = 'abcXY 0123"().,\n';
    const vocab = buildVocab(alphabet);
    const N = 5;
    fc.assert(
      fc.property(
        fc.constantFrom('lstm' as const, 'grid_lstm' as const),
        fc.array(fc.constantFrom(...alphabet), { minLength: 8, maxLength: 300 }),
        fc.integer(),
        (kind, chars, seed) => {
          const text = 'a1' + chars.join('') + 'b';
          const m = digitUnitModel(kind, vocab, { rnnSize: N, seed });
          const data = buildReportData(m, vocab, encode(text, vocab), { length: 10_000 });
          const top = data.ranking[0];
          expect([top.layer, top.lstm, top.unit]).toEqual([0, 'time', 3]);
          const mine = data.ranking.find((r) => r.unit === 3 && r.layer === 0 && r.lstm === 'time' && r.feature === 'digit');
          expect(mine).toBeDefined();
          expect(Math.abs(mine!.r)).toBeGreaterThan(0.999);
        },
      ),
      { numRuns: runs(15) },
    );
  });

  it('blocks decode to the traced values within half a quantization step; saturation, top 5, loss', () => {
    fc.assert(
      fc.property(arbSmallConfig, fc.integer({ min: 2, max: 260 }), fc.integer(), fc.integer({ min: 1, max: 8 }), (config, total, seed, bits) => {
        const m = model(config, seed, 'wasm', 2);
        const vocab = { chars: Array.from({ length: config.vocabSize }, (_, v) => String.fromCharCode(97 + v)), index: new Map<string, number>() };
        vocab.chars.forEach((ch, v) => vocab.index.set(ch, v));
        const ids = randomIds(new Rng(seed), total, config.vocabSize);
        const start = seed % total >= 0 ? Math.abs(seed) % total : 0;
        const data = buildReportData(m, vocab, ids, { start, length: 120, bits, kinds: [...traceKinds(config.model)] });
        const end = Math.min(total, start + 120);
        const n = end - start;
        const t = trace(m, ids, { start, end });
        const N = config.rnnSize;
        expect(data.text.length).toBe(n);
        expect(data.blocks.length).toBe(config.numLayers * (config.model === 'grid_lstm' ? 2 : 1) * traceKinds(config.model).length);
        for (const b of data.blocks) {
          const values = decodeReportBlock(b, n);
          const traced = t.layers[b.layer][b.lstm]![b.kind]!;
          for (let j = 0; j < N; j++) {
            const half = (b.hi[j] - b.lo[j]) / b.levels / 2;
            for (let p = 0; p < n; p++) expect(Math.abs(values[j * n + p] - traced[p * N + j])).toBeLessThanOrEqual(half * (1 + 1e-6) + 1e-7);
          }
        }
        for (const s of data.saturation) {
          const g = t.layers[s.layer][s.lstm]![s.gate]!;
          for (let j = 0; j < N; j++) {
            let left = 0;
            let right = 0;
            for (let p = 0; p < n; p++) {
              if (g[p * N + j] < 0.1) left++;
              else if (g[p * N + j] > 0.9) right++;
            }
            // (rounded to 4 decimals)
            expect(Math.abs(s.left[j] - left / n)).toBeLessThanOrEqual(5e-5 + 1e-12);
            expect(Math.abs(s.right[j] - right / n)).toBeLessThanOrEqual(5e-5 + 1e-12);
          }
        }
        for (let p = 0; p < n; p++) {
          const V = config.vocabSize;
          const order = Array.from({ length: V }, (_, v) => v).sort((x, y) => t.logp[p * V + y] - t.logp[p * V + x]);
          const top = data.top[p];
          expect(top.length).toBe(2 * Math.min(5, V));
          for (let k = 0; k < top.length / 2; k++) {
            expect(t.logp[p * V + top[2 * k]]).toBe(t.logp[p * V + order[k]]); // ties may swap ids
            expect(top[2 * k + 1]).toBeCloseTo(Math.exp(t.logp[p * V + order[k]]), 4);
          }
          if (start + p + 1 < total) expect(data.loss[p]).toBeCloseTo(t.loss[p], 4);
          else expect(data.loss[p]).toBeNull();
        }
        expect(data.after).toBe(end < total ? ids[end] : null);
      }),
      { numRuns: runs(15) },
    );
  });
});

describe('evaluation chunks', () => {
  it('a chunk length that is not a positive whole number is refused (0 would loop forever)', () => {
    const m = new Model({ model: 'lstm', vocabSize: 3, rnnSize: 2, numLayers: 1 });
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => evaluateIds(m, [0, 1, 2, 0], bad)).toThrow(/seqLength must be a positive integer/);
      expect(() => forwardChunks(m, [0, 1, 2], bad, m.zeroState(1), () => {})).toThrow(/seqLength must be a positive integer/);
    }
  });
});
