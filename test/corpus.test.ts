/**
 * readCorpus, the big-corpus loader (src/train/data.ts): it reads a file in chunks of bytes and encodes
 * it without ever holding the text as one string, and must give exactly what readTextFile +
 * buildVocab + encode give, with the same errors. In-process (no CLI), so that mutation runs
 * (vitest.mutation.config.ts) include it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { buildVocab, encode, readCorpus, readTextFile } from '../src/train/data.js';
import { runs } from './helpers/arbitraries.js';

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
