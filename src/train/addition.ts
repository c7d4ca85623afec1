/**
 * The addition task (the seed's `-task addition`, the paper's section 4.1 in miniature): the
 * model reads a sum of two D-digit numbers one character per step and writes its answer.
 * Sequences are generated on the fly from the run's seed (no data file), each exactly T
 * characters (T = --seq-length) with the answer at its end:
 *
 *   [pad × (T − 3D − 3)]  a (D digits)  +  b (D digits)  =  answer (D + 1 digits, reversed)
 *
 *   D = 3, T = 15:   "   123+958=1801"   (123 + 958 = 1081, its 4 digits written reversed)
 *
 * - The operands are uniform on 0 … 10^D − 1, written with exactly D digits (leading zeros), most
 *   significant digit first, as a reader writes them.
 * - The answer has exactly D + 1 digits (a leading zero when there is no final carry) and is
 *   written reversed, least significant digit first: that is the order in which a left-to-right
 *   reader can compute it (each digit needs only the two operand digits of its place and the
 *   carry out of the digit it has just written), while the most significant digit first would
 *   need the whole carry chain before the first character.
 * - The padding (spaces) goes in front, so that every sequence ends with its answer and the "="
 *   (the target delimiter) sits at position T − (D + 2), where the seed puts it.
 * - Inputs x are the T characters; the target of position t is character t + 1. Only the
 *   answer's D + 1 characters are scored: positions T − D − 2 … T − 2 (whose inputs are "=" and
 *   the answer's first D digits). Every other target is −1 (not scored, src/nn/model.ts); the
 *   last position has nothing after it and is never scored.
 * - Every sequence starts from a zero state (the sums are independent; sampling starts from zero
 *   too), so the training state is not carried from batch to batch as it is for text.
 *
 * Streams: sum i of a stream is made of 2D digit draws of the counter generator (src/nn/rng.ts)
 * starting at draw 2D·i, so any batch can be made directly (a resume needs only the batch
 * index). The training stream starts at a state drawn from the seed and is endless; the
 * validation sums are the same counter 2³¹ draws further on (a training run reaches them only
 * after 2³¹ digit draws: 268 million sums at D = 4), and `eval`'s 2³⁰ draws on. The same sum
 * can still occur in two streams by chance (there are 10^(2D) of them).
 */
import type { Model } from '../nn/model.js';
import { Rng } from '../nn/rng.js';
import type { Float } from '../nn/kernels.js';
import { type Split, type Vocab, vocabFromChars } from './data-core.js';

/** The padding character, in front of the sum. */
export const ADDITION_PAD = ' ';

/** The task's fixed vocabulary, in code-point order: space, +, 0 … 9, =. */
export const ADDITION_CHARS: readonly string[] = [ADDITION_PAD, '+', ...'0123456789', '='];

/** Batches of the training stream that count as an epoch (the stream itself never ends). */
export const ADDITION_EPOCH_BATCHES = 1000;

/** Sums in the validation set, at least (rounded up to whole batches). */
export const ADDITION_VAL_SUMS = 2000;

/** What a run of the addition task is: the operands' digits and the sequence length. */
export interface AdditionSpec {
  digitLength: number;
  seqLength: number;
}

/** The task's vocabulary (ids in {@link ADDITION_CHARS} order). */
export function additionVocab(): Vocab {
  return vocabFromChars([...ADDITION_CHARS]);
}

/** The shortest sequence that holds a sum of D-digit numbers and its answer: 3D + 3. */
export function additionMinLength(digitLength: number): number {
  return 3 * digitLength + 3;
}

/** Throws a one-line error unless D is a whole number ≥ 1 and T ≥ 3D + 3 (whole). */
export function checkAdditionSpec(spec: AdditionSpec): void {
  const D = spec.digitLength;
  if (!(typeof D === 'number' && Number.isInteger(D) && D >= 1 && D <= 1000)) {
    throw new Error(`--digit-length must be a whole number from 1 to 1000 (the digits of each operand), got ${D}`);
  }
  const T = spec.seqLength;
  const need = additionMinLength(D);
  if (!(typeof T === 'number' && Number.isInteger(T) && T >= need)) {
    throw new Error(
      `--seq-length ${T} is too short for --task addition --digit-length ${D}: "a+b=" and the ${D + 1}-digit answer ` +
        `take 3·${D} + 3 = ${need} characters; use --seq-length ${need} or more, or a smaller --digit-length`,
    );
  }
}

/** The answer of a + b (digit strings of equal length D) as D + 1 digits, most significant first. */
export function addDigits(a: string, b: string): string {
  let carry = 0;
  let out = '';
  for (let i = a.length - 1; i >= 0; i--) {
    const s = a.charCodeAt(i) - 48 + (b.charCodeAt(i) - 48) + carry;
    out = String(s % 10) + out;
    carry = s >= 10 ? 1 : 0;
  }
  return String(carry) + out;
}

