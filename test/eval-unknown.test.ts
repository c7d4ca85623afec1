/**
 * `eval --unknown error|skip` (issue 19): characters of --data outside the checkpoint's
 * vocabulary are refused by default (the message points to --unknown skip); with skip they are
 * dropped from the text, which is then scored as if it never held them, and counted (a stderr
 * line; `skipped` in --json). readCorpus's `unknown: 'skip'` against encoding the filtered text.
 *
 * The CLI is run from dist/ (built by `npm ci` and by `npm test`'s pretest step).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { buildVocab, encode, readCorpus } from '../src/train/data.js';
import { DEFAULT_TRAIN_OPTIONS, Trainer } from '../src/train/train.js';
import { expectOneLineUsageError, runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-unknown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TEXT = Array.from({ length: 60 }, (_, i) => `the quick brown fox ${i % 7} jumps over the lazy dog, said ${'abcdefg'[i % 7]}.\n`).join('');
const run = (args: string[]) => runCli(args, { cwd: dir });
const file = (name: string, content: string | Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

/** Real-world text: typographic quotes, an accent, a snowman and an astral character the model never saw. */
const REAL = 'the “quick” brown fox — jumps over the lazy dog, said é ☃ 𝄞.\nthe dog said: ☃☃ ok.\n';
const known = (s: string) => [...s].filter((c) => TEXT.includes(c)).join('');

let ck = '';
beforeAll(() => {
  const t = Trainer.fromText(TEXT, { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 8, numLayers: 1, batchSize: 2, seqLength: 8, maxSteps: 5, evalValEvery: 5, checkpointDir: join(dir, 'cv') });
  expect(t.run().status).toBe('done');
  ck = t.lastCheckpoint!;
});

describe('eval --unknown', () => {
  it('by default refuses the text, listing the characters and pointing to --unknown skip', async () => {
    const r = await run(['eval', ck, '--data', file('real.txt', REAL)]);
    expectOneLineUsageError(
      r,
      /--data .*real\.txt: the checkpoint's vocabulary does not contain 7 character\(s\) of the text: "“", "”", "—", "é", "☃", "𝄞", ":"; use only characters the model was trained on, or pass --unknown skip to leave them out$/m,
    );
    // --unknown error is the default, said explicitly.
    expect((await run(['eval', ck, '--data', join(dir, 'real.txt'), '--unknown', 'error'])).stderr).toBe(r.stderr);
  });

  it('skip scores the text without them: the same loss as the filtered text, and says how many', async () => {
    const filtered = known(REAL);
    const skipped = [...REAL].length - [...filtered].length;
    expect(skipped).toBe(9);
    const r = await run(['eval', ck, '--data', file('real.txt', REAL), '--unknown', 'skip', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`skipped 9 characters outside the checkpoint's vocabulary (7 distinct: "“", "”", "—", "é", "☃", "𝄞", ":")\n`);
    const got = JSON.parse(r.stdout);
    const want = JSON.parse((await run(['eval', ck, '--data', file('filtered.txt', filtered), '--json'])).stdout);
    expect(want.skipped).toBe(0);
    expect(got).toEqual({ ...want, skipped: 9 });
    expect(got.predictions).toBe([...filtered].length - 1);
    // Text output: the same line as for the filtered text.
    const plain = await run(['eval', ck, '--data', join(dir, 'real.txt'), '--unknown', 'skip']);
    expect(plain.stdout).toBe((await run(['eval', ck, '--data', join(dir, 'filtered.txt')])).stdout);
    expect(plain.stderr).toBe(r.stderr);
  });

  it('skip with nothing to skip: no line, skipped 0', async () => {
    const r = await run(['eval', ck, '--data', file('plain.txt', TEXT.slice(0, 300)), '--unknown', 'skip', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).skipped).toBe(0);
  });

  it('skip with latin1', async () => {
    const bytes = Buffer.from('the dog \xe9t\xe9 \xff ok', 'latin1');
    const r = await run(['eval', ck, '--data', file('latin1.txt', bytes), '--encoding', 'latin1', '--unknown', 'skip', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`skipped 3 characters outside the checkpoint's vocabulary (2 distinct: "é", "ÿ")\n`);
    const want = JSON.parse((await run(['eval', ck, '--data', file('latin1-filtered.txt', 'the dog t  ok'), '--json'])).stdout);
    expect(JSON.parse(r.stdout)).toEqual({ ...want, skipped: 3 });
  });

  it('too little left after skipping is an error that says so', async () => {
    expectOneLineUsageError(
      await run(['eval', ck, '--data', file('mostly-alien.txt', '☃☃a☃'), '--unknown', 'skip']),
      /--data .*mostly-alien\.txt has 1 character\(s\) left after skipping 3 outside the vocabulary; at least 2 are needed/,
    );
  });

  it('--unknown takes only error or skip', async () => {
    expectOneLineUsageError(await run(['eval', ck, '--data', join(dir, 'real.txt'), '--unknown', 'drop']), /--unknown must be one of error, skip, got "drop"/);
  });
});

describe("readCorpus with unknown: 'skip'", () => {
  it('gives the ids of the text without the characters outside the vocabulary, across read chunks', () => {
    const vocab = loadCheckpoint(ck).vocab;
    const p = file('chunks.txt', REAL.repeat(5));
    const want = encode(known(REAL.repeat(5)), vocab);
    for (const chunkSize of [4, 5, 7, 64, 1 << 20]) {
      const r = readCorpus(p, { vocab, unknown: 'skip', chunkSize });
      expect(Array.from(r.ids), `chunk ${chunkSize}`).toEqual(Array.from(want));
      expect(r.skipped).toBe(45);
      expect(r.skippedChars).toEqual(['“', '”', '—', 'é', '☃', '𝄞', ':']);
    }
    expect(() => readCorpus(p, { vocab, chunkSize: 7 })).toThrow(/does not contain 7 character\(s\) of the text/);
  });

  it('without a vocabulary, or with nothing outside it, skips nothing', () => {
    const p = file('own.txt', REAL);
    const own = readCorpus(p, { unknown: 'skip' });
    expect(own.skipped).toBe(0);
    expect(own.skippedChars).toEqual([]);
    expect(Array.from(own.ids)).toEqual(Array.from(encode(REAL, buildVocab(REAL))));
    const same = readCorpus(p, { vocab: own.vocab, unknown: 'skip' });
    expect(Array.from(same.ids)).toEqual(Array.from(own.ids));
    expect(same.skipped).toBe(0);
  });
});
