/**
 * Saving and loading model checkpoints as standard `.safetensors` files.
 *
 * The format (version "grid-lstm/1") is a contract that other programs may write too:
 *
 * - Tensors: every model parameter, F32, row-major, under the model's parameter names and shapes
 *   (`embedding.weight` [V,N], `layers.0.time.t2h.weight` [4N,N], `decoder.bias` [V], ... see
 *   src/nn/params.ts). Their order in the file does not matter.
 * - Optional optimiser state: tensors `optimizer.<key>` (e.g. `optimizer.m`, `optimizer.v`), F32,
 *   shape [P] with P the total parameter count, laid out like the flat parameter buffer.
 * - `__metadata__`:
 *   - `format`: "grid-lstm/1"
 *   - `config`: JSON text `{"model": "grid_lstm"|"lstm", "vocab": [one-code-point strings in id
 *     order], "rnn_size": N, "num_layers": L, "tie_weights": bool, "dropout": number}`, and for
 *     the addition task (src/train/addition.ts) `"task": {"kind": "addition", "digit_length": D,
 *     "seq_length": T}` (absent: the character task, `{"kind": "char"}`)
 *   - `training` (optional): JSON text of a {@link TrainingState}
 *   - `carry` (optional, an extension of this implementation): JSON text
 *     `{"batch_size": B, "h": base64, "c": base64}`, the hidden state carried between training
 *     batches, each a base64 string of the little-endian F32 elements of shape [L, B, N]. Other
 *     programs may ignore it like any other metadata key; it only matters for an exact resume.
 *   Loaders ignore every other metadata key (and unknown fields inside `config` and `training`).
 *
 * Loading treats the file as untrusted: every claim is checked (shapes against the config before
 * anything is allocated) and every problem is a {@link CheckpointError} with a one-line message
 * that starts with the file's label.
 */
import { type DType, type Float, type Kernels } from '../nn/kernels.js';
import { type Vocab, vocabFromChars } from './data-core.js';
import { Model, type State } from '../nn/model.js';
import { type OptimName, type Optimizer, OPTIMIZERS } from './optim.js';
import { cellOf } from '../nn/cells.js';
import { type FullModelConfig, MODEL_KINDS, type ModelKind, type TensorSpec, aModel, paramLayout } from '../nn/params.js';
import {
  MAX_HEADER_LENGTH,
  type SafetensorsContents,
  type TensorInput,
  parseSafetensors,
  SafetensorsError,
  writeSafetensors,
} from './safetensors-core.js';

/** The value of the `format` metadata entry this module writes and accepts. */
export const CHECKPOINT_FORMAT = 'grid-lstm/1';

/** Tensors whose names start with this hold optimiser state, not parameters. */
export const OPTIMIZER_PREFIX = 'optimizer.';

/** Most names listed in a "missing" or "unexpected tensors" message. */
const MAX_NAMES_SHOWN = 20;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** Any problem with a checkpoint: reading, validating, or (when saving) an unsavable model. */
export class CheckpointError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CheckpointError';
  }
}

/** Where a training run stands, saved as the `training` metadata entry so the run can resume. */
export interface TrainingState {
  /** Optimiser steps done so far. */
  iteration: number;
  /** Fractional epochs done (iteration / batches per epoch). */
  epoch: number;
  /** The current learning rate (after decays). */
  learningRate: number;
  optimizer: { name: OptimName; stepCount: number; decayRate: number; beta1: number; beta2: number; epsilon: number };
  /** Rng.state (an unsigned 32-bit integer) of the dropout-mask generator. */
  rngState: number;
  /** Next batch index of each split. */
  batchIx: { train: number; val: number; test: number };
  /** Optional: the number of batches the run's data gave (lets a resume detect different data). */
  batches?: number;
  /** The run's training (CLI) options; opaque here, but must be plain JSON. */
  options: Record<string, unknown>;
  /**
   * [iteration, loss] pairs; optional `lr`: [iteration, rate] for each learning rate set, [0, the
   * run's --learning-rate] first, then one per --learning-rate given on resume (decays not listed).
   * Optional `accuracy` (the addition task): [iteration, fraction of the answers' characters
   * right, fraction of whole answers right] of every validation.
   */
  history: { train: [number, number][]; val: [number, number][]; lr?: [number, number][]; accuracy?: [number, number, number][] };
  /** Best validation loss so far; null (or absent) for none. A non-finite value is saved as null. */
  bestValLoss?: number | null;
  /**
   * Optional: the checkpoint files this run (and the runs it resumed) wrote to its checkpoint
   * directory and has not deleted under --keep, oldest first, this file included; plain names
   * (`lm_*.safetensors`, no directory). Only these may be deleted by a later --keep.
   */
  checkpoints?: CheckpointRecord[];
}

/** A checkpoint file a run wrote: its name, iteration and validation loss (null: not a validation's). */
export interface CheckpointRecord {
  name: string;
  iteration: number;
  valLoss: number | null;
}

/** A checkpoint file name a run may write and, under --keep, delete: `lm_….safetensors`, no directory. */
export const CHECKPOINT_NAME = /^lm_[^/\\\0]*\.safetensors$/;

/** What a model was trained to do: char-rnn's next character of a text, or the addition task's sums. */
export type TaskSpec = { kind: 'char' } | { kind: 'addition'; digitLength: number; seqLength: number };