/** The T characters of the sequence for a + b (D-digit strings): padding, "a+b=", the reversed answer. */
export function additionSequence(a: string, b: string, seqLength: number): string {
  const D = a.length;
  checkAdditionSpec({ digitLength: D, seqLength });
  if (!/^[0-9]+$/.test(a) || !/^[0-9]+$/.test(b) || b.length !== D) {
    throw new Error(`the operands must be two strings of ${D} digits, got ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
  }
  const answer = [...addDigits(a, b)].reverse().join('');
  return ADDITION_PAD.repeat(seqLength - additionMinLength(D)) + `${a}+${b}=${answer}`;
}

/** The position of "=" in every sequence: T − (D + 2); the scored targets are that one and the next D. */
export function delimiterPosition(spec: AdditionSpec): number {
  return spec.seqLength - (spec.digitLength + 2);
}

/**
 * Writes sequence `text` (T characters of the task's vocabulary) as row `row` of a [B, T] batch:
 * x its ids, y the next id at the answer's D + 1 positions and −1 everywhere else.
 */
export function encodeSequence(text: string, spec: AdditionSpec, vocab: Vocab, x: Int32Array, y: Int32Array, row: number): void {
  const T = spec.seqLength;
  const chars = [...text];
  if (chars.length !== T) throw new Error(`an addition sequence must have ${T} characters, got ${chars.length}`);
  const ids = chars.map((c) => {
    const id = vocab.index.get(c);
    if (id === undefined) throw new Error(`${JSON.stringify(c)} is not a character of the addition task (digits, +, = and space)`);
    return id;
  });
  const first = delimiterPosition(spec);
  for (let t = 0; t < T; t++) {
    x[row * T + t] = ids[t];
    y[row * T + t] = t >= first && t < T - 1 ? ids[t + 1] : -1;
  }
}

/** The 2D digits of sum i of the stream whose counter starts at `base`: [a, b] as digit strings. */
export function streamOperands(base: number, i: number, digitLength: number): [string, string] {
  const rng = new Rng(0);
  rng.state = base >>> 0;
  rng.skip(2 * digitLength * i);
  let a = '';
  let b = '';
  for (let j = 0; j < digitLength; j++) a += String(rng.int(10));
  for (let j = 0; j < digitLength; j++) b += String(rng.int(10));
  return [a, b];
}

/** The counter starts of the training and validation streams of a seed. */
export function additionStreams(seed: number): { train: number; val: number } {
  const train = new Rng(seed ^ 0x2b2b2b2b).nextU32();
  return { train, val: (train + 2 ** 31) >>> 0 };
}

/**
 * Batches of the addition task, with the interface of CharLoader that the Trainer uses: the
 * train split is the endless training stream (batch k = its sums k·B … k·B + B − 1; an epoch is
 * {@link ADDITION_EPOCH_BATCHES} batches, and the position never wraps), the val split the
 * first ⌈2000 / B⌉·B sums of the validation stream, the same at every validation; no test split.
 */
export class AdditionLoader {
  readonly batchSize: number;
  readonly seqLength: number;
  readonly digitLength: number;
  readonly spec: AdditionSpec;
  readonly vocab: Vocab;
  /** Batches of an epoch plus those of the validation set (recorded in checkpoints as the run's batch count). */
  readonly nbatches: number;
  readonly splitSizes: Readonly<Record<Split, number>>;
  batchIx: Record<Split, number> = { train: 0, val: 0, test: 0 };
  readonly warnings: string[] = [];
  private readonly streams: { train: number; val: number };

  constructor(spec: AdditionSpec, batchSize: number, seed: number) {
    checkAdditionSpec(spec);
    if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`--batch-size must be a positive integer, got ${batchSize}`);
    this.spec = { digitLength: spec.digitLength, seqLength: spec.seqLength };
    this.digitLength = spec.digitLength;
    this.seqLength = spec.seqLength;
    this.batchSize = batchSize;
    this.vocab = additionVocab();
    this.streams = additionStreams(seed);
    const val = Math.ceil(ADDITION_VAL_SUMS / batchSize);
    this.splitSizes = { train: ADDITION_EPOCH_BATCHES, val, test: 0 };
    this.nbatches = ADDITION_EPOCH_BATCHES + val;
  }

  requireSplit(split: Split): void {
    if (split === 'test') throw new Error('the addition task has no test split; evaluate a checkpoint with `grid-lstm eval`');
  }

  /** Whether `k` is a batch position of `split` (any k ≥ 0 for the endless training stream). */
  hasPosition(split: Split, k: number): boolean {
    return Number.isInteger(k) && k >= 0 && (split === 'train' || k < Math.max(this.splitSizes[split], 1));
  }

  /** The next batch of `split`; the training position counts up without end, the validation one wraps. */
  nextBatch(split: Split, x: Int32Array, y: Int32Array): void {
    const k = this.batchIx[split];
    this.getBatch(split, k, x, y);
    this.batchIx[split] = split === 'train' || k + 1 < this.splitSizes[split] ? k + 1 : 0;
  }

  /** Batch `k` of `split` into x and y ([B, T] row-major; y −1 where not scored). */
  getBatch(split: Split, k: number, x: Int32Array, y: Int32Array): void {
    this.requireSplit(split);
    if (!this.hasPosition(split, k)) throw new Error(`batch ${k} does not exist: the ${split} split has batches 0..${this.splitSizes[split] - 1}`);
    const B = this.batchSize;
    const T = this.seqLength;
    if (x.length !== B * T || y.length !== B * T) throw new Error(`batch buffers hold ${x.length} and ${y.length} ids but a batch is ${B}×${T} = ${B * T}`);
    const base = split === 'train' ? this.streams.train : this.streams.val;
    for (let b = 0; b < B; b++) {
      const [a, c] = streamOperands(base, k * B + b, this.digitLength);
      encodeSequence(additionSequence(a, c, T), this.spec, this.vocab, x, y, b);
    }
  }
}

/** Answers right, as counted by {@link answerAccuracy}. */
export interface AnswerCounts {
  /** Scored characters, and those whose most likely prediction was the target. */
  chars: number;
  correctChars: number;
  /** Sequences with a scored character, and those with every scored character right. */
  numbers: number;
  correctNumbers: number;
}

/**
 * Counts the argmax predictions that equal their targets over the scored positions (y ≥ 0) of
 * a batch: `logp` [T·B, V] time-major (the model's log-probabilities, Model.activations()), y
 * [B, T] row-major. A number is right when every scored character of its sequence is.
 */
export function answerAccuracy(logp: Float, y: ArrayLike<number>, B: number, T: number, V: number): AnswerCounts {
  const r: AnswerCounts = { chars: 0, correctChars: 0, numbers: 0, correctNumbers: 0 };
  for (let b = 0; b < B; b++) {
    let scored = 0;
    let right = 0;
    for (let t = 0; t < T; t++) {
      const target = y[b * T + t];
      if (target < 0) continue;
      const row = (t * B + b) * V;
      let best = 0;
      for (let v = 1; v < V; v++) if (logp[row + v] > logp[row + best]) best = v;
      scored++;
      if (best === target) right++;
    }
    r.chars += scored;
    r.correctChars += right;
    if (scored > 0) {
      r.numbers++;
      if (right === scored) r.correctNumbers++;
    }
  }
  return r;
}

/** Reads "a+b=" (D-digit operands), with or without its answer, for sample's --primetext: [a, b] or null. */
export function parseSum(text: string, digitLength: number): { a: string; b: string; answer: string } | null {
  const m = /^ *([0-9]+)\+([0-9]+)=([0-9]*)$/.exec(text);
  if (!m || m[1].length !== digitLength || m[2].length !== digitLength || m[3].length > digitLength + 1) return null;
  return { a: m[1], b: m[2], answer: m[3] };
}

/**
 * What the model reads for a sum parsed by {@link parseSum} (spaces typed in front of it left
 * out): the sum laid out as in training, T − (3D + 3) spaces in front, as far as it goes, so its
 * "=" sits at T − (D + 2); with the whole answer, the sequence {@link additionSequence} makes.
 */
export function sumPrefix(sum: { a: string; b: string; answer: string }, seqLength: number): string {
  return ADDITION_PAD.repeat(seqLength - additionMinLength(sum.a.length)) + `${sum.a}+${sum.b}=${sum.answer}`;
}

/** What {@link evaluateSums} measures. */
export interface SumsResult extends AnswerCounts {
  /** Mean NLL per answer character (nats). */
  loss: number;
}

/**
 * The loss and accuracy of a model of the addition task over `count` sums, sequence i being
 * `sequence(i)` (T characters: {@link additionSequence}), in batches of up to `batchSize`, each
 * sum from a zero state, the weights held constant (Model.inference).
 */
export function evaluateSums(
  model: Model,
  spec: AdditionSpec,
  count: number,
  sequence: (i: number) => string,
  batchSize = 50,
): SumsResult {
  const vocab = additionVocab();
  if (model.config.vocabSize !== vocab.chars.length) throw new Error("the model's vocabulary is not the addition task's");
  const T = spec.seqLength;
  const V = vocab.chars.length;
  const r: SumsResult = { loss: 0, chars: 0, correctChars: 0, numbers: 0, correctNumbers: 0 };
  let nll = 0;
  model.inference(() => {
    for (let first = 0; first < count; first += batchSize) {
      const B = Math.min(batchSize, count - first);
      const x = new Int32Array(B * T);
      const y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) encodeSequence(sequence(first + b), spec, vocab, x, y, b);
      const f = model.forward({ x, y, batchSize: B, seqLength: T }, model.zeroState(B));
      const c = answerAccuracy(model.activations()!.logp, y, B, T, V);
      nll += f.loss * c.chars;
      r.chars += c.chars;
      r.correctChars += c.correctChars;
      r.numbers += c.numbers;
      r.correctNumbers += c.correctNumbers;
    }
  });
  r.loss = r.chars > 0 ? nll / r.chars : 0;
  return r;
}

/** The counter start of the sums `eval` generates for a seed: 2³⁰ draws past the training stream's start, 2³⁰ before the validation's. */
export function evalStream(seed: number): number {
  return (additionStreams(seed).train + 2 ** 30) >>> 0;
}
