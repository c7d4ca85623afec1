// Throwaway (issue 13): the round trip of posting a job to a worker thread blocked in
// Atomics.wait and waiting for its answer — the least a split of one product would cost per
// product, for `eval`/`sample` at batch 1 — beside the time of one batch-1 step.
//   node experiments/atomics-latency.mjs
import { Worker } from 'node:worker_threads';
import { Model } from '../dist/index.js';
import { loadWasmKernelsSync } from '../dist/nn/wasm-node.js';

const sab = new SharedArrayBuffer(16);
const ctrl = new Int32Array(sab);
const w = new Worker(`
  const { workerData } = require('node:worker_threads');
  const c = new Int32Array(workerData);
  let seen = 0;
  for (;;) {
    Atomics.wait(c, 0, seen);
    seen = Atomics.load(c, 0);
    if (seen < 0) break;
    Atomics.store(c, 1, seen);
    Atomics.notify(c, 1);
  }`, { eval: true, workerData: sab });
await new Promise((r) => setTimeout(r, 300));
const trip = (n) => {
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) {
    Atomics.store(ctrl, 0, i + trip.base);
    Atomics.notify(ctrl, 0);
    while (Atomics.load(ctrl, 1) !== i + trip.base) Atomics.wait(ctrl, 1, Atomics.load(ctrl, 1), 100);
  }
  trip.base += n;
  return ((performance.now() - t0) / n) * 1000;
};
trip.base = 0;
trip(2000);
const us = [trip(5000), trip(5000), trip(5000)].sort((a, b) => a - b)[1];
console.log(`Atomics round trip to a waiting worker: ${us.toFixed(1)} µs (median of 3 × 5000)`);
Atomics.store(ctrl, 0, -1);
Atomics.notify(ctrl, 0);

for (const [kind, N, L] of [['lstm', 128, 2], ['grid_lstm', 128, 2], ['lstm', 512, 3], ['grid_lstm', 512, 3]]) {
  const m = new Model({ model: kind, vocabSize: 65, rnnSize: N, numLayers: L }, { kernels: loadWasmKernelsSync() });
  const st = m.zeroState(1);
  const tok = [3];
  m.inference(() => {
    for (let i = 0; i < 200; i++) m.step(tok, st);
    const n = N > 200 ? 500 : 5000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) m.step(tok, st);
    const per = ((performance.now() - t0) / n) * 1000;
    // Products per step: lstm 2 per layer above the first (+1 for the first's recurrence) + decoder; grid 3 per layer + decoder.
    const products = kind === 'lstm' ? 2 * L - 1 + 1 : 3 * L - 1 + 1;
    console.log(`${kind} ${L}×${N}: batch-1 step ${per.toFixed(1)} µs, ${products} products → ${(per / products).toFixed(1)} µs per product`);
  });
}
