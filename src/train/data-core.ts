/**
 * The character data pipeline, the part that runs anywhere (no platform API): a character
 * vocabulary, encoding text to integer ids and back, and cutting the id stream into minibatches
 * the way char-rnn's CharSplitLMMinibatchLoader does. src/train/data.ts adds reading files and the
 * built-in corpus.
 *
 * A "character" here is one Unicode code point (not one UTF-16 unit), so emoji and other astral
 * characters are single vocabulary entries.
 */

// ---------------------------------------------------------------------------------------------
// Vocabulary, encoding and decoding
// ---------------------------------------------------------------------------------------------

/** A character vocabulary: ids are positions in `chars`. */
export interface Vocab {
  /** id -> character; each entry is exactly one code point. */
  chars: string[];
  /** character -> id (the inverse of `chars`). */
  index: Map<string, number>;
}

/** True if `u` is a UTF-16 high (leading) surrogate. */
function isHigh(u: number): boolean {
  return u >= 0xd800 && u <= 0xdbff;
}

/** True if `u` is a UTF-16 low (trailing) surrogate. */
function isLow(u: number): boolean {
  return u >= 0xdc00 && u <= 0xdfff;
}

/**
 * The vocabulary of `text`: its distinct code points sorted by code point value (so astral
 * characters come after all BMP ones, unlike a UTF-16 sort). A lone surrogate counts as its own
 * character, as in `for...of`.
 */
export function buildVocab(text: string): Vocab {
  const seenBmp = new Uint8Array(0x10000);
  const astral = new Set<number>();
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const u = text.charCodeAt(i);
    if (isHigh(u) && i + 1 < n) {
      const v = text.charCodeAt(i + 1);
      if (isLow(v)) {
        astral.add(((u - 0xd800) << 10) + (v - 0xdc00) + 0x10000);
        i++;
        continue;
      }
    }
    seenBmp[u] = 1;
  }
  const codes: number[] = [];
  for (let u = 0; u < 0x10000; u++) if (seenBmp[u]) codes.push(u);
  codes.push(...[...astral].sort((a, b) => a - b));
  // fromCodePoint rejects nothing here: BMP values (including lone surrogates) and valid astrals.
  return vocabFromChars(codes.map((c) => String.fromCodePoint(c)));
}

/**
 * A vocabulary from a list of characters (e.g. read from a checkpoint), keeping their order as the
 * ids. Throws if an entry is not exactly one code point or appears twice.
 */
export function vocabFromChars(chars: string[]): Vocab {
  const index = new Map<string, number>();
  chars.forEach((c, i) => {
    if (typeof c !== 'string' || c.length === 0 || c.length > 2 || [...c].length !== 1) {
      throw new Error(
        `vocabulary entry ${i} is ${JSON.stringify(c)}, not exactly one character; ` +
          'the vocabulary is corrupt, rebuild it from the training text',
      );
    }
    const prev = index.get(c);
    if (prev !== undefined) {
      throw new Error(
        `vocabulary entries ${prev} and ${i} are both ${JSON.stringify(c)}; ` +
          'the vocabulary is corrupt, rebuild it from the training text',
      );
    }
    index.set(c, i);
  });
  return { chars: [...chars], index };
}

/** Most unknown characters listed by name in an {@link encode} error. */
const MAX_UNKNOWN_SHOWN = 20;

/**
 * Encodes `text` as vocabulary ids, one per code point. Returns a `Uint16Array` when the
 * vocabulary has at most 65536 entries (ids fit in 2 bytes), else a `Uint32Array`.
 *
 * Throws one error listing every character missing from the vocabulary (at most 20 shown).
 */
export function encode(text: string, vocab: Vocab): Uint16Array | Uint32Array {
  // Lookup tables: a flat array for BMP characters (fast path) and a map for astral ones.
  const bmp = new Int32Array(0x10000).fill(-1);
  const astral = new Map<number, number>();
  for (const [c, id] of vocab.index) {
    const cp = c.codePointAt(0)!;
    if (c.length === 1) bmp[cp] = id;
    else astral.set(cp, id);
  }
  const n = text.length;
  const out = vocab.chars.length <= 0x10000 ? new Uint16Array(n) : new Uint32Array(n);
  const unknown = new Set<string>();
  let count = 0;
  for (let i = 0; i < n; i++) {
    const u = text.charCodeAt(i);
    let id: number;
    if (isHigh(u) && i + 1 < n && isLow(text.charCodeAt(i + 1))) {
      const cp = ((u - 0xd800) << 10) + (text.charCodeAt(i + 1) - 0xdc00) + 0x10000;
      id = astral.get(cp) ?? -1;
      if (id < 0) unknown.add(String.fromCodePoint(cp));
      i++;
    } else {
      id = bmp[u]!;
      if (id < 0) unknown.add(String.fromCharCode(u));
    }
    out[count++] = id;
  }
  if (unknown.size > 0) throw unknownCharsError([...unknown]);
  // Surrogate pairs took two units but one id: trim the unused tail.
  return count === n ? out : out.slice(0, count);
}

