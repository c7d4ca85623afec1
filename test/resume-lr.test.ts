/**
 * --learning-rate on resume: the new rate replaces the current one from the next step on, later
 * decays apply to it, the optimiser state is kept, the checkpoint's history records it
 * (history.lr) and the loss log shows it; other optimisation options still cannot change.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions, Trainer } from '../src/train/train.js';
import { runCli } from './helpers/cli.js';
import { FOX_TEXT, tinyOptions } from './helpers/tiny-run.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-resume-lr-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TEXT = FOX_TEXT;
const options = (over: Partial<TrainOptions>): TrainOptions =>
  tinyOptions({
    evalValEvery: 4,
    ...over,
  });

/** A run of `steps` steps in `sub`, and its last checkpoint. */
function trained(sub: string, over: Partial<TrainOptions>) {
  const t = Trainer.fromText(TEXT, options({ checkpointDir: join(dir, sub), ...over }));
  expect(t.run().status).toBe('done');
  return { t, ck: t.lastCheckpoint! };
}

describe('--learning-rate on resume', () => {
  it('sgd: the next update is the new rate × the (clipped) gradient', () => {
    const { ck } = trained('sgd', { optim: 'sgd', learningRate: 0.1, maxSteps: 4 });
    const t = Trainer.resume(TEXT, loadCheckpoint(ck), { learningRate: 0.025, maxSteps: 8 });
    expect(t.learningRateChange).toEqual({ iteration: 4, from: 0.1, to: 0.025 });
    expect(t.optimizer.learningRate).toBe(0.025);
    const before = Float32Array.from(t.model.params);
    const s = t.step();
    expect(s.learningRate).toBe(0.025);
    const g = t.model.grads; // clipped in place by the step
    let changed = 0;
    for (let j = 0; j < before.length; j++) {
      expect(t.model.params[j]).toBe(Math.fround(before[j] - 0.025 * g[j]));
      if (g[j] !== 0) changed++;
    }
    expect(changed).toBeGreaterThan(0);
  });

  it('keeps the optimiser state, records the change in history.lr, and later decays apply to the new rate', () => {
    // Epochs of 38 batches; a decay of 0.5 after each from epoch 0 on.
    const { t: first, ck } = trained('decay', { learningRate: 0.01, learningRateDecay: 0.5, learningRateDecayAfter: 0, maxSteps: 40 });
    expect(first.batchesPerEpoch).toBe(38);
    expect(first.history.lr).toEqual([[0, 0.01]]);
    const saved = loadCheckpoint(ck);
    expect(saved.training!.learningRate).toBe(0.005); // decayed once
    expect(saved.training!.history.lr).toEqual([[0, 0.01]]);
    const t = Trainer.resume(TEXT, saved, { learningRate: 0.003, maxSteps: 80 });
    expect(t.options.learningRate).toBe(0.003);
    // The optimiser state is the checkpoint's.
    expect(Buffer.compare(Buffer.from(t.optimizer.state.get('m')!.buffer), Buffer.from(saved.optimizerState.get('m')!.buffer))).toBe(0);
    expect(t.optimizer.stepCount).toBe(40);
    const rates: number[] = [];
    expect(t.run({ onStep: (s) => rates.push(s.learningRate) }).status).toBe('done');
    expect(rates[0]).toBe(0.003);
    expect(rates[76 - 41]).toBe(0.003 * 0.5); // after the decay at the end of epoch 2 (iteration 76)
    const after = loadCheckpoint(t.lastCheckpoint!);
    expect(after.training!.history.lr).toEqual([
      [0, 0.01],
      [40, 0.003],
    ]);
    // The log replays it: the rate of every step, before and after the change.
    const rows = readFileSync(join(dir, 'decay', 'grid_lstm.log.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const rateOf = (it: number) => Number(rows.find((r) => Number(r[0]) === it && r[2] !== '')![4]);
    expect([rateOf(1), rateOf(38), rateOf(39), rateOf(40), rateOf(41), rateOf(76), rateOf(77)]).toEqual([0.01, 0.01, 0.005, 0.005, 0.003, 0.003, 0.0015]);
    expect(readFileSync(join(dir, 'decay', 'grid_lstm.log.csv'), 'utf8')).toBe(t.logLines().join('\n') + '\n');
    // A second change at another iteration is added; resumed again without one, the history stays.
    const again = Trainer.resume(TEXT, after, { learningRate: 0.001, maxSteps: 84 });
    again.run();
    expect(loadCheckpoint(again.lastCheckpoint!).training!.history.lr).toEqual([
      [0, 0.01],
      [40, 0.003],
      [80, 0.001],
    ]);
    const same = Trainer.resume(TEXT, loadCheckpoint(again.lastCheckpoint!), { learningRate: 0.001, maxSteps: 88 });
    expect(same.learningRateChange).toBeNull(); // the run's rate restated: no change
    expect(same.history.lr).toHaveLength(3);
  });

  it('restating the run\'s own rate changes nothing: the resume stays exact', () => {
    const whole = trained('exact-whole', { maxSteps: 8 }).t;
    const { ck } = trained('exact-part', { maxSteps: 4 });
    const t = Trainer.resume(TEXT, loadCheckpoint(ck), { learningRate: DEFAULT_TRAIN_OPTIONS.learningRate, maxSteps: 8 });
    expect(t.learningRateChange).toBeNull();
    t.run();
    expect(Buffer.compare(Buffer.from(t.model.params.buffer), Buffer.from(whole.model.params.buffer))).toBe(0);
    expect(t.history).toEqual(whole.history);
  });

  it('is compared with the current (decayed) rate, not the run\'s given one', () => {
    // Epochs of 38 batches, halved after each: 0.002 → 0.001 at iteration 38.
    const over = { learningRateDecay: 0.5, learningRateDecayAfter: 0 };
    const { ck } = trained('decayed', { ...over, maxSteps: 40 });
    const saved = loadCheckpoint(ck);
    expect(saved.training!.learningRate).toBe(0.001);
    expect((saved.training!.options as unknown as TrainOptions).learningRate).toBe(0.002);
    // The given rate again is a change from the current one.
    const up = Trainer.resume(TEXT, saved, { learningRate: 0.002, maxSteps: 44 });
    expect(up.learningRateChange).toEqual({ iteration: 40, from: 0.001, to: 0.002 });
    expect(up.optimizer.learningRate).toBe(0.002);
    expect(up.history.lr).toEqual([
      [0, 0.002],
      [40, 0.002],
    ]);
    expect(up.step().learningRate).toBe(0.002);
    // The current rate restated is no change: the resume stays exact.
    const same = Trainer.resume(TEXT, loadCheckpoint(ck), { learningRate: 0.001, maxSteps: 44 });
    expect(same.learningRateChange).toBeNull();
    expect(same.history.lr).toEqual([[0, 0.002]]);
    same.run();
    const whole = trained('decayed-whole', { ...over, maxSteps: 44 }).t;
    expect(Buffer.compare(Buffer.from(same.model.params.buffer), Buffer.from(whole.model.params.buffer))).toBe(0);
    expect(same.history).toEqual(whole.history);
  });

  it('a change at the iteration of an earlier one (a resume stopped before its first step) replaces it', () => {
    const { ck } = trained('twice', { maxSteps: 4 });
    const a = Trainer.resume(TEXT, loadCheckpoint(ck), { learningRate: 0.001, maxSteps: 8 });
    expect(a.run({ shouldStop: () => true }).status).toBe('stopped');
    expect(a.iteration).toBe(4);
    const b = Trainer.resume(TEXT, loadCheckpoint(a.lastCheckpoint!), { learningRate: 0.0005 });
    expect(b.history.lr).toEqual([
      [0, 0.002],
      [4, 0.0005],
    ]);
    expect(b.learningRateChange).toEqual({ iteration: 4, from: 0.001, to: 0.0005 });
  });

  it('a checkpoint without history.lr (written before it existed) resumes and records a change', () => {
    const { ck } = trained('old', { maxSteps: 4 });
    const saved = loadCheckpoint(ck);
    delete saved.training!.history.lr;
    expect(Trainer.resume(TEXT, saved).history.lr).toEqual([[0, 0.002]]);
    expect(Trainer.resume(TEXT, saved, { learningRate: 0.0007 }).history.lr).toEqual([
      [0, 0.002],
      [4, 0.0007],
    ]);
  });

  it('other optimisation options still cannot change; a bad rate is refused', () => {
    const { ck } = trained('refused', { maxSteps: 4 });
    const saved = loadCheckpoint(ck);
    for (const [key, value, flag] of [
      ['learningRateDecay', 0.5, '--learning-rate-decay'],
      ['learningRateDecayAfter', 3, '--learning-rate-decay-after'],
      ['decayRate', 0.9, '--decay-rate'],
      ['gradClip', 1, '--grad-clip'],
      ['dropout', 0.2, '--dropout'],
      ['optim', 'adam', '--optim'],
    ] as const) {
      expect(() => Trainer.resume(TEXT, saved, { [key]: value })).toThrow(`${flag} cannot change when resuming`);
    }
    expect(() => Trainer.resume(TEXT, saved, { learningRate: 0 })).toThrow('--learning-rate must be a number > 0, got 0');
  });

  it('through the CLI: says so on resume', async () => {
    const data = join(dir, 'fox.txt');
    writeFileSync(data, TEXT);
    const tiny = ['--rnn-size', '4', '--num-layers', '1', '--batch-size', '2', '--seq-length', '8'];
    const a = await runCli(['train', '--data', data, ...tiny, '--max-steps', '4', '--checkpoint-dir', 'cli'], { cwd: dir });
    expect(a.code, a.stderr).toBe(0);
    const b = await runCli(['train', '--resume', 'cli', '--learning-rate', '0.0005', '--max-steps', '6'], { cwd: dir });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/^learning rate: 0\.002 → 0\.0005 from iteration 5 on, optimiser state kept;\nlater decays apply to the new rate; the checkpoints' history records it$/m);
  });
});
