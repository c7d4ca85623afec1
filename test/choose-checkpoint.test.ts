/**
 * Choosing a checkpoint from a directory (issue 19): `sample`, `eval`, `inspect` and `viz` take
 * the checkpoint with the lowest validation loss of its own (`--newest` for the newest), and say
 * on stderr which file they used; `train --resume` takes the newest; `plot` the newest (the
 * longest history). The choice reads checkpoint headers only (readCheckpointInfo). A file that is
 * not a checkpoint at all says so. All on real checkpoints of tiny runs.
 *
 * The CLI is run from dist/ (built by `npm ci` and by `npm test`'s pretest step).
 */
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, loadCheckpoint, ownValLoss, readCheckpointInfo } from '../src/train/checkpoint.js';
import { parseSafetensors, writeSafetensors } from '../src/train/safetensors.js';
import { DEFAULT_TRAIN_OPTIONS, Trainer } from '../src/train/train.js';
import { expectOneLineUsageError, runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-choose-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** ~4000 characters of plain English (a vocabulary of about 30). */
const TEXT = Array.from({ length: 80 }, (_, i) => `the quick brown fox ${i % 7} jumps over the lazy dog, said ${'abcdefg'[i % 7]}.\n`).join('');
const dataFile = join(dir, 'text.txt');
const TINY = ['--rnn-size', '8', '--num-layers', '1', '--batch-size', '2', '--seq-length', '8', '--learning-rate', '0.05'];
const run = (args: string[]) => runCli(args, { cwd: dir });

/** The .safetensors files of a directory. */
const checkpoints = (d: string) =>
  readdirSync(d)
    .filter((f) => f.endsWith('.safetensors'))
    .map((f) => join(d, f));

/** The validation loss of a checkpoint's own weights, read the long way (the whole file). */
function ownLoss(file: string): number | null {
  const t = loadCheckpoint(file).training;
  if (!t) return null;
  const own = t.history.val.filter(([i]) => i === t.iteration);
  return own.length ? own[own.length - 1]![1] : null;
}

/** The file written last (file time, then iteration). */
function newestOf(d: string): string {
  const it = (f: string) => loadCheckpoint(f).training?.iteration ?? -1;
  return checkpoints(d).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs || it(b) - it(a))[0]!;
}

/** A copy of a checkpoint with its training metadata edited. */
function rewriteTraining(from: string, to: string, edit: (t: Record<string, any>) => void): void {
  const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(from)));
  const t = JSON.parse(metadata.training!);
  edit(t);
  const list = [...tensors.values()].map((x) => ({ name: x.name, shape: [...x.shape], data: x.data as Float32Array }));
  writeFileSync(to, writeSafetensors(list, { ...metadata, training: JSON.stringify(t) }));
}

// One run, validated at iterations 10, 20, 30, then branched back: resumed from iteration 10 and
// validated at 11, so the newest checkpoint (iteration 11) is not the best one.
const runDir = join(dir, 'run');
let best = '';
let newest = '';
beforeAll(async () => {
  writeFileSync(dataFile, TEXT);
  const a = await run(['train', '--data', dataFile, ...TINY, '--max-steps', '30', '--eval-val-every', '10', '--checkpoint-dir', runDir]);
  expect(a.code, a.stderr).toBe(0);
  const at10 = checkpoints(runDir).find((f) => loadCheckpoint(f).training!.iteration === 10)!;
  const b = await run(['train', '--resume', at10, '--max-steps', '11', '--eval-val-every', '1']);
  expect(b.code, b.stderr).toBe(0);
  const files = checkpoints(runDir);
  expect(files).toHaveLength(4);
  newest = newestOf(runDir);
  expect(loadCheckpoint(newest).training!.iteration).toBe(11);
  best = files.sort((x, y) => ownLoss(x)! - ownLoss(y)!)[0]!;
  // The premise of these tests: training on to iteration 30 did better than the branch at 11.
  expect(best).not.toBe(newest);
});