/** What {@link checkpointBytes} and {@link saveCheckpoint} may store besides the model. */
export interface CheckpointExtra {
  /** Saved in the `config` metadata entry when it is the addition task (default: char). */
  task?: TaskSpec;
  /** Saved as the `training` metadata entry. */
  training?: TrainingState;
  /** Its state buffers are saved as `optimizer.<key>` tensors (converted to F32). */
  optimizer?: Pick<Optimizer, 'state'>;
  /** The hidden state carried between training batches; saved as the `carry` metadata entry (F32). */
  carry?: State;
}

/**
 * A carried hidden state read from a checkpoint: h and c flat, shape [L, B, N] (layer l at
 * l·B·N); c is empty for gru and rnn, which carry h only.
 */
export interface CarriedState {
  batchSize: number;
  h: Float32Array;
  c: Float32Array;
}

/** Options of {@link parseCheckpoint} and {@link loadCheckpoint}: how to build the model. */
export interface LoadCheckpointOptions {
  /** The kernels (and so the element type) the loaded model computes with. */
  kernels?: Kernels;
  /** Shorthand for TypeScript kernels of this element type. Default float32. */
  dtype?: DType;
}

/** Everything a checkpoint holds. */
export interface CheckpointContents {
  model: Model;
  vocab: Vocab;
  /** The `training` metadata, or null when the file has none. */
  training: TrainingState | null;
  /** Optimiser state buffers, keyed without the "optimizer." prefix (empty when there are none). */
  optimizerState: Map<string, Float32Array>;
  /** The task the model was trained for (config.task; `{ kind: 'char' }` when absent). */
  task: TaskSpec;
  /** The `carry` metadata (the hidden state carried between training batches), or null. */
  carry: CarriedState | null;
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** Throws with a message; every validator reports through one of these. */
type Fail = (message: string) => never;

/** A `fail` that throws CheckpointError prefixed with `label`. */
export function failWith(label: string): Fail {
  const prefix = label ? `${label}: ` : '';
  return (message: string): never => {
    throw new CheckpointError(`${prefix}${message}`);
  };
}

/** A string as a JSON literal that stays on one line (U+2028/U+2029 escaped too). */
function quote(text: string): string {
  return JSON.stringify(text).replace(/[\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16)}`);
}

/** A tensor name for a message: bare when it is plain (letters, digits, . _ -), else quoted. */
function nameText(name: string): string {
  return /^[\w.-]+$/.test(name) ? name : quote(name.length > 60 ? `${name.slice(0, 60)}...` : name);
}

/** A short one-line description of a JSON value for error messages (never recurses). */
function show(value: unknown): string {
  if (typeof value === 'string') return quote(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** The message of a caught value, on one line and not too long. */
function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/** True for a JSON object (not null, not an array). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** "[65,128]" */
function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Names joined with ", ", at most MAX_NAMES_SHOWN of them, then "and K more". */
function nameList(names: readonly string[], moreUncounted = false): string {
  const shown = names.slice(0, MAX_NAMES_SHOWN).map(nameText).join(', ');
  const rest = names.length - Math.min(names.length, MAX_NAMES_SHOWN);
  if (moreUncounted) return `${shown} and more`;
  return rest > 0 ? `${shown} and ${rest} more` : shown;
}

/** Index of the first NaN or infinite element, or -1. */
function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** The elements as a Float32Array: the array itself when it already is one, else a rounded copy. */
function toFloat32(data: Float): Float32Array {
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

/** The value of own field `key`, failing with "<path> has no <key> field" when it is absent. */
function field(obj: Record<string, unknown>, key: string, path: string, expected: string, fail: Fail): unknown {
  if (!Object.hasOwn(obj, key)) fail(`${path} has no "${key}" field (expected ${expected})`);
  return obj[key];
}

/** A non-negative safe integer field. */
function nonNegativeInt(obj: Record<string, unknown>, key: string, path: string, fail: Fail): number {
  const v = field(obj, key, path, 'a non-negative integer', fail);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    fail(`${path}.${key} must be a non-negative integer, got ${show(v)}`);
  }
  return v as number;
}

/** A finite number field, optionally at least 0. */
function finiteNumber(obj: Record<string, unknown>, key: string, path: string, fail: Fail, nonNegative = false): number {
  const expected = nonNegative ? 'a non-negative number' : 'a number';
  const v = field(obj, key, path, expected, fail);
  if (typeof v !== 'number' || !Number.isFinite(v) || (nonNegative && v < 0)) fail(`${path}.${key} must be ${expected}, got ${show(v)}`);
  return v as number;
}

/** An object-valued field. */
function objectField(obj: Record<string, unknown>, key: string, path: string, fail: Fail): Record<string, unknown> {
  const v = field(obj, key, path, 'an object', fail);
  if (!isPlainObject(v)) fail(`${path}.${key} must be an object, got ${show(v)}`);
  return v as Record<string, unknown>;
}

/** Parses a metadata entry as JSON, failing with a message naming the entry. */
function parseJsonEntry(text: string, entry: string, fail: Fail): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return fail(`the "${entry}" metadata is not valid JSON (${messageOf(err)}); the checkpoint is corrupt`);
  }
}

// ---------------------------------------------------------------------------------------------
// Config and vocabulary
// ---------------------------------------------------------------------------------------------

/** Checks a vocabulary: at least 2 unique strings of exactly one code point each. */
function checkVocabChars(chars: unknown, path: string, fail: Fail): string[] {
  if (!Array.isArray(chars)) fail(`${path} must be an array of one-character strings, got ${show(chars)}`);
  const list = chars as unknown[];
  if (list.length < 2) fail(`${path} has ${list.length} entries; a model needs a vocabulary of at least 2 characters`);
  const seen = new Map<string, number>();
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (typeof c !== 'string' || c.length === 0 || c.length > 2 || [...c].length !== 1) {
      fail(`${path}[${i}] is ${show(c)}, not a string of exactly one character (code point)`);
    }
    const previous = seen.get(c as string);
    if (previous !== undefined) fail(`${path}[${i}] is ${show(c)}, the same character as ${path}[${previous}]; entries must be unique`);
    seen.set(c as string, i);
  }
  return list as string[];
}

/** The `config` metadata entry: the model config (vocabSize from the vocabulary) and the vocabulary. */
function readConfig(metadata: Record<string, string>, fail: Fail): { config: FullModelConfig; chars: string[] } {
  if (!Object.hasOwn(metadata, 'config')) {
    fail('the metadata has no "config" entry, so the model cannot be rebuilt; the checkpoint is incomplete');
  }
  const raw = parseJsonEntry(metadata.config!, 'config', fail);
  if (!isPlainObject(raw)) fail(`the "config" metadata must be a JSON object, got ${show(raw)}`);
  const obj = raw as Record<string, unknown>;

  const kinds = MODEL_KINDS.map((m) => `"${m}"`).join(', ');
  const model = field(obj, 'model', 'config', `one of ${kinds}`, fail);
  if (!MODEL_KINDS.includes(model as ModelKind)) fail(`config.model must be one of ${kinds}, got ${show(model)}`);
  const chars = checkVocabChars(field(obj, 'vocab', 'config', 'an array of one-character strings', fail), 'config.vocab', fail);
  const positive = (key: string): number => {
    const v = field(obj, key, 'config', 'a positive integer', fail);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(`config.${key} must be a positive integer, got ${show(v)}`);
    return v as number;
  };
  const rnnSize = positive('rnn_size');
  const numLayers = positive('num_layers');
  const tieWeights = field(obj, 'tie_weights', 'config', 'true or false', fail);
  if (typeof tieWeights !== 'boolean') fail(`config.tie_weights must be true or false, got ${show(tieWeights)}`);
  const dropout = field(obj, 'dropout', 'config', 'a number in [0, 1)', fail);
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail(`config.dropout must be a number in [0, 1), got ${show(dropout)}`);

  return {
    config: {
      model: model as ModelKind,
      vocabSize: chars.length,
      rnnSize,
      numLayers,
      tieWeights: tieWeights as boolean,
      dropout: dropout as number,
    },
    chars,
  };
}

/** The `config` metadata text for a model and its vocabulary. */
function configJson(config: FullModelConfig, chars: readonly string[], task: TaskSpec = { kind: 'char' }): string {
  return JSON.stringify({
    model: config.model,
    vocab: chars,
    rnn_size: config.rnnSize,
    num_layers: config.numLayers,
    tie_weights: config.tieWeights,
    dropout: config.dropout,
    ...(task.kind === 'addition' ? { task: { kind: 'addition', digit_length: task.digitLength, seq_length: task.seqLength } } : {}),
  });
}

/** config.task: the addition task's digits and sequence length, or the char task when absent. */
function readTask(metadata: Record<string, string>, chars: readonly string[], fail: Fail): TaskSpec {
  const obj = JSON.parse(metadata.config!) as Record<string, unknown>; // (readConfig has checked it)
  if (!Object.hasOwn(obj, 'task')) return { kind: 'char' };
  const task = obj.task;
  if (!isPlainObject(task)) return fail(`config.task must be an object {"kind": "char"} or {"kind": "addition", ...}, got ${show(task)}`);
  const t = task as Record<string, unknown>;
  if (t.kind === 'char') return { kind: 'char' };
  if (t.kind !== 'addition') return fail(`config.task.kind must be "char" or "addition", got ${show(t.kind)}`);
  const D = field(t, 'digit_length', 'config.task', 'a whole number ≥ 1', fail);
  const T = field(t, 'seq_length', 'config.task', 'a whole number', fail);
  if (typeof D !== 'number' || !Number.isInteger(D) || D < 1 || D > 1000) fail(`config.task.digit_length must be a whole number from 1 to 1000, got ${show(D)}`);
  if (typeof T !== 'number' || !Number.isInteger(T) || T < 3 * (D as number) + 3) {
    fail(`config.task.seq_length must be a whole number ≥ 3·digit_length + 3, got ${show(T)}`);
  }
  const expected = [' ', '+', ...'0123456789', '='];
  if (chars.length !== expected.length || chars.some((c, i) => c !== expected[i])) {
    fail(`config.vocab must be the addition task's ${JSON.stringify(expected.join(''))}, got ${show(chars.join(''))}`);
  }
  return { kind: 'addition', digitLength: D as number, seqLength: T as number };
}

