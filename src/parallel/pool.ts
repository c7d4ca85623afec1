/**
 * Training and validation on several threads over one shared WebAssembly memory (issue 13).
 *
 * The split: data-parallel over the B streams of a batch. Thread w runs forward and backward
 * for its streams (a contiguous range, sizes differing by at most one) with the same weights,
 * its gradient goes to a buffer of its own, then the threads sum the gradients element range by
 * element range, always in thread order (thread 0's += thread 1's + thread 2's …), and thread 0
 * runs the one clip + optimiser update as before. Why this and not splitting each matrix
 * product across threads (measured with experiments/step-profile.mjs, one thread, B 50, T 50):
 * the matrix products are 86% of an S-lstm step, 87% of S-grid, 96% of M-lstm, 97% of M-grid;
 * the LSTM cells, log-softmax and gathers are 10%, 11%, 3%, 2%; the update 0.5–0.8%.
 * Splitting the products would leave the rest serial (up to 14% for the S models, an Amdahl
 * ceiling of ~1.75× on two threads) and need a synchronisation per product — 2·T per layer on
 * the recurrence alone, 200+ per S step — while splitting the streams parallelises everything
 * but the update and the gradient sum, with three synchronisations per step (the shared copies
 * of shared.ts, the passes, the gradient sum).
 *
 * Exactness: the streams are independent until the gradient sum, so for a given thread count a
 * step is deterministic (fixed split, fixed summation order), and it equals the one-thread step
 * up to float rounding: each part scales its loss by the whole batch's size and scored targets (Model's `part`),
 * draws exactly the whole batch's dropout numbers for its rows (the generator is a counter), and
 * the per-part products and the sum round differently than one product over all rows. One
 * thread never comes here (the Trainer calls the model directly, as before).
 *
 * Memory: the coordinator's kernels own the memory and allocate everything (each worker's
 * gradient buffer, an arena for its activations and kernel scratch, and the packed weights and
 * first-layer tables all threads share: shared.ts), before the workers start; a worker's kernels only bump-allocate inside their arena (every
 * instance of the module would otherwise start allocating at the same address). Batches and
 * carried state go through a small SharedArrayBuffer (`io`).
 *
 * Synchronisation: one control slot of Int32 words per worker; the coordinator posts a job by
 * bumping JOB and notifying, does its own part (thread 0 is the coordinator's thread), then
 * waits on each worker's DONE with Atomics.wait in slices of WAIT_MS. A worker that throws or
 * whose thread ends reports it in its slot (and wakes the coordinator); one that gives no sign
 * within `answerMs` (a crash that ran no code) is given up on. Either way the job throws a
 * WorkerError and the pool is closed. Atomics.wait on the coordinator's thread is fine in Node;
 * in a browser the coordinator must itself run in a worker (a page's main thread may not wait).
 * Nothing here uses a Node API: the spawner passed in is the platform's edge (node.ts).
 */
import { cellOf } from '../nn/cells.js';
import type { Model, State } from '../nn/model.js';
import type { Rng } from '../nn/rng.js';
import { WasmKernels } from '../nn/wasm.js';
import { C, JOB, SLOT, STATUS, TEXT_BYTES, type WorkerInit, ioBytes, ioViews, readText } from './protocol.js';
import { type SharedLayout, type SharedViews, planShared, prepare, sharedViews, withShared } from './shared.js';

/** Starts a worker running runWorker(init) (worker-core.ts); returns how to stop it. */
export type Spawn = (init: WorkerInit) => { terminate(): void };

/** A worker failed (threw, or its thread ended or stopped answering): the run cannot go on. */
export class WorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerError';
  }
}

export interface DataParallelOptions {
  /** How long to wait for a worker that gives no sign of life, at least (ms). Default 60 000. */
  answerMs?: number;
  /** How long a worker thread may take to start (ms). Default 20 000. */
  startMs?: number;
}

