/**
 * The PyTorch side (python/grid_lstm_torch) against this project, both directions, and its
 * data-parallel training under torchrun.
 *
 * Parity (python/tests/parity.py computes the PyTorch numbers): for random configs of every model
 * (lstm, grid_lstm tied and untied, gru, rnn; with and without dropout), a checkpoint written here and
 * loaded in PyTorch, and one written by PyTorch (its weights drawn from a seed) and loaded here,
 * give the same −log p of every character of a stream (batch 1, zero state: what `eval` averages)
 * to 1e-5, the same gradient of one batch (from a random state, the dropout masks drawn from the
 * same generator state) to 1e-4 relative to each tensor's largest element, and one clipped
 * RMSprop step from the optimiser state saved in the checkpoint (optimizer.m) lands on the same
 * weights to 1e-5. (From a zero state the first step is lr·g/(√((1−α)g²) + ε), which amplifies
 * float32 rounding in an element with |g| near ε = 1e-8 by up to lr/ε: a 1e-11 difference there
 * moves the weight by 1e-5. A state saved in a checkpoint is what a resumed run steps from.) PyTorch's weights drawn from seed S are
 * bit-identical to `new Model(config, { seed: S })`'s.
 *
 * Training (python/train.py): a run of 6 steps with dropout equals the CLI's run of the same
 * options (losses, weights, optimiser and carried state, generator, data position), on one
 * process and on two under torchrun (gloo), whose checkpoint the CLI evaluates, samples,
 * inspects, plots, visualises and resumes as its own; PyTorch resumes a run of the CLI alike.
 *
 * Runs when a Python with torch is found (test/helpers/torch.ts); otherwise the file prints
 * "skipped: PyTorch not installed" and skips, unless REQUIRE_PYTORCH=1 (as .ci/run sets).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type State } from '../src/nn/model.js';
import { Rng } from '../src/nn/rng.js';
import type { ModelConfig } from '../src/nn/params.js';
import { type CheckpointContents, loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { loadDefaultCorpus, vocabFromChars } from '../src/train/data.js';
import { runCli } from './helpers/cli.js';
import { PYTHON_DIR, runPython, torchTests, torchrunOptions } from './helpers/torch.js';
import { Optimizer, clipGradients } from '../src/train/optim.js';

// ---------------------------------------------------------------------------------------------
// Parity, both directions

interface Case {
  config: Required<ModelConfig>;
  vocab: string[];
  seed: number;
  B: number;
  T: number;
  x: number[];
  y: number[];
  stream: number[];
  state: { h: number[][]; c: number[][] };
  rngState: number;
  lr: number;
  decayRate: number;
  gradClip: number;
  /** The RMSprop state saved with the checkpoint (optimizer.m), one value per parameter. */
  m: number[];
  /** true: made by PyTorch from `seed` and loaded here; false: made here and loaded in PyTorch. */
  madeByTorch: boolean;
  file: string;
}

interface TorchResult {
  losses: number[];
  loss: number;
  grads: Record<string, number[]>;
  after: Record<string, number[]>;
  rngStateAfter: number;
}

/** The random cases: each model kind, with and without dropout, in each direction. */
function makeCases(seed: number, dir: string): Case[] {
  const r = new Rng(seed);
  const int = (lo: number, hi: number) => lo + r.int(hi - lo + 1);
  const kinds: [ModelConfig['model'], boolean][] = [['lstm', true], ['grid_lstm', true], ['grid_lstm', false], ['gru', true], ['rnn', true]];
  const cases: Case[] = [];
  for (const madeByTorch of [false, true]) {
    for (const [model, tieWeights] of kinds) {
      for (const dropped of [false, true]) {
        const V = int(2, 12);
        const [N, L, B, T] = [int(1, 9), int(1, 3), int(1, 4), int(1, 6)];
        const config = { model, vocabSize: V, rnnSize: N, numLayers: L, tieWeights, dropout: dropped ? 0.05 + 0.5 * r.uniform() : 0 };
        const P = new Model(config).params.length;
        const ids = (n: number) => Array.from({ length: n }, () => r.int(V));
        // (gru and rnn carry h only: their c is empty)
        const vals = (n = B * N) => Array.from({ length: L }, () => Array.from({ length: n }, () => r.uniformRange(-1, 1)));
        cases.push({
          config,
          vocab: Array.from({ length: V }, (_, i) => String.fromCodePoint(i === 1 ? 0x1f600 : 0x61 + i)), // one astral character
          seed: int(0, 1e9),
          B,
          T,
          x: ids(B * T),
          y: ids(B * T),
          stream: ids(int(2, 40)),
          state: { h: vals(), c: vals(model === 'gru' || model === 'rnn' ? 0 : B * N) },
          rngState: r.nextU32(),
          lr: 1e-3 + 1e-2 * r.uniform(),
          decayRate: 0.9 + 0.09 * r.uniform(),
          gradClip: [5, 0.05][int(0, 1)],
          m: Array.from({ length: P }, () => 1e-4 * (0.5 + r.uniform())),
          madeByTorch,
          file: join(dir, `case${cases.length}.safetensors`),
        });
      }
    }
  }
  return cases;
}

