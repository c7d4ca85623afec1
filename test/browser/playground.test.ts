/**
 * The playground (web/) in a real browser: built with Vite into a temporary folder, served by
 * web/serve.mjs on localhost, opened in headless Chromium (test/helpers/browser.ts; skipped with
 * a line saying how to install one when there is none, a failure under REQUIRE_BROWSER=1).
 *
 * Twice: cross-origin isolated (COOP/COEP headers: two threads) and not (one thread, as on a host
 * that cannot send them; there also a pasted text too short to train on, a one-line error, a
 * dropped file, and a file that is not a checkpoint, uploaded: a one-line error). Each time a
 * small model trains on the built-in sample until N steps ran: the loss went down, the curve has a point per step, validations and a sample appeared, the
 * cells view drew; its checkpoint, downloaded, loads in the Node library and gives the loss on a
 * text that the page reported, bit for bit (same kernels), and `grid-lstm sample` samples from
 * it; a checkpoint trained by the CLI, uploaded, samples in the page (argmax as in Node) and
 * trains on (--init-from: the first step's loss is the Node Trainer's from the same weights, bit
 * for bit); saved before that, it is the uploaded file byte for byte. Isolated, "Train anew" while two threads train starts a new run on two threads with
 * only its own points on the curve. At a phone's width (390 px, and 375 px with a checkpoint of a
 * long name loaded) nothing is wider than the screen. No console errors, no failed response of
 * the server (the browser's own requests, such as the icon, included), no request leaving
 * localhost. Screenshots go to test-output/. And a built-in sample that does not load (a 404) is
 * a one-line error, not a page to train on.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import { DEFAULT_TRAIN_OPTIONS, Trainer, encode, evaluateIds, loadCheckpoint, loadWasmKernels, sample } from '../../src/index.js';
import { BROWSER_HINT, type BrowserSession, browserRequired, findChromium, NO_BROWSER, openBrowser } from '../helpers/browser.js';
// @ts-expect-error a plain ES module without types
import { serve } from '../../web/serve.mjs';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const OUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const CONFIG = fileURLToPath(new URL('../../web/vite.config.ts', import.meta.url));

const chromium = findChromium();
const haveBrowser = chromium !== null || browserRequired(); // required: a missing browser fails below
if (chromium === null) {
  const line = browserRequired() ? `REQUIRE_BROWSER=1 but ${NO_BROWSER}` : BROWSER_HINT;
  process.stderr.write(`\n  ${line}\n\n`);
}

/** Steps each run trains before the checks. */
const STEPS = 60;

