/**
 * The char-rnn tool end to end, on a slice of the built-in corpus: training lowers the validation
 * loss, eval equals the per-character NLLs of the library, sampling is deterministic/reproducible,
 * resume is exact bit for bit, and bad input gets a one-line error with exit code 2.
 *
 * The CLI is run from dist/ (built by `npm ci` and by `npm test`'s pretest step).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { encode, loadDefaultCorpus } from '../src/train/data.js';
import { parseSafetensors, writeSafetensors } from '../src/train/safetensors.js';
import { DEFAULT_TRAIN_OPTIONS, Trainer } from '../src/train/train.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-cli-'));
const dataFile = join(dir, 'sotu-slice.txt');
const SMALL = ['--rnn-size', '16', '--num-layers', '2', '--batch-size', '8', '--seq-length', '16'];

function run(args: string[], cwd = dir) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function newest(d: string): string {
  const files = readdirSync(d).filter((f) => f.endsWith('.safetensors'));
  files.sort((a, b) => statSync(join(d, b)).mtimeMs - statSync(join(d, a)).mtimeMs);
  return join(d, files[0]);
}

/** The raw bytes of every tensor (parameters and optimizer state) of a checkpoint file. */
function tensorBytes(path: string): Map<string, Uint8Array> {
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(path)));
  return new Map([...tensors].map(([k, t]) => [k, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
}

beforeAll(() => {
  // 24k characters from the middle of the corpus: 187 batches of 8×16.
  writeFileSync(dataFile, loadDefaultCorpus().slice(1_000_000, 1_024_000));
});

describe('training (library)', () => {
  it('a short training run lowers the validation loss', () => {
    const text = readFileSync(dataFile, 'utf8');
    const t = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 32, batchSize: 8, seqLength: 16, maxSteps: 150, evalValEvery: 1000, checkpointDir: join(dir, 'lib') });
    const before = t.evaluate('val');
    expect(Math.abs(before - Math.log(t.model.config.vocabSize)) / Math.log(t.model.config.vocabSize)).toBeLessThan(0.05);
    const out = t.run();
    expect(out.status).toBe('done');
    if (out.status !== 'done') return;
    expect(out.valLoss).toBeLessThan(before - 0.5);
    expect(t.iteration).toBe(150);
  });
});

