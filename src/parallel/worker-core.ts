/**
 * The loop a worker thread runs (no platform API: src/parallel/worker.ts starts it in a Node
 * worker thread; a Web Worker would call runWorker with the same WorkerInit). It waits on its
 * job word with Atomics.wait (allowed in any worker), runs the job on its streams with a Model
 * whose parameters are views of the coordinator's (nothing is copied), and reports through
 * the control words. It never allocates outside its arena (see WasmKernels' `attach`).
 */
import { cellOf } from '../nn/cells.js';
import { Model, type State } from '../nn/model.js';
import { Rng } from '../nn/rng.js';
import { WasmKernels } from '../nn/wasm.js';
import { C, JOB, SLOT, STATUS, type WorkerInit, fail, ioViews } from './protocol.js';
import { prepare, sharedViews, withShared } from './shared.js';

export { fail };

/** How long one Atomics.wait lasts before the loop looks at QUIT again (ms). */
const WAIT_MS = 1000;

export function runWorker(init: WorkerInit): void {
  const ctrl = new Int32Array(init.control);
  const slot = init.index * SLOT;
  try {
    const kernels = new WasmKernels(init.module, init.variant, { attach: { memory: init.memory, arena: init.arena } });
    const buf = init.memory.buffer;
    const view = (at: number) => new Float32Array(buf, at, init.size);
    const grads = init.gradsAt.map(view);
    const model = new Model(init.config, { kernels, buffers: { params: view(init.paramsAt), grads: grads[init.index] } });
    const results = new Float64Array(init.results);
    const N = init.config.rnnSize;
    const io = ioViews(init.io, init.B, init.T, init.config.numLayers, N, cellOf(init.config.model).hasCell ? N : 0);
    const shared = sharedViews(model, kernels, init.shared);
    const mine = { train: init.shared.train[init.index], eval: init.shared.eval[init.index] };
    Atomics.store(ctrl, slot + C.READY, 1);
    let seen = 0; // job numbers start at 1 (the first may be posted before this thread runs)
    for (;;) {
      // Wait for the next job (with a timeout, to notice QUIT even if a notify is missed).
      while (Atomics.load(ctrl, slot + C.JOB) === seen) {
        if (Atomics.load(ctrl, slot + C.QUIT) !== 0) return;
        Atomics.wait(ctrl, slot + C.JOB, seen, WAIT_MS);
      }
      if (Atomics.load(ctrl, slot + C.QUIT) !== 0) return;
      seen = Atomics.load(ctrl, slot + C.JOB);
      const kind = ctrl[slot + C.KIND];
      if (kind === JOB.REDUCE) {
        // Thread 0's gradient += thread 1's + thread 2's ..., in that order, over [lo, hi).
        const lo = ctrl[slot + C.LO];
        const hi = ctrl[slot + C.HI];
        const g0 = grads[0].subarray(lo, hi);
        for (let w = 1; w < grads.length; w++) kernels.addInPlace(g0, grads[w].subarray(lo, hi));
      } else if (kind === JOB.PREPARE_TRAIN || kind === JOB.PREPARE_EVAL) {
        prepare(model, kernels, shared, kind === JOB.PREPARE_TRAIN ? mine.train : mine.eval);
      } else if (kind === JOB.TRAIN || kind === JOB.EVAL) {
        const first = ctrl[slot + C.FIRST];
        const count = ctrl[slot + C.COUNT];
        const total = ctrl[slot + C.TOTAL];
        const T = ctrl[slot + C.T];
        const rows = (a: Float32Array) => a.subarray(first * N, (first + count) * N); // (c of gru, rnn: empty)
        const state: State = { h: io.h.map(rows), c: io.c.map(rows) };
        const batch = {
          x: io.x.subarray(first * T, (first + count) * T),
          y: io.y.subarray(first * T, (first + count) * T),
          batchSize: count,
          seqLength: T,
        };
        const rng = new Rng(0);
        rng.state = ctrl[slot + C.RNG] >>> 0;
        const part = { first, total, scored: ctrl[slot + C.SCORED] };
        const r = withShared(kernels, shared, () =>
          kind === JOB.TRAIN
            ? model.forwardBackward(batch, state, { rng, part, tables: shared.tables })
            : model.inference(() => model.forward(batch, state, { part }), shared.tables),
        );
        // The final state goes back into this worker's rows (read before: forward copied them).
        for (let l = 0; l < state.h.length; l++) {
          state.h[l].set(r.finalState.h[l]);
          state.c[l].set(r.finalState.c[l]);
        }
        results[init.index] = r.loss;
      } else if (kind === JOB.THROW) {
        throw new Error('a test asked this worker to fail');
      }
      ctrl[slot + C.STATUS] = STATUS.OK;
      Atomics.store(ctrl, slot + C.DONE, seen);
      Atomics.notify(ctrl, slot + C.DONE);
    }
  } catch (e) {
    fail(init, STATUS.THREW, (e as Error)?.message ?? String(e));
  }
}

