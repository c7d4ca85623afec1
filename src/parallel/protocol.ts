/**
 * What the coordinator (src/parallel/pool.ts) and its workers (src/parallel/worker-core.ts)
 * share: the layout of the control words and of the batch/state exchange area. Plain
 * SharedArrayBuffers, no platform API: a Web Worker can use this as a Node worker thread does.
 */
import type { FullModelConfig } from '../nn/params.js';
import type { WasmMemory, WasmVariant } from '../nn/wasm.js';
import type { SharedLayout } from './shared.js';

/** Control words per worker (Int32), a slot of SLOT words each. */
export const SLOT = 16;
export const C = {
  /** Job number: the coordinator increments it to post a job (workers wait on it). */
  JOB: 0,
  /** The job number last finished (the coordinator waits on it). */
  DONE: 1,
  /** 0 ok; 1 the job threw; 2 the worker is gone (its message in the text area). */
  STATUS: 2,
  KIND: 3,
  /** This worker's streams: first and count, of a batch of TOTAL streams. */
  FIRST: 4,
  COUNT: 5,
  TOTAL: 6,
  /** Steps per stream. */
  T: 7,
  /** The dropout generator's state before the batch (a uint32, stored as its bits). */
  RNG: 8,
  /** Gradient reduction: this worker sums elements [LO, HI) of every thread's gradient. */
  LO: 9,
  HI: 10,
  /** Set by the coordinator to make the worker leave its loop. */
  QUIT: 11,
  /** Set by the worker once it runs (its model built): a worker that never starts is told apart. */
  READY: 12,
  /** The scored targets (≥ 0) of the whole batch, which the mean loss is over (Model's part.scored). */
  SCORED: 13,
} as const;

export const JOB = {
  /** forwardBackward of this worker's streams; gradient into its own buffer. */
  TRAIN: 1,
  /** Sum the threads' gradients over [LO, HI) into thread 0's, in thread order. */
  REDUCE: 2,
  /** forward (inference) of this worker's streams. */
  EVAL: 3,
  /** Throw (tests: a worker that fails). */
  THROW: 4,
  /** This worker's share of the shared copies before a training step, or a validation batch (shared.ts). */
  PREPARE_TRAIN: 5,
  PREPARE_EVAL: 6,
} as const;

export const STATUS = { OK: 0, THREW: 1, GONE: 2 } as const;

/** Bytes of the per-worker error text area. */
export const TEXT_BYTES = 1024;

/** What a worker is started with (structured-cloneable: postMessage / workerData). */
export interface WorkerInit {
  /** This worker's index (1 … threads−1; the coordinator's thread is 0). */
  index: number;
  threads: number;
  module: object;
  variant: WasmVariant;
  memory: WasmMemory;
  config: FullModelConfig;
  /** Byte offsets in the wasm memory: the parameters, and every thread's gradient buffer (index 0: the model's). */
  paramsAt: number;
  gradsAt: number[];
  /** Elements of the parameter buffer. */
  size: number;
  /** This worker's arena in the wasm memory, byte offsets [start, end). */
  arena: { start: number; end: number };
  /** Control words (Int32, SLOT per thread), results (Float64, one per thread), error texts. */
  control: SharedArrayBuffer;
  results: SharedArrayBuffer;
  texts: SharedArrayBuffer;
  /** The batch (x, y: Int32 [B, T]) and the carried state (Float32, per layer h [B, N] then c [B, N], or none for gru and rnn). */
  io: SharedArrayBuffer;
  B: number;
  T: number;
  /** The packed weights and first-layer tables that all threads share, and who prepares what. */
  shared: SharedLayout;
}

/**
 * Views of the exchange area for a batch of B streams × T steps of a model with L layers of N
 * units and cells of Nc (N for the LSTMs; 0 for gru and rnn, whose c views are empty).
 */
export function ioViews(io: SharedArrayBuffer, B: number, T: number, L: number, N: number, Nc: number) {
  const x = new Int32Array(io, 0, B * T);
  const y = new Int32Array(io, 4 * B * T, B * T);
  let at = 8 * B * T;
  const h: Float32Array[] = [];
  const c: Float32Array[] = [];
  for (let l = 0; l < L; l++) {
    h.push(new Float32Array(io, at, B * N));
    c.push(new Float32Array(io, at + 4 * B * N, B * Nc));
    at += 4 * B * (N + Nc);
  }
  return { x, y, h, c };
}

export function ioBytes(B: number, T: number, L: number, N: number, Nc: number): number {
  return 8 * B * T + 4 * L * B * (N + Nc);
}

/** Writes `message` (UTF-8, cut to the area) into thread `index`'s error text. */
export function writeText(texts: SharedArrayBuffer, index: number, message: string): void {
  const bytes = new TextEncoder().encode(message).subarray(0, TEXT_BYTES - 4);
  const area = new Uint8Array(texts, index * TEXT_BYTES, TEXT_BYTES);
  area.set(bytes, 4);
  new DataView(texts, index * TEXT_BYTES, 4).setUint32(0, bytes.length, true);
}

export function readText(texts: SharedArrayBuffer, index: number): string {
  const n = new DataView(texts, index * TEXT_BYTES, 4).getUint32(0, true);
  // (TextDecoder refuses views of shared memory: copy first)
  return new TextDecoder().decode(new Uint8Array(texts, index * TEXT_BYTES + 4, n).slice());
}

/**
 * Reports that worker `init.index` stopped (it threw, its thread is ending, or its Web Worker
 * never loaded) and wakes the coordinator. The first reason stays.
 */
export function fail(init: WorkerInit, status: number, message: string): void {
  const ctrl = new Int32Array(init.control);
  const slot = init.index * SLOT;
  if (Atomics.load(ctrl, slot + C.STATUS) !== STATUS.OK) return;
  writeText(init.texts, init.index, message);
  Atomics.store(ctrl, slot + C.STATUS, status);
  // Wake a coordinator waiting for this worker's answer.
  Atomics.add(ctrl, slot + C.DONE, 0);
  Atomics.notify(ctrl, slot + C.DONE);
}
