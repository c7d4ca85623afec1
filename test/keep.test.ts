/**
 * --keep (which checkpoint files a run leaves) and --patience (early stop), through the library
 * and the CLI: exactly the expected files stay; only files the run itself wrote are ever
 * deleted, tracked across resumes; the early stop happens at the right validation, also when
 * the run was stopped and resumed in between.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CheckpointRecord, loadCheckpoint, parseCheckpoint } from '../src/train/checkpoint.js';
import { parseSafetensors, writeSafetensors } from '../src/train/safetensors.js';
import { type RunOutcome, type TrainOptions, Trainer, keptCheckpoints, validateTrainOptions } from '../src/train/train.js';
import { expectOneLineUsageError, runCli } from './helpers/cli.js';
import { tinyOptions } from './helpers/tiny-run.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-keep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The validation split ('aabb…') differs from the training text ('abab…'): the val loss falls
// for 5 validations (every 2 steps: best at iteration 10), then rises at every one after.
const TEXT = 'ab'.repeat(800) + 'aabb'.repeat(60);
const BEST_AT = 10;
const options = (over: Partial<TrainOptions>): TrainOptions =>
  tinyOptions({
    trainFrac: 0.9,
    valFrac: 0.1,
    learningRate: 0.01,
    evalValEvery: 2,
    ...over,
  });
const checkpoints = (d: string) => readdirSync(d).filter((f) => f.endsWith('.safetensors')).sort();

/** Runs `t`, recording every checkpoint path written and every validation. */
function runRecording(t: Trainer, stopAfterValidationAt: number | null = null) {
  const written: string[] = [];
  const vals: [number, number][] = [];
  const warnings: string[] = [];
  let stop = false; // as Ctrl-C would: the run writes a checkpoint (if needed) and stops
  const outcome = t.run({
    shouldStop: () => stop,
    onCheckpoint: (p) => written.push(basename(p)),
    onEval: (e) => {
      vals.push([e.iteration, e.valLoss]);
      if (e.iteration === stopAfterValidationAt) stop = true;
    },
    onWarning: (w) => warnings.push(w),
  });
  return { outcome, written, vals, warnings };
}

