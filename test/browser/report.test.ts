/**
 * `grid-lstm viz` end to end, and its report in a real browser.
 *
 * The command line (always run): a checkpoint from a short real `train` run → `viz` writes a
 * self-contained HTML file and `--json` its data (whose mean loss is `eval`'s); every bad input
 * is one line and exit code 2.
 *
 * The browser (headless Chromium as installed, through test/helpers/browser.ts; skipped with a
 * line saying how to install one when there is none, a failure under REQUIRE_BROWSER=1): no
 * console or page errors and no request leaves the machine; the text is rendered; switching the
 * unit changes the colours; j/k move between units; hovering and focusing a character show the
 * top-5 predictions; arrow keys move the focus; clicking a ranked unit selects it; the grid's
 * heatmap is drawn. Screenshots go to test-output/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildVocab, encode, loadDefaultCorpus } from '../../src/index.js';
import { buildReportData, decodeReportBlock, type ReportData } from '../../src/viz/report-data.js';
import { renderReport } from '../../src/viz/report.js';
import { BROWSER_HINT, type BrowserSession, browserRequired, findChromium, NO_BROWSER, openBrowser, waitForReport } from '../helpers/browser.js';
import { randomModel } from '../helpers/arbitraries.js';
import { digitUnitModel } from '../helpers/digit-model.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const OUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-viz-'));
const dataFile = join(dir, 'sotu-slice.txt');
const evalFile = join(dir, 'eval.txt');

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let ck = '';
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  const corpus = loadDefaultCorpus();
  writeFileSync(dataFile, corpus.slice(1_000_000, 1_024_000));
  writeFileSync(evalFile, corpus.slice(2_000_000, 2_001_500));
  const r = run(['train', '--data', dataFile, '--rnn-size', '16', '--num-layers', '2', '--batch-size', '8', '--seq-length', '16', '--max-steps', '12', '--eval-val-every', '12', '--checkpoint-dir', 'cv']);
  expect(r.stderr).toMatch(/done: val_loss = /);
  const files = readdirSync(join(dir, 'cv')).filter((f) => f.endsWith('.safetensors'));
  ck = join(dir, 'cv', files[0]);
});

describe('grid-lstm viz (command line)', () => {
  it('writes one self-contained HTML file', () => {
    const out = join(OUT, 'viz-cli-grid.html');
    const r = run(['viz', ck, '--data', evalFile, '--out', out, '--start', '100', '--length', '900']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^wrote .*viz-cli-grid\.html \((\d+\.\d MB|\d+ kB)\): characters 100–999 of 1500, mean loss \d+\.\d{4} nats\/char; open it in a browser\n$/);
    const html = readFileSync(out, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<script type="application/json" id="viz-data">');
    // Nothing is loaded from elsewhere: no src= or href= at all, no stylesheet links, no imports.
    expect(html).not.toMatch(/\s(src|href)\s*=/i);
    expect(html).not.toMatch(/@import|<link\b|\bimport\(/);
  });

  it('--json: the data (format grid-lstm/viz-1); over the whole file its mean loss is eval’s; the blocks decode', () => {
    const r = run(['viz', ck, '--data', evalFile, '--json', '--length', '5000', '--kinds', 'c,h']);
    expect(r.code).toBe(0);
    const data = JSON.parse(r.stdout) as ReportData;
    expect(data.format).toBe('grid-lstm/viz-1');
    expect(data.text).toBe(readFileSync(evalFile, 'utf8'));
    expect(data.kinds).toEqual(['c', 'h']);
    expect(data.lstms).toEqual(['time', 'depth']);
    expect(data.blocks.map((b) => `${b.layer}${b.lstm}${b.kind}`)).toEqual(['0timec', '0timeh', '0depthc', '0depthh', '1timec', '1timeh', '1depthc', '1depthh']);
    const e = JSON.parse(run(['eval', ck, '--data', evalFile, '--json']).stdout);
    expect(Math.abs(data.meanLoss! - e.loss) / e.loss).toBeLessThan(1e-12);
    expect(data.loss.filter((x) => x !== null)).toHaveLength(e.predictions);
    const h = decodeReportBlock(data.blocks[1], data.text.length);
    for (const v of h) expect(Math.abs(v)).toBeLessThanOrEqual(1);
  });

  describe('bad input: one line, exit code 2', () => {
    const notes = join(dir, 'notes.txt');
    const empty = join(dir, 'empty.txt');
    const alien = join(dir, 'alien.txt');
    beforeAll(() => {
      writeFileSync(notes, 'not a checkpoint');
      writeFileSync(empty, '');
      writeFileSync(alien, 'the president said ☃ and ☂');
    });
    const cases: [string, () => string[], RegExp][] = [
      ['no checkpoint', () => ['viz', '--data', evalFile], /viz needs a checkpoint/],
      ['missing checkpoint', () => ['viz', join(dir, 'nope.safetensors'), '--data', evalFile], /no such file/],
      ['unreadable checkpoint', () => ['viz', notes, '--data', evalFile], /safetensors|header/],
      ['missing --data', () => ['viz', ck], /viz needs --data FILE/],
      ['missing data file', () => ['viz', ck, '--data', join(dir, 'nope.txt')], /no such file/],
      ['empty text', () => ['viz', ck, '--data', empty], /file is empty/],
      ['characters not in the vocabulary', () => ['viz', ck, '--data', alien], /vocabulary does not contain .*"☃".*"☂"/],
      ['unwritable --out (no such directory)', () => ['viz', ck, '--data', evalFile, '--out', join(dir, 'no', 'such', 'report.html')], /cannot write --out .*does not exist/],
      ['unwritable --out (a file in the path)', () => ['viz', ck, '--data', evalFile, '--out', join(notes, 'report.html')], /cannot write --out .*(not a directory)/],
      ['--out a directory', () => ['viz', ck, '--data', evalFile, '--out', dir], /--out .* is a directory/],
      ['--start past the end', () => ['viz', ck, '--data', evalFile, '--start', '1500'], /--start 1500 is past the end .*1500 characters/],
      ['--length 0', () => ['viz', ck, '--data', evalFile, '--length', '0'], /--length must be a whole number > 0/],
      ['--kinds unknown', () => ['viz', ck, '--data', evalFile, '--kinds', 'h,x'], /--kinds must list some of i,f,o,g,c,tc,h/],
      ['--bits 9', () => ['viz', ck, '--data', evalFile, '--bits', '9'], /--bits must be a whole number from 1 to 8/],
    ];
    for (const [name, args, re] of cases) {
      it(name, () => {
        const r = run(args());
        expect(r.stderr).toMatch(re);
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/^grid-lstm: error: /);
      });
    }
    it('nothing is written when the input is bad', () => {
      const out = join(dir, 'bad.html');
      expect(run(['viz', ck, '--data', alien, '--out', out]).code).toBe(2);
      expect(() => statSync(out)).toThrow();
    });
  });
});

// ---------------------------------------------------------------------------------------------
// In a browser

const chromium = findChromium();
const haveBrowser = chromium !== null || browserRequired(); // required: a missing browser fails below
if (chromium === null) {
  const line = browserRequired() ? `REQUIRE_BROWSER=1 but ${NO_BROWSER}` : BROWSER_HINT;
  process.stderr.write(`\n  ${line}\n\n`);
}

describe.skipIf(!haveBrowser)('the viz report in Chromium', () => {
  let b: BrowserSession;
  const text = 'Totals for 1890: "12 ships (3 lost)" and 45 men.\nIn 1891 the "Navy" asked for 7 more [see p. 2].\n'.repeat(8);
  let gridFile = '';
  let gridData: ReportData;
  beforeAll(async () => {
    // A grid whose unit 3 of layer 0 copies "is a digit": the ranking's first unit is known.
    const vocab = buildVocab(text);
    const model = digitUnitModel('grid_lstm', vocab, { numLayers: 3, rnnSize: 8 });
    gridData = buildReportData(model, vocab, encode(text, vocab), { label: 'digit-unit grid' });
    gridFile = join(OUT, 'viz-digit-grid.html');
    writeFileSync(gridFile, renderReport(gridData));
    b = await openBrowser({ width: 1280, height: 900 });
  });
  afterAll(async () => {
    await b?.close();
  });

  const js = <T>(expr: string) => b.page.evaluate(expr) as Promise<T>;
  const selection = () => js<string>(`document.getElementById('text').dataset.selection`);
  const colours = () => js<string[]>(`[...document.querySelectorAll('#text span')].slice(0, 300).map((s) => s.className)`);
  const rendered = (sel: string) => b.page.waitForFunction(`document.getElementById('text').dataset.selection === ${JSON.stringify(sel)}`, undefined, { timeout: 10_000 });

  it('the grid report: text, units, keyboard, predictions, ranking, heatmap, no errors', async () => {
    await b.open(gridFile);
    await waitForReport(b.page);
    // The text is rendered, a span per character.
    expect(await js<number>(`document.querySelectorAll('#text span[data-p]').length`)).toBe(gridData.text.length);
    expect(await js<string>(`document.getElementById('text').textContent.slice(0, 16)`)).toBe(text.slice(0, 16));
    // It opens on the first ranked unit: unit 3 of layer 0's time LSTM, "digit".
    const first = gridData.ranking[0];
    expect([first.layer, first.lstm, first.unit, first.feature]).toEqual([0, 'time', 3, 'digit']);
    expect(await selection()).toBe(`0/time/${first.kind}/3`);
    const before = await colours();
    // Switching the unit (the ▶ button) changes the colours.
    await b.page.click('#unit-next');
    await rendered(`0/time/${first.kind}/4`);
    expect(await colours()).not.toEqual(before);
    // The keyboard: j / k move between units.
    await b.page.locator('h2').first().click(); // focus outside the controls
    await b.page.keyboard.press('j');
    await rendered(`0/time/${first.kind}/5`);
    await b.page.keyboard.press('k');
    await b.page.keyboard.press('k');
    await rendered(`0/time/${first.kind}/3`);
    expect(await colours()).toEqual(before);
    // The controls: another layer, LSTM and kind.
    await b.page.selectOption('#sel-layer', '2');
    await b.page.selectOption('#sel-lstm', 'depth');
    await b.page.selectOption('#sel-kind', 'f');
    await rendered('2/depth/f/3');
    // Hovering a character shows its top 5 and its loss.
    await b.page.hover('#text span[data-p="7"]');
    expect(await js<string>(`document.getElementById('info-pos').textContent`)).toBe('7');
    expect(await b.page.locator('#top5 tr').count()).toBe(5);
    expect(await js<string>(`document.getElementById('info-loss').textContent`)).toMatch(/^\d+\.\d{3} nats/);
    const top = gridData.top[7];
    expect(await js<string>(`document.querySelector('#top5 td.p').textContent`)).toBe(`${(top[1] * 100).toFixed(1)}%`);
    // Focus: click a character, then the arrow keys move between characters.
    await b.page.click('#text span[data-p="20"]');
    await b.page.keyboard.press('ArrowRight');
    await b.page.keyboard.press('ArrowRight');
    await b.page.mouse.move(5, 5); // the panel follows the focus once the mouse has left the text
    expect(await js<string>(`document.activeElement.dataset.p`)).toBe('22');
    expect(await js<string>(`document.getElementById('info-pos').textContent`)).toBe('22');
    await b.page.keyboard.press('ArrowDown');
    expect(Number(await js<string>(`document.activeElement.dataset.p`))).toBe(22 + text.indexOf('\n') + 1);
    // Clicking a ranked unit selects it.
    const entry = gridData.ranking.findIndex((r) => r.feature === 'quote');
    expect(entry).toBeGreaterThanOrEqual(0);
    const r = gridData.ranking[entry];
    await b.page.click(`#rank-list button[data-i="${entry}"]`);
    await rendered(`${r.layer}/${r.lstm}/${r.kind}/${r.unit}`);
    expect(await js<string>(`document.querySelector('#rank-list button[data-i="${entry}"]').getAttribute('aria-pressed')`)).toBe('true');
    // … and underlines where its feature is on.
    const inQuotes = gridData.featureValues[gridData.features.findIndex((f) => f.name === 'quote')].filter((x) => x === 1).length;
    expect(inQuotes).toBeGreaterThan(0);
    expect(await js<number>(`document.querySelectorAll('#text span.ft').length`)).toBe(inQuotes);
    await b.page.click('#rank-best button[data-i="0"]');
    await rendered(`0/time/${first.kind}/3`);
    // The heatmap of the depth cells: one row per layer, not blank, for the chosen unit.
    await b.page.waitForFunction(`document.getElementById('heatmap').dataset.unit === '3'`);
    const heat = await js<{ w: number; h: number; distinct: number }>(`(() => {
      const c = document.getElementById('heatmap');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let k = 0; k < d.length; k += 4) seen.add(d[k] + ',' + d[k + 1] + ',' + d[k + 2]);
      return { w: c.width, h: c.height, distinct: seen.size };
    })()`);
    expect(heat.h).toBe(3);
    expect(heat.w).toBe(Math.min(gridData.text.length, 1600));
    expect(heat.distinct).toBeGreaterThan(10);
    // A dot of the saturation scatter selects that gate of that unit.
    // (dispatched to the dot itself: dots of units with the same fractions lie on top of each other)
    await b.page.dispatchEvent('#sat-grid svg[data-s="1"] circle.u[data-j="2"]', 'click');
    const s = gridData.saturation[1];
    await rendered(`${s.layer}/${s.lstm}/${s.gate}/2`);
    await b.page.click('#rank-best button[data-i="0"]');
    await rendered(`0/time/${first.kind}/3`);
    await b.page.hover('#text span[data-p="13"]');
    await b.screenshot(join(OUT, 'viz-digit-grid.png'));
    expect(b.errors).toEqual([]);
  });

  it('the report the command line wrote (a trained grid_lstm): renders without errors', async () => {
    const file = join(OUT, 'viz-cli-grid.html');
    if (!statSync(file, { throwIfNoEntry: false })) run(['viz', ck, '--data', evalFile, '--out', file, '--start', '100', '--length', '900']);
    await b.open(file);
    await waitForReport(b.page);
    expect(await js<number>(`document.querySelectorAll('#text span[data-p]').length`)).toBe(900);
    await b.page.waitForFunction(`document.getElementById('heatmap').dataset.unit !== undefined`);
    await b.page.hover('#text span[data-p="40"]');
    await b.screenshot(join(OUT, 'viz-cli-grid.png'));
    expect(b.errors).toEqual([]);
  });

  it('an lstm report: one LSTM per layer, no heatmap; tanh(c) from the stored c', async () => {
    const vocab = buildVocab(text);
    const model = digitUnitModel('lstm', vocab, { numLayers: 2, rnnSize: 6 });
    const data = buildReportData(model, vocab, encode(text, vocab), { kinds: ['c', 'h'], bits: 8 });
    const file = join(OUT, 'viz-digit-lstm.html');
    writeFileSync(file, renderReport(data));
    await b.open(file);
    await waitForReport(b.page);
    expect(await js<boolean>(`document.getElementById('heatmap') === null`)).toBe(true);
    expect(await js<boolean>(`document.getElementById('lstm-label').hidden`)).toBe(true);
    expect(await js<string[]>(`[...document.querySelectorAll('#sel-kind option')].map((o) => o.value)`)).toEqual(['c', 'tc', 'h']);
    await b.page.selectOption('#sel-kind', 'tc');
    await b.page.selectOption('#sel-layer', '0');
    await b.page.fill('#sel-unit', '3');
    await b.page.press('#sel-unit', 'Enter');
    await rendered('0/time/tc/3');
    // Unit 3's c is ±1 after every character: tanh(c) = ±tanh(1) (8 bits: within 1/255 of c).
    await b.page.hover('#text span[data-p="10"]');
    const v = Number(await js<string>(`document.getElementById('info-value').textContent`));
    expect(Math.abs(Math.abs(v) - Math.tanh(1))).toBeLessThan(0.01);
    expect(b.errors).toEqual([]);
  });

  it("gru and rnn reports: their own kinds, the GRU's z and r saturation, the RNN told it has no gates", async () => {
    const vocab = buildVocab(text);
    for (const kind of ['gru', 'rnn'] as const) {
      const model = randomModel({ model: kind, vocabSize: vocab.chars.length, rnnSize: 6, numLayers: 2 }, 3, 0.5, 'float32');
      const data = buildReportData(model, vocab, encode(text, vocab));
      const file = join(OUT, `viz-random-${kind}.html`);
      writeFileSync(file, renderReport(data));
      await b.open(file);
      await waitForReport(b.page);
      expect(await js<string[]>(`[...document.querySelectorAll('#sel-kind option')].map((o) => o.value)`)).toEqual(kind === 'gru' ? ['z', 'r', 'n', 'h'] : ['h']);
      expect(await js<number>(`document.querySelectorAll('#sat-grid svg').length`)).toBe(kind === 'gru' ? 4 : 0);
      if (kind === 'rnn') expect(await js<string>(`document.querySelector('#saturation p').textContent`)).toMatch(/does not apply: an rnn has no gates/);
      else {
        const unit = (await selection()).split('/')[3];
        await b.page.selectOption('#sel-kind', 'r');
        await b.page.selectOption('#sel-layer', '1');
        await rendered(`1/time/r/${unit}`);
      }
      expect(b.errors).toEqual([]);
    }
  });
});
