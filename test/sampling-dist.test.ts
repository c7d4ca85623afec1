/**
 * Sampling draws from softmax(logp / T) of the state the prime text leaves (char-rnn's
 * sample.lua), checked as a distribution: the first character sampled after a prime text, over
 * many seeds (1, 2, 3, … : fixed, so the test gives the same answer on every run), against the
 * probabilities the reference (src/reference/) gives after that prime text, by Pearson's
 * chi-square test; the p-value is computed (regularised upper incomplete gamma) and must exceed
 * 0.001. Without a prime text the first character is uniform; --argmax takes the arg max.
 */
import { describe, expect, it } from 'vitest';
import { type ModelConfig, Model } from '../src/index.js';
import { vocabFromChars } from '../src/train/data.js';
import { sample } from '../src/infer/generate.js';
import * as ref from '../src/reference/models.js';
import { randomModel } from '../src/testing.js';

const CHARS = ['a', 'b', 'c', 'd', 'e', 'f'];
const V = CHARS.length;
const vocab = vocabFromChars(CHARS);
const config: ModelConfig = { model: 'grid_lstm', vocabSize: V, rnnSize: 4, numLayers: 2, tieWeights: true };
const DRAWS = 3000;
const P_MIN = 0.001;

/** ln Γ(x), Lanczos (g = 7, n = 9), relative error < 1e-13 for x > 0. */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Q(s, x) = Γ(s, x) / Γ(s): series for x < s + 1, continued fraction (Lentz) beyond. */
function gammaQ(s: number, x: number): number {
  if (x <= 0) return 1;
  const front = Math.exp(-x + s * Math.log(x) - lnGamma(s));
  if (x < s + 1) {
    let term = 1 / s;
    let sum = term;
    for (let n = 1; n < 1000 && Math.abs(term) > 1e-16 * Math.abs(sum); n++) sum += term *= x / (s + n);
    return 1 - front * sum;
  }
  let b = x + 1 - s;
  let c = 1e300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - s);
    b += 2;
    d = an * d + b;
    d = Math.abs(d) < 1e-300 ? 1e-300 : d;
    c = b + an / c;
    c = Math.abs(c) < 1e-300 ? 1e-300 : c;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return front * h;
}

/** Pearson's chi-square of observed counts against probabilities (cells with expected < 5 pooled), and its p-value. */
function chiSquare(counts: number[], probs: number[]): { stat: number; df: number; p: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let [stat, cells, poolO, poolE] = [0, 0, 0, 0];
  for (let j = 0; j < counts.length; j++) {
    const e = n * probs[j];
    if (e < 5) {
      poolO += counts[j];
      poolE += e;
    } else {
      stat += (counts[j] - e) ** 2 / e;
      cells++;
    }
  }
  if (poolE > 0) {
    stat += (poolO - poolE) ** 2 / Math.max(poolE, 1e-300);
    cells++;
  }
  const df = cells - 1;
  return { stat, df, p: gammaQ(df / 2, stat / 2) };
}

const params = (m: Model) => new Map(m.parameterNames().map((n) => [n, m.param(n)]));

/** log p(next | prefix) for every next id, by the reference: V one-row passes differing only in the last target. */
function refLogp(model: Model, prefix: number[]): number[] {
  const T = prefix.length;
  const s0 = model.zeroState(1);
  const nll = CHARS.map((_, v) => {
    const y = [...prefix.slice(1), v];
    return ref.forward(model.config, params(model), { x: prefix, y, batchSize: 1, seqLength: T }, s0).loss * T;
  });
  // nll_v = common + (−log p(v)): normalise away the common part.
  const neg = nll.map((x) => -x);
  const max = Math.max(...neg);
  const lse = max + Math.log(neg.reduce((s, x) => s + Math.exp(x - max), 0));
  return neg.map((x) => x - lse);
}

const softmax = (logp: number[], T: number) => {
  const z = logp.map((x) => x / T);
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};

const ids = (text: string) => [...text].map((ch) => vocab.index.get(ch)!);

