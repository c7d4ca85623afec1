/**
 * Loss curves (src/viz/plot.ts) and `grid-lstm plot`: the SVG is parsed as XML (never
 * string-matched) and its geometry read back — one path per run and curve kind, round monotone
 * ticks, every point inside the plot area and at the right value (nats or bits); the ASCII plot
 * fits its width; the command end to end on checkpoints of short real training runs, and every
 * bad input gives one line and exit code 2.
 *
 * The CLI is run from dist/ (built by `npm ci` and by `npm test`'s pretest step).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DOMParser, type Element } from '@xmldom/xmldom';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineUsageError, runCli } from './helpers/cli.js';
import { type TrainingState, loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { loadDefaultCorpus, splitCounts, vocabFromChars } from '../src/train/data.js';
import { createModel } from '../src/nn/model.js';
import {
  type LossRun,
  type LossSvgOptions,
  PlotInputError,
  batchesPerEpoch,
  lossRunFromCheckpoint,
  plotLossCurves,
  plotLossCurvesAscii,
  smoothLosses,
  smoothingWindow,
} from '../src/viz/plot.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-plot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Reading the SVG back

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Parses an SVG document; any XML error or warning fails (except the warning about a U+FFFD in
 * the text, a valid character that a label may hold).
 */
function parseSvg(svg: string) {
  const doc = new DOMParser({
    onError: (level, message) => {
      if (level === 'warning' && /Unicode replacement character/.test(message)) return;
      throw new Error(`${level}: ${message}`);
    },
  }).parseFromString(svg, 'image/svg+xml');
  return doc.documentElement!;
}

function all(root: Element, tag: string): Element[] {
  return Array.from(root.getElementsByTagName(tag));
}

