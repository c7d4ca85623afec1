/**
 * The depth experiment (experiments/depth, issue 15) in its smoke mode (tiny models, 8 steps each,
 * the first 30 000 characters of the built-in corpus), so that the script cannot rot:
 * - the command writes results.json, results.md and curves.svg with a row and a curve per run,
 *   each run trained with the protocol (read back from its checkpoint);
 * - started again, it skips every finished run and leaves their checkpoints alone;
 * - stopped in the middle of a run (the hook Ctrl-C sets), it resumes that run from its
 *   checkpoint when started again, skips those before it, and ends with exactly the losses of the
 *   uninterrupted experiment;
 * - Ctrl-C through the command: a checkpoint, exit code 130, and the plan of the next start says
 *   where the run resumes;
 * - bad options and another experiment's --out: one line, exit code 2.
 *
 * Runs the command with tsx against dist/ (built by `npm ci` and `npm test`'s pretest). About 10 s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOMParser } from '@xmldom/xmldom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { corpusFromText } from '../src/train/data.js';
import { normalizeConfig, paramCount } from '../src/nn/params.js';
import {
  type DepthOptions,
  type Protocol,
  type Results,
  RUNS,
  runExperiment,
  selectedRuns,
  unigramValLoss,
  validationsAfter,
} from '../experiments/depth/depth.js';
import { waitFor } from './helpers/cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = join(ROOT, 'experiments/depth/run.ts');
const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-depth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `npm run experiment:depth -- ARGS` as npm would run it (node --import tsx run.ts). */
function start(args: string[]): { child: ChildProcess; done: Promise<Run>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done, stderr: () => stderr };
}