/** Ids decoded per `String.fromCharCode` call in {@link decode} (well below argument limits). */
const DECODE_CHUNK = 8192;

/** The text for a sequence of vocabulary ids. Throws on an id outside the vocabulary. */
export function decode(ids: ArrayLike<number>, vocab: Vocab): string {
  const size = vocab.chars.length;
  // UTF-16 units of each id: one or two.
  const unit0 = new Uint16Array(size);
  const unit1 = new Int32Array(size).fill(-1);
  vocab.chars.forEach((c, i) => {
    unit0[i] = c.charCodeAt(0);
    if (c.length === 2) unit1[i] = c.charCodeAt(1);
  });
  const pieces: string[] = [];
  const buf = new Uint16Array(DECODE_CHUNK + 1);
  let len = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!(Number.isInteger(id) && id >= 0 && id < size)) {
      throw new Error(
        `id ${id} at position ${i} is not in the vocabulary (ids 0..${size - 1}); ` +
          'decode with the vocabulary the ids were made with',
      );
    }
    buf[len++] = unit0[id]!;
    const second = unit1[id]!;
    if (second >= 0) buf[len++] = second;
    if (len >= DECODE_CHUNK) {
      pieces.push(String.fromCharCode.apply(null, buf.subarray(0, len) as unknown as number[]));
      len = 0;
    }
  }
  pieces.push(String.fromCharCode.apply(null, buf.subarray(0, len) as unknown as number[]));
  return pieces.join('');
}

// ---------------------------------------------------------------------------------------------
// Corpora
// ---------------------------------------------------------------------------------------------

/** A text as vocabulary ids (one per code point), with its vocabulary. */
export interface Corpus {
  /** 2 bytes per character when the vocabulary has at most 65536 entries, else 4. */
  ids: Uint16Array | Uint32Array;
  vocab: Vocab;
}

/** The error {@link encode} gives for characters missing from the vocabulary. */
export function unknownCharsError(list: string[]): Error {
  const shown = list.slice(0, MAX_UNKNOWN_SHOWN).map((c) => JSON.stringify(c)).join(', ');
  const more = list.length > MAX_UNKNOWN_SHOWN ? ` and ${list.length - MAX_UNKNOWN_SHOWN} more` : '';
  return new Error(
    `the checkpoint's vocabulary does not contain ${list.length} character(s) of the text: ` +
      `${shown}${more}; use only characters the model was trained on`,
  );
}

/** A corpus from a string: its own vocabulary, or `vocab` (which must contain all its characters). */
export function corpusFromText(text: string, vocab?: Vocab): Corpus {
  const v = vocab ?? buildVocab(text);
  return { ids: encode(text, v), vocab: v };
}

// ---------------------------------------------------------------------------------------------
// Minibatches
// ---------------------------------------------------------------------------------------------

/** The three data splits. */
export type Split = 'train' | 'val' | 'test';

/** Fractions of the batches given to training and validation; the rest is the test split. */
export interface SplitFractions {
  trainFrac: number;
  valFrac: number;
}

/** Fewer batches than this triggers a warning (char-rnn's threshold). */
const FEW_BATCHES = 50;

/** Slack for floating-point round-off when turning fractions into batch counts. */
const FRAC_EPS = 1e-9;

/**
 * char-rnn's CharSplitLMMinibatchLoader over an id stream, with one difference: the last target
 * is the true next character rather than a wrap-around to the first one.
 *
 * Of the n ids, m = B·T·floor((n−1)/(B·T)) are used as inputs (ids[0..m)) with targets ids[1..m+1).
 * Both are cut into B contiguous streams of length S = m/B; batch k is columns k·T..k·T+T−1 of
 * every stream, laid out [B, T] row-major. The nbatches = S/T batches are split in order into
 * train, val and test. Batches are copied out of `ids` on demand; nothing else is stored.
 */
