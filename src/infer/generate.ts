/**
 * Using a trained model: sampling text (char-rnn's sample.lua) and measuring the loss of a text
 * read as one stream.
 */
import type { Vocab } from '../train/data-core.js';
import type { Float, Kernels } from '../nn/kernels.js';
import type { ForwardResult, Model, State } from '../nn/model.js';
import { checkPositiveInt } from '../nn/params.js';
import { Rng } from '../nn/rng.js';

export interface SampleOptions {
  /** Number of characters to generate. Default 2000. */
  length?: number;
  /** Divides the log-probabilities before sampling: < 1 is more conservative. Default 1. */
  temperature?: number;
  /** Text fed through the model first to warm up the state; it is not part of the output. */
  primetext?: string;
  /** Always take the most likely character (deterministic) instead of sampling. */
  argmax?: boolean;
  /** Seed for sampling. Default 123. */
  seed?: number;
  /** Called with each character as it is generated. */
  onChar?: (ch: string) => void;
}

/**
 * Generates `length` characters. With a prime text, its characters are fed one by one and the
 * prediction after the last one gives the first sampled character; without one, the first
 * character is drawn uniformly from the vocabulary (as char-rnn does).
 * Returns the generated text (without the prime text).
 */
export function sample(model: Model, vocab: Vocab, options: SampleOptions = {}): string {
  const length = options.length ?? 2000;
  const temperature = options.temperature ?? 1;
  if (!Number.isInteger(length) || length < 0) throw new Error(`--length must be a whole number ≥ 0, got ${length}`);
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`--temperature must be a number > 0, got ${temperature}`);
  if (temperature < 1e-300) {
    throw new Error(`--temperature ${temperature} is too small to compute with (below 1e-300); use argmax for the most likely character each time`);
  }
  const V = model.config.vocabSize;
  if (vocab.chars.length !== V) throw new Error(`vocabulary has ${vocab.chars.length} characters but the model has ${V}`);
  const rng = new Rng(options.seed ?? 123);
  const state = model.zeroState(1);
  const token = new Int32Array(1);

  const prime = options.primetext ?? '';
  if (prime.length > 0) checkPrimetext(prime, vocab);
  // The weights stay the same for every character: let the model prepare them once.
  return model.inference(() => {
    let logp: Float | null = null;
    for (const ch of prime) {
      token[0] = vocab.index.get(ch)!;
      logp = model.step(token, state);
    }
    const probs = probsBuffer(model, V);
    let out = '';
    for (let i = 0; i < length; i++) {
      let id: number;
      if (logp === null) id = rng.int(V);
      else if (options.argmax) id = argmax(logp, V);
      else id = draw(model.kernels, logp, V, 1 / temperature, probs, rng);
      const ch = vocab.chars[id];
      out += ch;
      options.onChar?.(ch);
      token[0] = id;
      logp = model.step(token, state);
    }
    return out;
  });
}

/** Throws an error listing the characters of `prime` that are not in the vocabulary. */
export function checkPrimetext(prime: string, vocab: Vocab): void {
  const missing = [...new Set([...prime].filter((ch) => !vocab.index.has(ch)))];
  if (missing.length > 0) {
    throw new Error(
      `--primetext has characters that are not in the model's vocabulary: ${missing.map((c) => JSON.stringify(c)).join(' ')}; ` +
        'remove them or use only characters the model was trained on',
    );
  }
}

function argmax(a: Float, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (a[j] > a[best]) best = j;
  return best;
}

/**
 * A buffer of V elements in the model's kernels for draw(), one per model and kept with it, as
 * the model keeps its own buffers (so it lives exactly as long as they do, also when the memory
 * is handed out in scopes with kernels.mark / release).
 */
const probsBuffers = new WeakMap<Model, Float>();
function probsBuffer(model: Model, V: number): Float {
  let p = probsBuffers.get(model);
  if (p === undefined || p.length < V) probsBuffers.set(model, (p = model.kernels.alloc(V)));
  return p;
}

/**
 * Draws an index from softmax(logp / temperature), as char-rnn does (torch.multinomial on the
 * normalised exp(prediction / temperature)): p_j ∝ exp((logp_j − max)·invT), by the kernels, and
 * the first j whose cumulative p exceeds u·Σp for u uniform in [0, 1).
 */
function draw(kernels: Kernels, logp: Float, V: number, invT: number, probs: Float, rng: Rng): number {
  const sum = kernels.softmaxScaled(probs, logp, V, invT);
  if (!(sum >= 1 && sum < Infinity)) {
    throw new Error('the model gave NaN log-probabilities, so nothing can be sampled; its weights hold NaN or Infinity (retrain, or use an earlier checkpoint)');
  }
  let u = rng.uniform() * sum;
  for (let j = 0; j < V; j++) {
    u -= probs[j];
    if (u < 0) return j;
  }
  return V - 1;
}

export interface TextLoss {
  /** Mean NLL per character, nats. */
  loss: number;
  /** The same in bits per character. */
  bpc: number;
  /** Number of next-character predictions (n − 1 for n characters). */
  predictions: number;
}

/**
 * The mean NLL of every next-character prediction of `ids`, read as one stream (batch 1) from a
 * zero state with the state carried through, in chunks of `seqLength` steps.
 */
export function evaluateIds(model: Model, ids: ArrayLike<number>, seqLength = 100): TextLoss {
  const n = ids.length;
  if (n < 2) throw new Error(`the text has ${n} character(s); at least 2 are needed to predict anything`);
  let total = 0;
  model.inference(() => {
    forwardChunks(model, ids, seqLength, model.zeroState(1), (_start, T, r) => {
      total += r.loss * T;
    });
  });
  const loss = total / (n - 1);
  return { loss, bpc: loss / Math.LN2, predictions: n - 1 };
}

/**
 * The chunk loop of evaluation, shared by evaluateIds and trace() (src/infer/trace.ts): runs positions
 * 0 … n−2 of `ids` (each predicting the next id) as one stream, batch 1, from `state`, in chunks
 * of `seqLength` steps starting at 0, seqLength, 2·seqLength, … Calls `onChunk(start, T, result)`
 * right after each chunk's forward pass, while the model's activations of that chunk are in
 * place (model.activations()); returning false stops the loop. Returns the state after the last
 * chunk that ran. Evaluation runs it inside model.inference().
 */
export function forwardChunks(
  model: Model,
  ids: ArrayLike<number>,
  seqLength: number,
  state: State,
  onChunk: (start: number, T: number, result: ForwardResult) => boolean | void,
): State {
  const n = ids.length;
  checkPositiveInt('seqLength', seqLength); // (0 would never advance)
  for (let start = 0; start < n - 1; start += seqLength) {
    const T = Math.min(seqLength, n - 1 - start);
    const x = Array.prototype.slice.call(ids, start, start + T) as number[];
    const y = Array.prototype.slice.call(ids, start + 1, start + 1 + T) as number[];
    const r = model.forward({ x, y, batchSize: 1, seqLength: T }, state);
    state = r.finalState;
    if (onChunk(start, T, r) === false) break;
  }
  return state;
}