const WAIT_MS = 200;
/** How long a worker thread may take to start (load its script, compile, build its model). */
const START_MS = 20_000;

/** The thread count that runs for a batch of B streams: at most one thread per stream. */
export function effectiveThreads(requested: number, B: number): number {
  return Math.max(1, Math.min(Math.floor(requested), B));
}

/**
 * The thread count to use when none is asked for: the cores, at most 8 (the 2-thread scaling
 * measured here leaves little to gain beyond; see docs/performance.md) and at most B; one for a
 * step too small to share (measured on 2 cores, grid_lstm 2×16, B 4, T 8: 0.11 ms a step on
 * one thread, 0.18 on two; 2×32, B 8, T 16: 0.80 and 0.68), i.e. below 2¹⁸ of B·T·L·N² (×2 for
 * grid_lstm, twice the products; for gru and rnn scaled by their products too, ¾ and ¼ of the
 * lstm's: not measured).
 */
export function defaultThreadCount(cores: number, o: { model: string; rnnSize: number; numLayers: number; batchSize: number; seqLength: number }): number {
  const scale = o.model === 'grid_lstm' ? 2 : o.model === 'gru' ? 0.75 : o.model === 'rnn' ? 0.25 : 1;
  const work = o.batchSize * o.seqLength * o.numLayers * o.rnnSize * o.rnnSize * scale;
  if (work < 2 ** 18) return 1;
  return effectiveThreads(Math.min(8, cores), o.batchSize);
}

/** Streams [first, first+count) of thread w when B streams are split over W threads. */
export function partOf(w: number, W: number, B: number): { first: number; count: number } {
  const base = Math.floor(B / W);
  const extra = B % W; // the first `extra` threads take one stream more
  return { first: w * base + Math.min(w, extra), count: base + (w < extra ? 1 : 0) };
}

/**
 * Bytes a worker's arena needs for `count` streams × T steps: its activations (as
 * checkTrainingFits counts them), the gradient of the first-layer tables (at most [V, 4N]), the
 * packed input of the weight-gradient products, with one stream the one-row copy of every weight
 * (the kernels' 'mv' packing: the recurrent products of a step have one row), the kernels'
 * scratch, plus a margin (untouched pages of the reservation cost no memory). The packed weights
 * and the tables themselves are shared (shared.ts), allocated once by the coordinator.
 */
function arenaBytes(model: Model, count: number, T: number, scratch: number): number {
  const { rnnSize: N, numLayers: L, vocabSize: V } = model.config;
  const M = count * T;
  // packMvSize (assembly/kernels.ts): at most N·⌈K/4⌉·4 floats per weight [N, K].
  const oneRow = count === 1 ? model.weightMatrices().reduce((a, m) => a + m.outSize * 4 * Math.ceil(m.inSize / 4), 0) : 0;
  const floats = oneRow + M * 8 * Math.ceil(N / 8) + V * 4 * N + M * (N * (19 * L + 10) + V) + 4 * M;
  return Math.ceil((scratch + 4 * floats * 1.5 + (4 << 20)) / 16) * 16;
}

export class DataParallel {
  /** Threads that run (thread 0 is the caller's). */
  readonly threads: number;
  readonly B: number;
  readonly T: number;
  private readonly model: Model;
  private readonly ctrl: Int32Array;
  private readonly results: Float64Array;
  private readonly texts: SharedArrayBuffer;
  private readonly io: ReturnType<typeof ioViews>;
  private readonly workers: { terminate(): void }[] = [];
  private readonly answerMs: number;
  private readonly startMs: number;
  private job = 0;
  /** The scored targets (≥ 0) of the batch loaded last. */
  private scored = 0;
  /** When the workers were started (Date.now()). */
  private readonly started = Date.now();
  private closed = false;
  /** Reduction ranges per thread over the gradient elements. */
  private readonly ranges: [number, number][] = [];
  /** Thread 0's range of its gradient and of the other threads' (views of the shared memory). */
  private readonly reduce0: { g0: Float32Array; others: Float32Array[] };
  /** The packed weights and first-layer tables the threads share (shared.ts), and who prepares what. */
  private readonly layout: SharedLayout;
  private readonly shared: SharedViews;