const run = (args: string[]) => start(args).done;
const results = (out: string) => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
/** The checkpoint files of every run directory, with their modification times. */
function checkpointFiles(out: string): Map<string, number> {
  const files = new Map<string, number>();
  for (const d of readdirSync(out, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    for (const f of readdirSync(join(out, d.name))) if (f.endsWith('.safetensors')) files.set(`${d.name}/${f}`, statSync(join(out, d.name, f)).mtimeMs);
  }
  return files;
}

const SMOKE_RUNS = RUNS.filter((r) => !r.optional);
const A = join(dir, 'a');
let first: Run;

beforeAll(async () => {
  first = await run(['--smoke', '--out', A]);
});

describe('npm run experiment:depth -- --smoke', () => {
  it('trains every run with the protocol and writes the table, the JSON and the figure', () => {
    expect(first.code, first.stderr).toBe(0);
    const r = results(A);
    expect(r.complete).toBe(true);
    expect(r.runs.map((x) => x.id)).toEqual(SMOKE_RUNS.map((s) => s.name));
    expect(r.protocol).toMatchObject({ rnnSize: 8, batchSize: 4, seqLength: 10, steps: 8, evalValEvery: 4, learningRate: 1e-3, dataChars: 30_000 });
    const V = r.corpus.vocabulary;
    for (const [k, x] of r.runs.entries()) {
      const spec = SMOKE_RUNS[k];
      expect(x.status).toBe('done');
      expect([x.iteration, x.charsSeen, x.validations]).toEqual([8, 320, 2]);
      expect(x.parameters).toBe(paramCount(normalizeConfig({ model: spec.model, vocabSize: V, rnnSize: 8, numLayers: spec.numLayers, tieWeights: spec.tieWeights })));
      // The run as trained: its checkpoint's options and history.
      const ck = loadCheckpoint(join(A, x.checkpoint!));
      const o = ck.training!.options;
      expect(o).toMatchObject({ model: spec.model, numLayers: spec.numLayers, dropout: spec.dropout, rnnSize: 8, optim: 'rmsprop', learningRate: 1e-3 });
      expect(o).toMatchObject({ batchSize: 4, seqLength: 10, maxSteps: 8, trainFrac: 0.95, valFrac: 0.05, gradClip: 5, seed: 123 });
      const val = ck.training!.history.val;
      expect(val.map(([i]) => i)).toEqual([4, 8]);
      expect(x.finalValLoss).toBe(val[1][1]);
      expect(x.bestValLoss).toBe(Math.min(val[0][1], val[1][1]));
      expect(x.bestValBits).toBeCloseTo(x.bestValLoss! / Math.LN2, 12);
      expect(x.wallSeconds).toBeGreaterThan(0);
      expect(x.wallSeconds).toBeGreaterThanOrEqual(x.trainSeconds + x.valSeconds);
      expect(x.charsPerSecond).toBeCloseTo(320 / x.trainSeconds, 6);
      // Its row in the table.
      const row = readFileSync(join(A, 'results.md'), 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`| ${x.id} |`));
      expect(row, x.id).toBeDefined();
      expect(row).toContain(`| ${x.bestValLoss!.toFixed(4)} | ${x.bestValBits!.toFixed(3)} | ${x.finalValLoss!.toFixed(4)} |`);
    }
    // Character frequencies alone beat the uniform guess (ln V).
    expect(r.unigramValLoss).toBeGreaterThan(0);
    expect(r.unigramValLoss).toBeLessThan(Math.log(V));
    expect(r.comparisons).toHaveLength(1);
    expect(r.comparisons[0].grid6LowerThanStacked3Percent).toBeCloseTo((1 - r.runs[3].bestValLoss! / r.runs[0].bestValLoss!) * 100, 9);
    // The figure: one validation curve per run, in the table's order.
    const svg = new DOMParser({
      onError: (level, message) => {
        throw new Error(`${level}: ${message}`);
      },
    }).parseFromString(readFileSync(join(A, 'curves.svg'), 'utf8'), 'image/svg+xml').documentElement!;
    const paths = Array.from(svg.getElementsByTagName('path'));
    expect(paths.map((p) => [p.getAttribute('data-curve'), p.getAttribute('data-run')])).toEqual(SMOKE_RUNS.map((_, i) => ['val', String(i)]));
    expect(svg.textContent).toContain('grid-6-nodrop: grid_lstm 6×8, no dropout');
    // The plan, then the table on stdout.
    expect(first.stderr).toMatch(/estimated time: /);
    expect(first.stdout).toContain('| stacked-3 | lstm 3×8 | 0.25 |');
  });

  it('started again, skips every finished run and leaves its checkpoints alone', async () => {
    const before = checkpointFiles(A);
    const losses = results(A).runs.map((x) => [x.bestValLoss, x.finalValLoss, x.wallSeconds]);
    const again = await run(['--smoke', '--out', A]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr.match(/done already, skipped/g)).toHaveLength(SMOKE_RUNS.length);
    expect(again.stderr).not.toMatch(/measuring|: training|resuming/);
    expect(checkpointFiles(A)).toEqual(before);
    const r = results(A);
    expect(r.runs.map((x) => [x.bestValLoss, x.finalValLoss, x.wallSeconds])).toEqual(losses);
    expect(r.invocations).toHaveLength(2);
  });

  it('stopped in the middle of a run, resumes it and ends with the losses of the uninterrupted experiment', async () => {
    const B = join(dir, 'b');
    const options: DepthOptions = {
      rnnSize: 8,
      chars: 320,
      evals: 2,
      threads: 1,
      seeds: [123],
      only: null,
      untied: false,
      out: B,
      data: null,
      dataChars: 30_000,
      batchSize: 4,
      seqLength: 10,
      learningRate: 1e-3,
      plan: false,
      command: 'test',
    };
    let log = '';
    const err = { write: (s: string) => void (log += s), on: () => {}, removeListener: () => {} };
    // Stop before the 6th step of the third run (stacked-6), as Ctrl-C would.
    const third = `[3/${SMOKE_RUNS.length}] stacked-6`;
    const shouldStop = () => log.includes(third) && log.slice(log.indexOf(third)).includes('\n5/8 (');
    expect(await runExperiment(options, { err, out: () => {}, shouldStop })).toBe('stopped');
    expect(readdirSync(B).filter((f) => !f.includes('.'))).toEqual(['grid-3', 'stacked-3', 'stacked-6']);
    const stopped = readdirSync(join(B, 'stacked-6')).filter((f) => f.endsWith('.safetensors'));
    expect(stopped.map((f) => loadCheckpoint(join(B, 'stacked-6', f)).training!.iteration)).toContain(5);
    expect(results(B).complete).toBe(false);
    expect(results(B).runs.find((x) => x.id === 'stacked-6')).toMatchObject({ status: 'incomplete', iteration: 5 });

    log = '';
    expect(await runExperiment(options, { err, out: () => {} })).toBe('done');
    expect(log).toMatch(/\[1\/6\] stacked-3: .*done already, skipped/);
    expect(log).toMatch(/\[2\/6\] grid-3: .*done already, skipped/);
    expect(log).toMatch(/\[3\/6\] stacked-6: .*resuming at iteration 5/);
    expect(log).toMatch(/\[4\/6\] grid-6: .*training/);
    const resumed = results(B).runs;
    const whole = results(A).runs;
    expect(resumed.map((x) => [x.id, x.bestValLoss, x.finalValLoss, x.charsSeen])).toEqual(whole.map((x) => [x.id, x.bestValLoss, x.finalValLoss, x.charsSeen]));
    // The resumed run's time goes on from its checkpoint's.
    const timings = (JSON.parse(readFileSync(join(B, 'stacked-6', 'run.json'), 'utf8')) as { timings: { iteration: number; timedSteps: number }[] }).timings;
    expect(timings.map((t) => [t.iteration, t.timedSteps])).toEqual([
      [4, 4],
      [5, 5],
      [8, 8],
    ]);
  });

  it('Ctrl-C: a checkpoint, exit code 130, and the next start resumes there', async () => {
    const C = join(dir, 'c');
    // 100 000 steps per run: far more than can be done before the signal.
    const p = start(['--smoke', '--chars', '4M', '--out', C]);
    await waitFor(() => /\n\d+\/100000 \(epoch/.test(p.stderr()), 30_000, 'the first steps');
    p.child.kill('SIGINT');
    const r = await p.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/SIGINT: saving a checkpoint after this step/);
    expect(r.stderr).toMatch(/stopped during stacked-3; run the same command again/);
    const at = results(C).runs[0];
    expect(at).toMatchObject({ id: 'stacked-3', status: 'incomplete' });
    expect(at.iteration).toBeGreaterThan(0);
    const plan = await run(['--smoke', '--chars', '4M', '--out', C, '--plan']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).toMatch(new RegExp(`stacked-3 .* resume at ${at.iteration.toLocaleString('en-US')} `));
    expect(plan.stderr).toMatch(/grid-3 .* new /);
  });

  it('bad options and another experiment in --out: one line, exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--rnn-sise', '8'], /unknown option "--rnn-sise"; did you mean --rnn-size\?/],
      [['--only', 'grid-7'], /--only: there is no run "grid-7"; the runs are stacked-3, grid-3, /],
      [['--chars', 'lots'], /--chars must be a count of characters such as 4M/],
      [['--smoke', '--out', A, '--rnn-size', '16'], /holds an experiment with --rnn-size 8, not 16; .* or give another --out/],
    ];
    const got = await Promise.all(cases.map(([args]) => run(args)));
    for (const [k, r] of got.entries()) {
      expect(r.stderr).toMatch(/^experiment:depth: error: /);
      expect(r.stderr).toMatch(cases[k][1]);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.code).toBe(2);
    }
  });
});

