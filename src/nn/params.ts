/**
 * Model configuration and the parameter layout: every parameter of a model lives in one flat
 * buffer, and each named tensor is a view of a contiguous range of it. The gradient buffer has
 * exactly the same layout, so the optimiser can treat both as plain vectors.
 *
 * Names (also the tensor names in checkpoints; l counts from 0):
 *   embedding.weight [V,N]
 *   lstm:      layers.{l}.i2h.weight [4N,N], layers.{l}.i2h.bias [4N], layers.{l}.h2h.* likewise
 *   gru:       layers.{l}.i2h.weight [3N,N] (blocks z r n), .bias [3N], layers.{l}.h2h.* likewise
 *   rnn:       layers.{l}.i2h.weight [N,N], .bias [N], layers.{l}.h2h.* likewise
 *   grid_lstm: layers.{l}.time.t2h.*, layers.{l}.time.d2h.*  (per layer),
 *              depth.t2h.*, depth.d2h.*  (tied, paper 3.5)  or  layers.{l}.depth.t2h.* ... (untied)
 *   decoder.weight [V,N], decoder.bias [V]
 */
import { cellOf } from './cells.js';

export type ModelKind = 'grid_lstm' | 'lstm' | 'gru' | 'rnn';

/** Every model kind, the default first. */
export const MODEL_KINDS: readonly ModelKind[] = ['grid_lstm', 'lstm', 'gru', 'rnn'];

/** The model's name with its article, as said aloud: "a grid_lstm", "an lstm", "a gru", "an rnn". */
export function aModel(kind: ModelKind): string {
  return `${kind === 'lstm' || kind === 'rnn' ? 'an' : 'a'} ${kind}`;
}

export interface ModelConfig {
  /**
   * 'grid_lstm' (2D Grid LSTM, the default), 'lstm' (stacked LSTM), 'gru' (stacked GRU) or 'rnn'
   * (stacked vanilla RNN), the last three as char-rnn's.
   */
  model: ModelKind;
  /** V: number of distinct characters. */
  vocabSize: number;
  /** N: hidden units per layer, the size of each cell's h and of an LSTM's c (char-rnn's rnn_size). */
  rnnSize: number;
  /** L: number of layers (char-rnn's num_layers). */
  numLayers: number;
  /** grid_lstm only: share the depth LSTM's weights across layers (paper 3.5). Default true. */
  tieWeights?: boolean;
  /** Inverted-dropout probability on non-recurrent connections, in [0, 1). Default 0. */
  dropout?: number;
}

export type FullModelConfig = Required<ModelConfig>;

export interface TensorSpec {
  name: string;
  shape: number[];
  /** Offset of the first element in the flat buffer. */
  offset: number;
  /** Number of elements. */
  size: number;
}

/** `v` if it is a positive integer, else an error naming `name`. */
export function checkPositiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Fills in defaults and rejects bad values with an error naming the field. */
export function normalizeConfig(config: ModelConfig): FullModelConfig {
  if (config === null || typeof config !== 'object') throw new Error('model config must be an object');
  if (!MODEL_KINDS.includes(config.model)) {
    throw new Error(`model must be one of ${MODEL_KINDS.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(config.model)}`);
  }
  const vocabSize = checkPositiveInt('vocabSize', config.vocabSize);
  const rnnSize = checkPositiveInt('rnnSize', config.rnnSize);
  const numLayers = checkPositiveInt('numLayers', config.numLayers);
  const tieWeights = config.tieWeights ?? true;
  if (typeof tieWeights !== 'boolean') throw new Error(`tieWeights must be true or false, got ${JSON.stringify(tieWeights)}`);
  const dropout = config.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    throw new Error(`dropout must be a number in [0, 1), got ${JSON.stringify(dropout)}`);
  }
  return { model: config.model, vocabSize, rnnSize, numLayers, tieWeights, dropout };
}

/** The names and shapes of a model's parameters, in the order they sit in the flat buffer. */
export function paramLayout(config: FullModelConfig): TensorSpec[] {
  const V = config.vocabSize;
  const N = config.rnnSize;
  const specs: TensorSpec[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    specs.push({ name, shape, offset, size });
    offset += size;
  };
  const G = cellOf(config.model).blocks.length; // pre-activation blocks: 4 (LSTMs), 3 (gru), 1 (rnn)
  const linear = (prefix: string) => {
    add(`${prefix}.weight`, [G * N, N]);
    add(`${prefix}.bias`, [G * N]);
  };
  add('embedding.weight', [V, N]);
  for (let l = 0; l < config.numLayers; l++) {
    if (config.model !== 'grid_lstm') {
      linear(`layers.${l}.i2h`);
      linear(`layers.${l}.h2h`);
    } else {
      linear(`layers.${l}.time.t2h`);
      linear(`layers.${l}.time.d2h`);
      if (!config.tieWeights) {
        linear(`layers.${l}.depth.t2h`);
        linear(`layers.${l}.depth.d2h`);
      }
    }
  }
  if (config.model === 'grid_lstm' && config.tieWeights) {
    linear('depth.t2h');
    linear('depth.d2h');
  }
  add('decoder.weight', [V, N]);
  add('decoder.bias', [V]);
  return specs;
}

/** Total number of scalar parameters. */
export function paramCount(config: FullModelConfig): number {
  const specs = paramLayout(config);
  const last = specs[specs.length - 1];
  return last.offset + last.size;
}

/**
 * The bias blocks that char-rnn sets after drawing every parameter (the cell's biasInit, in
 * src/nn/cells.ts): the forget-gate block [N, 2N) to 1 in the first linear map of each LSTM
 * (i2h for the stacked LSTM; t2h of the time and of the depth LSTM for the grid). None for gru
 * and rnn.
 */
export function specialBiases(config: FullModelConfig): { name: string; from: number; to: number; value: number }[] {
  const N = config.rnnSize;
  const names: string[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    if (config.model !== 'grid_lstm') names.push(`layers.${l}.i2h.bias`);
    else {
      names.push(`layers.${l}.time.t2h.bias`);
      if (!config.tieWeights) names.push(`layers.${l}.depth.t2h.bias`);
    }
  }
  if (config.model === 'grid_lstm' && config.tieWeights) names.push('depth.t2h.bias');
  const init = cellOf(config.model).biasInit;
  return names.flatMap((name) => init.map(([block, value]) => ({ name, from: block * N, to: (block + 1) * N, value })));
}
