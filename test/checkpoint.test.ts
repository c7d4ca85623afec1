/**
 * Checkpoints: the "grid-lstm/1" safetensors format (src/train/checkpoint.ts).
 *
 * - save → load round trips bit for bit (parameters, vocabulary, training and optimiser state);
 * - a file written by "another program" (writeSafetensors + the documented metadata only) loads;
 * - the bytes are a valid safetensors file;
 * - every validation failure is a one-line CheckpointError that says what is wrong;
 * - corrupting a valid checkpoint in any way gives a model or a CheckpointError, nothing else.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_FORMAT,
  CheckpointError,
  type TrainingState,
  checkpointBytes,
  loadCheckpoint,
  parseCheckpoint,
  saveCheckpoint,
} from '../src/train/checkpoint.js';
import { type Vocab, vocabFromChars } from '../src/train/data.js';
import { Model } from '../src/nn/model.js';
import { Optimizer } from '../src/train/optim.js';
import type { ModelConfig } from '../src/nn/params.js';
import { Rng } from '../src/nn/rng.js';
import { type TensorInput, parseSafetensors, writeSafetensors } from '../src/train/safetensors.js';
import { runs } from './helpers/arbitraries.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const LABEL = 'ck.safetensors';
/** Five characters, one of them astral (two UTF-16 units) and one a newline. */
const CHARS = ['\n', 'a', 'é', 'z', '😀'];
const V = CHARS.length;
const N = 3;
const L = 2;

const CONFIGS: { title: string; config: ModelConfig }[] = [
  { title: 'lstm', config: { model: 'lstm', vocabSize: V, rnnSize: N, numLayers: L, dropout: 0.25 } },
  { title: 'grid_lstm, tied', config: { model: 'grid_lstm', vocabSize: V, rnnSize: N, numLayers: L, tieWeights: true } },
  { title: 'grid_lstm, untied', config: { model: 'grid_lstm', vocabSize: V, rnnSize: N, numLayers: L, tieWeights: false, dropout: 0.5 } },
  { title: 'gru', config: { model: 'gru', vocabSize: V, rnnSize: N, numLayers: L, dropout: 0.25 } },
  { title: 'rnn', config: { model: 'rnn', vocabSize: V, rnnSize: N, numLayers: L } },
];
const GRU = CONFIGS[3]!.config;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'checkpoint-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A model with random parameters, including a −0 and a subnormal to test exact bits. */
function makeModel(config: ModelConfig, dtype: 'float32' | 'float64' = 'float32', seed = 7): Model {
  const model = new Model(config, { dtype, seed });
  const rng = new Rng(seed + 1);
  for (let j = 0; j < model.params.length; j++) model.params[j] = rng.uniformRange(-2, 2);
  model.params[1] = -0;
  model.params[2] = 1e-40;
  return model;
}

function vocab(): Vocab {
  return vocabFromChars(CHARS);
}

/** An Adam optimiser for `model` whose state holds random numbers. */
function makeOptimizer(model: Model, seed = 3): Optimizer {
  const opt = new Optimizer('adam', model.params.length, { learningRate: 2e-3 });
  const rng = new Rng(seed);
  for (const buf of opt.state.values()) for (let j = 0; j < buf.length; j++) buf[j] = rng.uniformRange(0, 1);
  opt.stepCount = 17;
  return opt;
}

function makeTraining(): TrainingState {
  return {
    iteration: 17,
    epoch: 17 / 6,
    learningRate: 2e-3 * 0.97,
    optimizer: { name: 'adam', stepCount: 17, decayRate: 0.95, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    rngState: 0xdeadbeef,
    batchIx: { train: 5, val: 0, test: 1 },
    options: { data: 'input.txt', batchSize: 2, seqLength: 4, savefile: null, nested: { a: [1, 'x'] } },
    history: { train: [[1, 1.609], [2, 1.5]], val: [[2, 1.55]] },
    bestValLoss: 1.55,
  };
}

/** The bits of a Float32Array (so −0, NaN payloads etc. compare exactly). */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** The documented `config` metadata object of a model. */
function configObject(model: Model, chars: string[] = CHARS): Record<string, unknown> {
  const c = model.config;
  return { model: c.model, vocab: chars, rnn_size: c.rnnSize, num_layers: c.numLayers, tie_weights: c.tieWeights, dropout: c.dropout };
}

/** Every parameter of a model as F32 tensors, the way another program would write them. */
function paramTensors(model: Model): TensorInput[] {
  return model.layout.map((s) => ({ name: s.name, shape: [...s.shape], data: Float32Array.from(model.param(s.name)) }));
}

interface Parts {
  tensors: TensorInput[];
  metadata: Record<string, string>;
}

/** The pieces of a minimal valid checkpoint, to edit before {@link assemble}. */
function parts(model = makeModel(CONFIGS[1]!.config)): Parts {
  return {
    tensors: paramTensors(model),
    metadata: { format: CHECKPOINT_FORMAT, config: JSON.stringify(configObject(model)) },
  };
}

function assemble(p: Parts): Uint8Array {
  return writeSafetensors(p.tensors, p.metadata);
}

/** Parts with the config object edited by `edit`. */
function withConfig(edit: (config: Record<string, unknown>) => void): Parts {
  const p = parts();
  const config = JSON.parse(p.metadata.config!) as Record<string, unknown>;
  edit(config);
  p.metadata.config = JSON.stringify(config);
  return p;
}

/** Parts with a training entry made from `makeTraining()` edited by `edit`. */
function withTraining(edit: (training: Record<string, any>) => void): Parts {
  const p = parts();
  const training = makeTraining() as unknown as Record<string, any>;
  edit(training);
  p.metadata.training = JSON.stringify(training);
  return p;
}

/** Expects `fn` to throw a one-line CheckpointError matching `pattern`, labelled `label`. */
function expectCheckpointError(fn: () => unknown, pattern: RegExp, label = LABEL): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a CheckpointError').toBeInstanceOf(CheckpointError);
  const message = (thrown as Error).message;
  expect(message).toMatch(pattern);
  expect(message.startsWith(`${label}: `), message).toBe(true);
  expect(message).not.toMatch(/[\n\r\u2028\u2029]/);
}