describe('a directory as CK', () => {
  it('sample takes the lowest validation loss, not the newest, and names it', async () => {
    const r = await run(['sample', runDir, '--length', '40', '--seed', '3']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`using ${best} (lowest validation loss ${ownLoss(best)!.toFixed(4)} of 4 checkpoints)\nsampling 40 characters\n`);
    const direct = await run(['sample', best, '--length', '40', '--seed', '3']);
    expect(r.stdout).toBe(direct.stdout);
    expect(direct.stderr).toBe(`sampling 40 characters from ${best}\n`);
  });

  it('--newest takes the newest', async () => {
    const r = await run(['sample', runDir, '--length', '40', '--seed', '3', '--newest']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`using ${newest} (newest of 4 checkpoints)\nsampling 40 characters\n`);
    expect(r.stdout).toBe((await run(['sample', newest, '--length', '40', '--seed', '3'])).stdout);
  });

  it('sample --quiet prints only the text', async () => {
    const r = await run(['sample', runDir, '--length', '40', '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect([...r.stdout.trimEnd()].length).toBeGreaterThan(0);
  });

  it('eval --json: stdout is the JSON alone, the choice on stderr; the loss is the best file\'s', async () => {
    const r = await run(['eval', runDir, '--data', dataFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`using ${best} (lowest validation loss ${ownLoss(best)!.toFixed(4)} of 4 checkpoints)\n`);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const got = JSON.parse(r.stdout);
    expect(Object.keys(got)).toEqual(['loss', 'bpc', 'predictions', 'skipped']);
    expect(got).toEqual(JSON.parse((await run(['eval', best, '--data', dataFile, '--json'])).stdout));
    const other = JSON.parse((await run(['eval', runDir, '--data', dataFile, '--json', '--newest'])).stdout);
    expect(other).toEqual(JSON.parse((await run(['eval', newest, '--data', dataFile, '--json'])).stdout));
  });

  it('inspect --json: one object with the documented keys, for the chosen file', async () => {
    const r = await run(['inspect', runDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^using .* \(lowest validation loss/);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(['file', 'format', 'config', 'parameters', 'val_loss', 'task', 'training']);
    expect(j.file).toBe(best);
    expect(j.format).toBe('grid-lstm/1');
    expect(Object.keys(j.config)).toEqual(['model', 'vocab', 'vocab_size', 'rnn_size', 'num_layers', 'tie_weights', 'dropout']);
    const ck = loadCheckpoint(best);
    expect(j.config.vocab).toEqual(ck.vocab.chars);
    expect(j.config.rnn_size).toBe(8);
    expect(j.parameters).toBe(ck.model.params.length);
    expect(j.val_loss).toBe(ownLoss(best));
    expect(j.training.iteration).toBe(ck.training!.iteration);
    expect(j.training.history.val).toEqual(ck.training!.history.val);
    expect(j.training.history.train).toEqual(ck.training!.history.train);
    expect(j.training.options.rnnSize).toBe(8);
    for (const k of ['epoch', 'learningRate', 'optimizer', 'bestValLoss']) expect(j.training).toHaveProperty(k);
    expect(JSON.parse((await run(['inspect', runDir, '--json', '--newest'])).stdout).file).toBe(newest);
  });

  // Needs the command table (src/cli/commands.ts) to list INSPECT_OPTS as inspect's options.
  it('inspect --help lists --json with its keys, and --newest', async () => {
    const h = await run(['inspect', '--help']);
    for (const k of ['--json', '--newest', 'val_loss', 'vocab_size', 'history']) expect(h.stdout).toContain(k);
  });

  it('inspect without --json: the text report on stdout, the choice on stderr', async () => {
    const r = await run(['inspect', runDir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^model: +grid_lstm/);
    expect(r.stderr).toBe(`using ${best} (lowest validation loss ${ownLoss(best)!.toFixed(4)} of 4 checkpoints)\n`);
  });

  it('train --resume DIR continues from the newest checkpoint', async () => {
    const copy = join(dir, 'resume-copy');
    cpSync(runDir, copy, { recursive: true, preserveTimestamps: true });
    const r = await run(['train', '--resume', copy, '--max-steps', '12', '--checkpoint-dir', join(dir, 'resume-out')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`resuming ${join(copy, newest.split('/').pop()!)} at iteration 11`);
  });

  it('plot DIR draws the newest checkpoint\'s history (the whole run), without a line about it', async () => {
    const r = await run(['plot', runDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe((await run(['plot', newest])).stdout);
  });
});

describe('how checkpoints rank', () => {
  it('a checkpoint written between validations (Ctrl-C) has no validation loss of its own and is not taken', async () => {
    const d = join(dir, 'stopped');
    const t = Trainer.fromText(TEXT, { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 8, numLayers: 1, batchSize: 2, seqLength: 8, evalValEvery: 5, maxSteps: 100, checkpointDir: d });
    const out = await t.runAsync({ shouldStop: () => t.iteration >= 7 });
    expect(out.status).toBe('stopped');
    const files = checkpoints(d);
    expect(files).toHaveLength(2);
    const stopped = files.find((f) => f.includes('interrupted'))!;
    const validated = files.find((f) => f !== stopped)!;
    // Its history's last validation is of iteration 5, not of its own weights (iteration 7).
    const info = readCheckpointInfo(stopped);
    expect(info.training!.iteration).toBe(7);
    expect(info.training!.history.val.at(-1)![0]).toBe(5);
    expect(info.valLoss).toBe(null);
    expect(readCheckpointInfo(validated).valLoss).toBe(ownLoss(validated));
    const r = await run(['eval', d, '--data', dataFile]);
    expect(r.stderr).toBe(`using ${validated} (lowest validation loss ${ownLoss(validated)!.toFixed(4)} of 2 checkpoints)\n`);
    // Alone, it is taken, and the line says why.
    rmSync(validated);
    const s = await run(['eval', d, '--data', dataFile]);
    expect(s.code).toBe(0);
    expect(s.stderr).toBe(`using ${stopped} (newest of 1 checkpoint; none has a validation loss of its own)\n`);
  });

  it('equal losses: the later iteration, whichever file is newer', async () => {
    const d = join(dir, 'ties');
    mkdirSync(d);
    const byIt = (n: number) => checkpoints(runDir).find((f) => loadCheckpoint(f).training!.iteration === n)!;
    const loss30 = ownLoss(byIt(30))!;
    const later = join(d, 'b.safetensors');
    const earlier = join(d, 'a.safetensors');
    copyFileSync(byIt(30), later);
    rewriteTraining(byIt(20), earlier, (t) => {
      t.history.val = t.history.val.map(([i, v]: [number, number]) => [i, i === 20 ? loss30 : v]);
    });
    utimesSync(later, new Date(1e12), new Date(1e12)); // the later iteration in the older file
    expect(readCheckpointInfo(earlier).valLoss).toBe(loss30);
    const r = await run(['inspect', d, '--json']);
    expect(JSON.parse(r.stdout).file).toBe(later);
  });

  it('a directory of two runs: the lowest of all, and the line says there are two runs', async () => {
    const d = join(dir, 'mixed');
    mkdirSync(d);
    copyFileSync(best, join(d, best.split('/').pop()!));
    const r1 = await run(['train', '--data', dataFile, ...TINY, '--max-steps', '1', '--eval-val-every', '1', '--checkpoint-dir', d, '--savefile', 'other']);
    expect(r1.code, r1.stderr).toBe(0);
    const r = await run(['sample', d, '--length', '5']);
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')[0]).toBe(`using ${join(d, best.split('/').pop()!)} (lowest validation loss ${ownLoss(best)!.toFixed(4)} of 2 checkpoints from 2 runs)`);
  });

  it('unreadable files are passed over and named; a directory of only unreadable files gives their error', async () => {
    const d = join(dir, 'with-bad');
    cpSync(runDir, d, { recursive: true, preserveTimestamps: true });
    writeFileSync(join(d, 'notes.safetensors'), 'some notes, not a checkpoint\n');
    const bytes = readFileSync(best);
    writeFileSync(join(d, 'cut.safetensors'), bytes.subarray(0, bytes.length - 10));
    const r = await run(['sample', d, '--length', '5']);
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')[0]).toMatch(
      new RegExp(`^using ${join(d, best.split('/').pop()!)} \\(lowest validation loss [\\d.]+ of 6 checkpoints; passed over 2 unreadable: (cut|notes)\\.safetensors, (cut|notes)\\.safetensors\\)$`),
    );
    const only = join(dir, 'only-bad');
    mkdirSync(only);
    writeFileSync(join(only, 'notes.safetensors'), 'some notes, not a checkpoint\n');
    expectOneLineUsageError(await run(['sample', only]), /notes\.safetensors: not a grid-lstm checkpoint \(safetensors\): it is text/);
    writeFileSync(join(only, 'empty.safetensors'), '');
    expectOneLineUsageError(await run(['eval', only, '--data', dataFile]), /only-bad holds no readable checkpoint among its 2 \.safetensors files; the newest: .*/);
    // --newest does not pass over the newest file: its error is the one to see.
    expectOneLineUsageError(await run(['sample', only, '--newest']), /empty\.safetensors: the file is 0 bytes/);
  });
});

describe('readCheckpointInfo: the header only', () => {
  it('gives what loading gives, without the tensors (a NaN weight goes unnoticed until loading)', () => {
    const info = readCheckpointInfo(best);
    const ck = loadCheckpoint(best);
    expect(info.config).toEqual(ck.model.config);
    expect(info.chars).toEqual(ck.vocab.chars);
    expect(info.training).toEqual(ck.training);
    expect(info.valLoss).toBe(ownValLoss(ck.training!));
    expect(info.size).toBe(statSync(best).size);
    const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(best)));
    const list = [...tensors.values()].map((x) => ({ name: x.name, shape: [...x.shape], data: x.data as Float32Array }));
    list.find((x) => x.name === 'decoder.bias')!.data[0] = NaN;
    const nan = join(dir, 'nan.safetensors');
    writeFileSync(nan, writeSafetensors(list, metadata));
    expect(readCheckpointInfo(nan).valLoss).toBe(info.valLoss);
    expect(() => loadCheckpoint(nan)).toThrow(/parameter decoder\.bias holds NaN/);
  });

  it('refuses what the header shows to be wrong with loading\'s own message', () => {
    const bytes = readFileSync(best);
    const cases: [string, Uint8Array | string][] = [
      ['empty', ''],
      ['short', bytes.subarray(0, 5)],
      ['cut-in-header', bytes.subarray(0, 100)],
      ['cut-in-data', bytes.subarray(0, bytes.length - 3)],
      ['text', 'Four score and seven years ago\n'],
    ];
    for (const [name, content] of cases) {
      const p = join(dir, `${name}.safetensors`);
      writeFileSync(p, content);
      let loadMessage = '';
      try {
        loadCheckpoint(p);
      } catch (e) {
        loadMessage = (e as Error).message;
      }
      expect(loadMessage, name).not.toBe('');
      expect(() => readCheckpointInfo(p), name).toThrow(CheckpointError);
      expect(() => readCheckpointInfo(p), name).toThrow(loadMessage);
    }
  });
});

describe('a file that is not a checkpoint', () => {
  it('a text file says so and what to pass instead, for every command that reads one', async () => {
    const want = `grid-lstm: error: ${dataFile}: not a grid-lstm checkpoint (safetensors): it is text ("the quick brown fox 0 ju..."), not a safetensors file; pass a .safetensors file that grid-lstm train wrote, or the directory holding them\n`;
    for (const args of [['sample', dataFile], ['eval', dataFile, '--data', dataFile], ['inspect', dataFile], ['viz', dataFile, '--data', dataFile], ['plot', dataFile]]) {
      const r = await run(args);
      expect(r.stderr, args[0]).toBe(want);
      expect(r.code).toBe(2);
    }
  });

  it('a binary file says its first bytes are no header length', async () => {
    const png = join(dir, 'picture.png');
    writeFileSync(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]));
    expectOneLineUsageError(
      await run(['sample', png]),
      /picture\.png: not a grid-lstm checkpoint \(safetensors\): its first 8 bytes give a header length of \d+, larger than the file \(16 bytes\), and no header follows, so it is not a safetensors file; pass a \.safetensors file/,
    );
  });

  it('a truncated checkpoint stays "truncated", and says to pass another', async () => {
    const bytes = readFileSync(best);
    const cut = join(dir, 'cut.safetensors');
    writeFileSync(cut, bytes.subarray(0, 200));
    expectOneLineUsageError(await run(['sample', cut]), /cut\.safetensors: header length \d+ is larger than the file \(200 bytes\): the file is truncated or not a safetensors file; pass another checkpoint$/m);
  });
});

describe('a CK that names nothing to read says what to name', () => {
  it('a missing path: the path first, then to name a checkpoint file or a run directory', async () => {
    for (const args of [['sample', 'nonexist'], ['eval', 'nonexist', '--data', dataFile], ['inspect', 'nonexist']]) {
      const r = await run(args);
      expect(r.stderr, args[0]).toBe('grid-lstm: error: nonexist: no such file; name a checkpoint file or a run directory\n');
      expect(r.code).toBe(2);
    }
  });

  it('a directory whose checkpoints are all in subdirectories names those subdirectories', async () => {
    const cv = join(dir, 'cv');
    for (const sub of ['b', 'a', 'empty']) mkdirSync(join(cv, sub), { recursive: true });
    copyFileSync(best, join(cv, 'a', 'x.safetensors'));
    copyFileSync(best, join(cv, 'b', 'y.safetensors'));
    writeFileSync(join(cv, 'notes.txt'), 'not a checkpoint\n');
    expectOneLineUsageError(await run(['sample', cv]), new RegExp(`: ${escape(cv)} holds no \\.safetensors checkpoint; its subdirectories a, b do: name one \\(e\\.g\\. ${escape(join(cv, 'a'))}\\)$`, 'm'));
    rmSync(join(cv, 'b'), { recursive: true });
    expectOneLineUsageError(await run(['eval', cv, '--data', dataFile]), new RegExp(`: ${escape(cv)} holds no \\.safetensors checkpoint; its subdirectory a does: name it \\(${escape(join(cv, 'a'))}\\)$`, 'm'));
    // And the one named works.
    expect((await run(['sample', join(cv, 'a'), '--length', '3'])).code).toBe(0);
  });

  it('eval DIR says which checkpoint it took before reading the data, so a vocabulary error is understood', async () => {
    const other = join(dir, 'other-text.txt');
    writeFileSync(other, 'ZZZ QQQ XXX\n');
    const r = await run(['eval', runDir, '--data', other]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(`using ${best} (lowest validation loss ${ownLoss(best)!.toFixed(4)} of 4 checkpoints)`);
    expect(lines[1]).toMatch(/^grid-lstm: error: --data .*other-text\.txt: the checkpoint's vocabulary does not contain /);
  });
});

function escape(s: string): string {
  return s.replace(/[|.*+?^${}()[\]\\]/g, '\\$&');
}