  constructor(model: Model, B: number, T: number, threads: number, spawn: Spawn, options: DataParallelOptions = {}) {
    const k = model.kernels;
    if (!(k instanceof WasmKernels)) {
      throw new Error(`--threads ${threads} needs the WebAssembly kernels (--kernels wasm); with --kernels ${k.name} use --threads 1`);
    }
    this.model = model;
    this.B = B;
    this.T = T;
    this.threads = effectiveThreads(threads, B);
    this.answerMs = options.answerMs ?? 60_000;
    this.startMs = options.startMs ?? START_MS;
    const W = this.threads;
    const { numLayers: L, rnnSize: N } = model.config;
    const P = model.params.length;
    this.ctrl = new Int32Array(new SharedArrayBuffer(4 * SLOT * W));
    const results = new SharedArrayBuffer(8 * W);
    this.results = new Float64Array(results);
    this.texts = new SharedArrayBuffer(TEXT_BYTES * W);
    const Nc = cellOf(model.config.model).hasCell ? N : 0; // gru and rnn carry h only
    const io = new SharedArrayBuffer(ioBytes(B, T, L, N, Nc));
    this.io = ioViews(io, B, T, L, N, Nc);
    const chunk = Math.ceil(P / W / 16) * 16;
    for (let w = 0; w < W; w++) this.ranges.push([Math.min(P, w * chunk), Math.min(P, (w + 1) * chunk)]);
    // Everything the workers use is allocated here, before they start (see the note above).
    const otherGrads = Array.from({ length: W - 1 }, () => k.alloc(P));
    const grads = [model.grads as Float32Array, ...otherGrads];
    const [lo, hi] = this.ranges[0];
    this.reduce0 = { g0: grads[0].subarray(lo, hi), others: otherGrads.map((g) => g.subarray(lo, hi)) };
    const counts = Array.from({ length: W }, (_, w) => partOf(w, W, B).count);
    this.layout = planShared(model, k, counts, T);
    this.shared = sharedViews(model, k, this.layout);
    const arenas = Array.from({ length: W - 1 }, (_, i) => {
      const a = k.alloc(arenaBytes(model, partOf(i + 1, W, B).count, T, k.scratchBytes()) / 4);
      return { start: a.byteOffset, end: a.byteOffset + a.byteLength };
    });
    for (let w = 1; w < W; w++) {
      this.workers.push(
        spawn({
          index: w,
          threads: W,
          module: k.module,
          variant: k.variant,
          memory: k.memory,
          config: model.config,
          paramsAt: model.params.byteOffset,
          gradsAt: grads.map((g) => g.byteOffset),
          size: P,
          arena: arenas[w - 1],
          control: this.ctrl.buffer as SharedArrayBuffer,
          results,
          texts: this.texts,
          io,
          B,
          T,
          shared: this.layout,
        }),
      );
    }
  }