/** "grid_lstm, vocab of 5, rnn_size 3, num_layers 2, tie_weights true" */
function describeConfig(c: FullModelConfig): string {
  const tie = c.model === 'grid_lstm' ? `, tie_weights ${c.tieWeights}` : '';
  return `${c.model}, vocab of ${c.vocabSize}, rnn_size ${c.rnnSize}, num_layers ${c.numLayers}${tie}`;
}

/** The config fields a parameter's shape depends on, e.g. "vocab of 97, rnn_size 128". */
function shapeDependsOn(name: string, c: FullModelConfig): string {
  if (name === 'decoder.bias') return `vocab of ${c.vocabSize}`;
  if (name === 'embedding.weight' || name === 'decoder.weight') return `vocab of ${c.vocabSize}, rnn_size ${c.rnnSize}`;
  return `rnn_size ${c.rnnSize}`;
}

// ---------------------------------------------------------------------------------------------
// Training state
// ---------------------------------------------------------------------------------------------

/** A [iteration, value] history list: a loss, or for `lr` a learning rate. */
function readHistory(obj: Record<string, unknown>, key: string, fail: Fail): [number, number][] {
  const path = `training.history.${key}`;
  const what = key === 'lr' ? 'rate' : 'loss';
  const v = field(obj, key, 'training.history', `an array of [iteration, ${what}] pairs`, fail);
  if (!Array.isArray(v)) fail(`${path} must be an array of [iteration, ${what}] pairs, got ${show(v)}`);
  return (v as unknown[]).map((pair, i): [number, number] => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'number' || typeof pair[1] !== 'number') {
      return fail(`${path}[${i}] must be an [iteration, ${what}] pair of numbers, got ${show(pair)}`);
    }
    return [pair[0], pair[1]];
  });
}

