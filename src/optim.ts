/**
 * Optimisers over the flat parameter and gradient buffers, with Torch's `optim` semantics so that
 * char-rnn's hyper-parameters mean the same here:
 *   rmsprop:  m = α·m + (1−α)·g²;  x −= lr·g / (√m + ε)          (α = decay rate, ε = 1e-8)
 *   adam:     m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 *             x −= lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε)           (β1 0.9, β2 0.999, ε 1e-8)
 *   sgd:      x −= lr·g
 * Their state is a list of flat buffers laid out like the parameters (saved in checkpoints as
 * `optimizer.<name>`), plus a step count.
 */
import type { Float } from './kernels.js';

export type OptimName = 'rmsprop' | 'adam' | 'sgd';
export const OPTIMIZERS: readonly OptimName[] = ['rmsprop', 'adam', 'sgd'];

export interface OptimOptions {
  learningRate: number;
  /** RMSprop's α (char-rnn's --decay_rate). Default 0.95. */
  decayRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export class Optimizer {
  readonly name: OptimName;
  learningRate: number;
  readonly decayRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Number of updates made so far. */
  stepCount = 0;
  /** Named state buffers (rmsprop: m; adam: m, v; sgd: none). */
  readonly state: Map<string, Float>;

  constructor(name: OptimName, size: number, options: OptimOptions, alloc: (n: number) => Float = (n) => new Float32Array(n)) {
    if (!OPTIMIZERS.includes(name)) throw new Error(`unknown optimizer ${JSON.stringify(name)}; use one of ${OPTIMIZERS.join(', ')}`);
    this.name = name;
    this.learningRate = options.learningRate;
    this.decayRate = options.decayRate ?? 0.95;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    const names = name === 'rmsprop' ? ['m'] : name === 'adam' ? ['m', 'v'] : [];
    this.state = new Map(names.map((n) => [n, alloc(size)]));
  }

  /** One update of x from gradient g (both flat, same layout). */
  step(x: Float, g: Float): void {
    const lr = this.learningRate;
    const eps = this.epsilon;
    this.stepCount++;
    if (this.name === 'sgd') {
      for (let j = 0; j < x.length; j++) x[j] -= lr * g[j];
    } else if (this.name === 'rmsprop') {
      const m = this.state.get('m')!;
      const a = this.decayRate;
      for (let j = 0; j < x.length; j++) {
        const gj = g[j];
        const mj = a * m[j] + (1 - a) * gj * gj;
        m[j] = mj;
        x[j] -= (lr * gj) / (Math.sqrt(mj) + eps);
      }
    } else {
      const m = this.state.get('m')!;
      const v = this.state.get('v')!;
      const b1 = this.beta1;
      const b2 = this.beta2;
      const t = this.stepCount;
      const stepSize = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
      for (let j = 0; j < x.length; j++) {
        const gj = g[j];
        const mj = b1 * m[j] + (1 - b1) * gj;
        const vj = b2 * v[j] + (1 - b2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        x[j] -= (stepSize * mj) / (Math.sqrt(vj) + eps);
      }
    }
  }
}

/** Element-wise clamp of g to [−c, c] (char-rnn's grad_clip). */
export function clipGradients(g: Float, c: number): void {
  if (!(c > 0)) return;
  for (let j = 0; j < g.length; j++) {
    const v = g[j];
    if (v > c) g[j] = c;
    else if (v < -c) g[j] = -c;
  }
}

/** The Euclidean norm of a flat buffer. */
export function norm(a: Float): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j] * a[j];
  return Math.sqrt(s);
}
