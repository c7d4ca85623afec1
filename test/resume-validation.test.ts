/**
 * Resuming at a validation point: a stop (Ctrl-C, SIGTERM) during a validation drops that
 * validation, so the resumed run does it first, before its next step, and goes on exactly as an
 * uninterrupted run (history, loss log, weights); a run resumed at its last step, already
 * validated there, is done at once: no second validation of the same iteration, no new row in
 * the loss log, no new checkpoint unless the one it had is gone.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { loadDefaultCorpus } from '../src/train/data.js';
import { parseSafetensors } from '../src/train/safetensors.js';
import { type RunHooks, type TrainOptions, Trainer } from '../src/train/train.js';
import { CLI, runCli } from './helpers/cli.js';
import { FOX_TEXT, tinyOptions } from './helpers/tiny-run.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-resume-validation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TEXT = FOX_TEXT;
// Epochs of 32 batches, 9 validation batches (a stop can come between two of them); the rate
// halves at the end of every epoch.
const options = (over: Partial<TrainOptions>): TrainOptions =>
  tinyOptions({
    trainFrac: 0.8,
    valFrac: 0.2,
    dropout: 0.1,
    evalValEvery: 4,
    learningRateDecay: 0.5,
    learningRateDecayAfter: 0,
    ...over,
  });

/** Runs `t`, recording validations and checkpoints; `stopDuring`: stop (as Ctrl-C) during the validation at that iteration. */
function record(t: Trainer, stopDuring: number | null = null, hooks: RunHooks = {}) {
  const vals: number[] = [];
  const written: string[] = [];
  let stop = false;
  const outcome = t.run({
    onEvalProgress: (done) => {
      if (t.iteration === stopDuring && done === 3) stop = true;
    },
    shouldStop: () => stop,
    onEval: (e) => vals.push(e.iteration),
    onCheckpoint: (p) => written.push(p),
    ...hooks,
  });
  return { outcome, vals, written };
}

const bytes = (a: Float32Array | Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const log = (d: string) => readFileSync(join(d, 'grid_lstm.log.csv'), 'utf8');

describe('a stop during a validation, then a resume', () => {
  it('validates that iteration first: history, log, weights and optimiser state equal the uninterrupted run\'s', () => {
    const whole = Trainer.fromText(TEXT, options({ maxSteps: 40, checkpointDir: join(dir, 'whole') }));
    expect(whole.loader.splitSizes.val).toBe(9);
    expect(record(whole).outcome.status).toBe('done');

    const d = join(dir, 'cut');
    const a = Trainer.fromText(TEXT, options({ maxSteps: 40, checkpointDir: d }));
    const ra = record(a, 32); // the validation at the end of the first epoch
    expect(ra.outcome.status).toBe('stopped');
    const ck = loadCheckpoint(ra.written.at(-1)!);
    expect(ck.training!.iteration).toBe(32);
    expect(ck.training!.history.val.map(([i]) => i)).toEqual([4, 8, 12, 16, 20, 24, 28]); // 32's was cut short

    const b = Trainer.resume(TEXT, ck);
    const steps: number[] = [];
    const rb = record(b, null, { onStep: (s) => steps.push(s.iteration) });
    expect(rb.outcome.status).toBe('done');
    expect(rb.vals).toEqual([32, 36, 40]);
    expect(steps[0]).toBe(33);
    // The validation of 32 was saved as such, before step 33.
    expect(loadCheckpoint(rb.written[0]).training!.history.val.at(-1)).toEqual(whole.history.val[7]);
    expect(loadCheckpoint(rb.written[0]).training!.iteration).toBe(32);
    expect(b.history).toEqual(whole.history);
    expect(log(d)).toBe(log(join(dir, 'whole')));
    expect(bytes(b.model.params).equals(bytes(whole.model.params))).toBe(true);
    for (const [name, buf] of whole.optimizer.state) expect(bytes(b.optimizer.state.get(name)!).equals(bytes(buf)), name).toBe(true);
    expect(b.model.rng.state).toBe(whole.model.rng.state);
    const [fa, fb] = [loadCheckpoint(whole.lastCheckpoint!), loadCheckpoint(b.lastCheckpoint!)];
    expect(basename(b.lastCheckpoint!)).toBe(basename(whole.lastCheckpoint!));
    expect(bytes(fb.model.params).equals(bytes(fa.model.params))).toBe(true);
    expect(fb.training!.history).toEqual(fa.training!.history);
  });

  it('stopped again during that validation: the resumed run stops with the same state, then validates it next time', () => {
    const d = join(dir, 'twice');
    const a = Trainer.fromText(TEXT, options({ maxSteps: 12, checkpointDir: d }));
    const ra = record(a, 8);
    const b = Trainer.resume(TEXT, loadCheckpoint(ra.written.at(-1)!));
    const rb = record(b, 8);
    expect(rb.outcome.status).toBe('stopped');
    expect(b.iteration).toBe(8);
    expect(b.history.val.map(([i]) => i)).toEqual([4]);
    const c = Trainer.resume(TEXT, loadCheckpoint(rb.written.at(-1)!));
    expect(record(c).vals).toEqual([8, 12]);
    const whole = Trainer.fromText(TEXT, options({ maxSteps: 12, checkpointDir: join(dir, 'twice-whole') }));
    whole.run();
    expect(c.history).toEqual(whole.history);
    expect(bytes(c.model.params).equals(bytes(whole.model.params))).toBe(true);
  });

  it('a stop during the last validation: the resumed run validates and is done', () => {
    const d = join(dir, 'last');
    const a = Trainer.fromText(TEXT, options({ maxSteps: 10, checkpointDir: d }));
    const ra = record(a, 10);
    expect(ra.outcome.status).toBe('stopped');
    const b = Trainer.resume(TEXT, loadCheckpoint(ra.written.at(-1)!));
    const rb = record(b);
    expect(rb.outcome.status).toBe('done');
    expect(rb.vals).toEqual([10]);
    expect(b.history.val.map(([i]) => i)).toEqual([4, 8, 10]);
  });
});

describe('resuming a run already at its last step', () => {
  it('is done at once with its validation and checkpoint: no second validation, log row or checkpoint', () => {
    const d = join(dir, 'end');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 8, checkpointDir: d }));
    expect(t.run().status).toBe('done');
    const final = t.lastCheckpoint!;
    const before = log(d);
    const again = Trainer.resume(TEXT, loadCheckpoint(final));
    const r = record(again);
    expect(r.outcome).toEqual({ status: 'done', checkpoint: final, valLoss: t.history.val.at(-1)![1] });
    expect(r.vals).toEqual([]);
    expect(r.written).toEqual([]);
    expect(again.history).toEqual(t.history);
    expect(log(d)).toBe(before);
    // Its checkpoint deleted meanwhile: written again, still without a new validation.
    const ck = loadCheckpoint(final);
    rmSync(final);
    const third = Trainer.resume(TEXT, ck);
    const r3 = record(third);
    expect(r3.outcome).toEqual({ status: 'done', checkpoint: final, valLoss: t.history.val.at(-1)![1] });
    expect(r3.vals).toEqual([]);
    expect(r3.written).toEqual([final]);
    expect(loadCheckpoint(final).training!.history).toEqual(t.history);
    expect(log(d)).toBe(before);
    // Resumed into another directory: the checkpoint is written there.
    const other = join(dir, 'end-elsewhere');
    const r4 = record(Trainer.resume(TEXT, ck, { checkpointDir: other }));
    expect(r4.vals).toEqual([]);
    expect(r4.written).toEqual([join(other, basename(final))]);
  });

  it('a resume with --max-steps at an iteration not validated yet validates it once', () => {
    const d = join(dir, 'cut-short');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 20, checkpointDir: d }));
    let stop = false;
    t.run({ shouldStop: () => stop, onStep: (s) => (stop = s.iteration === 6) });
    expect(t.iteration).toBe(6);
    const a = Trainer.resume(TEXT, loadCheckpoint(t.lastCheckpoint!), { maxSteps: 6 });
    expect(record(a).vals).toEqual([6]);
    const b = Trainer.resume(TEXT, loadCheckpoint(a.lastCheckpoint!));
    expect(record(b).vals).toEqual([]);
    expect(b.history.val.map(([i]) => i)).toEqual([4, 6]);
    expect(log(d).split('\n').filter((l) => l.startsWith('6,'))).toHaveLength(2); // the step and one validation
  });
});