describe('sampling is a distribution', () => {
  const model = randomModel(config, 11, 2.5);
  const PRIME = 'fadebcab';
  const logpPrimed = refLogp(model, ids(PRIME));

  it('the self-checks: the p-value function, and the primed distribution differs from an unwarmed one', () => {
    // Q(k/2, x/2) against closed forms: df 2: e^{−x/2}; df 4: e^{−x/2}(1 + x/2); df 1: erfc(√(x/2)).
    for (const x of [0.3, 2, 9.5, 18.4668, 40]) {
      expect(gammaQ(1, x / 2)).toBeCloseTo(Math.exp(-x / 2), 12);
      expect(gammaQ(2, x / 2)).toBeCloseTo(Math.exp(-x / 2) * (1 + x / 2), 12);
    }
    expect(gammaQ(2, 18.4668 / 2)).toBeCloseTo(0.001, 6); // the 0.999 quantile of χ²(4) is 18.4668
    expect(gammaQ(2.5, 20.515 / 2)).toBeCloseTo(0.001, 5); // of χ²(5), 20.515
    // A prime text that did not warm the state would be seen: after the last prime character
    // alone, or from no prime at all, the probabilities are far from the primed ones.
    const pPrimed = softmax(logpPrimed, 1);
    const pLastOnly = softmax(refLogp(model, ids(PRIME.slice(-1))), 1);
    const tv = (p: number[], q: number[]) => p.reduce((s, x, j) => s + Math.abs(x - q[j]), 0) / 2;
    expect(tv(pPrimed, pLastOnly)).toBeGreaterThan(0.15);
    expect(Math.max(...pPrimed)).toBeLessThan(0.8); // not degenerate: every temperature below has work to do
  });

  for (const T of [0.5, 1, 1.7]) {
    it(`temperature ${T}: the first character after the prime text follows softmax(logp / ${T}) (χ², p > ${P_MIN})`, () => {
      const probs = softmax(logpPrimed, T);
      const counts = new Array(V).fill(0);
      for (let seed = 1; seed <= DRAWS; seed++) {
        const out = sample(model, vocab, { primetext: PRIME, length: 1, temperature: T, seed });
        counts[vocab.index.get(out)!]++;
      }
      const { stat, df, p } = chiSquare(counts, probs);
      expect(df).toBeGreaterThanOrEqual(2);
      if (!(p > P_MIN)) throw new Error(`χ² = ${stat.toFixed(2)}, df ${df}, p = ${p.toExponential(2)}: counts ${counts} vs expected ${probs.map((q) => (q * DRAWS).toFixed(1))}`);
    });
  }

  it('a later character: the second one follows softmax(logp) given the prime text and the first', () => {
    // Fix the first sampled character by conditioning: keep the seeds whose first draw is 'c'.
    const first = 'c';
    const probs = softmax(refLogp(model, ids(PRIME + first)), 1);
    const counts = new Array(V).fill(0);
    let kept = 0;
    for (let seed = 1; kept < DRAWS; seed++) {
      const out = sample(model, vocab, { primetext: PRIME, length: 2, seed });
      if (out[0] !== first) continue;
      kept++;
      counts[vocab.index.get(out[1])!]++;
    }
    const { stat, df, p } = chiSquare(counts, probs);
    if (!(p > P_MIN)) throw new Error(`χ² = ${stat.toFixed(2)}, df ${df}, p = ${p.toExponential(2)}: ${counts}`);
  });

  it('without a prime text the first character is uniform (χ², p > 0.001)', () => {
    const counts = new Array(V).fill(0);
    for (let seed = 1; seed <= DRAWS; seed++) counts[vocab.index.get(sample(model, vocab, { length: 1, seed }))!]++;
    const { stat, df, p } = chiSquare(counts, new Array(V).fill(1 / V));
    expect(df).toBe(V - 1);
    if (!(p > P_MIN)) throw new Error(`χ² = ${stat.toFixed(2)}, p = ${p}: ${counts}`);
  });

  it('argmax takes the most likely character at every step (by the reference, given everything before)', () => {
    const out = sample(model, vocab, { primetext: PRIME, length: 12, argmax: true, seed: 3 });
    let text = PRIME;
    for (const ch of out) {
      const lp = refLogp(model, ids(text));
      const best = lp.indexOf(Math.max(...lp));
      expect(ch).toBe(CHARS[best]);
      text += ch;
    }
    // Whichever character the decoder's bias makes most likely (first, middle or last) is taken.
    const biased = randomModel(config, 11, 2.5);
    for (let v = 0; v < V; v++) {
      const bias = biased.param('decoder.bias');
      bias.set(model.param('decoder.bias'));
      bias[v] += 50;
      expect(sample(biased, vocab, { primetext: PRIME, length: 3, argmax: true })).toBe(CHARS[v].repeat(3));
    }
    // Seeds do not matter with argmax.
    expect(sample(model, vocab, { primetext: PRIME, length: 12, argmax: true, seed: 99 })).toBe(out);
  });
});