/** training.history.accuracy: [iteration, characters right, numbers right] triples, fractions in [0, 1]. */
function readAccuracy(v: unknown, fail: Fail): [number, number, number][] {
  const what = 'an array of [iteration, characters right, numbers right] triples';
  if (!Array.isArray(v)) fail(`training.history.accuracy must be ${what}, got ${show(v)}`);
  return (v as unknown[]).map((r, i): [number, number, number] => {
    const ok = Array.isArray(r) && r.length === 3 && r.every((x) => typeof x === 'number') && r[1] >= 0 && r[1] <= 1 && r[2] >= 0 && r[2] <= 1;
    if (!ok) return fail(`training.history.accuracy[${i}] must be an [iteration, fraction, fraction] triple, got ${show(r)}`);
    return [r[0], r[1], r[2]];
  });
}

/** training.checkpoints: records whose names are plain checkpoint names (a later --keep may delete them). */
function readCheckpointRecords(v: unknown, fail: Fail): CheckpointRecord[] {
  const what = 'an array of {name, iteration, valLoss} records';
  if (!Array.isArray(v)) fail(`training.checkpoints must be ${what}, got ${show(v)}`);
  return (v as unknown[]).map((r, i): CheckpointRecord => {
    const path = `training.checkpoints[${i}]`;
    if (!isPlainObject(r)) return fail(`${path} must be a {name, iteration, valLoss} record, got ${show(r)}`);
    const o = r as Record<string, unknown>;
    if (typeof o.name !== 'string' || !CHECKPOINT_NAME.test(o.name)) fail(`${path}.name must be a file name lm_….safetensors (no directory), got ${show(o.name)}`);
    if (o.valLoss !== null && typeof o.valLoss !== 'number') fail(`${path}.valLoss must be a number or null, got ${show(o.valLoss)}`);
    return { name: o.name as string, iteration: nonNegativeInt(o, 'iteration', path, fail), valLoss: o.valLoss as number | null };
  });
}

/**
 * Validates the parsed `training` metadata and returns it as a fresh TrainingState (unknown
 * fields dropped; `bestValLoss` present only when the JSON has it).
 */
