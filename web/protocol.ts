/**
 * The messages between the page (web/main.ts) and the training worker (web/train-worker.ts).
 * The worker owns the model: the page only sends requests and draws what comes back, so it
 * never freezes while a step runs.
 */
import type { ModelKind } from 'grid-lstm';

/** What the page lets you choose (the rest is the library's DEFAULT_TRAIN_OPTIONS, char-rnn's). */
export interface RunConfig {
  model: ModelKind;
  numLayers: number;
  rnnSize: number;
  tieWeights: boolean;
  dropout: number;
  learningRate: number;
  batchSize: number;
  seqLength: number;
  threads: number;
  /** Validate every this many steps. */
  evalValEvery: number;
  seed: number;
}

/** A text to train on, and its name (recorded in checkpoints as the run's --data). */
export interface TextSource {
  text: string;
  name: string;
}

export interface SampleRequest {
  length: number;
  temperature: number;
  primetext: string;
  argmax: boolean;
  seed: number;
}

export type ToWorker =
  /** Measure a step of this configuration on this text (parameter count, chars/s). */
  | { type: 'estimate'; id: number; source: TextSource; config: RunConfig }
  /** A new run (the current one, if any, is dropped); `fromLoaded`: from the loaded checkpoint's weights. */
  | { type: 'start'; source: TextSource; config: RunConfig; fromLoaded: boolean }
  | { type: 'pause' }
  | { type: 'resume' }
  /** Drop the run (or the loaded model). */
  | { type: 'reset' }
  /** Automatic samples while training: every `seconds` s at `temperature` (0 s: none). */
  | { type: 'autoSample'; seconds: number; temperature: number }
  | { type: 'sample'; id: number; request: SampleRequest }
  /** The mean loss of a text (evaluateIds, as `grid-lstm eval`). */
  | { type: 'evalText'; id: number; text: string }
  /** The cells and gates over a short text (trace). */
  | { type: 'trace'; id: number; text: string }
  /** The checkpoint's bytes (safetensors), as the CLI writes it. */
  | { type: 'save'; id: number }
  | { type: 'load'; id: number; name: string; bytes: ArrayBuffer };

/** What the model is: shown beside the controls. */
export interface ModelInfo {
  model: ModelKind;
  numLayers: number;
  rnnSize: number;
  tieWeights: boolean;
  vocabSize: number;
  params: number;
  /** Where it comes from: "trained here" or the checkpoint's file name. */
  origin: string;
}

/** One layer of a trace: each kind the cell has, [n, N] position-major. */
export interface TraceLayer {
  time: Record<string, Float32Array>;
  depth: Record<string, Float32Array> | null;
}

export interface TraceReply {
  chars: string[];
  /** [n] the loss of predicting the next character (NaN at the last). */
  loss: Float32Array;
  layers: TraceLayer[];
  rnnSize: number;
  model: ModelKind;
  /** Characters of the asked text the model does not know (left out). */
  dropped: string[];
}

export type RunState = 'idle' | 'starting' | 'training' | 'paused' | 'done' | 'failed';

export type FromWorker =
  /** `threads`: what the library allows here (browserThreads() in this worker), and why. */
  | { type: 'ready'; kernels: string; isolated: boolean; cores: number; threads: number; why: string }
  | { type: 'estimate'; id: number; params: number; vocabSize: number; charsPerSecond: number; threads: number; error?: string }
  | {
      type: 'started';
      info: ModelInfo;
      threads: number;
      trainBatches: number;
      valBatches: number;
      totalIterations: number;
      charsPerStep: number;
    }
  | {
      type: 'progress';
      /** [iteration, loss] of the steps since the last message. */
      steps: [number, number][];
      iteration: number;
      epoch: number;
      learningRate: number;
      /** Training characters per second over the last second or so. */
      charsPerSecond: number;
    }
  | { type: 'val'; iteration: number; loss: number }
  | { type: 'autoSample'; iteration: number; temperature: number; text: string }
  | { type: 'state'; state: RunState; message?: string }
  | { type: 'model'; info: ModelInfo | null }
  | { type: 'reply'; id: number; ok: true; sample?: string; loss?: { loss: number; bpc: number; predictions: number }; trace?: TraceReply; bytes?: ArrayBuffer; name?: string }
  | { type: 'reply'; id: number; ok: false; error: string };
