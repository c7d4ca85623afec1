/**
 * Reliability (issue 5): bad input never crashes or corrupts anything.
 *
 * - every mistake through the CLI (data, options, checkpoints, the checkpoint directory) gives
 *   one line on stderr that names the problem and the fix, exit code 2, no stack trace (the
 *   cases test/cli.test.ts already covers are not repeated here);
 * - a checkpoint that cannot be written mid-run stops training with a message and leaves the
 *   earlier checkpoints intact;
 * - a NaN or infinite loss or gradient stops training before the weights are touched (the
 *   in-process cases: test/divergence.test.ts; the CLI's here);
 * (the kernels' numerics at pre-activations of any size: test/numerics.test.ts;
 * readCorpus, the big-corpus loader, against readTextFile + buildVocab + encode: test/corpus.test.ts.)
 *
 * The CLI is run from dist/ (built by `npm ci` and by `npm test`'s pretest step).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, loadCheckpoint, parseCheckpoint } from '../src/train/checkpoint.js';
import { buildVocab, encode, readTextFile, trainingTooShortMessage } from '../src/train/data.js';
import { parseSafetensors, writeSafetensors } from '../src/train/safetensors.js';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions, Trainer, checkTrainingFits } from '../src/train/train.js';
import { runs } from './helpers/arbitraries.js';
import { CLI, expectOneLineUsageError, runCli } from './helpers/cli.js';
import { tinyOptions as tinyRun } from './helpers/tiny-run.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-reliability-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** ~3000 characters of plain English: a vocabulary of about 30, enough batches for tiny runs. */
const TEXT = Array.from({ length: 60 }, (_, i) => `the quick brown fox ${i % 7} jumps over the lazy dog, said ${'abcdefg'[i % 7]}.\n`).join('');
const dataFile = join(dir, 'text.txt');
const file = (name: string, content: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const TINY = ['--rnn-size', '4', '--num-layers', '1', '--batch-size', '2', '--seq-length', '8'];

/** Runs the CLI without blocking (so that tests can run side by side). */
const run = (args: string[], cwd = dir) => runCli(args, { cwd });

/** The shared tiny model (test/helpers/tiny-run.ts), validating and printing every step. */
const tinyOptions = (over: Partial<TrainOptions> = {}): TrainOptions => tinyRun({ evalValEvery: 1, printEvery: 1, ...over });

/** A checkpoint with training and optimiser state, trained 2 steps on TEXT. */
let goodCk = '';
beforeAll(() => {
  writeFileSync(dataFile, TEXT);
  const t = Trainer.fromText(TEXT, tinyOptions({ maxSteps: 2, checkpointDir: join(dir, 'good') }));
  const out = t.run();
  expect(out.status).toBe('done');
  goodCk = t.lastCheckpoint!;
  // Recorded in checkpoints by the CLI; lets `train --resume` find the data.
  const ck = loadCheckpoint(goodCk);
  expect(ck.training?.iteration).toBe(2);
});

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

describe('bad --data: one line, exit code 2', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['a directory', () => ['train', '--data', dir], /--data .*: is a directory; pass a text file/],
    ['an empty file', () => ['train', '--data', file('empty.txt', '')], /--data .*empty\.txt: file is empty; pass a non-empty text file/],
    ['only a byte order mark', () => ['train', '--data', file('bom.txt', new Uint8Array([0xef, 0xbb, 0xbf]))], /only a byte order mark/],
    ['a one-character file', () => ['train', '--data', file('one.txt', 'x')], /--data .*one\.txt has only one distinct character, "x"; a model needs at least 2 to learn anything/],
    ['one distinct character', () => ['train', '--data', file('same.txt', 'zzzzzzzzzz')], /has only one distinct character, "z"/],
    [
      'invalid UTF-8 (train)',
      () => ['train', '--data', file('latin1.txt', new Uint8Array([0x63, 0x61, 0x66, 0x65, 0x20, 0xe9, 0x74, 0xe9]))],
      /--data .*latin1\.txt: not valid UTF-8 \(first invalid byte sequence at byte offset 5\); fix the file or pass --encoding latin1/,
    ],
    [
      'invalid UTF-8 (eval)',
      () => ['eval', goodCk, '--data', file('latin1b.txt', new Uint8Array([0x61, 0x62, 0xff]))],
      /--data .*latin1b\.txt: not valid UTF-8 \(first invalid byte sequence at byte offset 2\).*--encoding latin1/,
    ],
    ['a directory (eval)', () => ['eval', goodCk, '--data', dir], /is a directory/],
    ['a missing file (eval)', () => ['eval', goodCk, '--data', join(dir, 'nope.txt')], /no such file/],
    ['an empty file (eval)', () => ['eval', goodCk, '--data', file('empty2.txt', '')], /file is empty/],
    ['a path through a file', () => ['train', '--data', join(dataFile, 'x.txt')], /--data .*: a part of the path is not a directory/],
    [
      'characters outside an --init-from vocabulary',
      () => ['train', '--init-from', goodCk, '--data', file('alien.txt', TEXT + '§')],
      /--data .*alien\.txt: the checkpoint's vocabulary does not contain 1 character\(s\) of the text: "§"/,
    ],
  ];
  for (const [name, args, re] of cases) {
    it.concurrent(name, async () => expectOneLineUsageError(await run(args()), re));
  }

  it.concurrent('--encoding latin1 reads the file that was not UTF-8', async () => {
    const p = file('latin1-ok.txt', Buffer.from(TEXT.replace(/o/g, '\u00f6'), 'latin1'));
    const r = await run(['train', '--data', p, '--encoding', 'latin1', ...TINY, '--max-steps', '1', '--checkpoint-dir', 'latin1-cv']);
    expect(r.stderr).toMatch(/done: val_loss/);
    expect(r.code).toBe(0);
    const ck = loadCheckpoint(join(dir, 'latin1-cv', readdirSync(join(dir, 'latin1-cv')).find((f) => f.endsWith('.safetensors'))!));
    expect(ck.vocab.chars).toContain('\u00f6');
    // The encoding is remembered: --resume reads the file as latin1 again.
    const again = await run(['train', '--resume', join(dir, 'latin1-cv'), '--max-steps', '2']);
    expect(again.stderr).toMatch(/resuming .* at iteration 1/);
    expect(again.code).toBe(0);
  });

  it.concurrent('a text too small for --batch-size × --seq-length names the largest sizes that fit, and they do', async () => {
    const r = await run(['train', '--data', dataFile, '--batch-size', '100', '--seq-length', '50']);
    expectOneLineUsageError(r, /--data .*text\.txt: the text has \d+ character\(s\), too few to train with --batch-size 100 --seq-length 50/);
    const m = /use --batch-size (\d+) or less \(with --seq-length 50\) or --seq-length (\d+) or less \(with --batch-size 100\)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const [maxB, maxT] = [Number(m![1]), Number(m![2])];
    const fits = (B: number, T: number) => trainingTooShortMessage(TEXT.length, B, T, DEFAULT_TRAIN_OPTIONS) === null;
    expect(fits(maxB, 50) && fits(100, maxT)).toBe(true);
    expect(fits(maxB + 1, 50) || fits(100, maxT + 1)).toBe(false);
    // The suggestion really trains (a train and a validation batch).
    expect(() => Trainer.fromText(TEXT, tinyOptions({ batchSize: maxB, seqLength: 50 }))).not.toThrow();
    expect(() => Trainer.fromText(TEXT, tinyOptions({ batchSize: 100, seqLength: maxT }))).not.toThrow();
  });

  it('trainingTooShortMessage: null exactly when there is a train and a validation batch', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0.01, max: 0.98, noNaN: true }),
        fc.double({ min: 0.01, max: 0.5, noNaN: true }),
        (n, B, T, trainFrac, v) => {
          const valFrac = Math.min(v, 1 - trainFrac);
          const fracs = { trainFrac, valFrac };
          const msg = trainingTooShortMessage(n, B, T, fracs);
          const ids = new Uint16Array(n);
          let ok = false;
          try {
            // The loader's own rule: at least one batch, a train and a val split.
            const t = Trainer.fromCorpus({ ids: ids.map((_, i) => i % 2), vocab: buildVocab('ab') }, tinyOptions({ batchSize: B, seqLength: T, trainFrac, valFrac }));
            ok = t.loader.splitSizes.train > 0;
          } catch {
            ok = false;
          }
          expect(msg === null).toBe(ok);
          if (msg !== null) expect(msg).toMatch(/too few to train/);
        },
      ),
      { numRuns: runs(300) },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

