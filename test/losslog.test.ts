/**
 * The loss log (<checkpointDir>/<savefile>.log.csv): a CSV file any plotting tool reads without
 * arguments, written line by line as the run goes, equal to the checkpoint's history after a
 * stop, a kill and a resume, and never a reason for training to fail.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { LOG_HEADER, type TrainOptions, Trainer } from '../src/train/train.js';
import { runCli } from './helpers/cli.js';
import { FOX_TEXT, tinyOptions } from './helpers/tiny-run.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-losslog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TEXT = FOX_TEXT;
const options = (over: Partial<TrainOptions>): TrainOptions =>
  tinyOptions({
    evalValEvery: 3,
    // Epochs of 38 batches, decays from the first epoch on: the log's rates change.
    learningRateDecay: 0.5,
    learningRateDecayAfter: 0,
    ...over,
  });

/** The log's rows as records (an empty field: null); checks the header. */
function readLog(path: string) {
  const text = readFileSync(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  const [header, ...rows] = text.slice(0, -1).split('\n');
  expect(header).toBe('iteration,epoch,train_loss,val_loss,learning_rate');
  return rows.map((r) => {
    const f = r.split(',');
    expect(f).toHaveLength(5);
    const n = (s: string) => (s === '' ? null : Number(s));
    return { iteration: Number(f[0]), epoch: Number(f[1]), train: n(f[2]), val: n(f[3]), rate: n(f[4]) };
  });
}

describe('the loss log', () => {
  it('has one row per step and per validation, equal to the history; the rates are the steps\'', () => {
    const d = join(dir, 'plain');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 80, checkpointDir: d }));
    const rateUsed: number[] = [t.optimizer.learningRate];
    const out = t.run({ onStep: (s) => rateUsed.push(s.learningRate) }); // the rate after step i is step i+1's
    expect(out.status).toBe('done');
    const rows = readLog(join(d, 'grid_lstm.log.csv'));
    expect(rows.filter((r) => r.train !== null).map((r) => [r.iteration, r.train])).toEqual(t.history.train);
    expect(rows.filter((r) => r.val !== null).map((r) => [r.iteration, r.val])).toEqual(t.history.val);
    for (const r of rows) {
      expect(r.epoch).toBe(r.iteration / t.batchesPerEpoch);
      expect(r.train === null).toBe(r.val !== null); // a step or a validation
      if (r.train !== null) expect(r.rate).toBe(rateUsed[r.iteration - 1]);
      else expect(r.rate).toBeNull();
    }
    expect(new Set(rows.map((r) => r.rate).filter((x) => x !== null)).size).toBe(3); // two decays
    // In order: each validation right after its step.
    expect(rows.map((r) => r.iteration)).toEqual([...rows.map((r) => r.iteration)].sort((a, b) => a - b));
    expect(readFileSync(join(d, 'grid_lstm.log.csv'), 'utf8')).toBe(t.logLines().join('\n') + '\n');
  });

  it('is written as the run goes: each step is in the file when onStep is called', () => {
    const d = join(dir, 'live');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 5, checkpointDir: d, savefile: 'live' }));
    const seen: number[] = [];
    t.run({ onStep: (s) => seen.push(readLog(join(d, 'live.log.csv')).at(-1)!.iteration - s.iteration) });
    expect(seen).toEqual([0, 0, 0, 0, 0]);
  });

  it('after a kill and a resume it equals the log of the run done in one go', () => {
    const whole = Trainer.fromText(TEXT, options({ maxSteps: 12, checkpointDir: join(dir, 'whole') }));
    whole.run();
    const wholeLog = readFileSync(join(dir, 'whole', 'grid_lstm.log.csv'), 'utf8');
    const d = join(dir, 'killed');
    const a = Trainer.fromText(TEXT, options({ maxSteps: 6, checkpointDir: d }));
    a.run();
    const ck = join(d, basename(a.lastCheckpoint!));
    // A killed run logs steps past its last checkpoint: lines the resumed run must not keep.
    appendFileSync(join(d, 'grid_lstm.log.csv'), '7,0.18,3.9,,0.002\n8,0.21,3.8,,0.002\n9,0.2');
    const warnings: string[] = [];
    const b = Trainer.resume(TEXT, loadCheckpoint(ck), { maxSteps: 12 });
    b.run({ onWarning: (w) => warnings.push(w) });
    expect(readFileSync(join(d, 'grid_lstm.log.csv'), 'utf8')).toBe(wholeLog);
    expect(warnings).toEqual([]); // its own log: replaced without a word
    // Stopped (Ctrl-C) between validations, then resumed: the same again.
    const e = join(dir, 'stopped');
    const c = Trainer.fromText(TEXT, options({ maxSteps: 12, checkpointDir: e }));
    expect(c.run({ shouldStop: () => c.iteration === 4 }).status).toBe('stopped');
    expect(readLog(join(e, 'grid_lstm.log.csv')).at(-1)!.iteration).toBe(4);
    Trainer.resume(TEXT, loadCheckpoint(c.lastCheckpoint!)).run();
    expect(readFileSync(join(e, 'grid_lstm.log.csv'), 'utf8')).toBe(wholeLog);
  });

  it('a new run moves another run\'s log aside (the first free number) and says so: nothing is lost', () => {
    const d = join(dir, 'two-runs');
    const log = (name = 'grid_lstm.log.csv') => readFileSync(join(d, name), 'utf8');
    Trainer.fromText(TEXT, options({ maxSteps: 2, checkpointDir: d })).run();
    const first = log();
    const moved = (n: number) => `moved the loss log of another run to ${join(d, `grid_lstm.${n}.log.csv`)}; use --savefile to keep runs' logs apart`;
    const warnings: string[] = [];
    const t = Trainer.fromText(TEXT, options({ maxSteps: 3, checkpointDir: d, seed: 7 }));
    t.run({ onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([moved(1)]);
    expect(log('grid_lstm.1.log.csv')).toBe(first);
    expect(log()).toBe(t.logLines().join('\n') + '\n');
    const second = log();
    // A third run: the second's log goes to the next free number.
    writeFileSync(join(d, 'grid_lstm.3.log.csv'), 'not free\n');
    const u = Trainer.fromText(TEXT, options({ maxSteps: 1, checkpointDir: d, seed: 8 }));
    u.run({ onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([moved(1), moved(2)]);
    expect([log('grid_lstm.1.log.csv'), log('grid_lstm.2.log.csv'), log('grid_lstm.3.log.csv')]).toEqual([first, second, 'not free\n']);
    expect(log()).toBe(u.logLines().join('\n') + '\n');
  });

  it('a resumed run whose first steps are another run\'s (a run that differs later) moves that log aside too', () => {
    // Two runs equal for the first epoch (38 steps), with other decays after it.
    const a = join(dir, 'same-start-a');
    const b = join(dir, 'same-start-b');
    Trainer.fromText(TEXT, options({ maxSteps: 40, checkpointDir: a })).run();
    const logA = readFileSync(join(a, 'grid_lstm.log.csv'), 'utf8');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 40, checkpointDir: b, learningRateDecay: 0.9 }));
    t.run();
    expect(readFileSync(join(b, 'grid_lstm.log.csv'), 'utf8').split('\n')[1]).toBe(logA.split('\n')[1]); // the same first step
    const warnings: string[] = [];
    const r = Trainer.resume(TEXT, loadCheckpoint(t.lastCheckpoint!), { checkpointDir: a, maxSteps: 42 });
    r.run({ onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([`moved the loss log of another run to ${join(a, 'grid_lstm.1.log.csv')}; use --savefile to keep runs' logs apart`]);
    expect(readFileSync(join(a, 'grid_lstm.1.log.csv'), 'utf8')).toBe(logA);
    expect(readFileSync(join(a, 'grid_lstm.log.csv'), 'utf8')).toBe(r.logLines().join('\n') + '\n');
  });

  it('cannot be written: one warning, and training goes on', () => {
    const d = join(dir, 'unwritable');
    mkdirSync(join(d, 'grid_lstm.log.csv'), { recursive: true }); // a directory in its place
    const warnings: string[] = [];
    const out = Trainer.fromText(TEXT, options({ maxSteps: 6, checkpointDir: d })).run({ onWarning: (w) => warnings.push(w) });
    expect(out.status).toBe('done');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^cannot write the loss log ${join(d, 'grid_lstm.log.csv')}: .*; training goes on without it$`));
    expect(readdirSync(d).filter((f) => f.endsWith('.safetensors'))).toHaveLength(2);
  });

  it('--log none writes none; --log can change on resume', () => {
    const d = join(dir, 'none');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 3, checkpointDir: d, log: 'none' }));
    expect(t.logPath).toBeNull();
    t.run();
    expect(existsSync(join(d, 'grid_lstm.log.csv'))).toBe(false);
    const b = Trainer.resume(TEXT, loadCheckpoint(t.lastCheckpoint!), { maxSteps: 6, log: 'csv' });
    b.run();
    // Written from the checkpoint's history: the first steps too.
    expect(readLog(join(d, 'grid_lstm.log.csv')).filter((r) => r.train !== null)).toHaveLength(6);
  });

  it('LOG_HEADER is the first line; a validation with no step before it (a run resumed at its end) is a row too, once', () => {
    expect(LOG_HEADER).toBe('iteration,epoch,train_loss,val_loss,learning_rate');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 12, checkpointDir: join(dir, 'end') }));
    expect(t.run({ shouldStop: () => t.iteration === 2 }).status).toBe('stopped');
    const again = Trainer.resume(TEXT, loadCheckpoint(t.lastCheckpoint!), { maxSteps: 2 });
    again.run(); // at its end without a validation there: validates once
    const rows = () => readLog(join(dir, 'end', 'grid_lstm.log.csv')).map((r) => [r.iteration, r.val !== null]);
    const expected = [
      [1, false],
      [2, false],
      [2, true],
    ];
    expect(rows()).toEqual(expected);
    // Resumed at its end again: validated there already, no second row.
    Trainer.resume(TEXT, loadCheckpoint(again.lastCheckpoint!)).run();
    expect(rows()).toEqual(expected);
  });

  it('through the CLI: next to the checkpoints, named after --savefile', async () => {
    const data = join(dir, 'fox.txt');
    writeFileSync(data, TEXT);
    const r = await runCli(
      ['train', '--data', data, '--rnn-size', '4', '--num-layers', '1', '--batch-size', '2', '--seq-length', '8', '--max-steps', '4', '--eval-val-every', '2', '--savefile', 'fox', '--checkpoint-dir', 'cli'],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const rows = readLog(join(dir, 'cli', 'fox.log.csv'));
    expect(rows.map((r) => r.iteration)).toEqual([1, 2, 2, 3, 4, 4]);
  });
});
