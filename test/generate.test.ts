/**
 * src/infer/generate.ts in process: sample()'s argument checks and edge cases, and evaluateIds against
 * the reference (src/reference/) — the CLI tests cover these through dist/, which mutation
 * testing cannot see.
 */
import { describe, expect, it } from 'vitest';
import { type ModelConfig } from '../src/index.js';
import { vocabFromChars } from '../src/train/data.js';
import { checkPrimetext, evaluateIds, forwardChunks, sample } from '../src/infer/generate.js';
import * as ref from '../src/reference/models.js';
import { randomModel } from '../src/testing.js';

const CHARS = ['a', 'b', 'c', 'd', 'e'];
const vocab = vocabFromChars(CHARS);
const config: ModelConfig = { model: 'lstm', vocabSize: 5, rnnSize: 3, numLayers: 2 };
const model = randomModel(config, 4, 1);

describe('sample(): arguments', () => {
  it('length must be a whole number ≥ 0; 0 gives the empty text', () => {
    for (const length of [-1, 1.5, NaN]) {
      expect(() => sample(model, vocab, { length })).toThrow(new RegExp(`^--length must be a whole number ≥ 0, got ${length}$`));
    }
    expect(sample(model, vocab, { length: 0 })).toBe('');
    expect(sample(model, vocab, { length: 0, primetext: 'ab' })).toBe('');
  });

  it('temperature must be a finite number > 0, at least 1e-300; 1e-300 itself gives the argmax text', () => {
    for (const temperature of [0, -1, NaN, Infinity]) {
      expect(() => sample(model, vocab, { temperature, length: 3 })).toThrow(new RegExp(`^--temperature must be a number > 0, got ${temperature}$`));
    }
    expect(() => sample(model, vocab, { temperature: 1e-301, length: 3 })).toThrow(
      /^--temperature 1e-301 is too small to compute with \(below 1e-300\); use argmax for the most likely character each time$/,
    );
    const argmax = sample(model, vocab, { primetext: 'abc', length: 20, argmax: true });
    expect(sample(model, vocab, { primetext: 'abc', length: 20, temperature: 1e-300, seed: 9 })).toBe(argmax);
  });

  it("the vocabulary must be the model's size", () => {
    expect(() => sample(model, vocabFromChars(['a', 'b']), { length: 1 })).toThrow(/^vocabulary has 2 characters but the model has 5$/);
  });

  it('a prime text with characters outside the vocabulary names each once, in order; an empty one is no prime text', () => {
    const message = /^--primetext has characters that are not in the model's vocabulary: "x" "☃"; remove them or use only characters the model was trained on$/;
    expect(() => sample(model, vocab, { primetext: 'axb☃x', length: 1 })).toThrow(message);
    expect(() => checkPrimetext('axb☃x', vocab)).toThrow(message);
    expect(() => checkPrimetext('abcde', vocab)).not.toThrow();
    expect(sample(model, vocab, { primetext: '', length: 30, seed: 5 })).toBe(sample(model, vocab, { length: 30, seed: 5 }));
  });

  it('argmax breaks ties towards the first character', () => {
    const m = randomModel(config, 4, 1);
    m.param('decoder.weight').fill(0);
    const bias = m.param('decoder.bias');
    bias.fill(0);
    bias[1] = bias[3] = 2;
    expect(sample(m, vocab, { primetext: 'a', length: 4, argmax: true })).toBe('bbbb');
  });
});

describe('evaluateIds', () => {
  it('the mean NLL of every next-character prediction, read as one stream from a zero state (= the reference)', () => {
    const ids = [0, 3, 1, 4, 4, 2, 0, 1, 3, 2, 2];
    const n = ids.length;
    // The reference over the whole text as one sequence of n − 1 steps.
    const params = new Map(model.parameterNames().map((name) => [name, model.param(name)]));
    const whole = ref.forward(config, params, { x: ids.slice(0, -1), y: ids.slice(1), batchSize: 1, seqLength: n - 1 }, model.zeroState(1));
    for (const seqLength of [1, 3, 4, 10, 100]) {
      const r = evaluateIds(model, Uint16Array.from(ids), seqLength);
      expect(r.predictions).toBe(n - 1);
      expect(Math.abs(r.loss - whole.loss)).toBeLessThan(1e-12 * whole.loss); // float64 model: only the order of the sums differs
      expect(r.bpc).toBe(r.loss / Math.LN2);
    }
  });

  it('forwardChunks: chunks start at 0, T, 2T, …; returning false stops the loop, anything else goes on', () => {
    const ids = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4];
    const starts: [number, number][] = [];
    forwardChunks(model, ids, 4, model.zeroState(1), (start, T) => void starts.push([start, T]));
    expect(starts).toEqual([[0, 4], [4, 4], [8, 1]]);
    let calls = 0;
    forwardChunks(model, ids, 4, model.zeroState(1), () => (calls++, false));
    expect(calls).toBe(1);
    calls = 0;
    forwardChunks(model, ids, 4, model.zeroState(1), () => (calls++, true));
    expect(calls).toBe(3);
  });

  it('needs at least 2 characters; seqLength must be a positive integer', () => {
    expect(() => evaluateIds(model, [1])).toThrow(/^the text has 1 character\(s\); at least 2 are needed to predict anything$/);
    expect(() => evaluateIds(model, [])).toThrow(/^the text has 0 character/);
    expect(evaluateIds(model, [1, 2]).predictions).toBe(1);
    expect(() => evaluateIds(model, [1, 2, 3], 0)).toThrow(/seqLength must be a positive integer/);
  });
});