describe('grid-lstm CLI', () => {
  let ck = '';
  beforeAll(() => {
    const r = run(['train', '--data', dataFile, ...SMALL, '--dropout', '0.1', '--max-steps', '12', '--eval-val-every', '6', '--checkpoint-dir', 'full', '--print-every', '4']);
    expect(r.stderr).toMatch(/done: val_loss = /);
    expect(r.code).toBe(0);
    ck = newest(join(dir, 'full'));
    // The result and the checkpoint on lines of their own (a path can be long).
    expect(r.stderr).toMatch(/^done: val_loss = \d+\.\d{4} nats\/char\ncheckpoint: \S+\.safetensors\n$/m);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(`checkpoint: ${join('full', ck.split('/').pop()!)}`);
  });

  it('writes checkpoints named like char-rnn and prints progress lines', () => {
    const all = readdirSync(join(dir, 'full')).sort();
    expect(all).toContain('grid_lstm.log.csv'); // the loss log (--log csv) is written next to them
    const names = all.filter((n) => n.endsWith('.safetensors'));
    expect(names).toHaveLength(2);
    for (const n of names) expect(n).toMatch(/^lm_grid_lstm_epoch\d+\.\d\d_\d+\.\d{4}\.safetensors$/);
    const r = run(['inspect', ck]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/iteration:\s+12/);
    expect(r.stdout).toMatch(/rnn_size:\s+16/);
  });

  it('resume continues exactly: 6 steps + resume + 6 steps = 12 steps, bit for bit', () => {
    const a = run(['train', '--data', dataFile, ...SMALL, '--dropout', '0.1', '--max-steps', '6', '--eval-val-every', '6', '--checkpoint-dir', 'part']);
    expect(a.code).toBe(0);
    const mid = newest(join(dir, 'part'));
    const b = run(['train', '--resume', mid, '--max-steps', '12', '--checkpoint-dir', 'resumed']);
    expect(b.stderr).toMatch(/resuming .* at iteration 6/);
    expect(b.code).toBe(0);
    const whole = tensorBytes(ck);
    const resumed = tensorBytes(newest(join(dir, 'resumed')));
    expect([...resumed.keys()].sort()).toEqual([...whole.keys()].sort());
    expect([...whole.keys()].some((k) => k.startsWith('optimizer.'))).toBe(true);
    for (const [k, bytes] of whole) expect(Buffer.compare(Buffer.from(bytes), Buffer.from(resumed.get(k)!)), k).toBe(0);
    // And resuming with a model option changed is refused.
    const c = run(['train', '--resume', mid, '--rnn-size', '32', '--checkpoint-dir', 'resumed2']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--rnn-size cannot change when resuming/);
  });

  it('eval equals the mean of the per-character NLLs computed with the library', () => {
    const evalFile = join(dir, 'eval.txt');
    writeFileSync(evalFile, loadDefaultCorpus().slice(2_000_000, 2_000_700));
    const r = run(['eval', ck, '--data', evalFile, '--json']);
    expect(r.code).toBe(0);
    const got = JSON.parse(r.stdout);
    const { model, vocab } = loadCheckpoint(ck);
    const ids = encode(readFileSync(evalFile, 'utf8'), vocab);
    const state = model.zeroState(1);
    let sum = 0;
    for (let i = 0; i + 1 < ids.length; i++) {
      const logp = model.step([ids[i]], state);
      sum -= logp[ids[i + 1]];
    }
    expect(got.predictions).toBe(ids.length - 1);
    expect(Math.abs(got.loss - sum / (ids.length - 1)) / got.loss).toBeLessThan(1e-6);
    expect(Math.abs(got.bpc - got.loss / Math.LN2)).toBeLessThan(1e-12);
  });

  it('sampling: --argmax is deterministic, a seed is reproducible, seeds differ', () => {
    const s = (...a: string[]) => run(['sample', ck, '--length', '200', '--quiet', ...a]).stdout;
    // With a prime text, argmax does not depend on the seed at all (without one, the first
    // character is drawn at random, as in char-rnn).
    expect(s('--argmax', '--primetext', 'The')).toBe(s('--argmax', '--primetext', 'The', '--seed', '7'));
    expect(s('--argmax')).toBe(s('--argmax'));
    const a = s('--seed', '5');
    expect(a).toBe(s('--seed', '5'));
    expect(a).not.toBe(s('--seed', '6'));
    const p = s('--primetext', 'The ', '--seed', '5');
    expect(p.startsWith('The ')).toBe(true);
    expect([...p.trimEnd()].length).toBe(204);
  });

  it('--help lists every option with its default', () => {
    const r = run(['train', '--help']);
    expect(r.code).toBe(0);
    for (const f of ['--rnn-size N', '(default: 128)', '--learning-rate', '(default: 0.002)', '--tie-weights/--no-tie-weights', '--resume', '--init-from']) {
      expect(r.stdout).toContain(f);
    }
    for (const c of ['sample', 'eval', 'inspect']) expect(run([c, '--help']).stdout).toMatch(/usage: grid-lstm/);
  });

  it('--init-from takes the weights and vocabulary, starts a new run', () => {
    const r = run(['train', '--data', dataFile, '--init-from', ck, '--batch-size', '8', '--seq-length', '16', '--max-steps', '2', '--eval-val-every', '2', '--checkpoint-dir', 'init']);
    expect(r.code).toBe(0);
    const c = loadCheckpoint(newest(join(dir, 'init')));
    expect(c.training?.iteration).toBe(2);
    expect(c.model.config.rnnSize).toBe(16);
  });

  it('a checkpoint written by another program (names + metadata only) samples, evaluates and trains', () => {
    const vocab = [...new Set(readFileSync(dataFile, 'utf8'))].sort();
    const N = 4;
    const V = vocab.length;
    const f32 = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7919 + i) * 0.1);
    const tensors: { name: string; shape: number[]; data: Float32Array }[] = [
      { name: 'embedding.weight', shape: [V, N], data: f32(V * N, 1) },
      { name: 'decoder.weight', shape: [V, N], data: f32(V * N, 2) },
      { name: 'decoder.bias', shape: [V], data: f32(V, 3) },
    ];
    for (const [i, name] of ['layers.0.i2h', 'layers.0.h2h'].entries()) {
      tensors.push({ name: `${name}.weight`, shape: [4 * N, N], data: f32(4 * N * N, 10 + i) });
      tensors.push({ name: `${name}.bias`, shape: [4 * N], data: f32(4 * N, 20 + i) });
    }
    const config = { model: 'lstm', vocab, rnn_size: N, num_layers: 1, tie_weights: true, dropout: 0 };
    const foreign = join(dir, 'foreign.safetensors');
    writeFileSync(foreign, writeSafetensors(tensors.reverse(), { format: 'grid-lstm/1', config: JSON.stringify(config), producer: 'someone else' }));
    expect(run(['sample', foreign, '--length', '50', '--quiet']).code).toBe(0);
    const e = run(['eval', foreign, '--data', dataFile, '--json']);
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout).loss).toBeGreaterThan(0);
    const t = run(['train', '--data', dataFile, '--init-from', foreign, '--batch-size', '8', '--seq-length', '16', '--max-steps', '3', '--eval-val-every', '3', '--checkpoint-dir', 'foreign']);
    expect(t.code).toBe(0);
    expect(loadCheckpoint(newest(join(dir, 'foreign'))).training?.iteration).toBe(3);
  });

  it('stops when the loss explodes, keeping the last good checkpoint', () => {
    const r = run(['train', '--data', dataFile, ...SMALL, '--learning-rate', '50', '--grad-clip', '0', '--optim', 'sgd', '--max-steps', '200', '--eval-val-every', '1', '--checkpoint-dir', 'boom']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/training stopped at iteration \d+: the loss .* (exceeds 3× the first loss .*|is not a number); try a lower --learning-rate/);
    const m = /the last good checkpoint is (\S+)/.exec(r.stderr);
    expect(m).not.toBeNull();
    expect(loadCheckpoint(join(dir, m![1])).training?.iteration).toBeGreaterThan(0);
  });

  // The two models that carry h only (a checkpoint's carry has no c): every command, and a
  // resume that continues bit for bit.
  for (const model of ['gru', 'rnn'] as const) {
    it(`--model ${model}: train, inspect, sample, eval, viz, resume (bit for bit) and --init-from`, () => {
      const tiny = ['--model', model, '--rnn-size', '8', '--num-layers', '2', '--batch-size', '4', '--seq-length', '8', '--dropout', '0.1', '--eval-val-every', '2'];
      const whole = run(['train', '--data', dataFile, ...tiny, '--max-steps', '4', '--checkpoint-dir', `${model}-whole`]);
      expect(whole.code, whole.stderr).toBe(0);
      expect(whole.stderr).toMatch(new RegExp(`^${model} 2×8, [\\d,]+ parameters`, 'm'));
      const ck4 = newest(join(dir, `${model}-whole`));
      expect(ck4).toMatch(new RegExp(`lm_${model}_epoch`));
      const info = loadCheckpoint(ck4);
      expect(info.model.config.model).toBe(model);
      expect(info.carry?.c).toHaveLength(0);
      expect(run(['inspect', ck4]).stdout).toMatch(new RegExp(`^model:\\s+${model}$`, 'm'));
      const text = run(['sample', ck4, '--length', '30', '--seed', '3', '--quiet']);
      expect(text.code).toBe(0);
      expect([...text.stdout.trimEnd()].length).toBeGreaterThan(0);
      const ev = run(['eval', ck4, '--data', dataFile, '--json']);
      expect(ev.code).toBe(0);
      expect(JSON.parse(ev.stdout).loss).toBeGreaterThan(0);
      // viz: the cell's own kinds (gru: h z r n; rnn: h); an LSTM's kind is one line naming them.
      const viz = JSON.parse(run(['viz', ck4, '--data', dataFile, '--length', '100', '--json']).stdout);
      expect(viz.kinds).toEqual(model === 'gru' ? ['h', 'z', 'r', 'n'] : ['h']);
      expect(viz.saturation.map((p: { gate: string }) => p.gate)).toEqual(model === 'gru' ? ['z', 'r', 'z', 'r'] : []);
      const noCell = run(['viz', ck4, '--data', dataFile, '--kinds', 'h,c']);
      expect(noCell.code).toBe(2);
      expect(noCell.stderr).toBe(`grid-lstm: error: --kinds c: ${model === 'gru' ? 'a gru' : 'an rnn'} has no c; the kinds of its cells are ${model === 'gru' ? 'h,z,r,n' : 'h'}\n`);
      // 2 steps, then resumed to 4: the same bytes as 4 steps in one go.
      expect(run(['train', '--data', dataFile, ...tiny, '--max-steps', '2', '--checkpoint-dir', `${model}-half`]).code).toBe(0);
      const resumed = run(['train', '--resume', newest(join(dir, `${model}-half`)), '--max-steps', '4', '--checkpoint-dir', `${model}-resumed`]);
      expect(resumed.code, resumed.stderr).toBe(0);
      const a = tensorBytes(ck4);
      const b = tensorBytes(newest(join(dir, `${model}-resumed`)));
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [k, bytes] of a) expect(Buffer.compare(Buffer.from(bytes), Buffer.from(b.get(k)!)), k).toBe(0);
      const init = run(['train', '--data', dataFile, '--init-from', ck4, '--batch-size', '4', '--seq-length', '8', '--max-steps', '2', '--eval-val-every', '2', '--checkpoint-dir', `${model}-init`]);
      expect(init.code, init.stderr).toBe(0);
      expect(loadCheckpoint(newest(join(dir, `${model}-init`))).model.config.model).toBe(model);
    });
  }

  describe('bad input: one line, exit code 2, no stack trace', () => {
    const cases: [string, string[], RegExp][] = [
      ['unknown option', ['train', '--rnn-sise', '3'], /unknown option --rnn-sise/],
      ['unknown command', ['trian'], /unknown command "trian"/],
      ['non-numeric value', ['train', '--rnn-size', 'big'], /--rnn-size must be a whole number, got "big"/],
      ['size 0', ['train', '--data', dataFile, '--rnn-size', '0'], /--rnn-size must be a whole number > 0/],
      ['dropout 1', ['train', '--data', dataFile, '--dropout', '1'], /--dropout must be in \[0, 1\)/],
      ['unknown model', ['train', '--model', 'foo'], /--model must be one of grid_lstm, lstm, gru, rnn, got "foo"/],
      ['fractions > 1', ['train', '--data', dataFile, '--train-frac', '0.9', '--val-frac', '0.2'], /--train-frac .* --val-frac .*(more than|at most) 1/],
      ['missing data file', ['train', '--data', join(dir, 'nope.txt')], /no such file/],
      ['data too small', ['train', '--data', dataFile, '--batch-size', '1000', '--seq-length', '100'], /--batch-size|--seq-length/],
      ['missing checkpoint', ['sample', join(dir, 'nope.safetensors')], /no such file/],
      ['not a checkpoint', ['sample', dataFile], /safetensors|header/],
      ['temperature 0', ['sample', 'x', '--temperature', '0'], /--temperature must be a number > 0, got 0; .*use --argmax/],
      ['negative length', ['sample', 'x', '--length', '-1'], /--length must be a whole number ≥ 0/],
      ['eval without --data (a text checkpoint)', ['eval', join(dir, 'foreign.safetensors')], /eval needs --data/],
    ];
    for (const [name, args, re] of cases) {
      it(name, () => {
        const r = run(args);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(re);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      });
    }
    it('primetext outside the vocabulary lists the characters', () => {
      const r = run(['sample', ck, '--primetext', 'héllo€']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/not in the model's vocabulary: .*"€"/);
    });
    it('eval text with characters outside the vocabulary lists them', () => {
      const f = join(dir, 'alien.txt');
      writeFileSync(f, 'the president said ☃ and ☂');
      const r = run(['eval', ck, '--data', f]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/"☃".*"☂"/);
    });
  });
});