describe('--keep', () => {
  it('all (the default) keeps every checkpoint, as char-rnn', () => {
    const d = join(dir, 'all');
    const { written } = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 8, checkpointDir: d })));
    expect(written).toHaveLength(4);
    expect(checkpoints(d)).toEqual([...written].sort());
  });

  it('last-2 leaves the two newest files; the newest lists what is kept', () => {
    const d = join(dir, 'last2');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 10, checkpointDir: d, keep: 'last-2' }));
    const { written, warnings } = runRecording(t);
    expect(written).toHaveLength(5);
    expect(checkpoints(d)).toEqual(written.slice(-2).sort());
    expect(warnings).toEqual([]);
    const ck = loadCheckpoint(join(d, written[4]));
    expect(ck.training!.checkpoints!.map((r) => r.name)).toEqual(written.slice(-2));
    expect(ck.training!.checkpoints!.map((r) => r.iteration)).toEqual([8, 10]);
  });

  it('best leaves the lowest val loss and the newest (to resume from)', () => {
    const d = join(dir, 'best');
    const { written, vals } = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 20, checkpointDir: d, keep: 'best' })));
    const best = vals.reduce((b, v) => (v[1] < b[1] ? v : b));
    expect(best[0]).toBe(BEST_AT); // the data makes the best one not the newest
    const bestFile = written[vals.indexOf(best)];
    expect(checkpoints(d)).toEqual([bestFile, written.at(-1)!].sort());
    // While the best is also the newest, one file.
    const d1 = join(dir, 'best-improving');
    const r = runRecording(Trainer.fromText(TEXT, options({ maxSteps: BEST_AT, checkpointDir: d1, keep: 'best' })));
    expect(checkpoints(d1)).toEqual([r.written.at(-1)]);
  });

  it("never deletes another run's files: same name stem, same directory, or anything else there", () => {
    const d = join(dir, 'shared');
    // Another run with the same (default) savefile, in the same directory, keeping all.
    const other = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 6, learningRate: 0.03, checkpointDir: d })));
    writeFileSync(join(d, 'notes.txt'), 'mine\n');
    const foreign = 'lm_grid_lstm_epoch0.50_0.1234.safetensors';
    copyFileSync(join(d, other.written[0]), join(d, foreign));
    const mine = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 8, checkpointDir: d, keep: 'last-1' })));
    expect(mine.written.some((f) => other.written.includes(f))).toBe(false); // different names
    // The other run's loss log is moved aside, not deleted.
    expect(readdirSync(d).sort()).toEqual([...other.written, foreign, mine.written.at(-1)!, 'notes.txt', 'grid_lstm.log.csv', 'grid_lstm.1.log.csv'].sort());
  });

  it('tracks its files across a resume, and --keep can change on resume', () => {
    const d = join(dir, 'resume');
    const a = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 6, checkpointDir: d })));
    expect(checkpoints(d)).toEqual([...a.written].sort());
    const ck = loadCheckpoint(join(d, a.written.at(-1)!));
    const t = Trainer.resume(TEXT, ck, { maxSteps: 10, keep: 'last-1' });
    expect(t.options.keep).toBe('last-1');
    const b = runRecording(t);
    // The first run's three files were this run's: all gone but the newest of all.
    expect(checkpoints(d)).toEqual([b.written.at(-1)]);
  });

  it('a resume into another --checkpoint-dir leaves the files of the old one alone', () => {
    const d = join(dir, 'moved-a');
    const a = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 4, checkpointDir: d, keep: 'last-1' })));
    const t = Trainer.resume(TEXT, loadCheckpoint(join(d, a.written.at(-1)!)), { maxSteps: 8, checkpointDir: join(dir, 'moved-b') });
    const b = runRecording(t);
    expect(checkpoints(d)).toEqual([a.written.at(-1)]);
    expect(checkpoints(join(dir, 'moved-b'))).toEqual([b.written.at(-1)]); // last-1 carried over
  });

  it('a file that cannot be deleted is reported, kept on the list and tried again; training goes on', () => {
    const d = join(dir, 'undeletable');
    const t = Trainer.fromText(TEXT, options({ maxSteps: 2, checkpointDir: d, keep: 'last-1' }));
    const a = runRecording(t);
    // Replace the checkpoint with a directory of the same name: unlink fails (EISDIR).
    rmSync(join(d, a.written[0]));
    mkdirSync(join(d, a.written[0]));
    writeFileSync(join(d, a.written[0], 'x'), 'x');
    // Another learning rate: other losses, other file names.
    const t2 = Trainer.fromText(TEXT, options({ maxSteps: 6, checkpointDir: d, keep: 'last-1', learningRate: 0.03 }));
    t2.checkpoints = [...t.checkpoints];
    const b = runRecording(t2);
    expect(b.outcome.status).toBe('done');
    // Once per checkpoint written (after the log's: this run moves the other run's log aside).
    expect(b.warnings[0]).toBe(`moved the loss log of another run to ${join(d, 'grid_lstm.1.log.csv')}; use --savefile to keep runs' logs apart`);
    b.warnings.shift();
    expect(b.warnings.length).toBe(3);
    expect(b.warnings[0]).toMatch(new RegExp(`^cannot delete the old checkpoint .*${a.written[0].replace(/\./g, '\\.')} \\(--keep last-1\\): `));
    expect(t2.checkpoints.map((r) => r.name)).toEqual([a.written[0], b.written.at(-1)]);
    expect(checkpoints(d)).toEqual([a.written[0], b.written.at(-1)!].sort());
  });

  it('keptCheckpoints: the policy on its own', () => {
    const r = (name: string, valLoss: number | null): CheckpointRecord => ({ name, iteration: 0, valLoss });
    const list = [r('a', 2), r('b', 1), r('c', null), r('d', 1), r('e', 3)];
    expect(keptCheckpoints(list, 'all')).toEqual(list);
    expect(keptCheckpoints(list, 'last-2').map((x) => x.name)).toEqual(['d', 'e']);
    expect(keptCheckpoints(list, 'last-9').map((x) => x.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(keptCheckpoints(list, 'best').map((x) => x.name)).toEqual(['b', 'e']); // the first of equal bests
    expect(keptCheckpoints([r('a', null)], 'best').map((x) => x.name)).toEqual(['a']);
  });

  it('bad values get one clear message', () => {
    for (const bad of ['x', 'last', 'last-0', 'last--1', 'last-1.5', 'Best', '']) {
      expect(() => validateTrainOptions(options({ keep: bad as TrainOptions['keep'] }))).toThrow(
        `--keep must be all, best or last-N with N ≥ 1, got ${JSON.stringify(bad)}`,
      );
    }
    expect(() => validateTrainOptions(options({ keep: 'last-12' }))).not.toThrow();
    expect(() => validateTrainOptions(options({ patience: -1 }))).toThrow('--patience must be a whole number ≥ 0 (0: never stop early), got -1');
  });

  it('a checkpoint whose file list names a path outside its directory is refused on load', () => {
    const d = join(dir, 'tampered');
    const a = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 2, checkpointDir: d })));
    const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(join(d, a.written[0]))));
    for (const name of ['../lm_x.safetensors', 'lm_a/b.safetensors', 'notes.txt']) {
      const training = JSON.parse(metadata.training!);
      training.checkpoints = [{ name, iteration: 2, valLoss: null }];
      const list = [...tensors.values()].map((t) => ({ name: t.name, shape: [...t.shape], data: t.data as Float32Array }));
      const bytes = writeSafetensors(list, { ...metadata, training: JSON.stringify(training) });
      expect(() => parseCheckpoint(bytes, 'ck')).toThrow(
        `ck: training.checkpoints[0].name must be a file name lm_….safetensors (no directory), got ${JSON.stringify(name)}`,
      );
    }
  });
});