describe('through the CLI: SIGTERM during a validation, then --resume (dist/cli.js)', () => {
  it('the resumed run validates that iteration first and ends as the run that did not stop, bit for bit', async () => {
    const data = join(dir, 'slice.txt');
    writeFileSync(data, loadDefaultCorpus().slice(3_000_000, 3_120_000));
    // Half the text for validation: a pass takes about half a second, time to aim a signal at.
    const args = (d: string) =>
      ['train', '--data', data, '--threads', '1', '--rnn-size', '48', '--num-layers', '2', '--batch-size', '8', '--seq-length', '32', '--train-frac', '0.5', '--val-frac', '0.5']
        .concat(['--dropout', '0.1', '--max-steps', '10', '--eval-val-every', '5', '--print-every', '1', '--checkpoint-dir', d]);
    const whole = await runCli(args('cli-whole'), { cwd: dir });
    expect(whole.code, whole.stderr).toBe(0);

    const child = spawn(process.execPath, [CLI, ...args('cli-cut')], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.stderr!.on('data', (d: Buffer) => {
      const before = stderr;
      stderr += d.toString();
      // Step 5 printed: its validation is running.
      if (!/^5\/10 /m.test(before) && /^5\/10 /m.test(stderr)) child.kill('SIGTERM');
    });
    expect(await exit, stderr).toBe(143);
    const files = (d: string) => readdirSync(join(dir, d)).filter((f) => f.endsWith('.safetensors')).map((f) => ({ f, ck: loadCheckpoint(join(dir, d, f)) }));
    const cut = files('cli-cut');
    expect(cut.map(({ ck }) => [ck.training!.iteration, ck.training!.history.val.length]), stderr).toEqual([[5, 0]]); // stopped during the validation

    const resumed = await runCli(['train', '--resume', join(dir, 'cli-cut', cut[0].f)], { cwd: dir });
    expect(resumed.code, resumed.stderr).toBe(0);
    const at = (d: string, iteration: number) => files(d).filter(({ ck }) => ck.training!.iteration === iteration && ck.training!.history.val.at(-1)?.[0] === iteration);
    expect(at('cli-cut', 5)).toHaveLength(1); // the validation of 5 and its checkpoint, done on resume
    const [a, b] = [at('cli-whole', 10), at('cli-cut', 10)].map((x) => x[0].f);
    expect(b).toBe(a);
    expect(loadCheckpoint(join(dir, 'cli-cut', b)).training!.history).toEqual(loadCheckpoint(join(dir, 'cli-whole', a)).training!.history);
    const tensors = (path: string) => parseSafetensors(new Uint8Array(readFileSync(path))).tensors;
    const [ta, tb] = [tensors(join(dir, 'cli-whole', a)), tensors(join(dir, 'cli-cut', b))];
    expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
    for (const [name, t] of ta) expect(bytes(tb.get(name)!.data as Float32Array).equals(bytes(t.data as Float32Array)), name).toBe(true);
    expect(log(join(dir, 'cli-cut'))).toBe(log(join(dir, 'cli-whole')));
  }, 60_000);
});