export class CharLoader {
  /** B: rows (independent streams) per batch. */
  readonly batchSize: number;
  /** T: time steps per batch. */
  readonly seqLength: number;
  /** The split fractions, as given (test is the remainder). */
  readonly fracs: Readonly<SplitFractions>;
  /** Total number of batches over all splits. */
  readonly nbatches: number;
  /** Length S of each of the B streams (nbatches·T). */
  readonly streamLength: number;
  /** Number of batches in each split. */
  readonly splitSizes: Readonly<Record<Split, number>>;
  /**
   * Position of the next batch of each split for {@link nextBatch}. Public so training can save it
   * in a checkpoint and restore it to resume exactly.
   */
  batchIx: Record<Split, number> = { train: 0, val: 0, test: 0 };
  /** Advice for the user (e.g. very few batches); empty if all is well. */
  readonly warnings: string[] = [];

  private readonly ids: Uint16Array | Uint32Array;
  /** Index of each split's first batch among all batches. */
  private readonly splitStart: Readonly<Record<Split, number>>;

  constructor(
    ids: Uint16Array | Uint32Array,
    batchSize: number,
    seqLength: number,
    fracs: SplitFractions,
  ) {
    checkPositiveInt('--batch-size', batchSize);
    checkPositiveInt('--seq-length', seqLength);
    const { trainFrac, valFrac } = fracs;
    checkFrac('--train-frac', trainFrac);
    checkFrac('--val-frac', valFrac);
    if (trainFrac + valFrac > 1 + FRAC_EPS) {
      throw new Error(
        `--train-frac ${trainFrac} plus --val-frac ${valFrac} is more than 1; lower one of them`,
      );
    }
    this.ids = ids;
    this.batchSize = batchSize;
    this.seqLength = seqLength;
    this.fracs = { trainFrac, valFrac };

    const n = ids.length;
    const perBatch = batchSize * seqLength;
    this.nbatches = n >= 1 ? Math.floor((n - 1) / perBatch) : 0;
    if (this.nbatches === 0) throw new Error(tooShortMessage(n, batchSize, seqLength));
    this.streamLength = this.nbatches * seqLength;

    this.splitSizes = splitCounts(this.nbatches, this.fracs);
    const { train: ntrain, val: nval } = this.splitSizes;
    this.splitStart = { train: 0, val: ntrain, test: ntrain + nval };

    if (this.nbatches < FEW_BATCHES) {
      this.warnings.push(
        `only ${this.nbatches} batch(es) of ${batchSize}×${seqLength} characters fit in the ` +
          `${n}-character text (fewer than ${FEW_BATCHES}); ` +
          'this is a very small dataset, consider lowering --batch-size or --seq-length',
      );
    }
  }

  /** Throws a one-line error if `split` has no batches (call for every split the run needs). */
  requireSplit(split: Split): void {
    if (this.splitSizes[split] > 0) return;
    const fix =
      split === 'train'
        ? 'raise --train-frac'
        : split === 'val'
          ? 'raise --val-frac'
          : 'lower --train-frac/--val-frac so they sum to less than 1';
    throw new Error(
      `the ${split} split is empty (${this.nbatches} batches in all, ` +
        `--train-frac ${this.fracs.trainFrac} --val-frac ${this.fracs.valFrac}); ` +
        `lower --batch-size/--seq-length or ${fix}`,
    );
  }

  /**
   * Fills `x` (inputs) and `y` (targets), each of length B·T, with the next batch of `split`, then
   * advances that split's position, wrapping to 0 after its last batch.
   */
  nextBatch(split: Split, x: Int32Array, y: Int32Array): void {
    this.requireSplit(split);
    const size = this.splitSizes[split];
    const k = this.batchIx[split];
    if (!(Number.isInteger(k) && k >= 0 && k < size)) {
      throw new Error(
        `batch position ${k} is outside the ${split} split (${size} batches); ` +
          'resume with the same data, --batch-size, --seq-length and split fractions',
      );
    }
    this.getBatch(split, k, x, y);
    this.batchIx[split] = k + 1 === size ? 0 : k + 1;
  }

  /** Fills `x` and `y` with batch `k` (0-based) of `split` without changing any position. */
  getBatch(split: Split, k: number, x: Int32Array, y: Int32Array): void {
    const size = this.splitSizes[split];
    if (!(Number.isInteger(k) && k >= 0 && k < size)) {
      throw new Error(`batch ${k} does not exist: the ${split} split has batches 0..${size - 1}`);
    }
    const B = this.batchSize;
    const T = this.seqLength;
    if (x.length !== B * T || y.length !== B * T) {
      throw new Error(
        `batch buffers hold ${x.length} and ${y.length} ids but a batch is ${B}×${T} = ${B * T}; ` +
          'allocate x and y with batchSize*seqLength elements',
      );
    }
    const col = (this.splitStart[split] + k) * T;
    const S = this.streamLength;
    for (let b = 0; b < B; b++) {
      const src = b * S + col;
      x.set(this.ids.subarray(src, src + T), b * T);
      y.set(this.ids.subarray(src + 1, src + 1 + T), b * T);
    }
  }
}

