/**
 * The addition task (src/train/addition.ts) and its masked loss:
 *  1. the layout of a sequence and of its targets, by hand (D = 1 and D = 3);
 *  2. addDigits equals BigInt addition; the generated streams are what the loader batches;
 *  3. the masked loss and its gradient by hand on a tiny model (B = 2, T = 7): the loss is the
 *     mean of −log p over the answers' characters only, the decoder bias's gradient is
 *     Σ_scored (softmax − onehot) / B;
 *  4. answerAccuracy by hand; bad --digit-length / --seq-length as one-line errors;
 *  5. a Trainer of the task: accuracy in the history, the task in the checkpoint, an exact resume,
 *     and 2 threads agreeing with 1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { type ForwardOptions, Model } from '../src/nn/model.js';
import { loadWasmKernelsSync } from '../src/nn/wasm-node.js';
import {
  ADDITION_CHARS,
  AdditionLoader,
  addDigits,
  additionSequence,
  additionStreams,
  additionVocab,
  answerAccuracy,
  checkAdditionSpec,
  delimiterPosition,
  encodeSequence,
  parseSum,
  streamOperands,
  sumPrefix,
} from '../src/train/addition.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS, Trainer } from '../src/train/train.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-addition-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vocab = additionVocab();
const id = (c: string) => vocab.index.get(c)!;

describe('1. layout', () => {
  it('D = 3, T = 15: spaces, a+b=, the 4-digit answer reversed; "=" at T − (D + 2)', () => {
    expect(additionSequence('123', '958', 15)).toBe('   123+958=1801'); // 1081 reversed
    expect(additionSequence('000', '000', 12)).toBe('000+000=0000');
    expect(delimiterPosition({ digitLength: 3, seqLength: 15 })).toBe(10);
    expect(ADDITION_CHARS.join('')).toBe(' +0123456789=');
  });

  it('D = 1, T = 7: x the characters, y the next one at the answer positions only, else −1', () => {
    const spec = { digitLength: 1, seqLength: 7 };
    const text = additionSequence('3', '9', 7); // 3 + 9 = 12, written "21"
    expect(text).toBe(' 3+9=21');
    const x = new Int32Array(14).fill(99);
    const y = new Int32Array(14).fill(99);
    encodeSequence(text, spec, vocab, x, y, 1); // row 1 of a [2, 7] batch
    expect([...x.subarray(7)]).toEqual([' ', '3', '+', '9', '=', '2', '1'].map(id));
    // Positions 4 ("=" → "2") and 5 ("2" → "1") are scored; the last has nothing after it.
    expect([...y.subarray(7)]).toEqual([-1, -1, -1, -1, id('2'), id('1'), -1]);
    expect([...x.subarray(0, 7)]).toEqual(Array(7).fill(99)); // row 0 untouched
  });

  it('parseSum reads a+b= with the first answer digits, and nothing else', () => {
    expect(parseSum('12+34=', 2)).toEqual({ a: '12', b: '34', answer: '' });
    expect(parseSum('12+34=640', 2)).toEqual({ a: '12', b: '34', answer: '640' });
    for (const bad of ['12+3=', '12+34', '12+34=6401', 'ab+cd=', '12-34=']) expect(parseSum(bad, 2)).toBeNull();
  });

  it("sumPrefix lays a primed sum out as training does, spaces typed in front of it or not", () => {
    for (const typed of ['12+34=', '    12+34=']) expect(sumPrefix(parseSum(typed, 2)!, 12)).toBe('   12+34=');
    // With its whole answer: the training sequence, its "=" at T − (D + 2).
    expect(sumPrefix(parseSum('  12+34=640', 2)!, 12)).toBe(additionSequence('12', '34', 12));
    expect(sumPrefix(parseSum('12+34=6', 2)!, 9).indexOf('=')).toBe(delimiterPosition({ digitLength: 2, seqLength: 9 }));
  });
});

describe('2. numbers and streams', () => {
  it('addDigits equals BigInt addition, with D + 1 digits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 1e9 }), (D, seed) => {
        const [a, b] = streamOperands(seed, 0, D);
        const want = (BigInt(a) + BigInt(b)).toString().padStart(D + 1, '0');
        expect(addDigits(a, b)).toBe(want);
      }),
      { numRuns: 200 },
    );
  });

  it('train batch k holds sums k·B … k·B + B − 1 of the training stream; validation another stream; deterministic', () => {
    const spec = { digitLength: 2, seqLength: 10 };
    const B = 3;
    const loader = new AdditionLoader(spec, B, 7);
    const { train, val } = additionStreams(7);
    expect(val).not.toBe(train);
    const x = new Int32Array(B * 10);
    const y = new Int32Array(B * 10);
    loader.getBatch('train', 4, x, y);
    const row = (b: number) => [...x.subarray(b * 10, b * 10 + 10)].map((i) => vocab.chars[i]).join('');
    for (let b = 0; b < B; b++) {
      const [a, c] = streamOperands(train, 4 * B + b, 2);
      expect(row(b)).toBe(additionSequence(a, c, 10));
    }
    loader.getBatch('val', 0, x, y);
    expect(row(0)).toBe(additionSequence(...streamOperands(val, 0, 2), 10));
    // The training position counts up without wrapping (an endless stream); val wraps.
    loader.batchIx.train = 5000;
    loader.nextBatch('train', x, y);
    expect(loader.batchIx.train).toBe(5001);
    expect(loader.splitSizes.val).toBe(Math.ceil(2000 / B));
    loader.batchIx.val = loader.splitSizes.val - 1;
    loader.nextBatch('val', x, y);
    expect(loader.batchIx.val).toBe(0);
  });
});

describe('3. the masked loss by hand (B = 2, T = 7, D = 1)', () => {
  const spec = { digitLength: 1, seqLength: 7 };
  const B = 2;
  const T = 7;
  const V = vocab.chars.length;
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  encodeSequence(additionSequence('3', '9', 7), spec, vocab, x, y, 0);
  encodeSequence(additionSequence('5', '4', 7), spec, vocab, x, y, 1); // 09 → "90"

  for (const kind of ['lstm', 'grid_lstm', 'gru', 'rnn'] as const) {
    it(`${kind}: loss = mean −log p over the 4 answer characters; decoder.bias gradient = Σ_scored (p − onehot) / B`, () => {
      const model = new Model({ model: kind, vocabSize: V, rnnSize: 3, numLayers: 2 }, { dtype: 'float64', seed: 5 });
      // Every target scored (−1 replaced by 0) gives the log-probabilities of every position.
      const yAll = y.map((v) => (v < 0 ? 0 : v));
      model.forward({ x, y: yAll, batchSize: B, seqLength: T }, model.zeroState(B));
      const logp = model.activations()!.logp.slice(); // [T·B, V], row t·B + b
      const scored: [number, number, number][] = []; // b, t, target
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (y[b * T + t] >= 0) scored.push([b, t, y[b * T + t]]);
      expect(scored.map(([b, t]) => [b, t])).toEqual([[0, 4], [0, 5], [1, 4], [1, 5]]);
      const byHand = -scored.reduce((s, [b, t, target]) => s + logp[(t * B + b) * V + target], 0) / scored.length;

      const f = model.forward({ x, y, batchSize: B, seqLength: T }, model.zeroState(B));
      expect(Math.abs(f.loss - byHand)).toBeLessThan(1e-14);
      const r = model.forwardBackward({ x, y, batchSize: B, seqLength: T }, model.zeroState(B), { training: false });
      expect(Math.abs(r.loss - byHand)).toBeLessThan(1e-14);
      expect(Math.abs(r.objective - (byHand * scored.length) / B)).toBeLessThan(1e-13);
      // ∂objective/∂(decoder bias) = Σ over the scored positions of (softmax − onehot(target)) / B.
      const dBias = new Float64Array(V);
      for (const [b, t, target] of scored) {
        for (let v = 0; v < V; v++) dBias[v] += Math.exp(logp[(t * B + b) * V + v]) / B;
        dBias[target] -= 1 / B;
      }
      const g = model.grad('decoder.bias');
      for (let v = 0; v < V; v++) expect(Math.abs(g[v] - dBias[v])).toBeLessThan(1e-14);
    });
  }

  it('a model refuses targets below −1; every target −1 gives a loss of 0 and no gradient', () => {
    const model = new Model({ model: 'lstm', vocabSize: V, rnnSize: 3, numLayers: 1 }, { dtype: 'float64' });
    expect(() => model.forward({ x, y: y.map(() => -2), batchSize: B, seqLength: T }, model.zeroState(B))).toThrow(/out of range.*−1 \(not scored\)/);
    const r = model.forwardBackward({ x, y: y.map(() => -1), batchSize: B, seqLength: T }, model.zeroState(B));
    expect(r.loss).toBe(0);
    expect(model.grads.every((v) => v === 0)).toBe(true);
  });

  it("a part of a batch (src/parallel/) must say the whole batch's scored targets, even when it has none masked itself", () => {
    const model = new Model({ model: 'lstm', vocabSize: V, rnnSize: 3, numLayers: 1 }, { dtype: 'float64' });
    // Row 0 of a batch of 2 whose other row (not seen here) has targets −1: this part scores all 7.
    const row = { x: x.subarray(0, T), y: x.subarray(1, T + 1), batchSize: 1, seqLength: T };
    const withParts = (part: unknown) => () => model.forward(row, model.zeroState(1), { part } as ForwardOptions);
    expect(withParts({ first: 0, total: 2 })).toThrow(/^part\.scored must be the scored targets \(≥ 0\) of the whole batch: .* from this part's 7 to total·T = 14, got undefined$/);
    expect(withParts({ first: 0, total: 2, scored: 6 })).toThrow(/from this part's 7 to total·T = 14, got 6$/);
    expect(withParts({ first: 1, total: 1, scored: 7 })).toThrow(/^part must be streams first … first \+ 1 − 1 of total/);
    // Given, the mean is over the whole batch's scored targets (7 + 4 here): this part's share.
    const whole = model.forward(row, model.zeroState(1)).loss;
    expect(Math.abs(model.forward(row, model.zeroState(1), { part: { first: 0, total: 2, scored: 11 } }).loss - (whole * 7) / 11)).toBeLessThan(1e-15);
  });
});

describe('4. accuracy and bad input', () => {
  it('answerAccuracy counts argmax = target over the scored positions, and whole sequences right', () => {
    const B = 2;
    const T = 3;
    const V = 4;
    const logp = new Float64Array(T * B * V).fill(-5);
    const best = (t: number, b: number, v: number) => (logp[(t * B + b) * V + v] = -0.1);
    // Sequence 0: targets at t = 1, 2 (2, 3), both right. Sequence 1: targets at t = 1, 2 (1, 0), one right.
    const y = [-1, 2, 3, -1, 1, 0];
    best(1, 0, 2);
    best(2, 0, 3);
    best(1, 1, 1);
    best(2, 1, 3);
    best(0, 0, 1); // not scored: does not count
    expect(answerAccuracy(logp, y, B, T, V)).toEqual({ chars: 4, correctChars: 3, numbers: 2, correctNumbers: 1 });
  });

  it('--digit-length 0 or 1.5 and a --seq-length too short are one-line errors naming the fix', () => {
    expect(() => checkAdditionSpec({ digitLength: 0, seqLength: 50 })).toThrow(/^--digit-length must be a whole number from 1 to 1000 .*got 0$/);
    expect(() => checkAdditionSpec({ digitLength: 1.5, seqLength: 50 })).toThrow(/got 1\.5$/);
    expect(() => checkAdditionSpec({ digitLength: 4, seqLength: 14 })).toThrow(
      /^--seq-length 14 is too short for --task addition --digit-length 4: .* = 15 characters; use --seq-length 15 or more, or a smaller --digit-length$/,
    );
    expect(() => checkAdditionSpec({ digitLength: 4, seqLength: 15 })).not.toThrow();
    expect(() => Trainer.addition({ ...DEFAULT_TRAIN_OPTIONS, task: 'addition', digitLength: 3, seqLength: 11 })).toThrow(/--seq-length 11 is too short/);
  });
});

describe('5. Trainer', () => {
  const options = {
    ...DEFAULT_TRAIN_OPTIONS,
    task: 'addition' as const,
    digitLength: 2,
    seqLength: 10,
    model: 'lstm' as const,
    rnnSize: 8,
    numLayers: 1,
    batchSize: 20,
    maxSteps: 6,
    evalValEvery: 3,
    log: 'none' as const,
  };

  it('records the accuracy of every validation and the task in its checkpoints; resumes bit for bit', () => {
    const a = Trainer.addition({ ...options, checkpointDir: join(dir, 'a') });
    const out = a.run();
    expect(out.status).toBe('done');
    expect(a.history.accuracy!.map(([i]) => i)).toEqual([3, 6]);
    for (const [, c, n] of a.history.accuracy!) expect(c >= 0 && c <= 1 && n >= 0 && n <= c + 1e-12).toBe(true);
    expect(a.lastAccuracy!.sums).toBe(2000);
    const ck = loadCheckpoint(a.lastCheckpoint!);
    expect(ck.task).toEqual({ kind: 'addition', digitLength: 2, seqLength: 10 });
    expect(ck.training!.history.accuracy).toEqual(a.history.accuracy);
    // A run stopped after 3 steps and resumed ends with the same weights.
    const b = Trainer.addition({ ...options, maxSteps: 3, checkpointDir: join(dir, 'b') });
    b.run();
    const half = loadCheckpoint(b.lastCheckpoint!);
    const c = Trainer.resume(null, half, { maxSteps: 6 });
    c.run();
    expect([...c.model.params]).toEqual([...a.model.params]);
    expect(c.history.accuracy).toEqual(a.history.accuracy);
    // The task cannot change on resume, and a text run cannot start from an addition checkpoint.
    expect(() => Trainer.resume(null, half, { digitLength: 3 })).toThrow(/^--digit-length cannot change when resuming/);
    expect(() => Trainer.fromText(' 12+34=046'.repeat(50), { ...DEFAULT_TRAIN_OPTIONS }, { initFrom: half })).toThrow(
      /^the --init-from checkpoint is of --task addition --digit-length 2; train it on the same task/,
    );
  });

  it('on 2 threads, the steps and validation agree with 1 thread up to float rounding', () => {
    const losses = (threads: number) => {
      const t = Trainer.addition({ ...options, threads, checkpointDir: join(dir, `threads${threads}`) }, { kernels: loadWasmKernelsSync() });
      const out = t.run();
      expect(out.status).toBe('done');
      return [...t.history.train.map(([, l]) => l), ...t.history.val.map(([, l]) => l)];
    };
    const [one, two] = [losses(1), losses(2)];
    expect(two).toHaveLength(one.length);
    for (let j = 0; j < one.length; j++) expect(Math.abs(two[j] - one[j])).toBeLessThan(1e-5 * one[j]);
  });
});