describe('--patience', () => {
  /** The iteration at which K validations in a row without a new best first happen, from a list of validations. */
  const expectedStop = (vals: [number, number][], k: number) => {
    let best = Infinity;
    let since = 0;
    for (const [it, v] of vals) {
      if (v < best) [best, since] = [v, 0];
      else if (++since >= k) return it;
    }
    return null;
  };

  it('stops after K validations without improvement, with the best and its checkpoint', () => {
    const d = join(dir, 'patience');
    const full = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 30, checkpointDir: join(dir, 'patience-full') })));
    const stopAt = expectedStop(full.vals, 3);
    expect(stopAt).toBe(BEST_AT + 3 * 2);
    const t = Trainer.fromText(TEXT, options({ maxSteps: 30, checkpointDir: d, patience: 3 }));
    const r = runRecording(t);
    expect(t.iteration).toBe(stopAt);
    expect(r.vals).toEqual(full.vals.filter(([it]) => it <= stopAt!)); // the same run, cut short
    const out = r.outcome as Extract<RunOutcome, { status: 'done' }>;
    expect(out.status).toBe('done');
    expect(out.earlyStop).toEqual({
      patience: 3,
      validations: 3,
      alreadyMet: false,
      bestIteration: BEST_AT,
      bestValLoss: full.vals[BEST_AT / 2 - 1][1],
      bestCheckpoint: join(d, r.written[BEST_AT / 2 - 1]),
    });
    expect(out.checkpoint).toBe(join(d, r.written.at(-1)!));
    // No early stop without --patience, or when the K-th validation without improvement is the last.
    expect(full.outcome.status === 'done' && full.outcome.earlyStop).toBeUndefined();
    const last = runRecording(Trainer.fromText(TEXT, options({ maxSteps: stopAt!, checkpointDir: join(dir, 'patience-last'), patience: 3 })));
    expect(last.outcome.status === 'done' && last.outcome.earlyStop).toBeUndefined();
  });

  it('with --keep last-N the best checkpoint may be gone: then it says null', () => {
    const d = join(dir, 'patience-last1');
    const r = runRecording(Trainer.fromText(TEXT, options({ maxSteps: 30, checkpointDir: d, patience: 2, keep: 'last-1' })));
    expect(r.outcome.status === 'done' && r.outcome.earlyStop?.bestCheckpoint).toBeNull();
  });

  it('survives a stop and resume: the count of validations since the best comes from the history', () => {
    const d = join(dir, 'patience-resume');
    const whole = Trainer.fromText(TEXT, options({ maxSteps: 30, checkpointDir: join(dir, 'patience-whole'), patience: 3 }));
    runRecording(whole);
    // Stopped (Ctrl-C) after 2 validations without improvement, then resumed.
    const a = Trainer.fromText(TEXT, options({ maxSteps: 30, checkpointDir: d, patience: 3 }));
    const ra = runRecording(a, BEST_AT + 4);
    expect(ra.outcome.status).toBe('stopped');
    expect(a.validationsSinceBest).toBe(2);
    const b = Trainer.resume(TEXT, loadCheckpoint(join(d, ra.written.at(-1)!)));
    expect(b.validationsSinceBest).toBe(2);
    const rb = runRecording(b);
    expect(b.iteration).toBe(whole.iteration);
    expect(b.history).toEqual(whole.history);
    expect(rb.outcome.status === 'done' && rb.outcome.earlyStop?.bestIteration).toBe(BEST_AT);
    // Changeable on resume: a larger patience goes on further.
    const c = Trainer.resume(TEXT, loadCheckpoint(join(d, ra.written.at(-1)!)), { patience: 5 });
    runRecording(c);
    expect(c.iteration).toBe(BEST_AT + 5 * 2);
  });

  it('a stop during the validation that meets it: the resume does that validation and stops there, as the whole run', () => {
    const whole = Trainer.fromText(TEXT, options({ maxSteps: 30, checkpointDir: join(dir, 'patience-cut-whole'), patience: 3 }));
    const rw = runRecording(whole);
    const stopAt = BEST_AT + 3 * 2;
    const d = join(dir, 'patience-cut');
    const a = Trainer.fromText(TEXT, options({ maxSteps: 30, checkpointDir: d, patience: 3 }));
    expect(a.loader.splitSizes.val).toBeGreaterThan(1);
    let stop = false;
    const out = a.run({ shouldStop: () => stop, onEvalProgress: (done) => (stop = a.iteration === stopAt && done === 1) });
    expect(out.status).toBe('stopped');
    expect(a.history.val.at(-1)![0]).toBe(stopAt - 2); // the validation of stopAt was cut short
    const b = Trainer.resume(TEXT, loadCheckpoint(a.lastCheckpoint!));
    const rb = runRecording(b);
    expect(rb.vals.map(([i]) => i)).toEqual([stopAt]);
    expect(b.iteration).toBe(stopAt);
    expect(b.history).toEqual(whole.history);
    const [ew, eb] = [rw.outcome, rb.outcome].map((o) => (o.status === 'done' ? o.earlyStop : undefined));
    expect(eb).toEqual({ ...ew, bestCheckpoint: join(d, basename(ew!.bestCheckpoint!)) });
  });

  it('a run that stopped early, resumed with the same or a lower --patience, stops at once; a higher one or 0 goes on', () => {
    const d = join(dir, 'patience-met');
    const a = Trainer.fromText(TEXT, options({ maxSteps: 40, checkpointDir: d, patience: 2 }));
    const ra = runRecording(a);
    const stopAt = BEST_AT + 2 * 2;
    expect(a.iteration).toBe(stopAt);
    const final = join(d, ra.written.at(-1)!);
    const bestCheckpoint = join(d, ra.written[BEST_AT / 2 - 1]);
    for (const patience of [2, 1]) {
      const b = Trainer.resume(TEXT, loadCheckpoint(final), { patience });
      const rb = runRecording(b);
      expect(b.iteration).toBe(stopAt); // no step
      expect(rb.vals).toEqual([]); // no second validation of stopAt
      expect(rb.written).toEqual([]); // its checkpoint is there
      expect(b.history).toEqual(a.history);
      expect(rb.outcome).toEqual({
        status: 'done',
        checkpoint: final,
        valLoss: a.history.val.at(-1)![1],
        earlyStop: { patience, validations: 2, alreadyMet: true, bestIteration: BEST_AT, bestValLoss: a.bestValLoss, bestCheckpoint },
      });
    }
    const c = Trainer.resume(TEXT, loadCheckpoint(final), { patience: 3 });
    const rc = runRecording(c);
    expect(rc.vals.map(([i]) => i)).toEqual([stopAt + 2]);
    expect(rc.outcome.status === 'done' && rc.outcome.earlyStop).toMatchObject({ patience: 3, validations: 3, alreadyMet: false });
    const e = Trainer.resume(TEXT, loadCheckpoint(final), { patience: 0 });
    runRecording(e);
    expect(e.iteration).toBe(40);
    // Lowered on resume from a checkpoint between validations: stops at once too, saying how many.
    const f = Trainer.resume(TEXT, loadCheckpoint(final), { patience: 0 });
    let stop = false;
    f.run({ shouldStop: () => stop, onStep: (s) => (stop = s.iteration === stopAt + 1) });
    const g = Trainer.resume(TEXT, loadCheckpoint(f.lastCheckpoint!), { patience: 1 });
    const rg = runRecording(g);
    expect(g.iteration).toBe(stopAt + 1);
    expect(rg.written).toEqual([]);
    expect(rg.outcome).toMatchObject({ status: 'done', checkpoint: f.lastCheckpoint, earlyStop: { patience: 1, validations: 2, alreadyMet: true } });
  });
});

