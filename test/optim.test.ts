/** The optimisers against their formulas computed by hand, element by element, in float64. */
import { describe, expect, it } from 'vitest';
import { Optimizer, clipGradients, norm } from '../src/train/optim.js';

const x0 = [0.5, -1.25, 2, 0];
const g1 = [0.1, -3, 0.002, 0];
const g2 = [-0.2, 1, 0.5, 0.3];

function run(name: 'rmsprop' | 'adam' | 'sgd') {
  const x = Float64Array.from(x0);
  const o = new Optimizer(name, 4, { learningRate: 0.01, decayRate: 0.9 }, (n) => new Float64Array(n));
  o.step(x, Float64Array.from(g1));
  o.step(x, Float64Array.from(g2));
  return x;
}

describe('optimisers (Torch optim semantics)', () => {
  it('sgd: x −= lr·g', () => {
    const x = run('sgd');
    for (let j = 0; j < 4; j++) expect(x[j]).toBeCloseTo(x0[j] - 0.01 * g1[j] - 0.01 * g2[j], 15);
  });
  it('rmsprop: m = α·m + (1−α)·g²; x −= lr·g/(√m + 1e-8)', () => {
    const x = run('rmsprop');
    for (let j = 0; j < 4; j++) {
      const m1 = 0.1 * g1[j] ** 2;
      const xa = x0[j] - (0.01 * g1[j]) / (Math.sqrt(m1) + 1e-8);
      const m2 = 0.9 * m1 + 0.1 * g2[j] ** 2;
      expect(x[j]).toBeCloseTo(xa - (0.01 * g2[j]) / (Math.sqrt(m2) + 1e-8), 14);
    }
  });
  it('adam: bias-corrected step size lr·√(1−β2ᵗ)/(1−β1ᵗ)', () => {
    const x = run('adam');
    for (let j = 0; j < 4; j++) {
      let m = 0.1 * g1[j];
      let v = 0.001 * g1[j] ** 2;
      let xj = x0[j] - ((0.01 * Math.sqrt(1 - 0.999)) / (1 - 0.9)) * (m / (Math.sqrt(v) + 1e-8));
      m = 0.9 * m + 0.1 * g2[j];
      v = 0.999 * v + 0.001 * g2[j] ** 2;
      xj -= ((0.01 * Math.sqrt(1 - 0.999 ** 2)) / (1 - 0.9 ** 2)) * (m / (Math.sqrt(v) + 1e-8));
      expect(x[j]).toBeCloseTo(xj, 14);
    }
  });
  it('clipping is an element-wise clamp; 0 disables it', () => {
    const g = Float64Array.from([-7, 3, 5.5, -5]);
    clipGradients(g, 5);
    expect([...g]).toEqual([-5, 3, 5, -5]);
    const h = Float64Array.from([-7, 9]);
    clipGradients(h, 0);
    expect([...h]).toEqual([-7, 9]);
  });
  it('rejects an unknown optimiser by name, listing the known ones', () => {
    expect(() => new Optimizer('adagrad' as 'sgd', 1, { learningRate: 1 })).toThrow(
      /^unknown optimizer "adagrad"; use one of rmsprop, adam, sgd$/,
    );
  });
  it('state buffers: rmsprop m, adam m and v, sgd none; each as long as the parameters', () => {
    const names = (name: 'rmsprop' | 'adam' | 'sgd') => [...new Optimizer(name, 7, { learningRate: 1 }).state.keys()];
    expect(names('rmsprop')).toEqual(['m']);
    expect(names('adam')).toEqual(['m', 'v']);
    expect(names('sgd')).toEqual([]);
    for (const buf of new Optimizer('adam', 7, { learningRate: 1 }).state.values()) expect(buf.length).toBe(7);
  });
  it('norm is the Euclidean norm', () => {
    expect(norm(Float64Array.from([3, -4, 0, 12]))).toBe(13);
    expect(norm(new Float32Array(0))).toBe(0);
  });
});
