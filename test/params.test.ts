/** src/nn/params.ts: the config checks (exact messages) and the parameter count. */
import { describe, expect, it } from 'vitest';
import { type ModelConfig, normalizeConfig, paramCount, paramLayout } from '../src/nn/params.js';

describe('normalizeConfig', () => {
  const good: ModelConfig = { model: 'grid_lstm', vocabSize: 5, rnnSize: 3, numLayers: 2 };
  it('fills in the defaults', () => {
    expect(normalizeConfig(good)).toEqual({ ...good, tieWeights: true, dropout: 0 });
  });
  it('rejects each bad value with a one-line message naming it', () => {
    const cases: [unknown, string][] = [
      [null, 'model config must be an object'],
      ['grid_lstm', 'model config must be an object'],
      [{ ...good, model: 'GRU' }, `model must be one of 'grid_lstm', 'lstm', 'gru', 'rnn', got "GRU"`],
      [{ ...good, vocabSize: '5' }, 'vocabSize must be a positive integer, got "5"'],
      [{ ...good, rnnSize: 0 }, 'rnnSize must be a positive integer, got 0'],
      [{ ...good, numLayers: 1.5 }, 'numLayers must be a positive integer, got 1.5'],
      [{ ...good, tieWeights: 'yes' }, 'tieWeights must be true or false, got "yes"'],
      [{ ...good, dropout: '0.5' }, 'dropout must be a number in [0, 1), got "0.5"'],
      [{ ...good, dropout: 1 }, 'dropout must be a number in [0, 1), got 1'],
      [{ ...good, dropout: -0.1 }, 'dropout must be a number in [0, 1), got -0.1'],
      [{ ...good, dropout: NaN }, 'dropout must be a number in [0, 1), got null'],
    ];
    for (const [config, message] of cases) expect(() => normalizeConfig(config as ModelConfig)).toThrow(new Error(message));
  });
});

describe('paramCount', () => {
  it('is the sum of the tensor sizes, by hand for small configs', () => {
    // lstm V 5, N 3, L 2: embedding 15 + 2 × (i2h 36 + 12, h2h 36 + 12) + decoder 15 + 5.
    expect(paramCount(normalizeConfig({ model: 'lstm', vocabSize: 5, rnnSize: 3, numLayers: 2 }))).toBe(15 + 2 * 96 + 20);
    // grid tied: + one depth pair (96); untied: a depth pair per layer.
    expect(paramCount(normalizeConfig({ model: 'grid_lstm', vocabSize: 5, rnnSize: 3, numLayers: 2 }))).toBe(15 + 2 * 96 + 96 + 20);
    expect(paramCount(normalizeConfig({ model: 'grid_lstm', vocabSize: 5, rnnSize: 3, numLayers: 2, tieWeights: false }))).toBe(15 + 4 * 96 + 20);
    const c = normalizeConfig({ model: 'grid_lstm', vocabSize: 7, rnnSize: 2, numLayers: 3 });
    expect(paramCount(c)).toBe(paramLayout(c).reduce((s, t) => s + t.size, 0));
    // gru: i2h, h2h [3N, N] + [3N] (27 + 9 each); rnn: [N, N] + [N] (9 + 3 each).
    expect(paramCount(normalizeConfig({ model: 'gru', vocabSize: 5, rnnSize: 3, numLayers: 2 }))).toBe(15 + 2 * 72 + 20);
    expect(paramCount(normalizeConfig({ model: 'rnn', vocabSize: 5, rnnSize: 3, numLayers: 2 }))).toBe(15 + 2 * 24 + 20);
  });
  it("gru and rnn: char-rnn's names, i2h and h2h of 3N (blocks z r n) and N rows", () => {
    const shapes = (model: 'gru' | 'rnn') =>
      paramLayout(normalizeConfig({ model, vocabSize: 5, rnnSize: 3, numLayers: 2 })).map((t) => `${t.name} [${t.shape}]`);
    const layers = (G: number) =>
      [0, 1].flatMap((l) => [`layers.${l}.i2h.weight [${G},3]`, `layers.${l}.i2h.bias [${G}]`, `layers.${l}.h2h.weight [${G},3]`, `layers.${l}.h2h.bias [${G}]`]);
    expect(shapes('gru')).toEqual(['embedding.weight [5,3]', ...layers(9), 'decoder.weight [5,3]', 'decoder.bias [5]']);
    expect(shapes('rnn')).toEqual(['embedding.weight [5,3]', ...layers(3), 'decoder.weight [5,3]', 'decoder.bias [5]']);
  });
});
