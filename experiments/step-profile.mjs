// Throwaway (issue 13): what fraction of a training step (forwardBackward + clip + update) is in
// the matrix products vs the rest, to choose how to split the work across threads.
//   node experiments/step-profile.mjs
import { Model, Optimizer, clipGradients } from '../dist/index.js';
import { loadWasmKernelsSync } from '../dist/nn/wasm-node.js';

const B = 50, T = 50, V = 65;
const configs = [
  ['S-lstm', 'lstm', 128, 2], ['S-grid', 'grid_lstm', 128, 2], ['M-lstm', 'lstm', 512, 3], ['M-grid', 'grid_lstm', 512, 3],
];
const only = process.argv[2];
for (const [name, model, N, L] of configs) {
  if (only && name !== only) continue;
  const k = loadWasmKernelsSync();
  const m = new Model({ model, vocabSize: V, rnnSize: N, numLayers: L }, { kernels: k });
  const opt = new Optimizer('rmsprop', m.params.length, { learningRate: 2e-3 }, (n) => k.alloc(n));
  const x = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
  const y = Int32Array.from({ length: B * T }, (_, i) => (i * 104729 + 3) % V);
  let carry = m.zeroState(B);
  const time = {};
  const wrap = (fn) => {
    const orig = k[fn].bind(k);
    k[fn] = (...a) => { const t0 = performance.now(); const r = orig(...a); time[fn] = (time[fn] ?? 0) + performance.now() - t0; return r; };
  };
  const step = () => {
    const r = m.forwardBackward({ x, y, batchSize: B, seqLength: T }, carry);
    carry = r.finalState;
    const t0 = performance.now();
    clipGradients(m.grads, 5, k);
    opt.step(m.params, m.grads, k);
    time.update = (time.update ?? 0) + performance.now() - t0;
  };
  const warm = N > 200 ? 2 : 5, reps = N > 200 ? 4 : 20;
  for (let i = 0; i < warm; i++) step();
  for (const fn of ['matmulXWt', 'matmulXWt2', 'matmulDyW', 'matmulDyTX', 'lstmForward', 'lstmBackward', 'logSoftmaxNll', 'logSoftmaxNllBackward', 'gatherRows', 'scatterAddRows']) wrap(fn);
  for (const key of Object.keys(time)) delete time[key];
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) step();
  const total = (performance.now() - t0) / reps;
  const per = Object.fromEntries(Object.entries(time).map(([f, v]) => [f, v / reps]));
  const mm = ['matmulXWt', 'matmulXWt2', 'matmulDyW', 'matmulDyTX'].reduce((s, f) => s + (per[f] ?? 0), 0);
  const cell = ['lstmForward', 'lstmBackward', 'logSoftmaxNll', 'logSoftmaxNllBackward', 'gatherRows', 'scatterAddRows'].reduce((s, f) => s + (per[f] ?? 0), 0);
  const upd = per.update ?? 0;
  console.log(
    `${name}: step ${total.toFixed(1)} ms (${((B * T) / total * 1000).toFixed(0)} chars/s); matmuls ${mm.toFixed(1)} ms (${(100 * mm / total).toFixed(0)}%), ` +
      `other kernels ${cell.toFixed(1)} ms (${(100 * cell / total).toFixed(0)}%), clip+update ${upd.toFixed(2)} ms (${(100 * upd / total).toFixed(1)}%), ` +
      `JS/rest ${(total - mm - cell - upd).toFixed(1)} ms (${(100 * (total - mm - cell - upd) / total).toFixed(0)}%)`,
  );
  console.log('   ' + Object.entries(per).map(([f, v]) => `${f} ${v.toFixed(2)}`).join(', '));
}