/** This project's numbers for a case, from the model in its checkpoint. */
function ours(c: Case): TorchResult & { params: Record<string, number[]> } {
  const { model, vocab, optimizerState } = loadCheckpoint(c.file);
  expect(vocab.chars).toEqual(c.vocab);
  const names = model.parameterNames();
  const params = Object.fromEntries(names.map((n) => [n, [...model.param(n)]]));
  // −log p of each character of the stream, batch 1 from a zero state (as `eval`).
  const s = model.zeroState(1);
  const losses = c.stream.slice(1).map((next, i) => -model.step([c.stream[i]], s)[next]);
  // One batch from the case's state, masks from its generator state.
  const state: State = { h: c.state.h.map((a) => Float32Array.from(a)), c: c.state.c.map((a) => Float32Array.from(a)) };
  model.rng.state = c.rngState;
  const r = model.forwardBackward({ x: c.x, y: c.y, batchSize: c.B, seqLength: c.T }, state);
  const grads = Object.fromEntries(names.map((n) => [n, [...model.grad(n)]]));
  const rngStateAfter = model.rng.state;
  clipGradients(model.grads, c.gradClip);
  const optim = new Optimizer('rmsprop', model.params.length, { learningRate: c.lr, decayRate: c.decayRate });
  optim.state.get('m')!.set(optimizerState.get('m')!);
  optim.step(model.params, model.grads);
  const after = Object.fromEntries(names.map((n) => [n, [...model.param(n)]]));
  return { losses, loss: r.loss, grads, after, rngStateAfter, params };
}

const maxAbs = (a: number[]) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, j) => Math.max(m, Math.abs(v - b[j])), 0);

