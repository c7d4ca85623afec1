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
import { type Float, type Kernels, TsKernels } from '../nn/kernels.js';

/** The kernels used when none are given (plain TypeScript; works on float32 and float64 buffers). */
const REFERENCE = new TsKernels('float64');

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

  /** One update of x from gradient g (both flat, same layout), by the given kernels. */
  step(x: Float, g: Float, kernels: Kernels = REFERENCE): void {
    this.stepCount++;
    const lr = this.learningRate;
    if (this.name === 'sgd') {
      for (let j = 0; j < x.length; j++) x[j] -= lr * g[j];
    } else if (this.name === 'rmsprop') {
      kernels.rmsprop(x, g, this.state.get('m')!, lr, this.decayRate, this.epsilon);
    } else {
      const t = this.stepCount;
      const stepSize = (lr * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
      kernels.adam(x, g, this.state.get('m')!, this.state.get('v')!, lr, this.beta1, this.beta2, this.epsilon, stepSize);
    }
  }
}

/** Element-wise clamp of g to [−c, c] (char-rnn's grad_clip). */
export function clipGradients(g: Float, c: number, kernels: Kernels = REFERENCE): void {
  kernels.clip(g, c);
}

/** The Euclidean norm of a flat buffer. */
export function norm(a: Float): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j] * a[j];
  return Math.sqrt(s);
}