/**
 * How `nbatches` batches are split, as char-rnn's CharSplitLMMinibatchLoader does: train gets
 * floor(nbatches · trainFrac); when there is a test split (1 − trainFrac − valFrac > 0), val gets
 * floor(nbatches · valFrac) and test the rest; when there is none, val gets the rest. The epsilon
 * keeps e.g. 100 · 0.29 = 28.999999999999996 from losing a batch, and treats a test fraction
 * within round-off of 0 (1 − 0.95 − 0.05 = 4.4e-17) as 0, where char-rnn would compare it with 0
 * exactly.
 */
export function splitCounts(nbatches: number, fracs: SplitFractions): Record<Split, number> {
  const testFrac = 1 - fracs.trainFrac - fracs.valFrac;
  const ntrain = Math.floor(nbatches * fracs.trainFrac + FRAC_EPS);
  if (!(testFrac > FRAC_EPS)) return { train: ntrain, val: nbatches - ntrain, test: 0 };
  const nval = Math.min(nbatches - ntrain, Math.floor(nbatches * fracs.valFrac + FRAC_EPS));
  return { train: ntrain, val: nval, test: nbatches - ntrain - nval };
}

/**
 * Null when an n-character text gives at least one train and one validation batch of B × T with
 * these fractions; otherwise the message for a text too short for that, naming the largest
 * --batch-size and --seq-length that would fit. (When no batch count would do, because the
 * fractions leave a split empty, it is null too: CharLoader.requireSplit explains that case.)
 */
export function trainingTooShortMessage(n: number, B: number, T: number, fracs: SplitFractions): string | null {
  const ok = (k: number) => {
    const c = splitCounts(k, fracs);
    return c.train >= 1 && c.val >= 1;
  };
  const have = n >= 1 ? Math.floor((n - 1) / (B * T)) : 0;
  if (ok(have)) return null;
  let need = 1;
  while (need <= 1_000_000 && !ok(need)) need++;
  if (need > 1_000_000 || need <= have) return null;
  const frac = `--train-frac ${fracs.trainFrac} --val-frac ${fracs.valFrac}`;
  const head =
    `the text has ${n} character(s), too few to train with --batch-size ${B} --seq-length ${T}: ` +
    `that needs ${need} batches of ${B}×${T} (with ${frac}, so that there is a train and a validation batch), ` +
    `i.e. at least ${need * B * T + 1} characters`;
  const maxB = Math.floor((n - 1) / (need * T));
  const maxT = Math.floor((n - 1) / (need * B));
  const options: string[] = [];
  if (maxB >= 1) options.push(`--batch-size ${maxB} or less (with --seq-length ${T})`);
  if (maxT >= 1) options.push(`--seq-length ${maxT} or less (with --batch-size ${B})`);
  if (options.length > 0) return `${head}; use ${options.join(' or ')}, or a longer text`;
  if (n - 1 >= need) return `${head}; lower --batch-size and --seq-length so that ${need}·B·T is at most ${n - 1}, or use a longer text`;
  return `${head}; even --batch-size 1 --seq-length 1 needs ${need + 1} characters: use a longer text`;
}

/** Throws unless `value` is a positive integer; `flag` names the option in the message. */
function checkPositiveInt(flag: string, value: number): void {
  if (!(Number.isInteger(value) && value > 0)) {
    throw new Error(`${flag} must be a positive integer, got ${value}`);
  }
}

/** Throws unless `value` is a number in [0, 1]; `flag` names the option in the message. */
function checkFrac(flag: string, value: number): void {
  if (!(typeof value === 'number' && value >= 0 && value <= 1)) {
    throw new Error(`${flag} must be a number between 0 and 1, got ${value}`);
  }
}

/** The error message for a text too short to make a single B x T batch. */
function tooShortMessage(n: number, B: number, T: number): string {
  const head =
    `the text has ${n} character(s) but --batch-size ${B} with --seq-length ${T} ` +
    `needs at least ${B * T + 1}`;
  if (n < 2) return `${head}; use a text of at least 2 characters`;
  const maxB = Math.floor((n - 1) / T);
  const maxT = Math.floor((n - 1) / B);
  const options: string[] = [];
  if (maxB >= 1) options.push(`--batch-size ${maxB} or less (with --seq-length ${T})`);
  if (maxT >= 1) options.push(`--seq-length ${maxT} or less (with --batch-size ${B})`);
  if (options.length === 0) {
    return `${head}; lower --batch-size and --seq-length so their product is at most ${n - 1}`;
  }
  return `${head}; use ${options.join(' or ')}, or a longer text`;
}