describe.skipIf(!torchTests)('PyTorch parity (python/tests/parity.py), both directions', () => {
  const seed = Number(process.env.PARITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-parity-'));
  const cases = makeCases(seed, dir);
  let results: TorchResult[] = [];
  let version = '';
  beforeAll(async () => {
    for (const c of cases.filter((k) => !k.madeByTorch)) {
      const optimizer = { state: new Map([['m', Float32Array.from(c.m)]]) };
      saveCheckpoint(c.file, new Model(c.config, { seed: c.seed }), vocabFromChars(c.vocab), { optimizer });
    }
    const job = cases.map((c) => {
      const common = { B: c.B, T: c.T, x: c.x, y: c.y, stream: c.stream, state: c.state, rngState: c.rngState, lr: c.lr, decayRate: c.decayRate, gradClip: c.gradClip };
      if (!c.madeByTorch) return { checkpoint: c.file, ...common };
      const { model, rnnSize, numLayers, tieWeights, dropout } = c.config;
      return { make: { model, vocab: c.vocab, rnn_size: rnnSize, num_layers: numLayers, tie_weights: tieWeights, dropout, seed: c.seed, out: c.file, m: c.m }, ...common };
    });
    writeFileSync(join(dir, 'job.json'), JSON.stringify({ cases: job }));
    const out = JSON.parse((await runPython(['tests/parity.py', join(dir, 'job.json')])).stdout) as { torch: string; results: TorchResult[] };
    results = out.results;
    version = out.torch;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  cases.forEach((c, k) => {
    const { model, tieWeights, vocabSize, rnnSize, numLayers, dropout } = c.config;
    const what = `${model}${model === 'grid_lstm' ? (tieWeights ? ' tied' : ' untied') : ''} V${vocabSize} N${rnnSize} L${numLayers} B${c.B} T${c.T} dropout ${dropout.toFixed(2)}`;
    const direction = c.madeByTorch ? 'written by PyTorch, loaded here' : 'written here, loaded in PyTorch';
    it(`${what}: ${direction} (PARITY_SEED=${seed})`, () => {
      const t = results[k];
      const o = ours(c);
      if (c.madeByTorch) {
        // PyTorch drew its weights from the seed as this project does: bit for bit.
        const m = new Model(c.config, { seed: c.seed });
        for (const name of m.parameterNames()) expect(o.params[name], `${name} from seed ${c.seed} (torch ${version})`).toEqual([...m.param(name)]);
      }
      expect(t.losses).toHaveLength(o.losses.length);
      expect(maxDiff(t.losses, o.losses), 'per-character losses').toBeLessThanOrEqual(1e-5);
      expect(Math.abs(t.loss - o.loss), 'batch loss').toBeLessThanOrEqual(1e-5);
      expect(t.rngStateAfter, 'the generator after the dropout masks').toBe(o.rngStateAfter);
      for (const name of Object.keys(o.grads)) {
        const scale = maxAbs(o.grads[name]);
        expect(maxDiff(t.grads[name], o.grads[name]), `gradient of ${name} (largest ${scale})`).toBeLessThanOrEqual(1e-4 * scale);
        expect(maxDiff(t.after[name], o.after[name]), `${name} after one RMSprop step`).toBeLessThanOrEqual(1e-5);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Training in PyTorch, under torchrun, and back

/** The last "checkpoint: PATH" line of a training run's stderr. */
function finalCheckpoint(stderr: string): string {
  const m = /^checkpoint: (.+)$/m.exec(stderr.split('\n').filter((l) => l.startsWith('checkpoint: ')).at(-1) ?? '');
  if (!m) throw new Error(`no checkpoint line in:\n${stderr}`);
  return m[1];
}

/** Two runs' states agree up to float rounding: losses, weights, optimiser and carried state, generator and data position. */
function expectSameRun(a: CheckpointContents, b: CheckpointContents, what: string): void {
  const [ta, tb] = [a.training!, b.training!];
  expect(ta.iteration, what).toBe(tb.iteration);
  expect(ta.rngState, `${what}: the dropout generator`).toBe(tb.rngState);
  expect(ta.batchIx, what).toEqual(tb.batchIx);
  expect(ta.learningRate, what).toBe(tb.learningRate);
  for (const key of ['train', 'val'] as const) {
    expect(ta.history[key].map(([it]) => it), `${what}: ${key} iterations`).toEqual(tb.history[key].map(([it]) => it));
    const d = maxDiff(ta.history[key].map(([, l]) => l), tb.history[key].map(([, l]) => l));
    expect(d, `${what}: ${key} losses`).toBeLessThanOrEqual(1e-5);
  }
  expect(maxDiff([...a.model.params], [...b.model.params]), `${what}: weights`).toBeLessThanOrEqual(1e-5);
  expect(maxDiff([...a.optimizerState.get('m')!], [...b.optimizerState.get('m')!]), `${what}: optimizer.m`).toBeLessThanOrEqual(1e-6);
  expect(maxDiff([...a.carry!.h, ...a.carry!.c], [...b.carry!.h, ...b.carry!.c]), `${what}: carried state`).toBeLessThanOrEqual(1e-5);
}

describe.skipIf(!torchTests)('training in PyTorch (python/train.py), with torchrun, and back to the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-torch-train-'));
  const TRAIN = join(PYTHON_DIR, 'train.py');
  // A grid with dropout, 5 streams (split 2 + 3 over two processes), 6 steps, validated at 3 and 6.
  const OPTS = ['--data', 'input.txt', '--model', 'grid_lstm', '--rnn-size', '12', '--num-layers', '2', '--batch-size', '5',
    '--seq-length', '16', '--max-steps', '6', '--eval-val-every', '3', '--dropout', '0.2', '--seed', '7', '--train-frac', '0.9',
    '--val-frac', '0.1', '--print-every', '1'];
  const ck: Record<'cli' | 'one' | 'two', string> = { cli: '', one: '', two: '' };
  beforeAll(async () => {
    const text = loadDefaultCorpus().slice(0, 30_000);
    writeFileSync(join(dir, 'input.txt'), text);
    writeFileSync(join(dir, 'eval.txt'), text.slice(0, 2_000));
    const torchrun = ['torchrun.py', ...(await torchrunOptions())];
    const [cli, one, two] = await Promise.all([
      runCli(['train', ...OPTS, '--threads', '1', '--checkpoint-dir', 'cli'], { cwd: dir }),
      runPython([TRAIN, ...OPTS, '--checkpoint-dir', 'one'], dir),
      runPython([join(PYTHON_DIR, torchrun[0]), ...torchrun.slice(1), TRAIN, ...OPTS, '--checkpoint-dir', 'two'], dir),
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    ck.cli = join(dir, finalCheckpoint(cli.stderr));
    ck.one = join(dir, finalCheckpoint(one.stderr));
    ck.two = join(dir, finalCheckpoint(two.stderr));
    expect(two.stderr).toMatch(/2 processes on cpu/);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('one process trains as the CLI does: the same losses, weights, optimiser state and carried state', () => {
    expectSameRun(loadCheckpoint(ck.one), loadCheckpoint(ck.cli), 'PyTorch vs the CLI');
  });

  it('and writes the same loss log: rows, iterations, epochs and rates as the CLI writes them, losses to 1e-5', () => {
    const rows = (run: string) => readFileSync(join(dir, run, 'grid_lstm.log.csv'), 'utf8').trimEnd().split('\n').map((l) => l.split(','));
    const [torch, cli] = [rows('one'), rows('cli')];
    expect(torch[0].join(',')).toBe('iteration,epoch,train_loss,val_loss,learning_rate');
    expect(torch).toHaveLength(1 + 6 + 2); // the header, 6 steps, 2 validations
    expect(torch.map((r) => [r[0], r[1], r[4], r[2] === '', r[3] === ''])).toEqual(cli.map((r) => [r[0], r[1], r[4], r[2] === '', r[3] === '']));
    for (const [i, r] of torch.slice(1).entries()) {
      const [a, b] = [Number(r[2] || r[3]), Number(cli[i + 1][2] || cli[i + 1][3])];
      expect(Math.abs(a - b), `row ${i + 1}`).toBeLessThanOrEqual(1e-5);
    }
  });

  it('two processes under torchrun (gloo) equal one process with the whole batch; the CLI evaluates both alike', async () => {
    expectSameRun(loadCheckpoint(ck.two), loadCheckpoint(ck.one), 'torchrun ×2 vs one process');
    const evals = await Promise.all([ck.two, ck.one].map((f) => runCli(['eval', f, '--data', 'eval.txt', '--json'], { cwd: dir })));
    const [two, one] = evals.map((r) => JSON.parse(r.stdout) as { loss: number; predictions: number });
    expect(two.predictions).toBe(1_999);
    expect(Math.abs(two.loss - one.loss)).toBeLessThanOrEqual(1e-5);
    // PyTorch's evaluate() of the same checkpoint and text: the CLI's eval.
    const code = 'import sys; from grid_lstm_torch import *; m, v, _ = load_checkpoint(sys.argv[1]); ' +
      'print(evaluate(m, encode(read_text(sys.argv[2]), v)))';
    const torchLoss = Number((await runPython(['-c', code, ck.two, join(dir, 'eval.txt')])).stdout);
    expect(Math.abs(torchLoss - two.loss), `PyTorch ${torchLoss}, the CLI ${two.loss}`).toBeLessThanOrEqual(1e-5);
  });

  it('a gru (a state without c) on two processes trains as the CLI does', async () => {
    const gru = OPTS.map((o) => (o === 'grid_lstm' ? 'gru' : o));
    const [cli, two] = await Promise.all([
      runCli(['train', ...gru, '--threads', '1', '--checkpoint-dir', 'gru-cli'], { cwd: dir }),
      runPython([join(PYTHON_DIR, 'torchrun.py'), ...(await torchrunOptions()), TRAIN, ...gru, '--checkpoint-dir', 'gru-two'], dir),
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    const [a, b] = [loadCheckpoint(join(dir, finalCheckpoint(two.stderr))), loadCheckpoint(join(dir, finalCheckpoint(cli.stderr)))];
    expect(a.model.config.model).toBe('gru');
    expectSameRun(a, b, 'a gru under torchrun ×2 vs the CLI');
  });

  it('the CLI samples, inspects, plots and visualises a checkpoint written by PyTorch', async () => {
    const [sample, inspect, plot, viz] = await Promise.all([
      runCli(['sample', ck.two, '--length', '40', '--seed', '1', '--quiet'], { cwd: dir }),
      runCli(['inspect', ck.two, '--json'], { cwd: dir }),
      runCli(['plot', ck.two, '--out', 'curves.svg'], { cwd: dir }),
      runCli(['viz', ck.two, '--data', 'eval.txt', '--length', '300', '--out', 'report.html'], { cwd: dir }),
    ]);
    for (const r of [sample, inspect, plot, viz]) expect(r.code, r.stderr).toBe(0);
    expect([...sample.stdout.replace(/\n$/, '')]).toHaveLength(40);
    const info = JSON.parse(inspect.stdout) as { format: string; training: { iteration: number } };
    expect(info.format).toBe('grid-lstm/1');
    expect(info.training.iteration).toBe(6);
    expect(readFileSync(join(dir, 'curves.svg'), 'utf8')).toMatch(/^<svg/);
    expect(existsSync(join(dir, 'report.html'))).toBe(true);
  });

  it('the CLI continues a PyTorch run (--resume) as it continues its own, and starts a new one from it (--init-from)', async () => {
    const more = ['--max-steps', '9'];
    const [fromTorch, fromCli, init] = await Promise.all([
      runCli(['train', '--resume', ck.two, ...more, '--checkpoint-dir', 'resumed-torch'], { cwd: dir }),
      runCli(['train', '--resume', ck.cli, ...more, '--checkpoint-dir', 'resumed-cli'], { cwd: dir }),
      runCli(['train', '--init-from', ck.two, '--data', 'input.txt', '--batch-size', '2', '--seq-length', '8', '--max-steps', '2',
        '--checkpoint-dir', 'init'], { cwd: dir }),
    ]);
    for (const r of [fromTorch, fromCli, init]) expect(r.code, r.stderr).toBe(0);
    expectSameRun(loadCheckpoint(join(dir, finalCheckpoint(fromTorch.stderr))), loadCheckpoint(join(dir, finalCheckpoint(fromCli.stderr))),
      'the CLI resuming PyTorch\'s run vs its own');
  });

  it('bad input to train.py: one line naming the problem, exit code 2', async () => {
    const weightsOnly = join(dir, 'weights-only.safetensors');
    saveCheckpoint(weightsOnly, loadCheckpoint(ck.cli).model, loadCheckpoint(ck.cli).vocab);
    const cases: [string[], RegExp][] = [
      [['--data', 'input.txt', '--model', 'cnn'], /--model must be one of grid_lstm, lstm, gru, rnn, got cnn/],
      [['--data', 'nope.txt'], /--data nope\.txt: no such file/],
      [['--rnn-size', '8'], /--data FILE is needed/],
      [['--resume', weightsOnly], /has no training state \(weights only\); use --init-from/],
      [['--resume', ck.cli, '--rnn-size', '64'], /--rnn-size cannot change when resuming \(the run used 12\)/],
      [['--data', 'input.txt', '--amp'], /--amp needs a CUDA GPU/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runPython([TRAIN, ...args, '--checkpoint-dir', 'bad'], dir).then(
      () => ({ code: 0, stderr: '' }),
      (e: Error) => ({ code: Number(/exited with (\d+)/.exec(e.message)?.[1]), stderr: e.message.split('\n').slice(1).join('\n') }),
    )));
    runs.forEach((r, i) => {
      expect(r.code, `${cases[i][0].join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^train\.py: error: /);
      expect(r.stderr).toMatch(cases[i][1]);
    });
  });

  it('PyTorch continues a run of the CLI (--resume) as the CLI does', async () => {
    const [torch, cli] = await Promise.all([
      runPython([TRAIN, '--resume', ck.cli, '--max-steps', '9', '--checkpoint-dir', 'torch-resumed-cli'], dir),
      runCli(['train', '--resume', ck.cli, '--max-steps', '9', '--checkpoint-dir', 'cli-resumed-cli'], { cwd: dir }),
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    expectSameRun(loadCheckpoint(join(dir, finalCheckpoint(torch.stderr))), loadCheckpoint(join(dir, finalCheckpoint(cli.stderr))),
      'PyTorch resuming the CLI\'s run vs the CLI');
    // The loss log, rewritten from the run's history and continued: the CLI's rows.
    const column = (run: string, k: number) => readFileSync(join(dir, run, 'grid_lstm.log.csv'), 'utf8').trimEnd().split('\n').map((l) => l.split(',')[k]);
    for (const k of [0, 1, 4]) expect(column('torch-resumed-cli', k)).toEqual(column('cli-resumed-cli', k));
    expect(column('torch-resumed-cli', 0)).toHaveLength(1 + 9 + 3);
  });
});

