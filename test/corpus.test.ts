/**
 * readCorpus, the big-corpus loader (src/train/data.ts): it reads a file in chunks of bytes and encodes
 * it without ever holding the text as one string, and must give exactly what readTextFile +
 * buildVocab + encode give, with the same errors. In-process (no CLI), so that mutation runs
 * (vitest.mutation.config.ts) include it.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { buildVocab, decode, encode, readCorpus, readTextFile, vocabFromChars } from '../src/train/data.js';
import { runs } from './helpers/arbitraries.js';
import { UTF8_CASES } from './helpers/utf8-cases.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-corpus-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

describe('readCorpus gives what readTextFile + buildVocab + encode give, without the string', () => {
  const unit = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('a', 'b', ' ', '\n', 'é', '—', '€', '😀', '𝄞', '\u0000', '\u00ff') },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 3 }) },
  );
  // (A leading U+FEFF would be read as a byte order mark, by both readers.)
  const text = fc
    .array(unit, { minLength: 1, maxLength: 60 })
    .map((parts) => parts.join(''))
    .filter((s) => s.length > 0 && !s.startsWith('\uFEFF'));
  let n = 0;

  it('on random UTF-8 text, for any read size (sequences split across reads), with and without a byte order mark', () => {
    fc.assert(
      fc.property(text, fc.integer({ min: 4, max: 20 }), fc.boolean(), (s, chunkSize, bom) => {
        const p = join(dir, `corpus-${n++ % 4}.txt`);
        writeFileSync(p, Buffer.concat([Buffer.from(bom ? [0xef, 0xbb, 0xbf] : []), Buffer.from(s, 'utf8')]));
        const want = readTextFile(p);
        const vocab = buildVocab(want);
        const got = readCorpus(p, { chunkSize });
        expect(got.vocab.chars).toEqual(vocab.chars);
        expect(Array.from(got.ids)).toEqual(Array.from(encode(want, vocab)));
        expect(got.ids).toBeInstanceOf(Uint16Array);
        // With a given vocabulary (a checkpoint's): the same ids.
        const bigger = buildVocab(want + 'xyz');
        expect(Array.from(readCorpus(p, { chunkSize, vocab: bigger }).ids)).toEqual(Array.from(encode(want, bigger)));
      }),
      { numRuns: runs(300) },
    );
  });

  it('reports the same byte offset of invalid UTF-8 as readTextFile, for any read size', () => {
    fc.assert(
      fc.property(text, fc.nat(), fc.constantFrom([0xff], [0xc0, 0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80]), fc.integer({ min: 4, max: 12 }), (s, at, bad, chunkSize) => {
        const good = Buffer.from(s, 'utf8');
        // Insert at a character boundary.
        const cut = Buffer.from([...s].slice(0, at % ([...s].length + 1)).join(''), 'utf8').length;
        const bytes = Buffer.concat([good.subarray(0, cut), Buffer.from(bad), good.subarray(cut)]);
        const p = join(dir, `bad-${n++ % 4}.txt`);
        writeFileSync(p, bytes);
        let want = '';
        try {
          readTextFile(p);
        } catch (e) {
          want = (e as Error).message;
        }
        expect(want).toMatch(/not valid UTF-8/);
        expect(() => readCorpus(p, { chunkSize })).toThrow(want);
      }),
      { numRuns: runs(300) },
    );
  });

  it('latin1: one character per byte', () => {
    const bytes = Uint8Array.from({ length: 600 }, (_, i) => (i * 37) % 256);
    const p = file('bytes.bin', bytes);
    const want = readTextFile(p, { encoding: 'latin1' });
    const got = readCorpus(p, { encoding: 'latin1', chunkSize: 7 });
    expect(got.vocab.chars).toEqual(buildVocab(want).chars);
    expect(Array.from(got.ids)).toEqual(Array.from(encode(want, buildVocab(want))));
  });

  it('lists characters outside a given vocabulary in order of appearance, like encode', () => {
    const p = file('alien2.txt', 'the ☃ and the ☂ and ☃');
    expect(() => readCorpus(p, { vocab: buildVocab('the and') })).toThrow(`--data ${p}: the checkpoint's vocabulary does not contain 2 character(s) of the text: "☃", "☂"; use only characters the model was trained on`);
  });
});

describe('readCorpus on the edge cases of the UTF-8 table, and around its reads', () => {
  it('gives the written-out offset of each bad sequence, or the text, wherever a read ends', () => {
    // Prefixes of 0..3 ASCII bytes and reads of 4 bytes put a read boundary at every place in
    // each sequence. (Each readCorpus allocates 5 MB of tables: the well-formed cases are read
    // as one file.)
    const good = UTF8_CASES.filter((c) => c.at < 0).flatMap((c) => c.bytes);
    for (let pre = 0; pre <= 3; pre++) {
      const head = 'xyz'.slice(0, pre);
      for (const { bytes, at, what } of UTF8_CASES.filter((c) => c.at >= 0)) {
        const p = file('edge-bad.txt', Buffer.from([...Buffer.from(head), ...bytes]));
        expect(() => readCorpus(p, { chunkSize: 4 }), `${what}, ${pre} bytes before`).toThrow(`byte offset ${pre + at});`);
      }
      const p = file('edge-good.txt', Buffer.from([...Buffer.from(head), ...good]));
      const want = head + Buffer.from(good).toString('utf8');
      for (const chunkSize of [4, 5]) {
        const got = readCorpus(p, { chunkSize });
        expect(decode(got.ids, got.vocab), `${pre} bytes before, reads of ${chunkSize}`).toBe(want);
        expect(got.vocab.chars).toEqual([...new Set(want)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
        expect(got.bytes).toBe(pre + good.length);
      }
    }
  });

  it('drops a byte order mark only at the start of the file, not where a read starts', () => {
    // U+FEFF after 4, 5, 6 or 7 bytes: a read of that size ends just before it.
    for (const head of ['abcd', 'abcde', 'abcdef', 'abcdefg']) {
      const text = `${head}\ufeffz\ufeff`;
      const p = file('mid-bom.txt', text);
      const got = readCorpus(p, { chunkSize: head.length });
      expect(decode(got.ids, got.vocab), head).toBe(text);
      expect(decode(readCorpus(file('lead-bom.txt', `\ufeff${text}`), { chunkSize: head.length }).ids, got.vocab)).toBe(text);
    }
    const p = file('bom-only.txt', Uint8Array.from([0xef, 0xbb, 0xbf]));
    expect(() => readCorpus(p)).toThrow(`--data ${p}: file holds only a byte order mark; pass a non-empty text file`);
    expect(() => readCorpus(file('empty.txt', ''))).toThrow(/file is empty; pass a non-empty text file/);
  });

  it('ids are 2 bytes up to 65536 vocabulary entries and 4 bytes above', () => {
    // Vocabularies of U+10000 on: U+1FFFF is id 65535, U+20000 id 65536.
    const vocab = (size: number) => vocabFromChars(Array.from({ length: size }, (_, i) => String.fromCodePoint(0x10000 + i)));
    const small = readCorpus(file('two.txt', '\u{10000}\u{1FFFF}\u{10000}'), { vocab: vocab(0x10000) });
    expect(small.ids).toBeInstanceOf(Uint16Array);
    expect(Array.from(small.ids)).toEqual([0, 0xffff, 0]);
    const big = readCorpus(file('four.txt', '\u{10000}\u{1FFFF}\u{20000}'), { vocab: vocab(0x10001) });
    expect(big.ids).toBeInstanceOf(Uint32Array);
    expect(Array.from(big.ids)).toEqual([0, 0xffff, 0x10000]);
  });
});

describe("readCorpus with unknown: 'skip' (characters outside a given vocabulary left out)", () => {
  // Hand-checked: outside the vocabulary of 'abc ' are é (twice), ☃ (three times) and 𝄞 (once).
  const text = 'a é☃b ☃𝄞c é☃ ab';
  const vocab = buildVocab('abc ');
  const kept = 'a b c  ab';

  it('UTF-8: the ids of the text without them, counted in order of first appearance, for any read size', () => {
    const p = file('skip.txt', text);
    for (const chunkSize of [4, 5, 6, 7, 64]) {
      const got = readCorpus(p, { vocab, unknown: 'skip', chunkSize });
      expect(decode(got.ids, vocab), `reads of ${chunkSize}`).toBe(kept);
      expect(got.ids).toHaveLength(9);
      expect(got.skipped).toBe(6);
      expect(got.skippedChars).toEqual(['é', '☃', '𝄞']);
      expect(got.bytes).toBe(Buffer.byteLength(text));
    }
    expect(() => readCorpus(p, { vocab, chunkSize: 5 })).toThrow(`--data ${p}: the checkpoint's vocabulary does not contain 3 character(s) of the text: "é", "☃", "𝄞"; use only`);
    expect(() => readCorpus(p, { vocab, unknown: 'error' })).toThrow(/does not contain 3 character/);
  });

  it('latin1: the same, one character per byte', () => {
    // Bytes a, E9, b, FF, E9, c: é (E9) twice and ÿ (FF) once are outside the vocabulary.
    const p = file('skip-latin1.bin', Uint8Array.from([0x61, 0xe9, 0x62, 0xff, 0xe9, 0x63]));
    for (const chunkSize of [4, 5, 64]) {
      const got = readCorpus(p, { encoding: 'latin1', vocab, unknown: 'skip', chunkSize });
      expect(decode(got.ids, vocab), `reads of ${chunkSize}`).toBe('abc');
      expect(got.skipped).toBe(3);
      expect(got.skippedChars).toEqual(['é', 'ÿ']);
    }
    expect(() => readCorpus(p, { encoding: 'latin1', vocab })).toThrow('does not contain 2 character(s) of the text: "é", "ÿ";');
  });

  it('latin1 without a vocabulary: the bytes that occur, nothing else, whatever the read size', () => {
    const p = file('cab.bin', Uint8Array.from([0x63, 0x61, 0x62, 0xe9]));
    for (const chunkSize of [4, 5, 64]) {
      const got = readCorpus(p, { encoding: 'latin1', chunkSize });
      expect(got.vocab.chars).toEqual(['a', 'b', 'c', 'é']);
      expect(Array.from(got.ids)).toEqual([2, 0, 1, 3]);
    }
  });

  it('skips nothing without a vocabulary, or when every character is in it', () => {
    const p = file('own.txt', text);
    const own = readCorpus(p, { unknown: 'skip' });
    expect(own.skipped).toBe(0);
    expect(own.skippedChars).toEqual([]);
    expect(decode(own.ids, own.vocab)).toBe(text);
    const same = readCorpus(p, { vocab: own.vocab, unknown: 'skip', chunkSize: 4 });
    expect(Array.from(same.ids)).toEqual(Array.from(own.ids));
    expect(same.skipped).toBe(0);
  });
});

describe('readCorpus on a pipe, and the files it opens', () => {
  // A FIFO has no size: it is read whole, to its end (what `--data <(xzcat big.xz)` gives).
  const fifo = (name: string, bytes: number[]) => {
    const p = join(dir, name);
    execFileSync('mkfifo', [p]);
    // The writer is another process: readCorpus blocks in open until it opens the pipe.
    spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(p)}, Buffer.from(${JSON.stringify(bytes)}))`], { stdio: 'ignore' });
    return p;
  };
  const hasFifo = process.platform === 'linux' && existsSync('/usr/bin/mkfifo');

  it.runIf(hasFifo)('reads a pipe to its end, and finds a sequence cut at its end', () => {
    const good = fifo('good.fifo', [...Buffer.from('pipe ☃ text')]);
    const got = readCorpus(good, { chunkSize: 4 });
    expect(decode(got.ids, got.vocab)).toBe('pipe ☃ text');
    expect(got.bytes).toBe(13);
    const cut = fifo('cut.fifo', [0x61, 0x62, 0xe2, 0x98]);
    expect(() => readCorpus(cut)).toThrow(`--data ${cut}: not valid UTF-8 (first invalid byte sequence at byte offset 2);`);
  });

  it.runIf(existsSync('/proc/self/fd'))('closes every file it opens, when it fails too', () => {
    const open = () => readdirSync('/proc/self/fd').length;
    const p = file('fd.txt', 'closed after reading');
    readCorpus(p); // (the first call may open files of its own: modules, the heap)
    const before = open();
    for (let i = 0; i < 3; i++) {
      readCorpus(p, { chunkSize: 4 }); // read in pieces: kept open between them
      readCorpus(p, { encoding: 'latin1' });
      expect(() => readCorpus(dir)).toThrow(/is a directory/); // opened, then refused
      if (existsSync('/dev/null')) expect(() => readCorpus('/dev/null')).toThrow(/is a device/);
      expect(() => readCorpus(p, { vocab: buildVocab('x') })).toThrow(/does not contain/); // after both passes
    }
    expect(open()).toBe(before);
  });
});
