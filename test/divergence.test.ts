/**
 * Divergence (issue 5): a NaN or infinite loss, gradient or weight stops training before the
 * weights change, with a message naming the iteration, the problem and the fix. In-process
 * (moved from test/reliability.test.ts, whose CLI runs keep it out of mutation runs; its CLI
 * case stays there), so that mutation runs of src/train/train-core.ts reach it.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { type Float, TsKernels } from '../src/nn/kernels.js';
import { type TrainOptions, Trainer, TrainingDivergedError } from '../src/train/train.js';
import { tinyOptions as tinyRun } from './helpers/tiny-run.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-divergence-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** ~3000 characters of plain English: a vocabulary of about 30, enough batches for tiny runs. */
const TEXT = Array.from({ length: 60 }, (_, i) => `the quick brown fox ${i % 7} jumps over the lazy dog, said ${'abcdefg'[i % 7]}.\n`).join('');

/** The shared tiny model (test/helpers/tiny-run.ts), validating and printing every step. */
const tinyOptions = (over: Partial<TrainOptions> = {}): TrainOptions => tinyRun({ evalValEvery: 1, printEvery: 1, ...over });

/** TS kernels that can poison the next backward (a NaN/∞ gradient) or forward (a NaN loss). */
class FaultyKernels extends TsKernels {
  poisonGradient: number | null = null;
  poisonLoss = false;
  constructor() {
    super('float32');
  }
  override lstmBackward(gates: Float, cPrev: Float, tc: Float, dh: Float, dc: Float, dGates: Float, dcPrev: Float, M: number, N: number): void {
    super.lstmBackward(gates, cPrev, tc, dh, dc, dGates, dcPrev, M, N);
    if (this.poisonGradient !== null) {
      dGates[0] = this.poisonGradient;
      this.poisonGradient = null;
    }
  }
  override logSoftmaxNll(logits: Float, targets: Int32Array, M: number, V: number): number {
    const nll = super.logSoftmaxNll(logits, targets, M, V);
    return this.poisonLoss ? NaN : nll;
  }
}

describe('a NaN or infinite loss or gradient stops training before the weights change', () => {
  for (const [what, poison, re] of [
    ['a NaN gradient', (k: FaultyKernels) => (k.poisonGradient = NaN), /the gradient of .* at element \d+ is NaN \(the loss was [\d.]+\)/],
    ['an infinite gradient (which clipping would have hidden)', (k: FaultyKernels) => (k.poisonGradient = Infinity), /the gradient of .* at element \d+ is (NaN|-?Infinity)/],
    ['a NaN loss', (k: FaultyKernels) => (k.poisonLoss = true), /the loss NaN is not a number/],
  ] as [string, (k: FaultyKernels) => void, RegExp][]) {
    it(what, () => {
      const kernels = new FaultyKernels();
      const t = Trainer.fromText(TEXT, tinyOptions({ maxSteps: 10, evalValEvery: 1, checkpointDir: join(dir, `diverge-${what.length}`) }), { kernels });
      // Poisoned once the checkpoint of iteration 2 is written: step 3 goes wrong.
      const out = t.run({ onCheckpoint: () => t.iteration === 2 && poison(kernels) });
      expect(out.status).toBe('diverged');
      if (out.status !== 'diverged') return;
      expect(out.iteration).toBe(3);
      expect(out.message).toMatch(/^training stopped at iteration 3: /);
      expect(out.message).toMatch(re);
      expect(out.message).toMatch(/try a lower --learning-rate \(now 0\.002\) or a smaller --grad-clip \(now 5\); the weights were not updated; the last good checkpoint is /);
      // Nothing moved: the weights, the optimiser and the data position equal the last checkpoint's.
      const ck = loadCheckpoint(out.checkpoint!);
      expect(ck.training?.iteration).toBe(2);
      expect(t.iteration).toBe(2);
      expect(Buffer.from(new Float32Array(t.model.params).buffer).equals(Buffer.from(ck.model.params.buffer))).toBe(true);
      expect(Buffer.from(new Float32Array(t.optimizer.state.get('m')!).buffer).equals(Buffer.from(ck.optimizerState.get('m')!.buffer))).toBe(true);
      expect(t.loader.batchIx).toEqual(ck.training?.batchIx);
      // Training can go on from here in memory (e.g. with a lower learning rate).
      kernels.poisonLoss = false;
      expect(t.step().iteration).toBe(3);
    });
  }

  it('a NaN validation loss stops the run without writing a checkpoint for it', () => {
    const kernels = new FaultyKernels();
    const t = Trainer.fromText(TEXT, tinyOptions({ maxSteps: 10, checkpointDir: join(dir, 'diverge-val') }), { kernels });
    const out = t.run({ onStep: (s) => s.iteration === 2 && (kernels.poisonLoss = true) });
    expect(out.status).toBe('diverged');
    if (out.status !== 'diverged') return;
    expect(out.message).toMatch(/^training stopped at iteration 2: the validation loss is NaN; try a lower --learning-rate .*; no checkpoint was written for it; the last good checkpoint is /);
    expect(loadCheckpoint(out.checkpoint!).training?.iteration).toBe(1);
  });

  it('Trainer.step throws TrainingDivergedError (for callers that drive the steps themselves)', () => {
    const kernels = new FaultyKernels();
    const t = Trainer.fromText(TEXT, tinyOptions(), { kernels });
    kernels.poisonGradient = NaN;
    expect(() => t.step()).toThrow(TrainingDivergedError);
    expect(() => t.step()).not.toThrow();
  });

  it('the gradient check also covers the suggestion when clipping is off', () => {
    const kernels = new FaultyKernels();
    const t = Trainer.fromText(TEXT, tinyOptions({ gradClip: 0, maxSteps: 3, checkpointDir: join(dir, 'diverge-noclip') }), { kernels });
    kernels.poisonGradient = NaN;
    const out = t.run();
    expect(out.status).toBe('diverged');
    if (out.status === 'diverged') expect(out.message).toMatch(/or a --grad-clip such as 5; the weights were not updated; no checkpoint was saved in this run/);
  });

  it('a huge learning rate: weights overflowing stop the run; no checkpoint on disk holds a non-finite value', () => {
    const ckDir = join(dir, 'huge-lr');
    const t = Trainer.fromText(TEXT, tinyOptions({ optim: 'sgd', learningRate: 1e37, gradClip: 0, maxSteps: 50, checkpointDir: ckDir }));
    const out = t.run();
    expect(out.status).toBe('diverged');
    if (out.status !== 'diverged') return;
    expect(out.message).toMatch(/^training stopped at iteration \d+: .*(not a number|not finite|Infinity|NaN|exceeds 3×).*; try a lower --learning-rate \(now 1e\+37\)/);
    for (const f of readdirSync(ckDir).filter((f) => f.endsWith('.safetensors'))) loadCheckpoint(join(ckDir, f)); // not the loss log
  });
});
