import { type Model, type Vocab } from '../../src/index.js';
import { randomModel } from './arbitraries.js';

/**
 * A model (float64, random weights of ±scale) whose unit 3 of layer 0 copies "is x a digit"
 * into its cell and hidden state, set by hand: embedding column 0 is +0.1 for digits and −0.1
 * for the rest, and only unit 3 reads it (i ≈ 1, f ≈ 0, o ≈ 1, g = tanh(±20) = ±1, no recurrent
 * input), so after every character c = ±1 and h = ±tanh(1). For the grid, the depth LSTM reads
 * neither the time LSTM's unit 3 nor column 0. Needs rnnSize ≥ 4.
 */
export function digitUnitModel(kind: 'lstm' | 'grid_lstm', vocab: Vocab, options: { numLayers?: number; rnnSize?: number; seed?: number; scale?: number } = {}): Model {
  const N = options.rnnSize ?? 5;
  if (N < 4) throw new Error('digitUnitModel needs rnnSize ≥ 4');
  const V = vocab.chars.length;
  const m = randomModel({ model: kind, numLayers: options.numLayers ?? 1, rnnSize: N, vocabSize: V }, options.seed ?? 1, options.scale ?? 0.3);
  const E = m.param('embedding.weight');
  for (let v = 0; v < V; v++) E[v * N] = /\d/.test(vocab.chars[v]) ? 0.1 : -0.1;
  const input = kind === 'lstm' ? 'layers.0.i2h' : 'layers.0.time.d2h';
  const recurrent = kind === 'lstm' ? 'layers.0.h2h' : 'layers.0.time.t2h';
  const W = m.param(`${input}.weight`);
  const b = m.param(`${input}.bias`);
  const U = m.param(`${recurrent}.weight`);
  const c = m.param(`${recurrent}.bias`);
  for (let r = 0; r < 4 * N; r++) W[r * N] = 0; // nothing else reads column 0
  for (const [gate, bias, w0] of [[0, 20, 0], [1, -20, 0], [2, 20, 0], [3, 0, 200]]) {
    const r = gate * N + 3;
    for (let j = 0; j < N; j++) W[r * N + j] = U[r * N + j] = 0;
    W[r * N] = w0;
    b[r] = bias;
    c[r] = 0;
  }
  if (kind === 'grid_lstm') {
    const names = m.config.tieWeights ? [''] : Array.from({ length: m.config.numLayers }, (_, l) => `layers.${l}.`);
    for (const p of names) {
      const T = m.param(`${p}depth.t2h.weight`);
      const D = m.param(`${p}depth.d2h.weight`);
      for (let r = 0; r < 4 * N; r++) T[r * N + 3] = D[r * N] = 0;
    }
  }
  return m;
}