/** The [x, y] vertices of a path's d (only M and L, absolute, as plot.ts writes them). */
function vertices(d: string): [number, number][] {
  expect(d).toMatch(/^(?:[ML]-?\d+(?:\.\d+)? -?\d+(?:\.\d+)?)+$/);
  return [...d.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

interface Figure {
  root: Element;
  /** Plot area: left, top, right, bottom. */
  box: [number, number, number, number];
  paths: { run: number; curve: string; points: [number, number][] }[];
  markers: { run: number; points: [number, number][] }[];
  xTicks: { value: number; pos: number; text: string }[];
  yTicks: { value: number; pos: number; text: string }[];
  texts: string[];
  legend: Map<number, string>;
}

function readFigure(svg: string): Figure {
  const root = parseSvg(svg);
  expect(root.tagName).toBe('svg');
  expect(root.namespaceURI).toBe(SVG_NS);
  const area = all(root, 'g').find((g) => g.hasAttribute('data-plot-area'))!;
  const box = area.getAttribute('data-plot-area')!.split(' ').map(Number) as Figure['box'];
  const paths = all(root, 'path').map((p) => ({ run: Number(p.getAttribute('data-run')), curve: p.getAttribute('data-curve')!, points: vertices(p.getAttribute('d')!) }));
  const markers = all(root, 'g')
    .filter((g) => g.getAttribute('data-markers') === 'val')
    .map((g) => ({ run: Number(g.getAttribute('data-run')), points: all(g, 'circle').map((c): [number, number] => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]) }));
  // Tick positions from the grid lines (horizontal ones for y ticks, vertical for x, in tick order).
  const gridLines = all(all(root, 'g').find((g) => g.getAttribute('class') === 'gr')!, 'line').map((l) => ['x1', 'y1', 'x2', 'y2'].map((a) => Number(l.getAttribute(a))));
  const ticks = (axis: string) => {
    const lines = axis === 'x' ? gridLines.filter(([x1, , x2]) => x1 === x2).map((l) => l[0]) : gridLines.filter(([, y1, , y2]) => y1 === y2).map((l) => l[1]);
    const texts = all(root, 'text').filter((t) => t.getAttribute('data-axis') === axis && t.hasAttribute('data-value'));
    expect(texts.length).toBe(lines.length);
    return texts.map((t, i) => ({ value: Number(t.getAttribute('data-value')), pos: lines[i], text: t.textContent! }));
  };
  const legend = new Map<number, string>();
  for (const t of all(root, 'text')) if (t.hasAttribute('data-run')) legend.set(Number(t.getAttribute('data-run')), t.textContent!);
  return { root, box, paths, markers, xTicks: ticks('x'), yTicks: ticks('y'), texts: all(root, 'text').map((t) => t.textContent!), legend };
}

/** The data value at a pixel position, from two ticks of the axis (linear). */
function invert(ticks: { value: number; pos: number }[], pos: number): number {
  const a = ticks[0];
  const b = ticks[ticks.length - 1];
  return a.value + ((pos - a.pos) * (b.value - a.value)) / (b.pos - a.pos);
}

function expectInside(f: Figure): void {
  const [l, t, r, b] = f.box;
  const eps = 0.011; // coordinates are written with 2 decimals
  for (const p of [...f.paths.flatMap((q) => q.points), ...f.markers.flatMap((m) => m.points)]) {
    expect(p[0]).toBeGreaterThanOrEqual(l - eps);
    expect(p[0]).toBeLessThanOrEqual(r + eps);
    expect(p[1]).toBeGreaterThanOrEqual(t - eps);
    expect(p[1]).toBeLessThanOrEqual(b + eps);
  }
}

function expectMonotoneTicks(f: Figure): void {
  for (const [ticks, sign] of [
    [f.xTicks, 1],
    [f.yTicks, -1],
  ] as const) {
    expect(ticks.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < ticks.length; i++) {
      expect(ticks[i].value).toBeGreaterThan(ticks[i - 1].value);
      expect(sign * (ticks[i].pos - ticks[i - 1].pos)).toBeGreaterThan(0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Runs to draw

/** A run like a real one: train loss every step falling from ln 98 with noise, val every `every` steps. */
function fakeRun(label: string, steps: number, every: number, final: number, seed: number): LossRun {
  let s = seed;
  const noise = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.2;
  const curve = (i: number) => final + (Math.log(98) - final) * Math.exp(-i / (steps / 6));
  const train: [number, number][] = [];
  const val: [number, number][] = [];
  for (let i = 1; i <= steps; i++) {
    train.push([i, curve(i) + noise()]);
    if (i % every === 0) val.push([i, curve(i) + 0.05]);
  }
  return { label, train, val };
}

const RUNS = [fakeRun('grid_lstm 2×128 (demo)', 400, 50, 1.9, 1), fakeRun('lstm 2×128', 300, 50, 2.1, 2)];

describe('plotLossCurves: the SVG', () => {
  it('is a standalone SVG document: namespace, viewBox, width and height, a title, a style with a dark variant', () => {
    const f = readFigure(plotLossCurves(RUNS));
    expect(f.root.getAttribute('width')).toBe('720');
    expect(f.root.getAttribute('height')).toBe('440');
    expect(f.root.getAttribute('viewBox')).toBe('0 0 720 440');
    expect(all(f.root, 'title')).toHaveLength(1);
    expect(all(f.root, 'title')[0].textContent).toMatch(/^Loss curves: /);
    // Other values (the addition task's accuracy): named after the y axis.
    const acc = readFigure(plotLossCurves(RUNS, { yTitle: 'validation sums right (%)', curves: 'val' }));
    expect(all(acc.root, 'title')[0].textContent).toMatch(/^Validation sums right \(%\): /);
    const style = all(f.root, 'style');
    expect(style).toHaveLength(1);
    expect(style[0].textContent).toContain('@media (prefers-color-scheme: dark)');
    // Transparent by default; an opaque background for an explicit theme.
    expect(all(f.root, 'rect')).toHaveLength(0);
    for (const theme of ['light', 'dark'] as const) {
      const g = readFigure(plotLossCurves(RUNS, { theme }));
      expect(all(g.root, 'rect')).toHaveLength(1);
      expect(all(g.root, 'style')[0].textContent).not.toContain('@media');
    }
  });

  it('one <path> per run and curve kind, the validation curve with a marker at each evaluation', () => {
    const f = readFigure(plotLossCurves(RUNS));
    expect(f.paths.map((p) => `${p.run}:${p.curve}`).sort()).toEqual(['0:train', '0:val', '1:train', '1:val']);
    const val0 = f.paths.find((p) => p.run === 0 && p.curve === 'val')!;
    expect(val0.points).toHaveLength(8);
    expect(f.markers.find((m) => m.run === 0)!.points).toEqual(val0.points);
    // Only validation, only training: one path per run.
    expect(readFigure(plotLossCurves(RUNS, { curves: 'val' })).paths.map((p) => p.curve)).toEqual(['val', 'val']);
    expect(readFigure(plotLossCurves(RUNS, { curves: 'train' })).paths.map((p) => p.curve)).toEqual(['train', 'train']);
    // A run without validation has no validation path.
    const g = readFigure(plotLossCurves([{ ...RUNS[0], val: [] }]));
    expect(g.paths.map((p) => p.curve)).toEqual(['train']);
  });

  it('axis labels with units, monotone round ticks, every point inside the plot area', () => {
    const f = readFigure(plotLossCurves(RUNS));
    expect(f.texts).toContain('iteration');
    expect(f.texts).toContain('loss (nats/char)');
    expectMonotoneTicks(f);
    expectInside(f);
    expect(f.xTicks.map((t) => t.text)).toEqual(['0', '50', '100', '150', '200', '250', '300', '350', '400']);
    expect(f.yTicks.map((t) => t.text)).toEqual(['1.5', '2.0', '2.5', '3.0', '3.5', '4.0', '4.5', '5.0']);
    const labels = (o: LossSvgOptions) => readFigure(plotLossCurves(RUNS, o)).texts;
    expect(labels({ bits: true })).toContain('loss (bits/char)');
    expect(labels({ curves: 'val' })).toContain('validation loss (nats/char)');
    expect(labels({ curves: 'val', bits: true })).toContain('validation loss (bits/char)');
    expect(labels({ x: 'epoch' })).toContain('epoch');
    expect(labels({ x: 'chars' })).toContain('training characters');
  });

  it('characters on the x axis get SI tick labels (800k, 1M, 1.2M)', () => {
    const scale = (r: LossRun, k: number): LossRun => ({ ...r, train: r.train.map(([x, y]) => [x * k, y]), val: r.val.map(([x, y]) => [x * k, y]) });
    const f = readFigure(plotLossCurves([scale(RUNS[0], 2500 * 1.5)], { x: 'chars' }));
    expect(f.xTicks.map((t) => t.text)).toEqual(['0', '200k', '400k', '600k', '800k', '1M', '1.2M', '1.4M']);
    expectMonotoneTicks(f);
  });

  it('points sit at their values: the validation markers read back as the losses, in nats or (÷ ln 2) bits', () => {
    for (const bits of [false, true]) {
      const f = readFigure(plotLossCurves(RUNS, { bits }));
      for (const [i, run] of RUNS.entries()) {
        const got = f.markers.find((m) => m.run === i)!.points;
        expect(got).toHaveLength(run.val.length);
        run.val.forEach(([x, loss], j) => {
          expect(invert(f.xTicks, got[j][0])).toBeCloseTo(x, 0);
          expect(invert(f.yTicks, got[j][1])).toBeCloseTo(bits ? loss / Math.LN2 : loss, 2);
        });
      }
    }
  });

  it('the legend names each run (text escaped, read back exactly) and keys the line styles', () => {
    const odd = "<b>&'quoted\" run</b>";
    const f = readFigure(plotLossCurves([RUNS[0], { ...RUNS[1], label: odd }]));
    expect(f.legend.get(0)).toBe('grid_lstm 2×128 (demo)');
    expect(f.legend.get(1)).toBe(odd);
    expect(f.texts).toContain('training (moving average)');
    expect(f.texts).toContain('validation');
    // Nothing to smooth (or smoothing 0): the key says so.
    expect(readFigure(plotLossCurves(RUNS, { smoothing: 0 })).texts).toContain('training');
  });

  it('is deterministic: the same runs and options give the same bytes', () => {
    const o: LossSvgOptions = { x: 'epoch', bits: true, title: 'two runs' };
    expect(plotLossCurves(RUNS, o)).toBe(plotLossCurves(structuredClone(RUNS), { ...o }));
  });

  it('the training curve is a centred moving average over 1% of the steps (none below 3), decimated to the width', () => {
    expect(smoothingWindow(300, 0.01)).toBe(3);
    expect(smoothingWindow(200, 0.01)).toBe(3);
    expect(smoothingWindow(199, 0.01)).toBe(1);
    expect(smoothingWindow(2000, 0.01)).toBe(21);
    expect(smoothingWindow(2000, 0)).toBe(1);
    const pts: [number, number][] = [
      [1, 5],
      [2, 1],
      [3, 3],
      [4, 7],
      [5, 2],
    ];
    // half-window 1 (fraction 0.6 of 5 points → window 3); the ends average only themselves.
    expect(smoothLosses(pts, 0.6)).toEqual([
      [1, 5],
      [2, 3],
      [3, 11 / 3],
      [4, 4],
      [5, 2],
    ]);
    const f = readFigure(plotLossCurves([fakeRun('long', 50_000, 5000, 1.5, 3)]));
    const train = f.paths.find((p) => p.curve === 'train')!;
    expect(train.points.length).toBeLessThanOrEqual(720);
    expectInside(f);
  });

  it('degenerate input still gives a valid figure: no runs, one point, constant losses', () => {
    for (const runs of [[], [{ label: 'one', train: [[5, 2]], val: [] }], [{ label: 'flat', train: [[0, 1], [10, 1]], val: [[10, 1]] }]] as LossRun[][]) {
      const f = readFigure(plotLossCurves(runs));
      expectInside(f);
      expectMonotoneTicks(f);
    }
  });

  it('property: for random histories and options the SVG parses, ticks are monotone and every data point maps inside the plot box', () => {
    const pair = (xMax: number) => fc.tuple(fc.double({ min: 0, max: xMax, noNaN: true }), fc.double({ min: 1e-3, max: 20, noNaN: true }));
    const run = fc.integer({ min: 1, max: 1e9 }).chain((xMax) =>
      fc.record({
        label: fc.string({ maxLength: 120 }),
        train: fc.array(pair(xMax), { maxLength: 300 }),
        val: fc.array(pair(xMax), { maxLength: 30 }),
      }),
    );
    const options = fc.record(
      {
        x: fc.constantFrom('iteration' as const, 'epoch' as const, 'chars' as const),
        bits: fc.boolean(),
        curves: fc.constantFrom('both' as const, 'train' as const, 'val' as const),
        smoothing: fc.constantFrom(0, 0.01, 0.1, 1),
        theme: fc.constantFrom('auto' as const, 'light' as const, 'dark' as const),
        width: fc.integer({ min: 240, max: 1600 }),
        height: fc.integer({ min: 180, max: 1000 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(run, { maxLength: 5 }), options, (runs, o) => {
        const f = readFigure(plotLossCurves(runs, o));
        expectInside(f);
        expectMonotoneTicks(f);
        const drawn = (r: LossRun) => (o.curves !== 'val' && r.train.length > 0 ? 1 : 0) + (o.curves !== 'train' && r.val.length > 0 ? 1 : 0);
        expect(f.paths).toHaveLength(runs.reduce((n, r) => n + drawn(r), 0));
        // The legend names every run (a label too long for the width cut with "…").
        runs.forEach((r, i) => {
          const shown = f.legend.get(i)!;
          expect(shown === r.label || (shown.endsWith('…') && r.label.startsWith(shown.slice(0, -1)))).toBe(true);
        });
        const [, top, , bottom] = f.box;
        expect(bottom - top).toBeGreaterThanOrEqual(100);
      }),
      { numRuns: 60 },
    );
  });
  it('property: labels with any characters (controls, lone surrogates, markup) still give well-formed XML', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }), (label, title) => {
        const f = readFigure(plotLossCurves([{ ...RUNS[1], label }], { title }));
        expect(f.legend.get(0)).toBeDefined();
      }),
      { numRuns: 100 },
    );
  });
});

describe('plotLossCurvesAscii', () => {
  it('fits the width, ticks on the y axis, the x range, one mark per run and a legend', () => {
    for (const width of [40, 60, 80, 120]) {
      const text = plotLossCurvesAscii(RUNS, { width });
      for (const line of text.trimEnd().split('\n')) expect([...line].length).toBeLessThanOrEqual(width);
      expect(text).toContain('* grid_lstm 2×128 (demo)');
      expect(text).toContain('o lstm 2×128');
      expect(text).toMatch(/iteration \(50 to 400\)/); // several runs: the validation curves only
    }
    const text = plotLossCurvesAscii(RUNS);
    const yTicks = [...text.matchAll(/^ *(\d+\.\d+) \+/gm)].map((m) => Number(m[1]));
    expect(yTicks.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < yTicks.length; i++) expect(yTicks[i]).toBeLessThan(yTicks[i - 1]);
    expect(text).toContain('loss (nats/char)');
    // One run: its smoothed training curve as dots under the validation marks.
    const one = plotLossCurvesAscii([RUNS[0]]);
    expect(one).toMatch(/iteration \(1 to 400\)/);
    expect(one).toMatch(/\.{3}/);
    expect(one).toContain('* validation loss, . training loss (moving average)');
    expect(plotLossCurvesAscii([RUNS[0]], { bits: true })).toContain('loss (bits/char)');
  });

  it('property: any histories fit the width', () => {
    const pair = fc.tuple(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.double({ min: 1e-3, max: 20, noNaN: true }));
    const run = fc.record({ label: fc.string({ maxLength: 100 }), train: fc.array(pair, { maxLength: 100 }), val: fc.array(pair, { maxLength: 20 }) });
    fc.assert(
      fc.property(fc.array(run, { maxLength: 4 }), fc.integer({ min: 40, max: 160 }), fc.boolean(), (runs, width, bits) => {
        const text = plotLossCurvesAscii(runs, { width, bits });
        for (const line of text.trimEnd().split('\n')) expect([...line].length).toBeLessThanOrEqual(width);
      }),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// From checkpoints

/** A training state with the fields lossRunFromCheckpoint reads; the rest as the trainer writes them. */
function trainingState(over: Partial<TrainingState> = {}): TrainingState {
  return {
    iteration: 40,
    epoch: 40 / 95,
    learningRate: 2e-3,
    optimizer: { name: 'rmsprop', stepCount: 40, decayRate: 0.95, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    rngState: 1,
    batchIx: { train: 40, val: 0, test: 0 },
    batches: 100,
    options: { batchSize: 50, seqLength: 50, trainFrac: 0.95, valFrac: 0.05, savefile: 'demo' },
    history: {
      train: Array.from({ length: 40 }, (_, i): [number, number] => [i + 1, 4 - i / 20]),
      val: [
        [20, 3.2],
        [40, 2.9],
      ],
    },
    ...over,
  };
}
const CONFIG = { model: 'grid_lstm', rnnSize: 128, numLayers: 2, tieWeights: true };

describe('lossRunFromCheckpoint', () => {
  it('label from model, size and --savefile; x in iterations, epochs (the train split of the batches) or characters', () => {
    const ck = { training: trainingState(), model: { config: CONFIG } };
    const it0 = lossRunFromCheckpoint(ck);
    expect(it0.label).toBe('grid_lstm 2×128 (demo)');
    expect(it0.val).toEqual([
      [20, 3.2],
      [40, 2.9],
    ]);
    expect(splitCounts(100, { trainFrac: 0.95, valFrac: 0.05 }).train).toBe(95);
    expect(batchesPerEpoch(ck.training)).toBe(95);
    expect(lossRunFromCheckpoint(ck, { x: 'epoch' }).val.map((p) => p[0])).toEqual([20 / 95, 40 / 95]);
    expect(lossRunFromCheckpoint(ck, { x: 'chars' }).val.map((p) => p[0])).toEqual([20 * 2500, 40 * 2500]);
    // Without the batch count, epochs come from iteration / epoch as saved.
    const noBatches = { ...ck, training: trainingState({ batches: undefined, epoch: 40 / 77 }) };
    expect(batchesPerEpoch(noBatches.training)).toBe(77);
    expect(lossRunFromCheckpoint({ ...ck, model: { config: { ...CONFIG, model: 'lstm', tieWeights: false } }, training: trainingState({ options: {} }) }).label).toBe('lstm 2×128');
    expect(lossRunFromCheckpoint({ ...ck, model: { config: { ...CONFIG, tieWeights: false } } }).label).toBe('grid_lstm 2×128 untied (demo)');
  });

  it('says what is missing: no training state, an empty history, what epochs or characters need', () => {
    const t = (training: TrainingState | null, x?: 'epoch' | 'chars') => () => lossRunFromCheckpoint({ training, model: { config: CONFIG } }, { x });
    expect(t(null)).toThrow(PlotInputError);
    expect(t(null)).toThrow(/no training history/);
    expect(t(trainingState({ history: { train: [], val: [] } }))).toThrow(/loss history is empty/);
    expect(t(trainingState({ batches: undefined, epoch: 0 }), 'epoch')).toThrow(/cannot be turned into epochs/);
    expect(t(trainingState({ options: { seqLength: 50 } }), 'chars')).toThrow(/--batch-size and --seq-length/);
  });
});

// ---------------------------------------------------------------------------------------------
// The command

/** Runs the CLI in the test directory without blocking. */
const run = (args: string[], options: { uid?: number; gid?: number; nodeArgs?: string[] } = {}) => runCli(args, { cwd: dir, ...options });

describe('grid-lstm plot', () => {
  const TRAIN = ['--rnn-size', '8', '--num-layers', '2', '--batch-size', '4', '--seq-length', '16', '--max-steps', '12', '--eval-val-every', '6', '--print-every', '100'];
  beforeAll(async () => {
    chmodSync(dir, 0o755); // readable by the unprivileged user of the permission test
    writeFileSync(join(dir, 'text.txt'), loadDefaultCorpus().slice(1_000_000, 1_012_000));
    const [g, l] = await Promise.all([
      run(['train', '--data', 'text.txt', ...TRAIN, '--checkpoint-dir', 'g', '--savefile', 'g']),
      run(['train', '--data', 'text.txt', ...TRAIN, '--model', 'lstm', '--checkpoint-dir', 'l', '--savefile', 'l']),
    ]);
    expect(g.code, g.stderr).toBe(0);
    expect(l.code, l.stderr).toBe(0);
  });

  it('two runs in one figure (a file and a directory): one path per run and curve, the legend names both', async () => {
    const lFile = readdirNewest('l');
    const r = await run(['plot', 'g', lFile, '--out', 'two.svg']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^wrote two\.svg \(2 runs, x iteration\)\n$/);
    expect(r.stdout).toBe('');
    const f = readFigure(readFileSync(join(dir, 'two.svg'), 'utf8'));
    expect(f.paths.map((p) => `${p.run}:${p.curve}`).sort()).toEqual(['0:train', '0:val', '1:train', '1:val']);
    expect(f.legend.get(0)).toBe('grid_lstm 2×8 (g)');
    expect(f.legend.get(1)).toBe('lstm 2×8 (l)');
    expectInside(f);
    expectMonotoneTicks(f);
    // The markers are the validation losses the checkpoint holds.
    const ck = loadCheckpoint(join(dir, lFile));
    const val = ck.training!.history.val;
    expect(val.map((p) => p[0])).toEqual([6, 12]);
    const got = f.markers.find((m) => m.run === 1)!.points;
    val.forEach(([i, loss], j) => {
      expect(invert(f.xTicks, got[j][0])).toBeCloseTo(i, 1);
      expect(invert(f.yTicks, got[j][1])).toBeCloseTo(loss, 2);
    });
  });

  it('--x epoch and --x chars, --bits: the last validation point is at the epoch the checkpoint records, at 12·B·T characters', async () => {
    const ck = loadCheckpoint(join(dir, readdirNewest('g')));
    const [lastIt, lastLoss] = ck.training!.history.val.at(-1)!;
    for (const [x, expected, label] of [
      ['epoch', ck.training!.epoch, 'epoch'],
      ['chars', lastIt * 4 * 16, 'training characters'],
    ] as const) {
      const r = await run(['plot', 'g', '--x', x, '--bits', '--out', '-']);
      expect(r.code, r.stderr).toBe(0);
      const f = readFigure(r.stdout);
      expect(f.texts).toContain(label);
      expect(f.texts).toContain('loss (bits/char)');
      const pts = f.markers[0].points;
      expect(invert(f.xTicks, pts.at(-1)![0]) / expected).toBeCloseTo(1, 2);
      expect(invert(f.yTicks, pts.at(-1)![1])).toBeCloseTo(lastLoss / Math.LN2, 2);
    }
  });

  it('without --out: an ASCII plot on stdout that fits 80 columns', async () => {
    const r = await run(['plot', 'g', 'l']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (const line of r.stdout.trimEnd().split('\n')) expect([...line].length).toBeLessThanOrEqual(80);
    expect(r.stdout).toContain('* grid_lstm 2×8 (g)');
    expect(r.stdout).toContain('o lstm 2×8 (l)');
    expect(r.stdout).toMatch(/iteration \(6 to 12\)/);
  });

  it('--out x.png: a PNG drawn by resvg, twice the SVG size', async () => {
    const r = await run(['plot', 'g', 'l', '--out', 'two.png', '--ascii']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('lstm 2×8 (l)');
    const png = readFileSync(join(dir, 'two.png'));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(1440);
    expect(png.readUInt32BE(20)).toBe(880);
  });

  it('runs with the same label are told apart by their argument', async () => {
    const r = await run(['plot', 'g', join('g', readdirNewest('g').split('/').at(-1)!), '--out', '-']);
    const f = readFigure(r.stdout);
    expect(f.legend.get(0)).toBe('grid_lstm 2×8 (g) — g');
    expect(f.legend.get(1)).toMatch(/^grid_lstm 2×8 \(g\) — g\/lm_g_epoch/);
  });

  describe('bad input: one line, exit code 2', () => {
    beforeAll(() => {
      const model = createModel({ model: 'lstm', vocabSize: 3, rnnSize: 2, numLayers: 1 });
      const vocab = vocabFromChars(['a', 'b', 'c']);
      saveCheckpoint(join(dir, 'weights-only.safetensors'), model, vocab);
      saveCheckpoint(join(dir, 'empty-history.safetensors'), model, vocab, { training: trainingState({ iteration: 0, epoch: 0, history: { train: [], val: [] } }) });
      saveCheckpoint(join(dir, 'no-batches.safetensors'), model, vocab, { training: trainingState({ batches: undefined, epoch: 0, options: {} }) });
      writeFileSync(join(dir, 'corrupt.safetensors'), readFileSync(join(dir, 'weights-only.safetensors')).subarray(0, 50));
      mkdirSync(join(dir, 'empty-dir'), { recursive: true });
      mkdirSync(join(dir, 'locked'), { recursive: true });
    });
    const cases: [string, string[], RegExp][] = [
      ['no checkpoint', ['plot'], /plot needs at least one checkpoint/],
      ['a checkpoint with no history', ['plot', 'weights-only.safetensors'], /weights-only\.safetensors: holds no training history/],
      ['an empty history', ['plot', 'empty-history.safetensors'], /empty-history\.safetensors: its loss history is empty/],
      ['epochs without the batch count', ['plot', 'no-batches.safetensors', '--x', 'epoch'], /no-batches\.safetensors: .*cannot be turned into epochs; plot with --x iteration/],
      ['characters without the batch shape', ['plot', 'no-batches.safetensors', '--x', 'chars'], /no-batches\.safetensors: .*--batch-size and --seq-length/],
      ['a missing file', ['plot', 'g', 'nope.safetensors'], /nope\.safetensors: no such file/],
      ['a corrupt file', ['plot', 'corrupt.safetensors'], /corrupt\.safetensors: .*(header|shorter|larger)/],
      ['not a checkpoint', ['plot', 'text.txt'], /text\.txt: /],
      ['a directory with no checkpoints', ['plot', 'empty-dir'], /empty-dir holds no \.safetensors checkpoint/],
      ['an unknown --x', ['plot', 'g', '--x', 'time'], /--x must be one of iteration, epoch, chars, got "time"/],
      ['an output that is neither .svg nor .png', ['plot', 'g', '--out', 'curves.pdf'], /--out curves\.pdf must end in \.svg or \.png/],
      ['an output in a missing directory', ['plot', 'g', '--out', 'missing/curves.svg'], /cannot write --out missing\/curves\.svg: its directory .*missing does not exist/],
      ['an output that is a directory', ['plot', 'g', '--out', 'empty-dir.svg'], /--out empty-dir\.svg is a directory/],
      ['--smooth out of range', ['plot', 'g', '--smooth', '2'], /--smooth must be a fraction in \[0, 1\], got 2/],
    ];
    beforeAll(() => mkdirSync(join(dir, 'empty-dir.svg'), { recursive: true }));
    for (const [name, args, re] of cases) {
      it(name, async () => expectOneLineUsageError(await run(args), re));
    }
    it('--out .png without the optional @resvg/resvg-js (hidden by a module hook) names the package and .svg', async () => {
      // A resolve hook that makes the package look uninstalled.
      writeFileSync(
        join(dir, 'hide-resvg.mjs'),
        'export async function resolve(specifier, context, next) {\n' +
          "  if (specifier === '@resvg/resvg-js') throw Object.assign(new Error('Cannot find package @resvg/resvg-js'), { code: 'ERR_MODULE_NOT_FOUND' });\n" +
          '  return next(specifier, context);\n}\n',
      );
      writeFileSync(join(dir, 'register-hide-resvg.mjs'), "import { register } from 'node:module';\nregister('./hide-resvg.mjs', import.meta.url);\n");
      const r = await run(['plot', 'g', '--out', 'nofont.png'], { nodeArgs: ['--import', pathToFileURL(join(dir, 'register-hide-resvg.mjs')).href] });
      expectOneLineUsageError(r, /--out \.png needs the optional package @resvg\/resvg-js: install it .* or write an \.svg/);
      expect(existsSync(join(dir, 'nofont.png'))).toBe(false);
    });
    it('an output without write permission', async () => {
      // root may write anywhere: run the command as an unprivileged user instead.
      const asRoot = process.getuid?.() === 0;
      if (!asRoot) chmodSync(join(dir, 'locked'), 0o555);
      const r = await run(['plot', 'g', '--out', 'locked/curves.svg'], asRoot ? { uid: 65534, gid: 65534 } : {});
      expectOneLineUsageError(r, /cannot write --out locked\/curves\.svg: permission denied \(EACCES\)/);
    });
  });
});

/** The last checkpoint of a run directory under the test directory, as a relative path (names sort by epoch). */
function readdirNewest(sub: string): string {
  const names = readdirSync(join(dir, sub))
    .filter((n) => n.endsWith('.safetensors'))
    .sort();
  return join(sub, names.at(-1)!);
}