  /**
   * forwardBackward of the batch x, y ([B, T] row-major) from `carry` on all threads, the
   * gradients summed into model.grads; rng (the model's) advances as in one pass. Returns the
   * batch's mean loss and the final state (fresh buffers).
   */
  forwardBackward(x: ArrayLike<number>, y: ArrayLike<number>, carry: State, rng: Rng): { loss: number; finalState: State } {
    this.loadBatch(x, y);
    for (let l = 0; l < carry.h.length; l++) {
      this.io.h[l].set(carry.h[l]);
      this.io.c[l].set(carry.c[l]);
    }
    const start = rng.state;
    const k = this.model.kernels as WasmKernels;
    // The packed weights and the first layer's tables, once for all threads; then the passes.
    this.run(JOB.PREPARE_TRAIN, 0, () => this.prepare0(this.layout.train[0]));
    const loss = this.run(JOB.TRAIN, start, () => {
      const { batch, state, part } = this.part0();
      return withShared(k, this.shared, () => this.model.forwardBackward(batch, state, { rng, part, tables: this.shared.tables }));
    });
    // Thread 0's gradient += the others', each thread over its range of elements.
    this.run(JOB.REDUCE, 0, () => {
      for (const g of this.reduce0.others) k.addInPlace(this.reduce0.g0, g);
      return { loss: 0, finalState: null };
    });
    return { loss, finalState: { h: this.io.h.map((h) => h.slice()), c: this.io.c.map((c) => c.slice()) } };
  }

  /** Starts a validation pass: a zero state for every stream. */
  resetState(): void {
    for (const a of [...this.io.h, ...this.io.c]) a.fill(0);
  }

  /** forward (inference) of one validation batch, carrying the state from the previous one; its mean loss. */
  evaluateBatch(x: ArrayLike<number>, y: ArrayLike<number>): number {
    this.loadBatch(x, y);
    const k = this.model.kernels as WasmKernels;
    this.run(JOB.PREPARE_EVAL, 0, () => this.prepare0(this.layout.eval[0]));
    return this.run(JOB.EVAL, 0, () => {
      const { batch, state, part } = this.part0();
      return withShared(k, this.shared, () => this.model.inference(() => this.model.forward(batch, state, { part }), this.shared.tables));
    });
  }

