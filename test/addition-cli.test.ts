/**
 * The addition task through the CLI (dist/cli.js): train a tiny model → eval (generated sums and
 * a file of sums) → sample (completes a sum) → inspect → plot --accuracy → resume, equal to
 * the run that did not stop; and bad input as one-line errors (exit code 2).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { CLI, expectOneLineUsageError } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-addition-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TINY = ['--task', 'addition', '--digit-length', '2', '--seq-length', '9', '--model', 'grid_lstm', '--rnn-size', '8', '--num-layers', '2'];
const RUN = [...TINY, '--batch-size', '10', '--eval-val-every', '4', '--threads', '1', '--seed', '3'];

function checkpoints(d: string): string[] {
  return readdirSync(join(dir, d)).filter((f) => f.endsWith('.safetensors')).sort();
}

describe('grid-lstm with --task addition', () => {
  it('train → eval → sample → inspect → plot → resume', () => {
    const t = run(['train', ...RUN, '--max-steps', '8', '--checkpoint-dir', 'whole']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/addition of 2-digit numbers, generated from --seed 3/);
    expect(t.stderr).toMatch(/answers right: \d+\.\d% of characters, \d+\.\d% of sums \(of 2000\)/);
    expect(t.stderr).toMatch(/done: val_loss = \d\.\d{4} nats\/char, \d+\.\d% of the sums right/);
    const log = readFileSync(join(dir, 'whole', 'grid_lstm.log.csv'), 'utf8').split('\n');
    expect(log[0]).toBe('iteration,epoch,train_loss,val_loss,learning_rate,val_char_accuracy,val_number_accuracy');
    expect(log.filter((l) => /^4,.*,,[\d.e-]+,,[\d.]+,[\d.]+$/.test(l))).toHaveLength(1);

    const e = run(['eval', 'whole', '--sums', '30', '--json']);
    expect(e.code, e.stderr).toBe(0);
    const ej = JSON.parse(e.stdout);
    expect(ej.sums).toBe(30);
    expect(ej.predictions).toBe(90); // 3 answer characters a sum
    expect(ej.loss).toBeGreaterThan(0);
    // A file of sums, one a line, as the task lays them out.
    writeFileSync(join(dir, 'sums.txt'), '12+34=640\n99+01=001\n');
    const f = run(['eval', 'whole', '--data', 'sums.txt']);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toMatch(/^\d\.\d{6} nats\/char over the answers' 6 characters; \d+\.\d\d% of the characters and \d+\.\d\d% of the sums right \(the 2 sums of sums\.txt\)\n$/);

    const s = run(['sample', 'whole', '--primetext', '12+34=', '--argmax']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/^12\+34=[0-9 +=]{3}\n$/);
    expect(s.stderr).toMatch(/the answer read back to front: .{3} \(12 \+ 34 = 46: (right|wrong|not a whole answer)\)/);

    const i = run(['inspect', 'whole']);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toMatch(/^task: +addition of 2-digit numbers, seq_length 9, answer reversed$/m);
    expect(i.stdout).toMatch(/^accuracy: +\d+\.\d% of sums, \d+\.\d% of answer characters \(iteration 8\)$/m);
    const ij = JSON.parse(run(['inspect', 'whole', '--json']).stdout);
    expect(ij.task).toEqual({ kind: 'addition', digit_length: 2, seq_length: 9 });
    expect(ij.training.history.accuracy.map((a: number[]) => a[0])).toEqual([4, 8]);

    const p = run(['plot', 'whole', '--accuracy', 'sums']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/^validation sums right \(%\)$/m);

    // Stopped after 4 steps, resumed to 8: the same weights and history as the whole run.
    expect(run(['train', ...RUN, '--max-steps', '4', '--checkpoint-dir', 'half']).code).toBe(0);
    const r = run(['train', '--resume', join('half', checkpoints('half').at(-1)!), '--max-steps', '8']);
    expect(r.code, r.stderr).toBe(0);
    const a = loadCheckpoint(join(dir, 'whole', checkpoints('whole').at(-1)!));
    const b = loadCheckpoint(join(dir, 'half', checkpoints('half').at(-1)!));
    expect(b.training!.iteration).toBe(8);
    expect([...b.model.params]).toEqual([...a.model.params]);
    expect(b.training!.history.accuracy).toEqual(a.training!.history.accuracy);
    // Resumed already at its end: nothing to do, and the done line still has the last accuracy.
    const end = run(['train', '--resume', join('half', checkpoints('half').at(-1)!), '--max-steps', '8']);
    expect(end.code, end.stderr).toBe(0);
    const sums = (100 * a.training!.history.accuracy!.at(-1)![2]).toFixed(1);
    expect(end.stderr).toContain(`done: val_loss = ${a.training!.history.val.at(-1)![1].toFixed(4)} nats/char, ${sums}% of the sums right\n`);
  }, 120_000);

  it('bad input is a one-line error', () => {
    const cases: [string[], RegExp][] = [
      [['train', ...TINY, '--digit-length', '0'], /--digit-length must be a whole number from 1 to 1000 .*got 0/],
      [['train', ...TINY, '--seq-length', '8'], /--seq-length 8 is too short for --task addition --digit-length 2: .* use --seq-length 9 or more/],
      [['train', ...TINY, '--data', 'sums.txt'], /--task addition generates its sums from --seed; drop --data/],
      [['train', '--task', 'sums'], /--task/],
      [['train', '--task', 'char', '--digit-length', '0'], /^grid-lstm: error: --digit-length is for --task addition, not --task char; drop --digit-length$/m],
    ];
    for (const [args, re] of cases) expectOneLineUsageError(run(args), re);
    // A checkpoint of the task: its resume cannot change the task, sample needs a sum.
    expect(run(['train', ...RUN, '--max-steps', '1', '--checkpoint-dir', 'one']).code).toBe(0);
    const ck = join('one', checkpoints('one')[0]);
    expectOneLineUsageError(run(['train', '--resume', ck, '--task', 'char']), /--task cannot change when resuming \(the run used "addition"\)/);
    // --init-from it: what contradicts its task or shape is named before anything else is checked.
    const from = 'the --init-from checkpoint is of --task addition --digit-length 2';
    const initCases: [string[], RegExp][] = [
      [['--task', 'char'], new RegExp(`${from}; drop --task char, or start a new run without --init-from$`, 'm')],
      [['--digit-length', '3'], new RegExp(`${from}; drop --digit-length 3, or`)],
      [['--data', 'sums.txt'], /the --init-from checkpoint is of --task addition, whose sums are generated from --seed; drop --data$/m],
      [['--model', 'lstm'], /the --init-from checkpoint is a grid_lstm of 2 layers × 8, tied; drop --model lstm \(a run from its weights keeps its shape\)/],
      [['--no-tie-weights'], /; drop --no-tie-weights \(a run/],
    ];
    for (const [args, re] of initCases) expectOneLineUsageError(run(['train', '--init-from', ck, ...args]), re);
    // --task addition said again: the checkpoint's --digit-length and --seq-length, as without it.
    const again = run(['train', '--init-from', ck, '--task', 'addition', '--max-steps', '1', '--eval-val-every', '1', '--threads', '1', '--checkpoint-dir', 'again']);
    expect(again.code, again.stderr).toBe(0);
    expect(loadCheckpoint(join(dir, 'again', checkpoints('again')[0])).task).toEqual({ kind: 'addition', digitLength: 2, seqLength: 9 });
    expectOneLineUsageError(run(['sample', ck, '--primetext', 'hello']), /this checkpoint adds 2-digit numbers: give --primetext "a\+b=" .* \(e\.g\. "11\+22="\)/);
    writeFileSync(join(dir, 'bad.txt'), '12+34=64\n');
    expectOneLineUsageError(run(['eval', ck, '--data', 'bad.txt']), /--data bad\.txt line 1: "12\+34=64" is not a sum of this checkpoint's task/);
    // A wrong answer in the file (here not reversed) is named with the right one.
    writeFileSync(join(dir, 'wrong.txt'), '12+34=640\n50+50=100\n');
    const wrong = /--data wrong\.txt line 2: "50\+50=100" has the answer 100, but 50 \+ 50 = 100, written 001 \(its 3 digits reversed\); correct it$/m;
    expectOneLineUsageError(run(['eval', ck, '--data', 'wrong.txt']), wrong);
    expectOneLineUsageError(run(['eval', ck, '--data', 'sums.txt', '--sums', '5']), /--sums is for generated sums, and --data sums\.txt gives the sums/);
  }, 120_000);
});