describe('the parts', () => {
  it('unigramValLoss: the cross-entropy of the train split\'s character counts (+1) on the val split', () => {
    const p: Protocol = { rnnSize: 1, batchSize: 1, seqLength: 1, steps: 1, evalValEvery: 1, learningRate: 1e-3, trainFrac: 0.5, valFrac: 0.5, data: null, dataChars: null };
    // 100 batches of one character: the targets of train are ids 1..50 (25 a, 25 b), of val 51..100.
    expect(unigramValLoss(corpusFromText('ab'.repeat(50) + 'a'), p)).toBeCloseTo(Math.log(2), 12);
    // 'aaab' × 25 + 'a': train targets ids 1..50 hold 12 b and 38 a; counts +1: a 39/52, b 13/52. Val targets
    // (ids 51..100) hold 13 b and 37 a.
    expect(unigramValLoss(corpusFromText('aaab'.repeat(25) + 'a'), p)).toBeCloseTo(-(37 * Math.log(39 / 52) + 13 * Math.log(13 / 52)) / 50, 12);
  });

  it('selectedRuns: the six by default, --untied or --only for the seventh, seed 123 named plainly', () => {
    const ids = (o: Parameters<typeof selectedRuns>[0]) => selectedRuns(o).map((r) => r.id);
    expect(ids({ only: null, untied: false, seeds: [123] })).toEqual(['stacked-3', 'grid-3', 'stacked-6', 'grid-6', 'stacked-6-nodrop', 'grid-6-nodrop']);
    expect(ids({ only: null, untied: true, seeds: [123] })).toContain('grid-6-untied');
    expect(ids({ only: ['grid-6-untied', 'stacked-3'], untied: false, seeds: [124, 123] })).toEqual([
      'stacked-3-seed124',
      'stacked-3',
      'grid-6-untied-seed124',
      'grid-6-untied',
    ]);
  });

  it('validationsAfter counts the validations still to come', () => {
    expect(validationsAfter(0, 2000, 200)).toBe(10);
    expect(validationsAfter(1000, 2000, 200)).toBe(5);
    expect(validationsAfter(0, 8, 3)).toBe(3); // at 3, 6 and the end
    expect(validationsAfter(7, 8, 3)).toBe(1);
    expect(validationsAfter(8, 8, 3)).toBe(0);
  });
});