function checkTraining(raw: unknown, fail: Fail): TrainingState {
  if (!isPlainObject(raw)) fail(`the "training" metadata must be a JSON object, got ${show(raw)}`);
  const obj = raw as Record<string, unknown>;
  const t = 'training';

  const iteration = nonNegativeInt(obj, 'iteration', t, fail);
  const epoch = finiteNumber(obj, 'epoch', t, fail, true);
  const learningRate = finiteNumber(obj, 'learningRate', t, fail, true);

  const opt = objectField(obj, 'optimizer', t, fail);
  const name = field(opt, 'name', 'training.optimizer', OPTIMIZERS.join(', '), fail);
  if (typeof name !== 'string' || !(OPTIMIZERS as readonly string[]).includes(name)) {
    fail(`training.optimizer.name must be one of ${OPTIMIZERS.join(', ')}, got ${show(name)}`);
  }
  const optimizer = {
    name: name as OptimName,
    stepCount: nonNegativeInt(opt, 'stepCount', 'training.optimizer', fail),
    decayRate: finiteNumber(opt, 'decayRate', 'training.optimizer', fail),
    beta1: finiteNumber(opt, 'beta1', 'training.optimizer', fail),
    beta2: finiteNumber(opt, 'beta2', 'training.optimizer', fail),
    epsilon: finiteNumber(opt, 'epsilon', 'training.optimizer', fail),
  };

  const rngState = field(obj, 'rngState', t, 'an unsigned 32-bit integer', fail);
  if (typeof rngState !== 'number' || !Number.isInteger(rngState) || rngState < 0 || rngState > 0xffffffff) {
    fail(`training.rngState must be an unsigned 32-bit integer, got ${show(rngState)}`);
  }

  const ix = objectField(obj, 'batchIx', t, fail);
  const batchIx = {
    train: nonNegativeInt(ix, 'train', 'training.batchIx', fail),
    val: nonNegativeInt(ix, 'val', 'training.batchIx', fail),
    test: nonNegativeInt(ix, 'test', 'training.batchIx', fail),
  };

  const options = objectField(obj, 'options', t, fail);
  const hist = objectField(obj, 'history', t, fail);
  const history: TrainingState['history'] = { train: readHistory(hist, 'train', fail), val: readHistory(hist, 'val', fail) };

  const state: TrainingState = {
    iteration,
    epoch,
    learningRate,
    optimizer,
    rngState: rngState as number,
    batchIx,
    options,
    history,
  };
  if (Object.hasOwn(hist, 'lr')) history.lr = readHistory(hist, 'lr', fail);
  if (Object.hasOwn(hist, 'accuracy')) history.accuracy = readAccuracy(hist.accuracy, fail);
  if (Object.hasOwn(obj, 'checkpoints')) state.checkpoints = readCheckpointRecords(obj.checkpoints, fail);
  if (Object.hasOwn(obj, 'batches')) state.batches = nonNegativeInt(obj, 'batches', t, fail);
  if (Object.hasOwn(obj, 'bestValLoss')) {
    const best = obj.bestValLoss;
    if (best !== null && typeof best !== 'number') fail(`training.bestValLoss must be a number or null, got ${show(best)}`);
    state.bestValLoss = best as number | null;
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// Carried hidden state
// ---------------------------------------------------------------------------------------------

/** Matches canonical padded base64 (length checked separately). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const BASE64_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Padded base64 of `bytes` (RFC 4648; what Node's Buffer writes, without Buffer: this runs in browsers too). */
function toBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const left = bytes.length - i;
    out += BASE64_DIGITS[(n >> 18) & 63] + BASE64_DIGITS[(n >> 12) & 63];
    out += left > 1 ? BASE64_DIGITS[(n >> 6) & 63] : '=';
    out += left > 2 ? BASE64_DIGITS[n & 63] : '=';
  }
  return out;
}

/** The bytes of base64 text already matched by BASE64 with a length a multiple of 4 ("=" only at the end). */
function fromBase64(s: string): Uint8Array {
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  for (let i = 0, o = 0; i < s.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) n = (n << 6) | Math.max(0, BASE64_DIGITS.indexOf(s[i + j])); // "=": 0
    for (let k = 16; k >= 0 && o < out.length; k -= 8) out[o++] = (n >> k) & 255;
  }
  return out;
}

/** Base64 of the little-endian F32 bytes of the layers of `parts`, concatenated. */
function f32Base64(parts: readonly Float[], what: string, fail: Fail): string {
  const count = parts.reduce((n, p) => n + p.length, 0);
  const bytes = new Uint8Array(4 * count);
  const view = new DataView(bytes.buffer);
  let i = 0;
  for (const part of parts) {
    for (let j = 0; j < part.length; j++, i++) {
      const v = Math.fround(part[j]!);
      if (!Number.isFinite(v)) fail(`${what} is ${v} at index ${i} (as F32); a checkpoint with it could not be loaded`);
      view.setFloat32(4 * i, v, true);
    }
  }
  return toBase64(bytes);
}

/** The `carry` metadata text for a state of `numLayers` layers of [B, N] (c: of length 0 for gru and rnn). */
function carryJson(carry: State, config: FullModelConfig, fail: Fail): string {
  const L = config.numLayers;
  const N = config.rnnSize;
  if (!carry || !Array.isArray(carry.h) || !Array.isArray(carry.c) || carry.h.length !== L || carry.c.length !== L) {
    fail(`carry must have h and c arrays of ${L} layers (a State from model.zeroState or forwardBackward)`);
  }
  const size = carry.h[0]?.length ?? 0;
  const cell = cellOf(config.model).hasCell;
  if (size === 0 || size % N !== 0 || carry.h.some((a) => a?.length !== size) || carry.c.some((a) => a?.length !== (cell ? size : 0))) {
    const c = cell ? 'h and c' : `h (and c of length 0: ${aModel(config.model)} has no cell)`;
    fail(`carry must hold ${c} of length B·N (N = ${N}) for every layer, all the same length`);
  }
  return JSON.stringify({ batch_size: size / N, h: f32Base64(carry.h, 'carry.h', fail), c: f32Base64(carry.c, 'carry.c', fail) });
}

