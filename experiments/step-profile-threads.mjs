// Throwaway (issue 13): per-kernel time of thread 0 in a training step at 1 vs 2 threads.
//   node experiments/step-profile-threads.mjs M-lstm
import { Model, Optimizer, clipGradients } from '../dist/index.js';
import { loadWasmKernelsSync } from '../dist/nn/wasm-node.js';
import { DataParallel } from '../dist/parallel/pool.js';
import { spawnNodeWorker } from '../dist/parallel/node.js';
const B = 50, T = 50, V = 98;
const cfg = { 'S-lstm': ['lstm', 128, 2], 'M-lstm': ['lstm', 512, 3], 'M-grid': ['grid_lstm', 512, 3] }[process.argv[2] ?? 'M-lstm'];
for (const threads of [1, 2, 1, 2]) {
  const k = loadWasmKernelsSync();
  const m = new Model({ model: cfg[0], vocabSize: V, rnnSize: cfg[1], numLayers: cfg[2] }, { kernels: k });
  const opt = new Optimizer('rmsprop', m.params.length, { learningRate: 2e-3 }, (n) => k.alloc(n));
  const dp = threads > 1 ? new DataParallel(m, B, T, threads, spawnNodeWorker) : null;
  const x = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
  const y = Int32Array.from({ length: B * T }, (_, i) => (i * 104729 + 3) % V);
  let carry = m.zeroState(B);
  const time = {};
  const wrap = (obj, fn, key = fn) => {
    const orig = obj[fn].bind(obj);
    obj[fn] = (...a) => { const t0 = performance.now(); const r = orig(...a); time[key] = (time[key] ?? 0) + performance.now() - t0; return r; };
  };
  const step = () => {
    carry = (dp ? dp.forwardBackward(x, y, carry, m.rng) : m.forwardBackward({ x, y, batchSize: B, seqLength: T }, carry)).finalState;
    clipGradients(m.grads, 5, k);
    opt.step(m.params, m.grads, k);
  };
  step(); step();
  for (const fn of ['matmulXWt', 'matmulXWt2', 'matmulDyW', 'matmulDyTX', 'lstmForward', 'lstmBackward']) wrap(k, fn);
  wrap(m, 'forwardBackward', 'fb(thread0)');
  if (dp) { wrap(dp, 'run', 'run'); }
  const reps = 3;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) step();
  const total = (performance.now() - t0) / reps;
  console.log(`${threads} thread(s): step ${total.toFixed(0)} ms; ` + Object.entries(time).map(([f, v]) => `${f} ${(v / reps).toFixed(0)}`).join(', '));
  dp?.close();
}