describe('through the CLI', () => {
  const data = join(dir, 'ab.txt');
  writeFileSync(data, TEXT);
  const common = ['--data', data, '--rnn-size', '4', '--num-layers', '1', '--batch-size', '2', '--seq-length', '8', '--train-frac', '0.9', '--val-frac', '0.1'];
  const rest = ['--learning-rate', '0.01', '--eval-val-every', '2', '--print-every', '100'];

  it('--keep best --patience 2: stops early, says where the best is, exit 0, two files left', async () => {
    const r = await runCli(['train', ...common, ...rest, '--max-steps', '40', '--keep', 'best', '--patience', '2', '--checkpoint-dir', 'cli-best'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const m = /^stopped early: no improvement in 2 validations \(best (\d\.\d{4}) at iteration 10\)\ncheckpoint: (\S+)$/m.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(existsSync(join(dir, m![2]))).toBe(true);
    expect(loadCheckpoint(join(dir, m![2])).training!.iteration).toBe(10);
    expect(checkpoints(join(dir, 'cli-best'))).toHaveLength(2);
    expect(r.stderr).not.toMatch(/^done:/m);
  });

  it('resumed with its --patience already met: stops at once and says so, with the right count', async () => {
    const a = await runCli(['train', ...common, ...rest, '--max-steps', '40', '--patience', '2', '--checkpoint-dir', 'cli-met'], { cwd: dir });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr, a.stderr).toMatch(/^stopped early: no improvement in 2 validations/m);
    const final = checkpoints(join(dir, 'cli-met')).map((f) => join('cli-met', f)).find((f) => loadCheckpoint(join(dir, f)).training!.iteration === BEST_AT + 4)!;
    expect(final).toBeDefined();
    for (const patience of ['2', '1']) {
      const r = await runCli(['train', '--resume', final, '--patience', patience], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^already stopped early: no improvement in 2 validations \(best \d\.\d{4} at iteration 10\)$/m);
      expect(r.stderr).toMatch(/^to train on, resume with --patience 3 or more, or --patience 0 \(never stop early\)$/m);
      expect(r.stderr).not.toMatch(/^\d+\/40 /m); // no step
    }
  });

  it('bad --keep and --patience values: one line, exit 2', async () => {
    expectOneLineUsageError(await runCli(['train', ...common, '--keep', 'last-0'], { cwd: dir }), /--keep must be all, best or last-N with N ≥ 1, got "last-0"/);
    expectOneLineUsageError(await runCli(['train', ...common, '--patience', '-2'], { cwd: dir }), /--patience must be a whole number ≥ 0/);
  });
});