describe.skipIf(!haveBrowser)('the playground in Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-playground-'));
  const site = join(dir, 'site');
  let cliCheckpoint = '';
  let evalText = '';

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    await build({ configFile: CONFIG, logLevel: 'error', build: { outDir: site, emptyOutDir: true } });
    const sampleText = readFileSync(join(site, 'sample.txt'), 'utf8');
    // A passage of the sample's validation end (the last 5%) to measure the loss on.
    evalText = sampleText.slice(sampleText.length - 3000, sampleText.length - 2400);
    // A checkpoint trained by the command line, to upload.
    const data = join(dir, 'cli.txt');
    writeFileSync(data, sampleText);
    const r = spawnSync(process.execPath, [CLI, 'train', '--data', data, '--model', 'lstm', '--rnn-size', '16', '--num-layers', '1', '--batch-size', '8', '--seq-length', '16', '--max-steps', '40', '--eval-val-every', '40', '--threads', '1', '--checkpoint-dir', join(dir, 'cv')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toMatch(/done: val_loss = /);
    cliCheckpoint = join(dir, 'cv', readdirSync(join(dir, 'cv')).find((f) => f.endsWith('.safetensors'))!);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a built-in sample that does not load is a one-line error, not a page to train on', async () => {
    const server = await serve({ dir: site, isolate: false });
    let b: BrowserSession | undefined;
    try {
      b = await openBrowser({ width: 1280, height: 1000 });
      // As a host that lost the file: its 404 page.
      await b.page.route('**/sample.txt', (r) => r.fulfill({ status: 404, contentType: 'text/html', body: '<!doctype html><title>404 Not Found</title><h1>Not Found</h1>' }));
      await b.open(server.url);
      await b.page.waitForFunction(`document.getElementById('sample-desc').textContent.startsWith('cannot load it')`, undefined, { timeout: 20_000 });
      expect(await b.page.textContent('#sample-desc')).toBe('cannot load it (HTTP 404 for sample.txt): use your own text');
      await b.page.waitForFunction(`document.body.dataset.ready === '1'`, undefined, { timeout: 30_000 });
      await b.page.click('#train');
      await b.page.waitForFunction(`document.body.dataset.state === 'failed'`, undefined, { timeout: 20_000 });
      expect(await b.page.textContent('#run-status')).toBe('Stopped. There is no text: paste some, drop a file, or use the built-in sample.');
    } finally {
      await b?.close();
      await server.close();
    }
  });

  for (const isolated of [true, false]) {
    const label = isolated ? 'isolated' : 'not-isolated';
    it(`${isolated ? 'cross-origin isolated, 2 threads' : 'not isolated, one thread'}: trains, samples, saves, loads`, async () => {
      // Every failed response of the server, the browser's own requests (the icon) included.
      const failed: string[] = [];
      const server = await serve({ dir: site, isolate: isolated, onResponse: (status: number, url: string) => status >= 400 && failed.push(`HTTP ${status} for ${url}`) });
      let b: BrowserSession | undefined;
      try {
        b = await openBrowser({ width: 1280, height: 1000 });
        const session = b;
        const page = b.page;
        page.on('response', (r) => {
          if (r.status() >= 400) session.errors.push(`HTTP ${r.status()} for ${r.url()}`);
        });
        page.on('requestfailed', (r) => session.errors.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
        const snap = () => page.evaluate(`window.playground.snapshot()`) as Promise<{
          state: string;
          env: { kernels: string; isolated: boolean };
          iteration: number;
          threads: number;
          train: [number, number][];
          val: [number, number][];
          autoSample: string;
        }>;
        /** Waits for a condition; on a timeout, says what the page showed. */
        const until = async (expr: string, timeout = 20_000) => {
          try {
            await page.waitForFunction(expr, undefined, { timeout });
          } catch (e) {
            const shown = await page.evaluate(`document.getElementById('run-status').textContent + ' | ' + document.getElementById('speed-estimate').textContent`);
            throw new Error(`${(e as Error).message.split('\n')[0]}: ${expr}\nthe page says: ${shown}\nconsole: ${session.console.join('\n')}`);
          }
        };
        await b.open(server.url);
        await until(`document.body.dataset.ready === '1'`, 30_000);
        await until(`document.getElementById('text-stats').textContent.includes('characters')`, 10_000);
        const env = (await snap()).env;
        expect(env.isolated).toBe(isolated);
        expect(env.kernels).toMatch(/^wasm-(relaxed-)?simd$/);
        expect(await page.isDisabled('#threads')).toBe(!isolated);

        if (!isolated) {
          // Your own text: pasted, or dropped as a file; one too short to train on is a one-line error.
          await page.fill('#own-text', 'abcabc');
          await until(`document.getElementById('text-stats').textContent === 'pasted.txt: 6 characters, 3 distinct.'`);
          expect(await page.isChecked('input[name=source][value=own]')).toBe(true);
          await page.click('#train');
          await until(`document.body.dataset.state === 'failed'`);
          // The library's message in the page's terms: its fields, the split it uses, no command-line flag.
          expect(await page.textContent('#run-status')).toBe(
            'Stopped. pasted.txt: the text has 6 character(s), too few to train with batch size 32 and seq length 50: that needs 2 batches of 32×50 ' +
              '(with 0.95 of the text for training and 0.05 for validation, so that there is a train and a validation batch), i.e. at least 3201 characters; ' +
              'lower batch size and seq length so that 2 × batch size × seq length is at most 5, or use a longer text',
          );
          await page.evaluate(`(() => {
            const dt = new DataTransfer();
            dt.items.add(new File(['the cat sat on the mat'], 'notes.txt', { type: 'text/plain' }));
            document.getElementById('own-text').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          })()`);
          await until(`document.getElementById('text-stats').textContent === 'notes.txt: 22 characters, 10 distinct.'`);
          expect(await page.inputValue('#own-text')).toBe('the cat sat on the mat');
          await page.check('input[name=source][value=sample]');
          await until(`document.getElementById('text-stats').textContent.startsWith('sotu-')`);
        }
        // A small model, validated every 20 steps, a sample every 2 s.
        await page.fill('#rnn-size', '24');
        await page.fill('#batch-size', '8');
        await page.fill('#seq-length', '32');
        await page.fill('#eval-every', '20');
        await page.fill('#learning-rate', '0.005');
        if (isolated) await page.fill('#threads', '2');
        await page.selectOption('#auto-every', '2');
        // The parameter count, and the speed measured for this configuration.
        await until(`/parameters/.test(document.getElementById('param-count').textContent)`);
        await until(`/^About [\\d,]+ characters\\/s on ${isolated ? 2 : 1} threads? \\(measured here\\)/.test(document.getElementById('speed-estimate').textContent)`, 30_000);
        await page.click('#train');
        await until(`document.body.dataset.state === 'training'`, 20_000);
        await until(`(() => { const s = window.playground.snapshot(); return s.iteration >= ${STEPS} && s.val.length >= 2 && s.autoSample.length > 0; })()`, 60_000);
        // Pause from the keyboard.
        await page.focus('#pause');
        await page.keyboard.press('Space');
        await until(`document.body.dataset.state === 'paused'`);
        const s = await snap();
        expect(s.threads).toBe(isolated ? 2 : 1);
        // Every step is on the curve, in order; the loss went down.
        expect(s.train.map((p) => p[0])).toEqual(Array.from({ length: s.iteration }, (_, k) => k + 1));
        // The chart (the library's loss-curve SVG) is drawn from all of them: a curve per kind.
        await until(`document.getElementById('chart').dataset.steps === '${s.iteration}' && document.getElementById('chart').dataset.validations === '${s.val.length}'`);
        expect(await page.locator('#chart svg path').count()).toBeGreaterThanOrEqual(2);
        const mean = (xs: [number, number][]) => xs.reduce((a, p) => a + p[1], 0) / xs.length;
        expect(mean(s.train.slice(-10))).toBeLessThan(mean(s.train.slice(0, 5)) - 0.5);
        expect(s.val[s.val.length - 1][1]).toBeLessThan(s.val[0][1]);
        expect(s.autoSample.length).toBe(240);
        expect(await page.textContent('#auto-sample')).toBe(s.autoSample);
        // The cells view: the text coloured, a value per character.
        await page.click('#trace-run');
        await until(`document.querySelectorAll('#trace-chars span[data-value]').length > 20`, 20_000);
        const before = await page.getAttribute('#trace-chars', 'data-selection');
        await page.click('#unit-next');
        expect(await page.getAttribute('#trace-chars', 'data-selection')).not.toBe(before);
        await b.screenshot(join(OUT, `playground-${label}.png`), { fullPage: true });
        // The README's picture (docs/playground.png is a copy): the top of the page.
        if (isolated) {
          await page.setViewportSize({ width: 1200, height: 1500 });
          await page.evaluate(`document.getElementById('run-panel').scrollIntoView()`);
          await b.screenshot(join(OUT, 'playground.png'));
          await page.setViewportSize({ width: 1280, height: 1000 });
        }

        // The loss on a text, in the page and in Node from the downloaded checkpoint.
        await page.fill('#eval-text', evalText);
        await page.click('#eval-run');
        await until(`document.getElementById('eval-out').dataset.loss !== undefined`, 20_000);
        const pageLoss = Number(await page.getAttribute('#eval-out', 'data-loss'));
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
        const saved = join(dir, `${label}-${download.suggestedFilename()}`);
        await download.saveAs(saved);
        expect(download.suggestedFilename()).toMatch(/^lm_playground_grid_lstm_epoch\d+\.\d\d_\d+\.\d{4}\.safetensors$/);
        const kernels = await loadWasmKernels({ variant: env.kernels === 'wasm-relaxed-simd' ? 'relaxed' : 'simd' });
        const ck = loadCheckpoint(saved, { kernels });
        expect(ck.training?.iteration).toBe(s.iteration);
        expect(ck.model.config).toMatchObject({ model: 'grid_lstm', rnnSize: 24, numLayers: 2 });
        expect(evaluateIds(ck.model, encode(evalText, ck.vocab)).loss).toBe(pageLoss);
        // …and the command line samples from it.
        const sampled = spawnSync(process.execPath, [CLI, 'sample', saved, '--length', '50', '--primetext', 'The '], { encoding: 'utf8', timeout: 60_000 });
        expect(sampled.stderr).toMatch(/^sampling 50 characters from /);
        expect(sampled.status).toBe(0);
        expect(sampled.stdout.startsWith('The ')).toBe(true);

        // Resume and reset work; then a checkpoint of the CLI, uploaded, samples.
        await page.click('#pause');
        await until(`window.playground.snapshot().iteration > ${s.iteration}`, 20_000);
        await page.click('#reset');
        await until(`document.body.dataset.state === 'idle'`);
        await page.setInputFiles('#load-file', cliCheckpoint);
        await until(`document.getElementById('model-info').textContent.includes('lstm 1×16')`, 20_000);
        await page.fill('#primetext', 'The ');
        await page.check('#argmax');
        await page.fill('#sample-length', '120');
        await page.focus('#sample-run');
        await page.keyboard.press('Enter');
        await until(`document.getElementById('sample-out').dataset.sample !== undefined`, 20_000);
        const pageSample = await page.getAttribute('#sample-out', 'data-sample');
        const cli = loadCheckpoint(cliCheckpoint, { kernels: await loadWasmKernels({ variant: env.kernels === 'wasm-relaxed-simd' ? 'relaxed' : 'simd' }) });
        expect(pageSample).toBe(sample(cli.model, cli.vocab, { primetext: 'The ', argmax: true, length: 120 }));
        // Saved untouched, the uploaded checkpoint is the same file, byte for byte (its optimizer and carried state kept: resumable).
        const [again] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
        expect(again.suggestedFilename()).toBe(basename(cliCheckpoint));
        const resaved = join(dir, `${label}-resaved.safetensors`);
        await again.saveAs(resaved);
        expect(readFileSync(resaved).equals(readFileSync(cliCheckpoint))).toBe(true);
        // Train on from it (--init-from): the run's first step is the Node Trainer's from the same weights, bit for bit.
        await page.click('#train-from');
        await until(`document.body.dataset.state === 'training'`);
        await until(`window.playground.snapshot().iteration >= 3`);
        await page.click('#pause');
        await until(`document.body.dataset.state === 'paused'`);
        expect(await page.textContent('#model-info')).toContain(`trained here from ${basename(cliCheckpoint)}`);
        const from = await snap();
        const node = Trainer.fromText(
          readFileSync(join(site, 'sample.txt'), 'utf8'),
          { ...DEFAULT_TRAIN_OPTIONS, numLayers: 2, rnnSize: 24, learningRate: 0.005, batchSize: 8, seqLength: 32, evalValEvery: 20, threads: isolated ? 2 : 1, log: 'none' },
          { kernels: await loadWasmKernels({ variant: env.kernels === 'wasm-relaxed-simd' ? 'relaxed' : 'simd' }), initFrom: cli },
        );
        try {
          expect(node.model.config).toMatchObject({ model: 'lstm', rnnSize: 16, numLayers: 1 });
          expect(from.train[0]).toEqual([1, node.step().loss]);
        } finally {
          node.close();
        }
        await b.screenshot(join(OUT, `playground-${label}-loaded.png`), { fullPage: true });
        // A phone-sized screen: one column, nothing wider than the screen.
        await page.setViewportSize({ width: 390, height: 844 });
        expect(await page.evaluate(`document.documentElement.scrollWidth`)).toBeLessThanOrEqual(390);
        await b.screenshot(join(OUT, `playground-${label}-phone.png`), { fullPage: true });
        if (isolated) {
          // "Train anew" while a 2-thread run trains: the new run starts its threads and trains
          // (a step of the old run's queued tick must not block the new one's start).
          await page.setViewportSize({ width: 1280, height: 1000 });
          await page.click('#pause');
          await until(`document.body.dataset.state === 'training'`);
          await until(`window.playground.snapshot().iteration > ${from.iteration}`);
          await page.click('#train');
          await until(`(() => { const s = window.playground.snapshot(); return s.state === 'training' && s.iteration >= 3 && s.train[0][0] === 1 && s.threads === 2; })()`, 15_000);
          expect(await page.textContent('#model-info')).toContain('grid_lstm 2×24');
          await page.click('#pause');
          await until(`document.body.dataset.state === 'paused'`);
          // Only the new run's steps and validations are on the curve (none of the old run's, sent as it ended).
          const anew = await snap();
          expect(anew.train.map((p) => p[0])).toEqual(Array.from({ length: anew.iteration }, (_, k) => k + 1));
          expect(anew.val.map((p) => p[0])).toEqual(Array.from({ length: anew.val.length }, (_, k) => 20 * (k + 1)));
        }
        if (!isolated) {
          // A file that is not a checkpoint: a one-line error in the page's terms (a file to load, no directory).
          const notes = join(dir, 'notes.safetensors');
          writeFileSync(notes, 'these are my notes, not a checkpoint\n');
          await page.setInputFiles('#load-file', notes);
          await until(`document.getElementById('model-info').textContent.startsWith('notes.safetensors: ')`);
          expect(await page.textContent('#model-info')).toBe(
            'notes.safetensors: not a grid-lstm checkpoint (safetensors): it is text ("these are my notes, not ..."), not a safetensors file; load a .safetensors file that grid-lstm train or this page saved',
          );
        }
        // A checkpoint with a long name, loaded on a 375 px screen: its name wraps.
        const long = join(dir, 'lm_state_of_the_union_lstm_1x16_a_long_descriptive_name_without_breaks_epoch0.36_2.7813.safetensors');
        copyFileSync(cliCheckpoint, long);
        await page.setViewportSize({ width: 375, height: 812 });
        await page.setInputFiles('#load-file', long);
        await until(`document.getElementById('run-status').textContent.includes('${basename(long)}')`, 20_000);
        expect(await page.evaluate(`document.documentElement.scrollWidth`)).toBeLessThanOrEqual(375);
        expect(b.errors).toEqual([]);
        expect(failed).toEqual([]);
      } finally {
        await b?.close();
        await server.close();
      }
    });
  }
});
