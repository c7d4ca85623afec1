/**
 * grid-lstm: the library API. The CLI (src/cli.ts) is a thin layer over these.
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
  loadDefaultCorpus,
  readTextFile,
  readCorpus,
  corpusFromText,
  type Corpus,
} from './train/data.js';
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
export {
  Trainer,
  FileCheckpointStore,
  NODE_PLATFORM,
  MemoryCheckpointStore,
  MEMORY_PLATFORM,
  type CheckpointStore,
  type TrainerPlatform,
  DEFAULT_TRAIN_OPTIONS,
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
} from './train/train.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  parseCheckpoint,
  checkpointBytes,
  CheckpointError,
  type CheckpointContents,
  type TrainingState,
  type CheckpointRecord,
  type TaskSpec,
} from './train/checkpoint.js';
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
export { writeSafetensors, parseSafetensors, readSafetensorsFile, SafetensorsError } from './train/safetensors.js';
export { WasmKernels } from './nn/wasm.js';
export { loadWasmKernels, loadWasmKernelsSync, wasmAvailable } from './nn/wasm-node.js';
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
export {
  buildReportData,
  decodeReportBlock,
  REPORT_FORMAT,
  DEFAULT_REPORT_KINDS,
  defaultReportKinds,
  DEFAULT_REPORT_BITS,
  type ReportData,
  type ReportOptions,
  type ReportBlock,
  type RankedUnit,
  type SaturationPlot,
} from './viz/report-data.js';
export { TEXT_FEATURES, textFeatures, type TextFeatureInfo } from './viz/report-features.js';
export { renderReport } from './viz/report.js';