/** Reads the `carry` metadata: [L, B, N] F32 arrays h and c, checked against the config. */
function readCarry(text: string, config: FullModelConfig, fail: Fail): CarriedState {
  const raw = parseJsonEntry(text, 'carry', fail);
  if (!isPlainObject(raw)) fail(`the "carry" metadata must be a JSON object, got ${show(raw)}`);
  const obj = raw as Record<string, unknown>;
  const B = field(obj, 'batch_size', 'carry', 'a positive integer', fail);
  if (typeof B !== 'number' || !Number.isSafeInteger(B) || B <= 0) fail(`carry.batch_size must be a positive integer, got ${show(B)}`);
  const decode = (key: 'h' | 'c'): Float32Array => {
    // (gru and rnn carry no c: "", no values)
    const count = key === 'c' && !cellOf(config.model).hasCell ? 0 : config.numLayers * (B as number) * config.rnnSize;
    const s = field(obj, key, 'carry', 'a base64 string', fail);
    const byteCount = 4 * count;
    if (typeof s !== 'string' || !BASE64.test(s) || s.length !== 4 * Math.ceil(byteCount / 3)) {
      const what = count === 0 ? `no values (${aModel(config.model)} has no cell): ""` : `base64 of ${count} F32 values (num_layers·batch_size·rnn_size)`;
      fail(`carry.${key} must be ${what}, got ${show(s)}`);
    }
    const bytes = fromBase64(s as string);
    if (bytes.length !== byteCount) fail(`carry.${key} decodes to ${bytes.length} bytes, expected ${byteCount}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = view.getFloat32(4 * i, true);
      if (!Number.isFinite(out[i])) fail(`carry.${key} holds ${out[i]} at index ${i}; the carried state is corrupt`);
    }
    return out;
  };
  return { batchSize: B as number, h: decode('h'), c: decode('c') };
}

// ---------------------------------------------------------------------------------------------
// Saving
// ---------------------------------------------------------------------------------------------

/**
 * Serialises a model (and optionally its training state and optimiser state) to the bytes of a
 * checkpoint file. Parameters and optimiser state are written as F32 (rounded if the model is
 * float64), in layout order; the metadata lists format, config, then training.
 *
 * Refuses (CheckpointError) to write anything that {@link parseCheckpoint} would reject: a
 * vocabulary that does not match the model, a non-finite parameter or optimiser value (after
 * rounding to F32), optimiser buffers of the wrong length, or a training state that is not plain
 * JSON of the documented shape.
 */
export function checkpointBytes(model: Model, vocab: Vocab, extra: CheckpointExtra = {}): Uint8Array {
  return buildCheckpoint(model, vocab, extra, failWith('cannot save the checkpoint'));
}

export function buildCheckpoint(model: Model, vocab: Vocab, extra: CheckpointExtra, fail: Fail): Uint8Array {
  const config = model.config;
  const chars = checkVocabChars(vocab?.chars, 'vocab.chars', fail);
  if (chars.length !== config.vocabSize) {
    fail(`the vocabulary has ${chars.length} characters but the model's vocabSize is ${config.vocabSize}; save the vocabulary the model was built for`);
  }

  const tensors: TensorInput[] = [];
  for (const spec of model.layout) {
    const data = toFloat32(model.param(spec.name));
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      fail(`parameter ${spec.name} is ${data[bad]} at index ${bad} (as F32); a checkpoint with it could not be loaded, so fix training (e.g. lower the learning rate) instead`);
    }
    tensors.push({ name: spec.name, shape: [...spec.shape], data });
  }

  const total = model.params.length;
  for (const [key, buffer] of extra.optimizer?.state ?? []) {
    const name = `${OPTIMIZER_PREFIX}${key}`;
    if (typeof key !== 'string' || key === '') fail(`optimizer state keys must be non-empty strings, got ${show(key)}`);
    if (buffer.length !== total) {
      fail(`${nameText(name)} has ${buffer.length} elements but must be laid out like the ${total} parameters; pass the optimizer that trains this model`);
    }
    const data = toFloat32(buffer);
    const bad = firstNonFinite(data);
    if (bad >= 0) fail(`${nameText(name)} is ${data[bad]} at index ${bad} (as F32); a checkpoint with it could not be loaded`);
    tensors.push({ name, shape: [total], data });
  }

  const metadata: Record<string, string> = { format: CHECKPOINT_FORMAT, config: configJson(config, chars, extra.task) };
  if (extra.training !== undefined) metadata.training = trainingJson(extra.training, fail);
  if (extra.carry !== undefined) metadata.carry = carryJson(extra.carry, config, fail);

  try {
    return writeSafetensors(tensors, metadata);
  } catch (err) {
    if (err instanceof SafetensorsError) return fail(messageOf(err));
    throw err;
  }
}

/** The `training` metadata text, checked to load back as the documented shape. */
function trainingJson(training: TrainingState, fail: Fail): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(training);
  } catch (err) {
    fail(`the training state cannot be written as JSON (${messageOf(err)}); keep training.options to plain JSON values`);
  }
  if (text === undefined) return fail('the training state must be an object');
  checkTraining(JSON.parse(text), fail);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/**
 * Reads a checkpoint from the bytes of a file (a Uint8Array, or an ArrayBuffer such as a
 * browser File's). `label` (usually the file name) starts every error message.
 *
 * @throws CheckpointError for anything wrong with the file (including SafetensorsError's
 *   problems, re-thrown as CheckpointError) and when the model cannot be built with `options`
 */
export function parseCheckpoint(bytes: Uint8Array | ArrayBuffer, label: string, options: LoadCheckpointOptions = {}): CheckpointContents {
  // (An ArrayBuffer: a File's or a fetch Response's arrayBuffer(), in a browser.)
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  refuseNonSafetensors(bytes, bytes.length, label);
  return interpret(rethrowAsCheckpointError(() => parseSafetensors(bytes, label)), label, options);
}

