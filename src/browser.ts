/**
 * grid-lstm in a browser (package.json `exports` "." → `browser`): the library API of
 * src/index.ts without what needs Node (files, worker_threads, zlib). Nothing on this module's
 * import graph imports a Node built-in (test/browser-entry.test.ts checks it).
 *
 * The differences from Node's entry:
 * - loadWasmKernels() fetches build/kernels*.wasm (async; there is no loadWasmKernelsSync);
 * - checkpoints are bytes: parseCheckpoint(bytes, label) reads an ArrayBuffer or Uint8Array
 *   (e.g. `await file.arrayBuffer()`), checkpointBytes(model, vocab, extra) makes them (for a
 *   `new Blob([bytes])`), and the Trainer keeps its checkpoints in memory (trainer.store);
 * - threads are Web Workers, when the page is cross-origin isolated and the Trainer runs inside
 *   a worker (browserThreads() says what this page allows, and why).
 */
export { type Float, type DType, type Kernels, TsKernels, sigmoid } from './nn/kernels.js';
export {
  type ModelConfig,
  type FullModelConfig,
  type ModelKind,
  MODEL_KINDS,
  type TensorSpec,
  normalizeConfig,
  paramLayout,
  paramCount,
} from './nn/params.js';
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
  type Activations,
} from './nn/model.js';
export { gradcheck, numericalGradient, relativeError, type GradcheckOptions, type GradcheckResult } from './nn/gradcheck.js';
/** Both models step by step in float64, written for reading (src/reference/); also `grid-lstm/reference`. */
export * as reference from './reference/models.js';
export { Rng } from './nn/rng.js';
export {
  type Vocab,
  type Split,
  CharLoader,
  buildVocab,
  vocabFromChars,
  encode,
  decode,
  corpusFromText,
  type Corpus,
} from './train/data-core.js';
export { Optimizer, type OptimName, type OptimOptions, clipGradients, norm } from './train/optim.js';
export { sample, evaluateIds, forwardChunks, type SampleOptions, type TextLoss } from './infer/generate.js';
export {
  trace,
  traceChunks,
  traceValues,
  TRACE_KINDS,
  traceKinds,
  type TraceKind,
  type LstmName,
  type CellTrace,
  type LstmTrace,
  type LayerTrace,
  type TraceSpan,
  type TraceResult,
  type TraceInput,
  type TraceOptions,
} from './infer/trace.js';
export { Trainer, BROWSER_PLATFORM } from './train/train-browser.js';
export {
  DEFAULT_TRAIN_OPTIONS,
  MEMORY_PLATFORM,
  MemoryCheckpointStore,
  type CheckpointStore,
  type TrainerPlatform,
  type TrainOptions,
  type StepResult,
  type RunHooks,
  type RunOutcome,
  type EarlyStop,
  type KeepPolicy,
  keptCheckpoints,
  LOG_HEADER,
  LOG_HEADER_ADDITION,
  type Accuracy,
  TrainingDivergedError,
  CheckpointDirError,
} from './train/train-core.js';
export {
  parseCheckpoint,
  checkpointBytes,
  CheckpointError,
  type CheckpointContents,
  type TrainingState,
  type CheckpointRecord,
  type TaskSpec,
} from './train/checkpoint-core.js';
export {
  ADDITION_CHARS,
  ADDITION_PAD,
  ADDITION_EPOCH_BATCHES,
  ADDITION_VAL_SUMS,
  AdditionLoader,
  addDigits,
  additionMinLength,
  additionSequence,
  additionStreams,
  additionVocab,
  answerAccuracy,
  checkAdditionSpec,
  delimiterPosition,
  encodeSequence,
  evalStream,
  evaluateSums,
  parseSum,
  streamOperands,
  sumPrefix,
  type AdditionSpec,
  type AnswerCounts,
  type SumsResult,
} from './train/addition.js';
export { writeSafetensors, parseSafetensors, SafetensorsError } from './train/safetensors-core.js';
export { WasmKernels, type WasmVariant, type WasmKernelsOptions } from './nn/wasm.js';
export { loadWasmKernels, type BrowserWasmOptions } from './nn/wasm-browser.js';
export { browserThreads, defaultBrowserThreads, spawnWebWorker, type BrowserThreads } from './parallel/web.js';
export { defaultThreadCount, effectiveThreads, WorkerError } from './parallel/pool.js';
export {
  plotLossCurves,
  plotLossCurvesAscii,
  lossRunFromCheckpoint,
  accuracyRunFromCheckpoint,
  batchesPerEpoch,
  runLabel,
  smoothLosses,
  PlotInputError,
  type LossRun,
  type LossPlotOptions,
  type LossSvgOptions,
  type LossAsciiOptions,
  type PlotXAxis,
  type PlotCurves,
  type PlotTheme,
} from './viz/plot.js';
export { gridBlockDiagram, gridUnrolledDiagram, type DiagramOptions, type UnrolledDiagramOptions } from './viz/diagram.js';
export { TEXT_FEATURES, textFeatures, type TextFeatureInfo } from './viz/report-features.js';