/** Expects parsing the assembled parts to fail with `pattern`. */
function expectRejected(p: Parts | Uint8Array, pattern: RegExp): void {
  const bytes = p instanceof Uint8Array ? p : assemble(p);
  expectCheckpointError(() => parseCheckpoint(bytes, LABEL), pattern);
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

describe('checkpoint round trip', () => {
  for (const { title, config } of CONFIGS) {
    it(`${title}: save → load restores parameters, vocabulary, training and optimiser state bit for bit`, () => {
      const model = makeModel(config);
      const optimizer = makeOptimizer(model);
      const training = makeTraining();
      const path = join(dir, `${title.replace(/\W+/g, '_')}.safetensors`);
      saveCheckpoint(path, model, vocab(), { training, optimizer });

      const ck = loadCheckpoint(path);
      expect(ck.model.config).toEqual(model.config);
      expect(ck.model.parameterNames()).toEqual(model.parameterNames());
      expect(ck.model.params).toBeInstanceOf(Float32Array);
      expect(bits(ck.model.params as Float32Array)).toEqual(bits(model.params as Float32Array));
      expect(Object.is(ck.model.params[1], -0)).toBe(true);
      expect(ck.vocab.chars).toEqual(CHARS);
      expect([...ck.vocab.index]).toEqual(CHARS.map((c, i) => [c, i]));
      expect(ck.training).toEqual(training);
      expect([...ck.optimizerState.keys()].sort()).toEqual(['m', 'v']);
      for (const [key, buf] of optimizer.state) {
        expect(bits(ck.optimizerState.get(key)!)).toEqual(bits(buf as Float32Array));
      }
      expect(ck.carry).toBeNull();

      // The same bytes from checkpointBytes and from the file.
      expect(new Uint8Array(readFileSync(path))).toEqual(checkpointBytes(model, vocab(), { training, optimizer }));
    });
  }

  it('without extras: training is null and there is no optimiser state', () => {
    const model = makeModel(CONFIGS[0]!.config);
    const ck = parseCheckpoint(checkpointBytes(model, vocab()), LABEL);
    expect(ck.training).toBeNull();
    expect(ck.optimizerState.size).toBe(0);
    expect(bits(ck.model.params as Float32Array)).toEqual(bits(model.params as Float32Array));
  });

  it('a float64 model is saved as F32 and loads into float64 as the rounded values', () => {
    const model = makeModel(CONFIGS[2]!.config, 'float64');
    const bytes = checkpointBytes(model, vocab());
    for (const entry of parseSafetensors(bytes).tensors.values()) expect(entry.dtype).toBe('F32');
    const ck = parseCheckpoint(bytes, LABEL, { dtype: 'float64' });
    expect(ck.model.params).toBeInstanceOf(Float64Array);
    expect(Array.from(ck.model.params)).toEqual(Array.from(model.params, (x) => Math.fround(x)));
    // And loaded as float32 it matches the F32 rounding bit for bit.
    const ck32 = parseCheckpoint(bytes, LABEL);
    expect(bits(ck32.model.params as Float32Array)).toEqual(bits(Float32Array.from(model.params)));
  });

  it('the loaded model computes what the saved one does', () => {
    const model = makeModel(CONFIGS[1]!.config);
    const ck = parseCheckpoint(checkpointBytes(model, vocab()), LABEL);
    const batch = { x: [0, 1, 2, 3, 4, 0], y: [1, 2, 3, 4, 0, 1], batchSize: 2, seqLength: 3 };
    expect(ck.model.forward(batch, ck.model.zeroState(2)).loss).toBe(model.forward(batch, model.zeroState(2)).loss);
  });

  it('training state: bestValLoss absent or null, and a non-finite bestValLoss, round trip as documented', () => {
    const model = makeModel(CONFIGS[0]!.config);
    const load = (training: TrainingState) => parseCheckpoint(checkpointBytes(model, vocab(), { training }), LABEL).training;
    const { bestValLoss: _, ...withoutBest } = makeTraining();
    expect(load(withoutBest)).toEqual(withoutBest);
    expect(load(withoutBest)).not.toHaveProperty('bestValLoss');
    expect(load({ ...withoutBest, bestValLoss: null })!.bestValLoss).toBeNull();
    expect(load({ ...withoutBest, bestValLoss: Infinity })!.bestValLoss).toBeNull();
    expect(load({ ...withoutBest, batches: 6 })!.batches).toBe(6);
  });

  it('the carried hidden state round trips bit for bit (gru: h only, c empty)', () => {
    for (const config of [CONFIGS[1]!.config, GRU]) {
      const model = makeModel(config);
      const B = 2;
      const carry = model.zeroState(B);
      const rng = new Rng(9);
      for (const a of [...carry.h, ...carry.c]) for (let j = 0; j < a.length; j++) a[j] = rng.uniformRange(-1, 1);
      const ck = parseCheckpoint(checkpointBytes(model, vocab(), { carry }), LABEL);
      expect(ck.carry!.batchSize).toBe(B);
      const flat = (parts: Float32Array[]) => bits(Float32Array.from(parts.flatMap((p) => Array.from(p))));
      expect(bits(ck.carry!.h)).toEqual(flat(carry.h as Float32Array[]));
      expect(bits(ck.carry!.c)).toEqual(flat(carry.c as Float32Array[]));
      expect(ck.carry!.c).toHaveLength(config.model === 'gru' ? 0 : L * B * N);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Interoperability and layout
// ---------------------------------------------------------------------------------------------

describe('checkpoint format', () => {
  for (const { title, config } of CONFIGS) {
    it(`${title}: a checkpoint made by another program (writeSafetensors + the documented metadata) loads`, () => {
      const model = makeModel(config);
      // Tensors in reverse order, config keys in another order, and an extra metadata key.
      const c = configObject(model);
      const configText = JSON.stringify({ dropout: c.dropout, tie_weights: c.tie_weights, num_layers: c.num_layers, rnn_size: c.rnn_size, vocab: c.vocab, model: c.model });
      const bytes = writeSafetensors(paramTensors(model).reverse(), {
        producer: 'some other tool',
        config: configText,
        format: 'grid-lstm/1',
      });
      const ck = parseCheckpoint(bytes, LABEL);
      expect(ck.model.config).toEqual(model.config);
      expect(bits(ck.model.params as Float32Array)).toEqual(bits(model.params as Float32Array));
      expect(ck.vocab.chars).toEqual(CHARS);
      expect(ck.training).toBeNull();
      expect(ck.optimizerState.size).toBe(0);
      expect(ck.carry).toBeNull();
    });
  }

  it('writes a valid safetensors file: consistent header length, aligned data, tensors tiling the data', () => {
    const model = makeModel(CONFIGS[2]!.config);
    const optimizer = makeOptimizer(model);
    const bytes = checkpointBytes(model, vocab(), { training: makeTraining(), optimizer });

    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, any>;
    const P = model.params.length;

    const meta = header.__metadata__ as Record<string, string>;
    expect(meta.format).toBe('grid-lstm/1');
    expect(JSON.parse(meta.config!)).toEqual(configObject(model));
    expect(JSON.parse(meta.training!)).toEqual(makeTraining());

    const expected = [
      ...model.layout.map((s) => ({ name: s.name, shape: s.shape, data: model.param(s.name) })),
      ...[...optimizer.state].map(([k, buf]) => ({ name: `optimizer.${k}`, shape: [P], data: buf })),
    ];
    expect(Object.keys(header).filter((k) => k !== '__metadata__').sort()).toEqual(expected.map((e) => e.name).sort());
    let total = 0;
    for (const { name, shape, data } of expected) {
      const entry = header[name];
      expect(entry.dtype).toBe('F32');
      expect(entry.shape).toEqual(shape);
      const [begin, end] = entry.data_offsets as [number, number];
      expect(end - begin).toBe(4 * data.length);
      const raw = bytes.slice(8 + headerLength + begin, 8 + headerLength + end);
      expect(bits(new Float32Array(raw.buffer))).toEqual(bits(data as Float32Array));
      total += end - begin;
    }
    expect(bytes.length).toBe(8 + headerLength + total);
    expect(() => parseSafetensors(bytes)).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// Validation on load
// ---------------------------------------------------------------------------------------------

describe('checkpoint validation', () => {
  it('not a safetensors file, or truncated', () => {
    expectRejected(new TextEncoder().encode('hello, this is plain text and not a checkpoint'), /not a safetensors file/);
    expectRejected(new Uint8Array(3), /truncated|not a safetensors file/);
    const good = assemble(parts());
    expectRejected(good.subarray(0, good.length - 5), /truncated|trailing|outside/);
    expectRejected(good.subarray(0, 40), /truncated/);
  });

  it('loadCheckpoint labels errors with the path, including a missing file', () => {
    const missing = join(dir, 'nope.safetensors');
    expectCheckpointError(() => loadCheckpoint(missing), /no such file/, missing);
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, assemble(withConfig((c) => (c.rnn_size = 0))));
    expectCheckpointError(() => loadCheckpoint(bad), /rnn_size must be a positive integer/, bad);
  });

  it('format missing or not "grid-lstm/1"', () => {
    const p = parts();
    delete p.metadata.format;
    expectRejected(p, /not a grid-lstm checkpoint.*no "format"/);
    expectRejected(writeSafetensors(paramTensors(makeModel(CONFIGS[1]!.config))), /no "format"/);
    const q = parts();
    q.metadata.format = 'grid-lstm/2';
    expectRejected(q, /unsupported checkpoint format "grid-lstm\/2".*expected "grid-lstm\/1"/);
  });

  it('config missing, not JSON, not an object', () => {
    const p = parts();
    delete p.metadata.config;
    expectRejected(p, /no "config" entry/);
    const q = parts();
    q.metadata.config = '{"model": "lstm",';
    expectRejected(q, /"config" metadata is not valid JSON/);
    for (const text of ['[1,2]', '"grid_lstm"', 'null', '7']) {
      const r = parts();
      r.metadata.config = text;
      expectRejected(r, /"config" metadata must be a JSON object/);
    }
  });

  it('config fields missing', () => {
    for (const key of ['model', 'vocab', 'rnn_size', 'num_layers', 'tie_weights', 'dropout']) {
      expectRejected(
        withConfig((c) => delete c[key]),
        new RegExp(`config has no "${key}" field`),
      );
    }
  });

  it('config fields of the wrong type or range', () => {
    const cases: [string, unknown, RegExp][] = [
      ['model', 'lstm2', /config\.model must be one of "grid_lstm", "lstm", "gru", "rnn", got "lstm2"/],
      ['model', null, /config\.model must be/],
      ['rnn_size', 0, /config\.rnn_size must be a positive integer, got 0/],
      ['rnn_size', -3, /config\.rnn_size must be a positive integer/],
      ['rnn_size', 1.5, /config\.rnn_size must be a positive integer, got 1.5/],
      ['rnn_size', '3', /config\.rnn_size must be a positive integer, got "3"/],
      ['rnn_size', 1e300, /config\.rnn_size must be a positive integer/],
      ['num_layers', 0, /config\.num_layers must be a positive integer/],
      ['num_layers', [2], /config\.num_layers must be a positive integer, got an array/],
      ['tie_weights', 'yes', /config\.tie_weights must be true or false, got "yes"/],
      ['tie_weights', 1, /config\.tie_weights must be true or false/],
      ['dropout', 1, /config\.dropout must be a number in \[0, 1\), got 1/],
      ['dropout', -0.1, /config\.dropout must be a number in \[0, 1\)/],
      ['dropout', '0.5', /config\.dropout must be a number in \[0, 1\)/],
    ];
    for (const [key, value, pattern] of cases) expectRejected(withConfig((c) => (c[key] = value)), pattern);
  });

  it('vocabulary: not an array, bad entries, duplicates, fewer than 2 characters', () => {
    expectRejected(withConfig((c) => (c.vocab = 'abcde')), /config\.vocab must be an array of one-character strings/);
    expectRejected(withConfig((c) => (c.vocab = ['\n', 'ab', 'é', 'z', '😀'])), /config\.vocab\[1\] is "ab", not a string of exactly one character/);
    expectRejected(withConfig((c) => (c.vocab = ['\n', 'a', '', 'z', '😀'])), /config\.vocab\[2\] is "", not a string of exactly one/);
    expectRejected(withConfig((c) => (c.vocab = ['\n', 'a', 7, 'z', '😀'])), /config\.vocab\[2\] is 7, not a string/);
    expectRejected(withConfig((c) => (c.vocab = ['\n', 'a', 'é', 'a', '😀'])), /config\.vocab\[3\] is "a", the same character as config\.vocab\[1\]/);
    expectRejected(withConfig((c) => (c.vocab = ['x'])), /config\.vocab has 1 entries; .*at least 2/);
    expectRejected(withConfig((c) => (c.vocab = [])), /config\.vocab has 0 entries/);
  });

  it('missing tensors are listed', () => {
    const p = parts();
    p.tensors = p.tensors.filter((t) => t.name !== 'decoder.bias' && t.name !== 'depth.t2h.weight');
    expectRejected(p, /missing tensors depth\.t2h\.weight, decoder\.bias: the file does not hold every parameter its config/);
    // The config claims three layers; the file has two.
    expectRejected(withConfig((c) => (c.num_layers = 3)), /missing tensors layers\.2\.time\.t2h\.weight, .*num_layers 3/);
    // A tied config for an untied file: the shared depth tensors are missing.
    const untied = makeModel(CONFIGS[2]!.config);
    const q: Parts = { tensors: paramTensors(untied), metadata: { format: CHECKPOINT_FORMAT, config: JSON.stringify({ ...configObject(untied), tie_weights: true }) } };
    expectRejected(q, /missing tensors depth\.t2h\.weight, depth\.t2h\.bias, depth\.d2h\.weight, depth\.d2h\.bias:/);
  });

  it('a huge num_layers is reported as missing tensors quickly, without building the model', () => {
    const started = Date.now();
    expectRejected(withConfig((c) => (c.num_layers = 2 ** 53 - 1)), /missing tensors .* and more: .*num_layers 9007199254740991/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('unexpected tensors are listed (optimizer.* tensors are not unexpected)', () => {
    const p = parts();
    p.tensors.push({ name: 'extra.weight', shape: [2], data: new Float32Array(2) }, { name: 'zz', shape: [], data: new Float32Array(1) });
    expectRejected(p, /unexpected tensors extra\.weight, zz: they are not parameters of the model/);
    // An untied file under a tied config that also has the shared tensors: the per-layer ones are unexpected.
    const untied = makeModel(CONFIGS[2]!.config);
    const tied = makeModel(CONFIGS[1]!.config);
    const q: Parts = {
      tensors: [...paramTensors(tied), ...paramTensors(untied).filter((t) => t.name.includes('.depth.'))],
      metadata: { format: CHECKPOINT_FORMAT, config: JSON.stringify(configObject(tied)) },
    };
    expectRejected(q, /unexpected tensors layers\.0\.depth\.t2h\.weight, /);
    // Names with line breaks are quoted, keeping the message on one line.
    const odd = parts();
    odd.tensors.push({ name: 'two\nlines\u2028', shape: [0], data: new Float32Array(0) });
    expectRejected(odd, /unexpected tensors "two\\nlines\\u2028":/);
    // More than 20 unexpected tensors: the first 20 are listed, then a count.
    const many = parts();
    for (let k = 0; k < 25; k++) many.tensors.push({ name: `junk.${k}`, shape: [0], data: new Float32Array(0) });
    expectRejected(many, /unexpected tensors junk\.0, junk\.1, .*junk\.19 and 5 more:/);

    const P = tied.params.length;
    const r = parts(tied);
    r.tensors.push({ name: 'optimizer.m', shape: [P], data: new Float32Array(P).fill(0.5) });
    const ck = parseCheckpoint(assemble(r), LABEL);
    expect([...ck.optimizerState.keys()]).toEqual(['m']);
    expect(ck.optimizerState.get('m')!.every((x) => x === 0.5)).toBe(true);
  });

  it('tensors must be F32', () => {
    const p = parts();
    const i = p.tensors.findIndex((t) => t.name === 'embedding.weight');
    p.tensors[i] = { ...p.tensors[i]!, data: Float64Array.from(p.tensors[i]!.data) };
    expectRejected(p, /tensor embedding\.weight has dtype F64, but checkpoints store every tensor as F32/);
  });

  it('shape mismatches name the tensor, both shapes and the config', () => {
    // The file was written for 5 characters; the config lists 6.
    expectRejected(
      withConfig((c) => (c.vocab = [...CHARS, 'q'])),
      /^ck\.safetensors: embedding\.weight has shape \[5,3\] but the config \(vocab of 6, rnn_size 3\) needs \[6,3\]$/,
    );
    expectRejected(
      withConfig((c) => (c.rnn_size = 4)),
      /embedding\.weight has shape \[5,3\] but the config \(vocab of 5, rnn_size 4\) needs \[5,4\]/,
    );
    const p = parts();
    const i = p.tensors.findIndex((t) => t.name === 'layers.1.time.d2h.weight');
    p.tensors[i] = { ...p.tensors[i]!, shape: [N, 4 * N] };
    expectRejected(p, /layers\.1\.time\.d2h\.weight has shape \[3,12\] but the config \(rnn_size 3\) needs \[12,3\]/);
    const q = parts();
    const j = q.tensors.findIndex((t) => t.name === 'decoder.bias');
    q.tensors[j] = { ...q.tensors[j]!, shape: [1, V] };
    expectRejected(q, /decoder\.bias has shape \[1,5\] but the config \(vocab of 5\) needs \[5\]/);
  });

  it('NaN or infinite parameters name the tensor and the first bad index', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const p = parts();
      const t = p.tensors.find((x) => x.name === 'layers.0.time.t2h.bias')!;
      t.data[7] = bad;
      t.data[9] = bad;
      expectRejected(p, new RegExp(`parameter layers\\.0\\.time\\.t2h\\.bias holds ${String(bad).replace('-', '\\-')} at index 7;`));
    }
  });

  it('optimizer.* tensors: shape, dtype, values, name', () => {
    const model = makeModel(CONFIGS[1]!.config);
    const P = model.params.length;
    const withOpt = (tensor: TensorInput) => {
      const p = parts(model);
      p.tensors.push(tensor);
      return p;
    };
    expectRejected(withOpt({ name: 'optimizer.m', shape: [P - 1], data: new Float32Array(P - 1) }), new RegExp(`optimizer\\.m has shape \\[${P - 1}\\] but optimiser state must be laid out like the ${P} parameters: \\[${P}\\]`));
    expectRejected(withOpt({ name: 'optimizer.v', shape: [1, P], data: new Float32Array(P) }), /optimizer\.v has shape \[1,\d+\] but optimiser state/);
    expectRejected(withOpt({ name: 'optimizer.m', shape: [P], data: new Float64Array(P) }), /tensor optimizer\.m has dtype F64/);
    const nan = new Float32Array(P);
    nan[3] = NaN;
    expectRejected(withOpt({ name: 'optimizer.m', shape: [P], data: nan }), /optimizer\.m holds NaN at index 3/);
    expectRejected(withOpt({ name: 'optimizer.', shape: [P], data: new Float32Array(P) }), /"optimizer\." has no state name/);
  });

  it('training metadata: not JSON, not an object', () => {
    const p = parts();
    p.metadata.training = '{"iteration": 3';
    expectRejected(p, /"training" metadata is not valid JSON/);
    const q = parts();
    q.metadata.training = '[1]';
    expectRejected(q, /"training" metadata must be a JSON object, got an array/);
  });

  it('training metadata: missing fields and wrong field types', () => {
    const cases: [(t: Record<string, any>) => void, RegExp][] = [
      [(t) => delete t.iteration, /training has no "iteration" field/],
      [(t) => (t.iteration = -1), /training\.iteration must be a non-negative integer, got -1/],
      [(t) => (t.iteration = 2.5), /training\.iteration must be a non-negative integer/],
      [(t) => (t.epoch = '1'), /training\.epoch must be a non-negative number, got "1"/],
      [(t) => (t.learningRate = null), /training\.learningRate must be a non-negative number, got null/],
      [(t) => (t.optimizer = 'adam'), /training\.optimizer must be an object, got "adam"/],
      [(t) => (t.optimizer.name = 'adagrad'), /training\.optimizer\.name must be one of rmsprop, adam, sgd, got "adagrad"/],
      [(t) => delete t.optimizer.beta2, /training\.optimizer has no "beta2" field/],
      [(t) => (t.optimizer.stepCount = '17'), /training\.optimizer\.stepCount must be a non-negative integer/],
      [(t) => (t.optimizer.epsilon = false), /training\.optimizer\.epsilon must be a number, got false/],
      [(t) => (t.rngState = 2 ** 32), /training\.rngState must be an unsigned 32-bit integer, got 4294967296/],
      [(t) => (t.rngState = -1), /training\.rngState must be an unsigned 32-bit integer/],
      [(t) => (t.batchIx = [1, 2, 3]), /training\.batchIx must be an object, got an array/],
      [(t) => (t.batchIx.val = 0.5), /training\.batchIx\.val must be a non-negative integer, got 0.5/],
      [(t) => (t.options = null), /training\.options must be an object, got null/],
      [(t) => (t.history = {}), /training\.history has no "train" field/],
      [(t) => (t.history.val = 'none'), /training\.history\.val must be an array of \[iteration, loss\] pairs/],
      [(t) => (t.history.train[1] = [2]), /training\.history\.train\[1\] must be an \[iteration, loss\] pair of numbers/],
      [(t) => (t.history.train[0] = [1, '1.6']), /training\.history\.train\[0\] must be an \[iteration, loss\] pair/],
      [(t) => (t.bestValLoss = '1.5'), /training\.bestValLoss must be a number or null, got "1.5"/],
      [(t) => (t.batches = -2), /training\.batches must be a non-negative integer/],
    ];
    for (const [edit, pattern] of cases) expectRejected(withTraining(edit), pattern);
    // Unknown fields are ignored.
    const ck = parseCheckpoint(assemble(withTraining((t) => (t.somethingNew = { x: 1 }))), LABEL);
    expect(ck.training).toEqual(makeTraining());
  });

  it('carry metadata: checked against the config', () => {
    const model = makeModel(CONFIGS[1]!.config);
    const good = JSON.parse(parseSafetensors(checkpointBytes(model, vocab(), { carry: model.zeroState(2) })).metadata.carry!) as Record<string, unknown>;
    const withCarry = (carry: unknown) => {
      const p = parts(model);
      p.metadata.carry = typeof carry === 'string' ? carry : JSON.stringify(carry);
      return p;
    };
    expectRejected(withCarry('{'), /"carry" metadata is not valid JSON/);
    expectRejected(withCarry({ ...good, batch_size: 3 }), /carry\.h must be base64 of 18 F32 values/);
    expectRejected(withCarry({ ...good, batch_size: 0 }), /carry\.batch_size must be a positive integer/);
    expectRejected(withCarry({ ...good, c: '!!!!' }), /carry\.c must be base64/);
    // A gru carries no c: "" only; and saving a state with a c for it is refused.
    const gru = makeModel(GRU);
    const gruCarry = JSON.parse(parseSafetensors(checkpointBytes(gru, vocab(), { carry: gru.zeroState(2) })).metadata.carry!) as Record<string, unknown>;
    expect(gruCarry.c).toBe('');
    const gruWith = (carry: unknown) => ({ ...parts(gru), metadata: { ...parts(gru).metadata, carry: JSON.stringify(carry) } });
    expectRejected(gruWith({ ...gruCarry, c: good.c }), /^ck\.safetensors: .*carry\.c must be no values \(a gru has no cell\): "", got "/);
    expect(() => checkpointBytes(gru, vocab(), { carry: model.zeroState(2) })).toThrow(/carry must hold h \(and c of length 0: a gru has no cell\)/);
  });

  it('options that cannot build the model are a CheckpointError too', () => {
    const bytes = assemble(parts());
    expectCheckpointError(() => parseCheckpoint(bytes, LABEL, { dtype: 'float64', kernels: new Model(CONFIGS[0]!.config).kernels }), /cannot build the model/);
  });
});

// ---------------------------------------------------------------------------------------------
// Validation on save
// ---------------------------------------------------------------------------------------------

describe('checkpoint saving refuses what could not be loaded', () => {
  const model = makeModel(CONFIGS[1]!.config);
  const saveError = (fn: () => unknown, pattern: RegExp) => expectCheckpointError(fn, pattern, 'cannot save the checkpoint');

  it('a vocabulary that does not fit the model', () => {
    saveError(() => checkpointBytes(model, vocabFromChars(['a', 'b', 'c'])), /the vocabulary has 3 characters but the model's vocabSize is 5/);
    saveError(() => checkpointBytes(model, { chars: ['a', 'b', 'b', 'c', 'd'], index: new Map() }), /vocab\.chars\[2\] is "b", the same character/);
  });

  it('non-finite parameters (after rounding to F32)', () => {
    const m = makeModel(CONFIGS[0]!.config);
    m.param('decoder.bias')[2] = NaN;
    saveError(() => checkpointBytes(m, vocab()), /parameter decoder\.bias is NaN at index 2/);
    const m64 = makeModel(CONFIGS[0]!.config, 'float64');
    m64.param('embedding.weight')[4] = 1e300;
    saveError(() => checkpointBytes(m64, vocab()), /parameter embedding\.weight is Infinity at index 4 \(as F32\)/);
  });

  it('optimiser state of the wrong length, training state that is not the documented JSON', () => {
    const opt = new Optimizer('rmsprop', 4, { learningRate: 1e-3 });
    saveError(() => checkpointBytes(model, vocab(), { optimizer: opt }), /optimizer\.m has 4 elements but must be laid out like the \d+ parameters/);
    saveError(() => checkpointBytes(model, vocab(), { training: { ...makeTraining(), iteration: NaN } }), /training\.iteration must be a non-negative integer, got null/);
    saveError(() => checkpointBytes(model, vocab(), { training: { ...makeTraining(), options: { n: 1n } } }), /cannot be written as JSON/);
  });

  it('saveCheckpoint labels its errors with the path', () => {
    const path = join(dir, 'never.safetensors');
    expectCheckpointError(() => saveCheckpoint(path, model, vocabFromChars(['a', 'b'])), /vocabSize/, `cannot save ${path}`);
  });
});

// ---------------------------------------------------------------------------------------------
// Robustness: corrupted files
// ---------------------------------------------------------------------------------------------

describe('corrupted checkpoints', () => {
  const small = makeModel({ model: 'grid_lstm', vocabSize: V, rnnSize: 2, numLayers: 2, tieWeights: false });
  const optimizer = makeOptimizer(small);
  const carry = small.zeroState(1);
  const valid = checkpointBytes(small, vocab(), { training: makeTraining(), optimizer, carry });
  const headerLength = Number(new DataView(valid.buffer, valid.byteOffset, 8).getBigUint64(0, true));
  const headerText = new TextDecoder().decode(valid.subarray(8, 8 + headerLength));
  const dataSection = valid.subarray(8 + headerLength);

  /** A file from a header text (length field fixed up unless `lengthDelta` says otherwise). */
  function rebuild(text: string, lengthDelta = 0): Uint8Array {
    const header = new TextEncoder().encode(text);
    const out = new Uint8Array(8 + header.length + dataSection.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, header.length + lengthDelta)), true);
    out.set(header, 8);
    out.set(dataSection, 8 + header.length);
    return out;
  }

  const flipBytes = fc
    .array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 8 })
    .map((flips) => {
      const out = valid.slice();
      for (const { at, xor } of flips) out[at % out.length]! ^= xor;
      return out;
    });

  const truncate = fc.nat({ max: valid.length - 1 }).map((n) => valid.slice(0, n));

  const jsonish = fc.oneof(
    fc.string({ maxLength: 6 }),
    fc.constantFrom('"', '{', '}', '[', ']', ',', ':', '0', '-1', '1e999', 'null', 'true', '"F64"', '"__metadata__"', '\\', '\\u0000'),
  );
  const editHeaderText = fc
    .record({ from: fc.nat(), span: fc.nat({ max: 12 }), insert: jsonish, lengthDelta: fc.oneof(fc.constant(0), fc.integer({ min: -16, max: 16 })) })
    .map(({ from, span, insert, lengthDelta }) => {
      const a = from % headerText.length;
      return rebuild(headerText.slice(0, a) + insert + headerText.slice(a + span), lengthDelta);
    });

  /** Replaces one metadata entry, or one field inside its JSON, with an arbitrary value. */
  const editMetadata = fc
    .record({
      entry: fc.constantFrom('format', 'config', 'training', 'carry', 'other'),
      mode: fc.constantFrom('replace-string', 'set-field', 'delete-field', 'delete-entry'),
      key: fc.oneof(
        fc.constantFrom('model', 'vocab', 'rnn_size', 'num_layers', 'tie_weights', 'dropout', 'iteration', 'optimizer', 'history', 'batchIx', 'options', 'rngState', 'batch_size', 'h', 'c', '__proto__'),
        fc.string({ maxLength: 5 }),
      ),
      value: fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.array(fc.string({ unit: 'binary', minLength: 0, maxLength: 3 }), { maxLength: 7 }),
        fc.integer({ min: -3, max: 10 }),
      ),
      text: fc.string({ unit: 'binary', maxLength: 20 }),
    })
    .map(({ entry, mode, key, value, text }) => {
      const header = JSON.parse(headerText) as Record<string, any>;
      const meta = header.__metadata__ as Record<string, string>;
      if (mode === 'delete-entry') delete meta[entry];
      else if (mode === 'replace-string') meta[entry] = text;
      else {
        let obj: unknown;
        try {
          obj = JSON.parse(meta[entry] ?? '{}');
        } catch {
          obj = {};
        }
        if (typeof obj === 'object' && obj !== null) {
          if (mode === 'delete-field') delete (obj as Record<string, unknown>)[key];
          else Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
        }
        meta[entry] = JSON.stringify(obj);
      }
      return rebuild(JSON.stringify(header));
    });

  /** Changes one tensor's header entry (dtype, shape or offsets). */
  const editTensorEntry = fc
    .record({
      which: fc.nat(),
      field: fc.constantFrom('dtype', 'shape', 'data_offsets', 'name'),
      dims: fc.array(fc.nat({ max: 40 }), { maxLength: 3 }),
      dtype: fc.constantFrom('F32', 'F64', 'F16', 'I32', 'U8', 'BOOL'),
    })
    .map(({ which, field, dims, dtype }) => {
      const header = JSON.parse(headerText) as Record<string, any>;
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      const name = names[which % names.length]!;
      if (field === 'dtype') header[name].dtype = dtype;
      else if (field === 'shape') header[name].shape = dims;
      else if (field === 'data_offsets') header[name].data_offsets = [dims[0] ?? 0, dims[1] ?? 0];
      else {
        header[`optimizer.${name}`] = header[name];
        delete header[name];
      }
      return rebuild(JSON.stringify(header));
    });

  const corrupted = fc.oneof(flipBytes, truncate, editHeaderText, editMetadata, editTensorEntry);

  function expectModelOrCheckpointError(load: () => unknown): void {
    try {
      const ck = load() as { model: Model };
      for (let j = 0; j < ck.model.params.length; j++) expect(Number.isFinite(ck.model.params[j])).toBe(true);
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      expect(err.message).not.toMatch(/[\n\r\u2028\u2029]/);
    }
  }

  it('the uncorrupted file loads', () => {
    const ck = parseCheckpoint(valid, LABEL);
    expect(bits(ck.model.params as Float32Array)).toEqual(bits(small.params as Float32Array));
  });

  it('parseCheckpoint either loads or throws CheckpointError, never anything else', () => {
    fc.assert(
      fc.property(corrupted, (bytes) => {
        expectModelOrCheckpointError(() => parseCheckpoint(bytes, LABEL));
      }),
      { numRuns: runs(1000) },
    );
  });

  it('loadCheckpoint either loads or throws CheckpointError, never anything else', () => {
    const path = join(dir, 'corrupt.safetensors');
    fc.assert(
      fc.property(corrupted, (bytes) => {
        writeFileSync(path, bytes);
        expectModelOrCheckpointError(() => loadCheckpoint(path));
      }),
      { numRuns: runs(500) },
    );
  });
});