/** What {@link readCheckpointInfo} learns from a checkpoint's header. */
export interface CheckpointInfo {
  /** The model config (vocabSize from the vocabulary). */
  config: FullModelConfig;
  /** The vocabulary's characters in id order. */
  chars: string[];
  /** The `training` metadata, or null when the file has none (weights only). */
  training: TrainingState | null;
  /**
   * The validation loss of the weights in this file: the last `training.history.val` entry at
   * the checkpoint's own iteration. Null when there is none: a weights-only file, or one written
   * between validations (e.g. on Ctrl-C), whose history's last validation is of earlier weights.
   */
  valLoss: number | null;
  /** The file's size in bytes. */
  size: number;
  /** The task the model was trained for. */
  task: TaskSpec;
}

/**
 * The validation loss of the weights a training state was saved with: the last validation
 * history entry at its own iteration, or null (none was measured at that iteration).
 */
export function ownValLoss(training: TrainingState): number | null {
  const val = training.history.val;
  for (let i = val.length - 1; i >= 0; i--) {
    const [iteration, loss] = val[i]!;
    if (iteration === training.iteration) return Number.isFinite(loss) ? loss : null;
    if (iteration < training.iteration) break;
  }
  return null;
}

/**
 * Refuses, with a message saying what it is and what to pass instead, a file that is plainly not
 * a safetensors file at all (a text file, an image): one whose first 8 bytes are no plausible
 * header length and are not followed by a header's opening brace. A file that starts like a
 * safetensors file but is cut short keeps the safetensors reader's "truncated" messages.
 *
 * @param head the first bytes of the file (at least 9 when it has them)
 * @param size the file's size
 */
export function refuseNonSafetensors(head: Uint8Array, size: number, label: string): void {
  if (head.length === 0) return; // an empty file: the reader's "0 bytes" message says it
  if (head.length >= 8) {
    const claimed = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (claimed <= BigInt(Math.min(size - 8, MAX_HEADER_LENGTH))) return; // a plausible header length
    if (head.length > 8 && head[8] === 0x7b /* { */) return; // a header cut short: truncated
  }
  const prefix = `${label}: not a grid-lstm checkpoint (safetensors)`;
  const instead = 'pass a .safetensors file that grid-lstm train wrote, or the directory holding them';
  const text = textStart(head);
  if (text !== null) throw new CheckpointError(`${prefix}: it is text (${quote(text)}), not a safetensors file; ${instead}`);
  if (head.length < 8) return; // a few binary bytes: the reader's "shorter than 8 bytes" message
  const claimed = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  throw new CheckpointError(
    `${prefix}: its first 8 bytes give a header length of ${claimed}, larger than the file (${size} bytes), and no header follows, so it is not a safetensors file; ${instead}`,
  );
}

/** The first characters of `bytes` when they read as text (UTF-8, no control characters but tab and line breaks), else null. */
function textStart(bytes: Uint8Array): string | null {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  // The bytes may end inside a multi-byte character: try without its first bytes.
  for (let cut = 0; cut <= 3 && cut < bytes.length; cut++) {
    let text: string;
    try {
      text = decoder.decode(bytes.subarray(0, bytes.length - cut));
    } catch {
      continue;
    }
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) return null;
    const chars = [...text];
    return chars.length > 24 ? `${chars.slice(0, 24).join('')}...` : text;
  }
  return null;
}

/** Runs `read`, turning a SafetensorsError (already labelled) into a CheckpointError. */
export function rethrowAsCheckpointError<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof SafetensorsError) throw new CheckpointError(err.message, { cause: err });
    throw err;
  }
}

/** A tensor as the header describes it. */
type TensorHeader = { dtype: string; shape: number[] };

/**
 * The checks of a checkpoint that need only its header: format, config, training state, carried
 * state, and the tensors' names, dtypes and shapes against the config.
 */
export function interpretHeader(
  metadata: Record<string, string>,
  tensors: Map<string, TensorHeader>,
  fail: Fail,
): { config: FullModelConfig; chars: string[]; training: TrainingState | null; layout: TensorSpec[]; carry: CarriedState | null; task: TaskSpec } {
  if (!Object.hasOwn(metadata, 'format')) {
    fail(`not a grid-lstm checkpoint: the safetensors metadata has no "format" entry (expected ${JSON.stringify(CHECKPOINT_FORMAT)})`);
  }
  if (metadata.format !== CHECKPOINT_FORMAT) {
    fail(`unsupported checkpoint format ${show(metadata.format)}: expected ${JSON.stringify(CHECKPOINT_FORMAT)}; use a checkpoint written by this version of grid-lstm`);
  }
  const { config, chars } = readConfig(metadata, fail);
  const task = readTask(metadata, chars, fail);
  const training = Object.hasOwn(metadata, 'training')
    ? checkTraining(parseJsonEntry(metadata.training!, 'training', fail), fail)
    : null;

  const layout = checkTensorNames(tensors, config, fail);
  for (const spec of layout) checkParameterShape(spec, tensors.get(spec.name)!, config, fail);
  const total = layout[layout.length - 1]!.offset + layout[layout.length - 1]!.size;
  checkOptimizerShapes(tensors, total, fail);
  const carry = Object.hasOwn(metadata, 'carry') ? readCarry(metadata.carry!, config, fail) : null;
  return { config, chars, training, layout, carry, task };
}

