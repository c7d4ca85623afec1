/**
 * The PyTorch side (python/grid_lstm_torch) against this project, both directions, and its
 * data-parallel training under torchrun.
 *
 * Parity (python/tests/parity.py computes the PyTorch numbers): for random configs of every model
 * (lstm, grid_lstm tied and untied; with and without dropout), a checkpoint written here and
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
 * Runs when a Python with torch is found (python/find-python.mjs: $PYTHON, python3,
 * /usr/bin/python3); otherwise the file prints "skipped: PyTorch not installed" and skips, unless
 * REQUIRE_PYTORCH=1 (set by .ci/run, which installs Debian's python3-torch), where it fails.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTorchPython } from '../python/find-python.mjs';
import { Model, type State } from '../src/nn/model.js';
import { Rng } from '../src/nn/rng.js';
import type { ModelConfig } from '../src/nn/params.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { vocabFromChars } from '../src/train/data.js';
import { Optimizer, clipGradients } from '../src/train/optim.js';

export const PYTHON_DIR = resolve(import.meta.dirname, '..', 'python');
const python = findTorchPython();
const required = process.env.REQUIRE_PYTORCH === '1';
if (python === null) {
  process.stderr.write(
    required
      ? '\n  REQUIRE_PYTORCH=1 but no Python with torch was found: install python3-torch (apt-get install python3-torch) or set PYTHON\n\n'
      : '\n  skipped: PyTorch not installed (install python3-torch, or set PYTHON to a python with torch, to run test/pytorch.test.ts)\n\n',
  );
}
const run = python !== null || required;

/** Environment of the Python processes: one BLAS thread each (torch's own threads do the work). */
export const PY_ENV = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' };

/** Runs python ARGS (from python/), resolving with its output; rejects with its stderr when it fails. */
export function runPython(args: string[], env: NodeJS.ProcessEnv = PY_ENV): Promise<{ stdout: string; stderr: string }> {
  if (python === null) throw new Error('REQUIRE_PYTORCH=1 but no Python with torch was found');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(python, args, { cwd: PYTHON_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise({ stdout, stderr });
      else reject(new Error(`python ${args.join(' ')} exited with ${code}:\n${stderr}`));
    });
  });
}

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
  const kinds: [ModelConfig['model'], boolean][] = [['lstm', true], ['grid_lstm', true], ['grid_lstm', false]];
  const cases: Case[] = [];
  for (const madeByTorch of [false, true]) {
    for (const [model, tieWeights] of kinds) {
      for (const dropped of [false, true]) {
        const V = int(2, 12);
        const [N, L, B, T] = [int(1, 9), int(1, 3), int(1, 4), int(1, 6)];
        const config = { model, vocabSize: V, rnnSize: N, numLayers: L, tieWeights, dropout: dropped ? 0.05 + 0.5 * r.uniform() : 0 };
        const P = new Model(config).params.length;
        const ids = (n: number) => Array.from({ length: n }, () => r.int(V));
        const vals = () => Array.from({ length: L }, () => Array.from({ length: B * N }, () => r.uniformRange(-1, 1)));
        cases.push({
          config,
          vocab: Array.from({ length: V }, (_, i) => String.fromCodePoint(i === 1 ? 0x1f600 : 0x61 + i)), // one astral character
          seed: int(0, 1e9),
          B,
          T,
          x: ids(B * T),
          y: ids(B * T),
          stream: ids(int(2, 40)),
          state: { h: vals(), c: vals() },
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

describe.skipIf(!run)('PyTorch parity (python/tests/parity.py), both directions', () => {
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