  /**
   * Resolves once every worker runs (its model built), letting the event loop turn meanwhile;
   * throws WorkerError (and closes) as a job would if one fails or does not start in time. A
   * browser needs it before the first job: a worker blocked in Atomics.wait cannot start
   * workers of its own (their scripts load through its event loop). Node does not.
   */
  async whenStarted(): Promise<void> {
    for (let w = 1; w < this.threads; w++) {
      const s = w * SLOT;
      while (Atomics.load(this.ctrl, s + C.READY) === 0) {
        const status = Atomics.load(this.ctrl, s + C.STATUS);
        if (status !== STATUS.OK) {
          this.close();
          throw new WorkerError(`worker thread ${w} ${status === STATUS.THREW ? 'failed' : 'stopped'}: ${readText(this.texts, w)}`);
        }
        if (Date.now() - this.started > this.startMs) {
          this.close();
          throw new WorkerError(`worker thread ${w} did not start in ${this.startMs / 1000} s`);
        }
        await new Promise<void>((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  /** Thread 0's share of the shared copies' preparation. */
  private prepare0(tasks: SharedLayout['train'][number]) {
    prepare(this.model, this.model.kernels as WasmKernels, this.shared, tasks);
    return { loss: 0, finalState: null };
  }

  /** Tests: makes worker 1 throw at its next job. */
  failWorkerForTest(): void {
    this.run(JOB.THROW, 0, () => ({ loss: 0, finalState: null }));
  }

  /** Ends the worker threads (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (let w = 1; w < this.threads; w++) {
      Atomics.store(this.ctrl, w * SLOT + C.QUIT, 1);
      Atomics.notify(this.ctrl, w * SLOT + C.JOB);
    }
    for (const w of this.workers) w.terminate();
  }

  private loadBatch(x: ArrayLike<number>, y: ArrayLike<number>): void {
    this.io.x.set(x);
    this.io.y.set(y);
    let scored = 0;
    for (let j = 0; j < y.length; j++) if (y[j] >= 0) scored++;
    this.scored = scored;
  }

  /** Thread 0's part: its streams of the batch and of the state (views of io). */
  private part0() {
    const { count } = partOf(0, this.threads, this.B);
    const N = this.model.config.rnnSize;
    const T = this.T;
    const rows = (a: Float32Array) => a.subarray(0, count * N);
    return {
      batch: { x: this.io.x.subarray(0, count * T), y: this.io.y.subarray(0, count * T), batchSize: count, seqLength: T },
      state: { h: this.io.h.map(rows), c: this.io.c.map(rows) },
      part: { first: 0, total: this.B, scored: this.scored },
    };
  }

  /**
   * Posts job `kind` to every worker, runs `own` (thread 0's part) here, waits for all; returns
   * the sum of the parts' losses in thread order. Throws WorkerError if a worker failed.
   */
  private run(kind: number, rngState: number, own: () => { loss: number; finalState: State | null }): number {
    if (this.closed) throw new WorkerError('the worker threads were closed after a failure; start the run again');
    const W = this.threads;
    const job = ++this.job;
    for (let w = 1; w < W; w++) {
      const s = w * SLOT;
      const { first, count } = partOf(w, W, this.B);
      const ctrl = this.ctrl;
      ctrl[s + C.KIND] = kind;
      ctrl[s + C.FIRST] = first;
      ctrl[s + C.COUNT] = count;
      ctrl[s + C.TOTAL] = this.B;
      ctrl[s + C.T] = this.T;
      ctrl[s + C.SCORED] = this.scored;
      ctrl[s + C.RNG] = rngState | 0;
      ctrl[s + C.LO] = this.ranges[w][0];
      ctrl[s + C.HI] = this.ranges[w][1];
      Atomics.store(ctrl, s + C.JOB, job);
      Atomics.notify(ctrl, s + C.JOB);
    }
    const t0 = Date.now();
    let r: { loss: number; finalState: State | null };
    try {
      r = own();
    } catch (e) {
      // Thread 0 failed: let the others finish this job before the caller sees the error.
      this.waitAll(job, t0);
      throw e;
    }
    if (r.finalState !== null) {
      const { count } = partOf(0, W, this.B);
      const N = this.model.config.rnnSize;
      for (let l = 0; l < r.finalState.h.length; l++) {
        this.io.h[l].set(r.finalState.h[l].subarray(0, count * N));
        this.io.c[l].set(r.finalState.c[l].subarray(0, count * N)); // (gru, rnn: empty)
      }
    }
    this.waitAll(job, t0);
    let loss = r.loss;
    for (let w = 1; w < W; w++) loss += this.results[w];
    return loss;
  }

  /** Waits until every worker has finished `job`; throws WorkerError (and closes) if one failed. */
  private waitAll(job: number, t0: number): void {
    // A worker gets at least answerMs, and 20× what thread 0's own part took, before it is given up on.
    const ownMs = Date.now() - t0;
    const deadline = Date.now() + Math.max(this.answerMs, 20 * ownMs);
    for (let w = 1; w < this.threads; w++) {
      const s = w * SLOT;
      for (;;) {
        const status = Atomics.load(this.ctrl, s + C.STATUS);
        if (status !== STATUS.OK) {
          this.close();
          const what = status === STATUS.THREW ? 'failed' : 'stopped';
          throw new WorkerError(`worker thread ${w} ${what}: ${readText(this.texts, w)}`);
        }
        const done = Atomics.load(this.ctrl, s + C.DONE);
        if (done === job) break;
        if (Atomics.load(this.ctrl, s + C.READY) === 0 && Date.now() - this.started > this.startMs) {
          this.close();
          throw new WorkerError(
            `worker thread ${w} did not start in ${this.startMs / 1000} s (its script is dist/parallel/worker.js: run \`npm run build\`)`,
          );
        }
        if (Date.now() > deadline) {
          this.close();
          throw new WorkerError(`worker thread ${w} gave no answer in ${Math.round((Date.now() - t0) / 1000)} s (it may have crashed)`);
        }
        Atomics.wait(this.ctrl, s + C.DONE, done, WAIT_MS);
      }
    }
  }
}
