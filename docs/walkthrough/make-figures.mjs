#!/usr/bin/env node
// Makes every figure of the walkthrough and of the README with the tool's own commands and
// library (npm run docs:figures builds first; tsx loads the browser harness of the tests).
//
//   node --import tsx docs/walkthrough/make-figures.mjs            figures from the committed runs
//   node --import tsx docs/walkthrough/make-figures.mjs --train    train the runs first (about
//                                                                  12 minutes on 2 cores)
//   node --import tsx docs/walkthrough/make-figures.mjs --out DIR  write the figures to DIR instead
//
// The report's screenshot needs Chromium (apt-get install chromium); without one it is skipped,
// with a line that says so.
//
// The runs: a grid_lstm and an lstm, both 2×128 with char-rnn's defaults (seed 123), trained
// with `grid-lstm train` on the built-in corpus for RUN_STEPS steps of 50×50 characters,
// validated every 250. The checkpoints the chapters load are kept in docs/walkthrough/runs/
// without their optimiser state (the weights, the vocabulary and the training history).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gridBlockDiagram, gridUnrolledDiagram, loadCheckpoint, loadDefaultCorpus, saveCheckpoint } from '../../dist/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
export const RUNS_DIR = join(HERE, 'runs');
export const RUN_STEPS = 2000;
/**
 * Chapter 6's text: 3 000 characters of the validation split. The 10 760 295 characters make 50
 * streams of 215 200 (4 304 batches of 50×50); the first 4 088 batches of each stream train, the
 * next 216 validate, so the last stream's validation part is characters 10 749 200 … 10 759 999
 * (the address of 2021).
 */
export const LOOK_INSIDE = { start: 10_749_800, length: 3_000 };
/** The runs, and the iterations whose checkpoints are kept. */
export const RUNS = [
  { name: 'grid', model: 'grid_lstm', keep: [250, 1000, 2000] },
  { name: 'lstm', model: 'lstm', keep: [2000] },
];

/** The kept checkpoint of a run at an iteration. */
export function runCheckpoint(name, iteration) {
  return join(RUNS_DIR, `${name}-2x128-it${iteration}.safetensors`);
}

function wrote(out, file) {
  console.log(`wrote ${relative(ROOT, join(out, file))}`);
}

function cli(args, options = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`grid-lstm ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}

/**
 * Trains the runs (`grid-lstm train`) and keeps the chosen checkpoints, without optimiser state.
 * The plain-SIMD kernels make the same numbers on every machine (relaxed SIMD may fuse
 * multiply-adds or not, by processor). The checkpoints are written under cv/ (ignored by git),
 * named relative to the repository, so that the options they record name no path of this machine.
 */
function train() {
  for (const run of RUNS) {
    const dir = join('cv', 'walkthrough-runs', run.name);
    rmSync(join(ROOT, dir), { recursive: true, force: true });
    console.log(`training ${run.name} (${run.model} 2×128, ${RUN_STEPS} steps)…`);
    cli(['train', '--model', run.model, '--max-steps', String(RUN_STEPS), '--eval-val-every', '250', '--print-every', '100',
      '--seed', '123', '--kernels', 'wasm-simd', '--checkpoint-dir', dir, '--savefile', run.name], { stdio: ['ignore', 'inherit', 'inherit'] });
    keep(run, join(ROOT, dir));
  }
}

/** Copies the checkpoints of `run.keep` from a run's checkpoint directory, without optimiser state. */
export function keep(run, dir) {
  mkdirSync(RUNS_DIR, { recursive: true });
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.safetensors'))) {
    const ck = loadCheckpoint(join(dir, file));
    if (!run.keep.includes(ck.training.iteration)) continue;
    const out = runCheckpoint(run.name, ck.training.iteration);
    saveCheckpoint(out, ck.model, ck.vocab, { training: ck.training });
    console.log(`kept ${relative(ROOT, out)}`);
  }
}

async function main() {
  const args = process.argv.slice(2);
  const outIx = args.indexOf('--out');
  const out = outIx >= 0 ? resolve(args[outIx + 1]) : join(HERE, 'figures');
  if (args.includes('--train')) train();
  for (const run of RUNS) {
    for (const it of run.keep) {
      try {
        loadCheckpoint(runCheckpoint(run.name, it));
      } catch (e) {
        throw new Error(`${e.message}; make the runs first with: node docs/walkthrough/make-figures.mjs --train`);
      }
    }
  }
  mkdirSync(out, { recursive: true });
  // Chapter 3: one grid block, and a 3-layer grid unrolled over 4 steps (src/viz/diagram.ts).
  writeFileSync(join(out, 'grid-block.svg'), gridBlockDiagram());
  wrote(out, 'grid-block.svg');
  writeFileSync(join(out, 'grid-unrolled.svg'), gridUnrolledDiagram({ layers: 3, text: 'Fello' }));
  wrote(out, 'grid-unrolled.svg');

  // Chapter 5 and the README: the loss curves of both runs, by `grid-lstm plot`.
  const finals = RUNS.map((run) => relative(ROOT, runCheckpoint(run.name, RUN_STEPS)));
  cli(['plot', ...finals, '--out', join(out, 'loss-curves.svg')]);
  wrote(out, 'loss-curves.svg');

  // Chapter 6 and the README: the viz report of the grid over chapter 6's text, in Chromium.
  await reportScreenshot(out, runCheckpoint('grid', RUN_STEPS));
}

/** `grid-lstm viz` of a checkpoint over chapter 6's text, and a screenshot of it (report.png). */
async function reportScreenshot(out, checkpoint) {
  const browser = await import('../../test/helpers/browser.ts').catch((e) => {
    throw new Error(`cannot load the browser harness (${e.message}); run this script with node --import tsx, as npm run docs:figures does`);
  });
  if (browser.findChromium() === null) {
    console.log(`skipped report.png: ${browser.NO_BROWSER}`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'grid-lstm-report-'));
  try {
    const text = join(work, 'speech.txt');
    writeFileSync(text, loadDefaultCorpus().slice(LOOK_INSIDE.start, LOOK_INSIDE.start + LOOK_INSIDE.length));
    const html = join(work, 'report.html');
    cli(['viz', relative(ROOT, checkpoint), '--data', text, '--out', html, '--length', String(LOOK_INSIDE.length), '--kernels', 'wasm-simd']);
    await browser.screenshotPage(html, join(out, 'report.png'), {
      width: 1280,
      height: 900,
      prepare: async (page) => {
        await browser.waitForReport(page);
        // The unit that tracks the position in a word best (chapter 6 finds the same one).
        await page.locator('#rank-best button', { hasText: 'position in word' }).click();
        // Show a character's predictions, as a reader hovering over the text would.
        await page.locator('#text span').nth(140).hover();
      },
    });
    wrote(out, 'report.png');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`make-figures: ${e.message}`);
    process.exit(1);
  });
}
