/**
 * grid-lstm: the library API. The CLI (src/cli.ts) is a thin layer over these.
 */
export { type Float, type DType, type Kernels, TsKernels, sigmoid } from './kernels.js';
export {
  type ModelConfig,
  type FullModelConfig,
  type ModelKind,
  type TensorSpec,
  normalizeConfig,
  paramLayout,
  paramCount,
} from './params.js';
export {
  Model,
  createModel,
  type State,
  type Batch,
  type ForwardOptions,
  type BackwardOptions,
  type ForwardResult,
  type ForwardBackwardResult,
  type CreateModelOptions,
} from './model.js';
export { gradcheck, relativeError, type GradcheckOptions, type GradcheckResult } from './gradcheck.js';
export { Rng } from './rng.js';
