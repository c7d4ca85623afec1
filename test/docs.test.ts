/**
 * The walkthrough cannot rot: every `ts`/`js` block of docs/walkthrough/ runs (the blocks of a
 * chapter as one program, importing the package by name, as a reader would), and what a block
 * prints must equal the `text` block the chapter shows after it, line for line. Every figure the
 * walkthrough and the README show exists, and the figures script draws it again (an SVG byte for
 * byte; a screenshot, whose pixels depend on the browser's fonts, as a new PNG).
 *
 * Needs the build (dist/), as `npm test` makes it in its pretest step.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ROOT, fencedBlocks, normalise, runDoc, runnableBlocks, withOutputs } from './helpers/docblocks.js';

const DIR = join(ROOT, 'docs', 'walkthrough');
const chapters = readdirSync(DIR)
  .filter((f) => /^\d\d-.*\.md$/.test(f))
  .sort();

describe('the walkthrough runs as shown', () => {
  it('has its six chapters', () => {
    expect(chapters.length).toBe(6);
  });

  for (const chapter of chapters) {
    it(chapter, () => {
      // Chapter 5 trains into cv/walkthrough: start it empty, as in a fresh clone, so that what a
      // run of an earlier version left there (another run's loss log, which the trainer warns
      // about replacing) does not change what the chapter prints.
      rmSync(join(ROOT, 'cv', 'walkthrough'), { recursive: true, force: true });
      const file = join(DIR, chapter);
      const blocks = runnableBlocks(readFileSync(file, 'utf8'));
      expect(blocks.length).toBeGreaterThan(0);
      const run = runDoc(file);
      expect(run.stderr === '' ? run.code : `${run.code}: ${run.stderr}`).toBe(0);
      expect(run.results.length).toBe(blocks.length);
      for (const r of run.results) {
        if (r.block.output === null) continue;
        // A failure names the chapter's line, and shows both texts.
        expect(`${chapter}:${r.block.line}\n${r.printed}`).toBe(`${chapter}:${r.block.line}\n${normalise(r.block.output.code)}`);
      }
    });
  }
});

describe('the block runner', () => {
  const md = [
    'Intro.',
    '```ts',
    "const a = 0.1 + 0.2;",
    "console.log(a.toFixed(3));",
    '```',
    '',
    '```text',
    '0.300',
    '```',
    '```js',
    'console.log(`again ${a * 2}`);',
    '```',
    '```sh',
    'echo not run',
    '```',
  ].join('\n');

  it('pairs each code block with the text block right after it, and skips other languages', () => {
    const blocks = runnableBlocks(md);
    expect(blocks.map((b) => [b.lang, b.line, b.output?.code ?? null])).toEqual([
      ['ts', 2, '0.300'],
      ['js', 10, null],
    ]);
    expect(fencedBlocks(md).map((b) => b.lang)).toEqual(['ts', 'text', 'js', 'sh']);
  });

  it('a shown output with one digit changed no longer matches what the block prints', () => {
    // The comparison the chapter test makes, on a real chapter: each shown number, one digit
    // changed, must differ from the printed text.
    const file = join(DIR, chapters[1]);
    const run = runDoc(file);
    const shown = run.results.filter((r) => r.block.output !== null);
    expect(shown.length).toBeGreaterThan(0);
    let mutated = 0;
    for (const r of shown) {
      const text = normalise(r.block.output!.code);
      expect(r.printed).toBe(text);
      const m = /\d/.exec(text);
      if (!m) continue;
      const changed = text.slice(0, m.index) + String((Number(m[0]) + 1) % 10) + text.slice(m.index + 1);
      expect(r.printed).not.toBe(changed);
      mutated++;
    }
    expect(mutated).toBeGreaterThan(0);
    // And --write puts back exactly what the chapter shows.
    const md2 = readFileSync(file, 'utf8');
    expect(withOutputs(md2, run)).toBe(md2);
  });
});

describe('the figures', () => {
  const docs = [join(ROOT, 'README.md'), join(DIR, 'README.md'), ...chapters.map((c) => join(DIR, c))];
  /** Every local image a document shows, as an absolute path. */
  const shown = docs.flatMap((doc) =>
    [...readFileSync(doc, 'utf8').matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)]
      .map((m) => m[1])
      .filter((src) => !/^[a-z]+:/.test(src))
      .map((src) => ({ doc: relative(ROOT, doc), path: resolve(dirname(doc), src) })),
  );

  it('every figure a document shows exists', () => {
    expect(shown.length).toBeGreaterThan(0);
    const missing = shown.filter((f) => !existsSync(f.path)).map((f) => `${f.doc}: ${relative(ROOT, f.path)}`);
    expect(missing).toEqual([]);
  });

  it('the figures script draws every committed figure again', () => {
    const out = mkdtempSync(join(tmpdir(), 'grid-lstm-figures-'));
    onTestFinished(() => rmSync(out, { recursive: true, force: true }));
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(DIR, 'make-figures.mjs'), '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    expect(r.status === 0 ? '' : r.stderr).toBe('');
    const committed = join(DIR, 'figures');
    // Every figure shown is one the script draws: it lives in docs/walkthrough/figures/. Except the
    // playground's screenshot, which its browser test makes (test/browser/playground.test.ts).
    const elsewhere = shown
      .filter((f) => relative(committed, f.path).startsWith('..') && relative(ROOT, f.path) !== join('docs', 'playground.png'))
      .map((f) => `${f.doc}: ${relative(ROOT, f.path)}`);
    expect(elsewhere).toEqual([]);
    for (const file of readdirSync(committed)) {
      const again = join(out, file);
      if (file.endsWith('.png') && !existsSync(again) && process.env.REQUIRE_BROWSER !== '1') {
        // Screenshots need a browser; the browser tests say how to install one (.ci/run
        // requires one, so there the screenshot must be drawn again).
        expect(r.stdout).toContain(`skipped ${file}`);
        continue;
      }
      expect(existsSync(again) ? file : `${file} was not drawn again`).toBe(file);
      if (file.endsWith('.svg')) expect(readFileSync(again, 'utf8'), file).toBe(readFileSync(join(committed, file), 'utf8'));
      else expect(readFileSync(again).subarray(1, 4).toString('latin1'), file).toBe('PNG');
    }
  });
});