describe('bad options: one line, exit code 2, before any data is read', () => {
  const T = () => ['train', '--data', dataFile];
  const cases: [string, () => string[], RegExp][] = [
    ['non-numeric number', () => [...T(), '--learning-rate', 'abc'], /--learning-rate must be a number, got "abc"/],
    ['NaN', () => [...T(), '--dropout', 'NaN'], /--dropout must be a number, got "NaN"/],
    ['infinite', () => [...T(), '--learning-rate', 'Infinity'], /--learning-rate must be a number, got "Infinity"/],
    ['fractional size', () => [...T(), '--batch-size', '2.5'], /--batch-size must be a whole number, got "2.5"/],
    ['empty value', () => [...T(), '--seq-length='], /--seq-length must be a whole number, got ""/],
    ['huge size', () => [...T(), '--rnn-size', '1e30'], /--rnn-size must be a whole number between .* got 1e30/],
    ['negative batch size', () => [...T(), '--batch-size', '-1'], /--batch-size must be a whole number > 0, got -1/],
    ['zero seq length', () => [...T(), '--seq-length', '0'], /--seq-length must be a whole number > 0, got 0/],
    ['zero layers', () => [...T(), '--num-layers', '0'], /--num-layers must be a whole number > 0, got 0/],
    ['negative dropout', () => [...T(), '--dropout', '-0.1'], /--dropout must be in \[0, 1\), got -0.1/],
    ['dropout above 1', () => [...T(), '--dropout', '1.5'], /--dropout must be in \[0, 1\), got 1.5/],
    ['negative train fraction', () => [...T(), '--train-frac', '-0.1'], /--train-frac must be in \(0, 1\], got -0.1/],
    ['negative val fraction', () => [...T(), '--val-frac', '-0.5'], /--val-frac must be in \(0, 1\]/],
    ['zero val fraction', () => [...T(), '--val-frac', '0'], /--val-frac must be in \(0, 1\] \(validation needs a val split\)/],
    ['fractions summing over 1', () => [...T(), '--train-frac', '0.6', '--val-frac', '0.6'], /--train-frac \+ --val-frac must be at most 1, got 0.6 \+ 0.6/],
    ['zero learning rate', () => [...T(), '--learning-rate', '0'], /--learning-rate must be a number > 0, got 0/],
    ['negative grad clip', () => [...T(), '--grad-clip', '-1'], /--grad-clip must be a number ≥ 0/],
    ['zero max steps', () => [...T(), '--max-steps', '0'], /--max-steps must be a whole number > 0/],
    ['zero max epochs', () => [...T(), '--max-epochs', '0'], /--max-epochs must be a number > 0/],
    ['zero print every', () => [...T(), '--print-every', '0'], /--print-every must be a whole number > 0/],
    ['zero eval every', () => [...T(), '--eval-val-every', '0'], /--eval-val-every must be a whole number > 0/],
    ['decay rate 1', () => [...T(), '--decay-rate', '1'], /--decay-rate must be in \[0, 1\)/],
    ['learning-rate decay 0', () => [...T(), '--learning-rate-decay', '0'], /--learning-rate-decay must be in \(0, 1\]/],
    ['unknown optimiser', () => [...T(), '--optim', 'lbfgs'], /--optim must be one of rmsprop, adam, sgd, got "lbfgs"/],
    ['unknown encoding', () => [...T(), '--encoding', 'utf16'], /--encoding must be one of utf8, latin1/],
    ['unknown kernels', () => [...T(), '--kernels', 'gpu'], /--kernels must be one of/],
    ['a value missing at the end', () => [...T(), '--rnn-size'], /--rnn-size needs a value/],
    ['a value given to a switch', () => [...T(), '--tie-weights=yes'], /--tie-weights takes no value/],
    ['an unexpected argument', () => [...T(), 'extra'], /unexpected argument "extra" for 'grid-lstm train'/],
    ['--resume and --init-from', () => [...T(), '--resume', goodCk, '--init-from', goodCk], /use either --init-from or --resume, not both/],
    ['--savefile with a path', () => [...T(), '--savefile', 'sub/name'], /--savefile must be a plain file name stem .* got "sub\/name"; choose the directory with --checkpoint-dir/],
    ['a model too large for any buffer', () => [...T(), '--rnn-size', '100000', '--num-layers', '1000', '--batch-size', '2', '--seq-length', '8'], /makes .* parameters, more than one buffer can hold \(2\^32\); lower --rnn-size or --num-layers/],
    ['an unknown sample option', () => ['sample', goodCk, '--lenght', '5'], /unknown option --lenght for 'grid-lstm sample'; did you mean --length\? \(see node \S*dist\/cli\.js sample --help\)/],
    ['a fractional length', () => ['sample', goodCk, '--length', '2.5'], /--length must be a whole number, got "2.5"/],
    ['a negative temperature', () => ['sample', goodCk, '--temperature', '-1'], /--temperature must be a number > 0, got -1/],
    ['a NaN temperature', () => ['sample', goodCk, '--temperature', 'nan'], /--temperature must be a number, got "nan"/],
    ['a temperature too small to compute with', () => ['sample', goodCk, '--temperature', '1e-320'], /--temperature .* is too small to compute with .* use --argmax/],
    ['sample without a checkpoint', () => ['sample'], /sample needs a checkpoint/],
    ['inspect without a checkpoint', () => ['inspect'], /inspect needs a checkpoint/],
    ['eval without a checkpoint', () => ['eval'], /eval needs a checkpoint/],
    ['no command', () => [], /./],
  ];
  for (const [name, args, re] of cases) {
    it.concurrent(name, async () => {
      const r = await run(args());
      if (args().length === 0) {
        // No command: the overview on stdout, exit code 2.
        expect(r.code).toBe(2);
        expect(r.stdout).toMatch(/usage: grid-lstm <command>/);
        return;
      }
      expectOneLineUsageError(r, re);
      expect(r.stderr).not.toMatch(/loaded \d+ characters/);
    });
  }

  it('checkTrainingFits refuses a run that needs more memory than the machine has, naming what to lower', () => {
    const o = tinyOptions({ rnnSize: 4000, numLayers: 2 });
    expect(() => checkTrainingFits(o, 80, 1000, undefined, 1e9)).toThrow(
      /--rnn-size 4000 with --num-layers 2 and a vocabulary of 80, batches of --batch-size 2 × --seq-length 8, needs about [\d.]+ GB of memory but this machine has 1\.00 GB; lower --rnn-size, --num-layers, --batch-size or --seq-length/,
    );
    expect(() => checkTrainingFits(tinyOptions(), 80, 1000, undefined, 1e9)).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

describe('bad checkpoints through every command: one line, exit code 2', () => {
  /** The pieces of the good checkpoint file. */
  const parts = () => {
    const bytes = new Uint8Array(readFileSync(goodCk));
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, any>;
    return { bytes, header, data: bytes.subarray(8 + n) };
  };
  /** A file from a header object and a data section; `length` overrides the length field. */
  const rebuild = (header: object, data: Uint8Array, length?: bigint): Uint8Array => {
    const h = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + h.length + data.length);
    new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
    out.set(h, 8);
    out.set(data, 8 + h.length);
    return out;
  };
  /** The good checkpoint's tensors and metadata, edited, written again with writeSafetensors. */
  const rewrite = (edit: (tensors: { name: string; shape: number[]; data: Float32Array | Float64Array }[], meta: Record<string, string>) => void) => {
    const { tensors, metadata } = parseSafetensors(parts().bytes);
    const list = [...tensors.values()].map((t) => ({ name: t.name, shape: [...t.shape], data: t.data as Float32Array | Float64Array }));
    const meta = { ...metadata };
    edit(list, meta);
    return writeSafetensors(list, meta);
  };
  const setValue = (name: string, value: number) =>
    rewrite((ts) => {
      ts.find((t) => t.name === name)!.data[1] = value;
    });

  const corrupt: [string, () => string, RegExp][] = [
    ['missing', () => join(dir, 'missing.safetensors'), /missing\.safetensors: no such file/],
    ['a directory without checkpoints', () => (mkdirSync(join(dir, 'nock'), { recursive: true }), join(dir, 'nock')), /holds no \.safetensors checkpoint; train one first or name a checkpoint file/],
    ['not safetensors (text)', () => dataFile, /text\.txt: not a grid-lstm checkpoint \(safetensors\): it is text \("the quick brown fox 0 ju\.\.\."\), not a safetensors file; pass a \.safetensors file that grid-lstm train wrote, or the directory holding them$/m],
    ['an empty file', () => file('empty.safetensors', ''), /the file is 0 bytes, shorter than the 8-byte header length field/],
    ['truncated in the length field', () => file('trunc4.safetensors', parts().bytes.subarray(0, 5)), /shorter than the 8-byte header length field: it is truncated/],
    ['truncated in the header', () => file('trunc-h.safetensors', parts().bytes.subarray(0, 100)), /header length \d+ is larger than the file \(100 bytes\): the file is truncated/],
    ['truncated in the data', () => file('trunc-d.safetensors', parts().bytes.subarray(0, parts().bytes.length - 3)), /outside the \d+-byte data section|belong to no tensor/],
    ['header length larger than the file', () => file('hlen.safetensors', rebuild(parts().header, parts().data, BigInt(parts().bytes.length))), /header length \d+ is larger than the file/],
    ['header not JSON', () => file('hjson.safetensors', (() => {
      const b = parts().bytes.slice();
      b[8] = 0x78; // the opening brace
      return b;
    })()), /the header is not valid JSON .*not a safetensors file/],
    ['offsets out of range', () => {
      const { header, data } = parts();
      const [b, e] = header['decoder.bias'].data_offsets;
      header['decoder.bias'].data_offsets = [b + data.length, e + data.length];
      return file('range.safetensors', rebuild(header, data));
    }, /tensor "decoder\.bias": data_offsets \[\d+, \d+\] are outside the \d+-byte data section/],
    ['overlapping tensors', () => {
      const { header, data } = parts();
      // Two tensors of the same size; the later one is moved onto the earlier one.
      const [a, b] = ['layers.0.time.t2h.bias', 'layers.0.time.d2h.bias'].sort((x, y) => header[x].data_offsets[0] - header[y].data_offsets[0]);
      header[b!].data_offsets = [...header[a!].data_offsets];
      return file('overlap.safetensors', rebuild(header, data));
    }, /tensors .* \(bytes \d+\.\.\d+\) and .* \(bytes \d+\.\.\d+\) overlap/],
    ['an F64 tensor', () => file('f64.safetensors', rewrite((ts) => {
      const t = ts.find((x) => x.name === 'decoder.bias')!;
      t.data = Float64Array.from(t.data);
    })), /tensor decoder\.bias has dtype F64, but checkpoints store every tensor as F32/],
    ['a shape not matching the config', () => file('shape.safetensors', rewrite((ts) => {
      const t = ts.find((x) => x.name === 'layers.0.time.t2h.weight')!;
      t.shape = [t.shape[1]!, t.shape[0]!];
    })), /layers\.0\.time\.t2h\.weight has shape \[4,16\] but the config \(rnn_size 4\) needs \[16,4\]/],
    ['a missing tensor', () => file('missing-t.safetensors', rewrite((ts) => {
      ts.splice(ts.findIndex((x) => x.name === 'decoder.bias'), 1);
    })), /missing tensors decoder\.bias: the file does not hold every parameter its config/],
    ['an unexpected tensor', () => file('extra-t.safetensors', rewrite((ts) => {
      ts.push({ name: 'extra.weight', shape: [2], data: new Float32Array(2) });
    })), /unexpected tensors extra\.weight: they are not parameters of the model/],
    ['config metadata not JSON', () => file('meta.safetensors', rewrite((_, meta) => {
      meta.config = '{"model": "grid_lstm",';
    })), /the "config" metadata is not valid JSON .*the checkpoint is corrupt/],
    ['training metadata not JSON', () => file('meta-t.safetensors', rewrite((_, meta) => {
      meta.training = 'not json';
    })), /the "training" metadata is not valid JSON/],
    ['no format entry (some other safetensors file)', () => file('noformat.safetensors', rewrite((_, meta) => {
      delete meta.format;
    })), /not a grid-lstm checkpoint: the safetensors metadata has no "format" entry/],
    ['a vocabulary that does not fit the tensors', () => file('vocab.safetensors', rewrite((_, meta) => {
      const c = JSON.parse(meta.config!);
      c.vocab.push('§');
      meta.config = JSON.stringify(c);
    })), /embedding\.weight has shape \[\d+,4\] but the config \(vocab of \d+, rnn_size 4\) needs/],
    ['a NaN weight', () => file('nan.safetensors', setValue('layers.0.time.d2h.weight', NaN)), /parameter layers\.0\.time\.d2h\.weight holds NaN at index 1; the checkpoint is corrupt or was saved after training diverged/],
    ['an infinite weight', () => file('inf.safetensors', setValue('decoder.weight', -Infinity)), /parameter decoder\.weight holds -Infinity at index 1/],
    ['infinite optimiser state', () => file('inf-opt.safetensors', setValue('optimizer.m', Infinity)), /optimizer\.m holds Infinity at index 1; the optimiser state is corrupt/],
  ];
  const commands: [string, (ck: string) => string[]][] = [
    ['sample', (ck) => ['sample', ck, '--length', '5']],
    ['eval', (ck) => ['eval', ck, '--data', dataFile]],
    ['inspect', (ck) => ['inspect', ck]],
    ['train --resume', (ck) => ['train', '--resume', ck, '--checkpoint-dir', 'resume-cv']],
    ['train --init-from', (ck) => ['train', '--init-from', ck, '--data', dataFile, '--checkpoint-dir', 'init-cv']],
  ];
  for (const [name, make, re] of corrupt) {
    describe(name, () => {
      let path = '';
      beforeAll(() => {
        path = make();
        // The library says the same (with the path as the label).
        if (!/directory/.test(name)) expect(() => loadCheckpoint(path)).toThrow(CheckpointError);
      });
      for (const [cmd, args] of commands) {
        it.concurrent(cmd, async () => expectOneLineUsageError(await run(args(path)), re));
      }
    });
  }

  it('truncated at any byte: a one-line CheckpointError, never anything else', () => {
    const { bytes } = parts();
    for (let n = 0; n < bytes.length; n++) {
      let err: unknown;
      try {
        parseCheckpoint(bytes.subarray(0, n), 'ck');
      } catch (e) {
        err = e;
      }
      expect(err, `truncated to ${n} bytes`).toBeInstanceOf(CheckpointError);
      expect((err as Error).message).not.toMatch(/[\n\r]/);
    }
  });

  it.concurrent('train --resume of a checkpoint whose options contradict its config says it is inconsistent', async () => {
    const p = file('inconsistent.safetensors', rewrite((_, meta) => {
      const t = JSON.parse(meta.training!);
      t.options.rnnSize = 16;
      meta.training = JSON.stringify(t);
    }));
    expectOneLineUsageError(
      await run(['train', '--resume', p, '--data', dataFile]),
      /the checkpoint is inconsistent: its training options say --rnn-size 16 but its config says 4; .* --init-from can start a new run from its weights/,
    );
  });

  it.concurrent('train --resume of a weights-only checkpoint points to --init-from', async () => {
    const p = file('weights-only.safetensors', rewrite((ts, meta) => {
      delete meta.training;
      delete meta.carry;
      ts.splice(0, ts.length, ...ts.filter((t) => !t.name.startsWith('optimizer.')));
    }));
    expectOneLineUsageError(await run(['train', '--resume', p, '--data', dataFile]), /no training state .*use --init-from/);
  });

  it.concurrent('train --resume when the recorded data file is gone says so', async () => {
    const moved = join(dir, 'moved-data.txt');
    writeFileSync(moved, TEXT);
    const r1 = await run(['train', '--data', moved, ...TINY, '--max-steps', '1', '--checkpoint-dir', 'moved-cv']);
    expect(r1.code).toBe(0);
    rmSync(moved);
    const r = await run(['train', '--resume', join(dir, 'moved-cv'), '--max-steps', '2']);
    expectOneLineUsageError(r, /--data .*moved-data\.txt: no such file.*\(the run's --data, recorded in .*; pass --data to say where it is now\)/);
    // With --data it resumes.
    const r2 = await run(['train', '--resume', join(dir, 'moved-cv'), '--max-steps', '2', '--data', dataFile]);
    expect(r2.code).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// The checkpoint directory and the disk
// ---------------------------------------------------------------------------------------------

describe('checkpoints that cannot be written', () => {
  it.concurrent('an unusable --checkpoint-dir is found before training starts (exit 2, one line)', async () => {
    const blocker = file('blocker', 'a regular file');
    for (const [args, re] of [
      [['--checkpoint-dir', join(blocker, 'sub')], /cannot write checkpoints to .*blocker\/sub: not a directory \(ENOTDIR\); choose another --checkpoint-dir/],
      [['--checkpoint-dir', blocker], /cannot write checkpoints to .*blocker: it exists and is not a directory; choose another --checkpoint-dir/],
    ] as [string[], RegExp][]) {
      const r = await run(['train', '--data', dataFile, ...TINY, '--max-steps', '1', ...args]);
      expectOneLineUsageError(r, re);
    }
    // Also when resuming into such a directory.
    const r = await run(['train', '--resume', goodCk, '--data', dataFile, '--checkpoint-dir', join(blocker, 'sub')]);
    expectOneLineUsageError(r, /cannot write checkpoints to .*: not a directory \(ENOTDIR\)/);
  });

  it('prepareCheckpointDir writes a probe of a full checkpoint (so a disk too full for one fails up front) and removes it', () => {
    const t = Trainer.fromText(TEXT, tinyOptions({ maxSteps: 1, checkpointDir: join(dir, 'probe-cv') }));
    expect(t.run().status).toBe('done');
    expect(readdirSync(join(dir, 'probe-cv')).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('a checkpoint write failing mid-run stops training with the message; the earlier checkpoint is intact and resumes', () => {
    const ckDir = join(dir, 'vanishing');
    const moved = join(dir, 'vanishing-moved');
    const t = Trainer.fromText(TEXT, tinyOptions({ maxSteps: 10, evalValEvery: 2, checkpointDir: ckDir }));
    const saved: string[] = [];
    const out = t.run({
      onCheckpoint: (p) => {
        saved.push(p);
        // After the first checkpoint the directory is taken away and a file put in its place.
        renameSync(ckDir, moved);
        writeFileSync(ckDir, 'not a directory any more');
      },
    });
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(saved).toHaveLength(1);
    expect(out.iteration).toBe(4);
    expect(out.message).toMatch(
      /^training stopped at iteration 4: cannot write .*vanishing\/lm_grid_lstm_.*\.safetensors: .*\(ENOTDIR\); the last checkpoint written, .*, is intact: fix the problem and continue with --resume /,
    );
    expect(out.checkpoint).toBe(saved[0]);
    const first = join(moved, readdirSync(moved).find((f) => f.endsWith('.safetensors'))!);
    const ck = loadCheckpoint(first);
    expect(ck.training?.iteration).toBe(2);
    const resumed = Trainer.resume(TEXT, ck, { checkpointDir: join(dir, 'vanishing-resumed'), maxSteps: 4 });
    expect(resumed.run().status).toBe('done');
  });

  describe('a really full disk (a 64 kB tmpfs; skipped where mount is not allowed)', () => {
    const fs = join(dir, 'tiny-fs');
    let mounted = false;
    beforeAll(() => {
      if (process.platform !== 'linux' || process.getuid?.() !== 0) return;
      mkdirSync(fs, { recursive: true });
      mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', fs], { stdio: 'ignore' }).status === 0;
    });
    afterAll(() => {
      if (mounted) spawnSync('umount', [fs], { stdio: 'ignore' });
    });

    it('no room for one checkpoint: found before training starts (exit 2, one line)', async (ctx) => {
      if (!mounted) ctx.skip();
      const r = await run(['train', '--data', dataFile, '--rnn-size', '64', '--batch-size', '2', '--seq-length', '8', '--max-steps', '3', '--checkpoint-dir', join(fs, 'big')]);
      expectOneLineUsageError(r, /cannot write checkpoints to .*big: no space left on device \(ENOSPC\); choose another --checkpoint-dir or free some space/);
    });

    it('the disk filling up mid-run: exit 1 with the message, the earlier checkpoints intact and resumable', async (ctx) => {
      if (!mounted) ctx.skip();
      const r = await run(['train', '--data', dataFile, ...TINY, '--max-steps', '50', '--eval-val-every', '1', '--print-every', '100', '--checkpoint-dir', join(fs, 'small')]);
      expect(r.code).toBe(1);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('grid-lstm: error:'));
      expect(errors).toHaveLength(1);
      const m = /training stopped at iteration (\d+): cannot write .*: no space left on device \(ENOSPC\); the last checkpoint written, (\S+), is intact: fix the problem and continue with --resume \2$/.exec(errors[0]!);
      expect(m, errors[0]).not.toBeNull();
      const files = readdirSync(join(fs, 'small'));
      expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]); // the failed write cleaned up
      for (const f of files.filter((f) => f.endsWith('.safetensors'))) loadCheckpoint(join(fs, 'small', f)); // not the loss log
      expect(loadCheckpoint(m![2]!).training?.iteration).toBe(Number(m![1]) - 1);
      const resumed = await run(['train', '--resume', m![2]!, '--max-steps', String(Number(m![1]) + 1), '--checkpoint-dir', join(dir, 'after-full')]);
      expect(resumed.code).toBe(0);
    });
  });

  it('a saveCheckpoint that throws (disk full) gives a failed outcome naming the previous checkpoint', () => {
    const ckDir = join(dir, 'full-disk');
    const t = Trainer.fromText(TEXT, tinyOptions({ maxSteps: 10, evalValEvery: 3, checkpointDir: ckDir }));
    const real = t.saveCheckpoint.bind(t);
    let calls = 0;
    t.saveCheckpoint = (tag) => {
      if (++calls === 2) throw new Error(`cannot write ${ckDir}/x.safetensors: no space left on device (ENOSPC)`);
      return real(tag);
    };
    const out = t.run();
    expect(out).toMatchObject({ status: 'failed', iteration: 6 });
    if (out.status !== 'failed') return;
    expect(out.message).toMatch(/training stopped at iteration 6: cannot write .*: no space left on device \(ENOSPC\); the last checkpoint written, .*, is intact/);
    expect(loadCheckpoint(out.checkpoint!).training?.iteration).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------
// Divergence: NaN or infinite loss, gradient or weights (in-process: test/divergence.test.ts)
// ---------------------------------------------------------------------------------------------

describe('a NaN or infinite loss or gradient stops training before the weights change', () => {
  it.concurrent('through the CLI: exit 1, one line naming the iteration and the fix, the last good checkpoint loads', async () => {
    const r = await run(['train', '--data', dataFile, ...TINY, '--optim', 'sgd', '--learning-rate', '1e37', '--grad-clip', '0', '--max-steps', '50', '--eval-val-every', '1', '--checkpoint-dir', 'huge-lr-cli', '--print-every', '1000']);
    expect(r.code).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('grid-lstm: error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/training stopped at iteration \d+: .*; try a lower --learning-rate \(now 1e\+37\) or a --grad-clip such as 5/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const m = /the last good checkpoint is (\S+)/.exec(errors[0]!);
    if (m) expect(loadCheckpoint(join(dir, m[1]!)).training?.iteration).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Paths that could block forever: /proc and /sys directories (Node 20's recursive mkdir loops on
// them), devices, pseudo files, and a FIFO (which is not a bad path: it is read to its end)
// ---------------------------------------------------------------------------------------------

/** Runs the CLI, killing it after `ms`; `ms` in the result is how long it ran. */
function runWithin(args: string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

const LIMIT = 15_000;
const linux = process.platform === 'linux';

describe.runIf(linux)('paths that must not hang (each run killed after 15 s)', () => {
  it.concurrent('--checkpoint-dir under /proc or /sys: a one-line error naming the level that cannot be made', async () => {
    for (const [cvDir, re] of [
      ['/proc/x/cv', /cannot write checkpoints to \/proc\/x\/cv: cannot create \/proc\/x: no such file or directory \(ENOENT\); choose another --checkpoint-dir/],
      ['/proc/self/cv', /cannot write checkpoints to \/proc\/self\/cv: cannot create it: /],
      ['/sys/x/cv', /cannot write checkpoints to \/sys\/x\/cv: cannot create \/sys\/x: /],
      ['/dev/null/cv', /cannot write checkpoints to \/dev\/null\/cv: not a directory \(ENOTDIR\)/],
    ] as [string, RegExp][]) {
      const r = await runWithin(['train', '--data', dataFile, ...TINY, '--max-steps', '1', '--checkpoint-dir', cvDir], LIMIT);
      expect(r.ms, `${cvDir} ran until killed`).toBeLessThan(LIMIT);
      expectOneLineUsageError(r, re);
    }
  }, 4 * LIMIT);

  it.concurrent('a device as --data or as a checkpoint: a one-line error', async () => {
    for (const [args, re] of [
      [['train', '--data', '/dev/zero', ...TINY, '--max-steps', '1'], /--data \/dev\/zero: is a device, not a text file; pass a regular file or a pipe/],
      [['sample', '/dev/zero', '--length', '5'], /\/dev\/zero: is a device, not a safetensors file/],
      [['eval', goodCk, '--data', '/dev/zero'], /--data \/dev\/zero: is a device, not a text file/],
    ] as [string[], RegExp][]) {
      const r = await runWithin(args, LIMIT);
      expect(r.ms, `${args.join(' ')} ran until killed`).toBeLessThan(LIMIT);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBe(null);
    }
  }, 4 * LIMIT);

  it.concurrent('/proc files as --data are read to their end (their size reads 0), and a /proc file as a checkpoint is refused', async () => {
    const r = await runWithin(['train', '--data', '/proc/self/status', ...TINY, '--max-steps', '1', '--checkpoint-dir', 'proc-cv'], LIMIT);
    expect(r.ms).toBeLessThan(LIMIT);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.stderr).toMatch(/loaded [1-9]\d* characters/);
    expect(r.code).toBe(0);
    const s = await runWithin(['sample', '/proc/self/status', '--length', '5'], LIMIT);
    expect(s.ms).toBeLessThan(LIMIT);
    expect(s.stderr).toMatch(/^grid-lstm: error: \/proc\/self\/status: .*not a safetensors file/);
    expect(s.code).not.toBe(0);
  }, 3 * LIMIT);

  it.concurrent('a FIFO as --data is read as a stream to its end', async () => {
    const fifo = join(dir, 'text.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const { createWriteStream } = await import('node:fs');
    const writer = createWriteStream(fifo);
    writer.on('error', () => {}); // the reader may close first when the run fails; the run's result says so
    const running = runWithin(['train', '--data', fifo, ...TINY, '--max-steps', '1', '--checkpoint-dir', 'fifo-cv'], LIMIT);
    writer.end(TEXT);
    const r = await running;
    expect(r.ms).toBeLessThan(LIMIT);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.stderr).toContain(`loaded ${TEXT.length} characters`);
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, 'fifo-cv')).filter((f) => f.endsWith('.safetensors'))).toHaveLength(1);
  }, 2 * LIMIT);
});