/** Validates the contents of a safetensors file as a checkpoint and builds the model. */
function interpret(contents: SafetensorsContents, label: string, options: LoadCheckpointOptions): CheckpointContents {
  const fail = failWith(label);
  const { tensors, metadata } = contents;
  const { config, chars, training, layout, carry, task } = interpretHeader(metadata, tensors, fail);
  const vocab = vocabFromChars(chars); // cannot throw: checkVocabChars applied the same rules
  for (const spec of layout) checkParameterValues(spec, tensors.get(spec.name)!, fail);
  const optimizerState = readOptimizerState(tensors, fail);

  let model: Model;
  try {
    model = new Model(config, { kernels: options.kernels, dtype: options.dtype });
  } catch (err) {
    return fail(`cannot build the model (${messageOf(err)}); check the kernels/dtype options`);
  }
  for (const spec of layout) model.setParam(spec.name, tensors.get(spec.name)!.data);
  return { model, vocab, training, optimizerState, carry, task };
}

/**
 * Checks that the file holds exactly the parameters of `config` (plus any optimizer.* tensors)
 * and returns the parameter layout. The layout is built for at most (tensor count + 1) layers,
 * so a hostile num_layers cannot make this loop long: such a config is reported as missing
 * tensors (listing the first ones) before any large allocation.
 */
function checkTensorNames(tensors: Map<string, unknown>, config: FullModelConfig, fail: Fail): TensorSpec[] {
  const layers = Math.min(config.numLayers, tensors.size + 1);
  const truncated = layers < config.numLayers;
  const layout = paramLayout({ ...config, numLayers: layers });

  const missing = layout.filter((s) => !tensors.has(s.name)).map((s) => s.name);
  if (missing.length > 0 || truncated) {
    fail(`missing tensors ${nameList(missing, truncated)}: the file does not hold every parameter its config (${describeConfig(config)}) needs`);
  }
  const expected = new Set(layout.map((s) => s.name));
  const unexpected = [...tensors.keys()].filter((name) => !expected.has(name) && !name.startsWith(OPTIMIZER_PREFIX));
  if (unexpected.length > 0) {
    fail(`unexpected tensors ${nameList(unexpected)}: they are not parameters of the model its config (${describeConfig(config)}) describes`);
  }
  return layout;
}

/** Checks one parameter tensor's dtype and shape. */
function checkParameterShape(spec: TensorSpec, entry: TensorHeader, config: FullModelConfig, fail: Fail): void {
  if (entry.dtype !== 'F32') fail(`tensor ${spec.name} has dtype ${entry.dtype}, but checkpoints store every tensor as F32`);
  const sameShape = entry.shape.length === spec.shape.length && entry.shape.every((d, i) => d === spec.shape[i]);
  if (!sameShape) {
    fail(`${spec.name} has shape ${shapeText(entry.shape)} but the config (${shapeDependsOn(spec.name, config)}) needs ${shapeText(spec.shape)}`);
  }
}

/** Checks one parameter tensor's values (its dtype and shape already checked). */
function checkParameterValues(spec: TensorSpec, entry: { data: ArrayLike<number> }, fail: Fail): void {
  const bad = firstNonFinite(entry.data);
  if (bad >= 0) fail(`parameter ${spec.name} holds ${entry.data[bad]} at index ${bad}; the checkpoint is corrupt or was saved after training diverged`);
}

/** Checks the optimizer.* tensors' names, dtypes (F32) and shapes ([total]). */
function checkOptimizerShapes(tensors: Map<string, TensorHeader>, total: number, fail: Fail): void {
  for (const [name, entry] of tensors) {
    if (!name.startsWith(OPTIMIZER_PREFIX)) continue;
    const key = name.slice(OPTIMIZER_PREFIX.length);
    if (key === '') fail(`tensor ${show(name)} has no state name after the "${OPTIMIZER_PREFIX}" prefix; name it e.g. "optimizer.m"`);
    if (entry.dtype !== 'F32') fail(`tensor ${nameText(name)} has dtype ${entry.dtype}, but checkpoints store every tensor as F32`);
    if (entry.shape.length !== 1 || entry.shape[0] !== total) {
      fail(`${nameText(name)} has shape ${shapeText(entry.shape)} but optimiser state must be laid out like the ${total} parameters: [${total}]`);
    }
  }
}

/** The optimizer.* tensors (their dtypes and shapes already checked), each checked to hold finite values. */
function readOptimizerState(
  tensors: Map<string, { dtype: string; shape: number[]; data: Float32Array | Float64Array | Uint8Array }>,
  fail: Fail,
): Map<string, Float32Array> {
  const state = new Map<string, Float32Array>();
  for (const [name, entry] of tensors) {
    if (!name.startsWith(OPTIMIZER_PREFIX)) continue;
    const data = entry.data as Float32Array;
    const bad = firstNonFinite(data);
    if (bad >= 0) fail(`${nameText(name)} holds ${data[bad]} at index ${bad}; the optimiser state is corrupt`);
    state.set(name.slice(OPTIMIZER_PREFIX.length), data);
  }
  return state;
}
