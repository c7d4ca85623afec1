// Throwaway (issue 13, half batch): where one thread's B 25 step loses against B 50, per kernel.
// One thread, forwardBackward + clip + RMSprop at B 50 and B 25 (T 50, V 65), alternating in
// rounds; prints each kernel's µs per character at both and the ratio (above 1: dearer per
// character at B 25).   npm run build && node experiments/half-batch-profile.mjs M-lstm [variant]
import { Model, Optimizer, clipGradients, loadWasmKernelsSync } from '../dist/index.js';

const name = process.argv[2] ?? 'M-lstm';
const variant = process.argv[3] ?? 'simd';
const cfg = { 'S-lstm': ['lstm', 128, 2], 'S-grid': ['grid_lstm', 128, 2], 'M-lstm': ['lstm', 512, 3], 'M-grid': ['grid_lstm', 512, 3] }[name];
const T = 50, V = 65;
const fns = ['matmulXWt', 'matmulXWt2', 'matmulDyW', 'matmulDyTX', 'lstmForward', 'lstmBackward', 'logSoftmaxNll', 'logSoftmaxNllBackward', 'gatherRows', 'scatterAddRows'];
function stepper(B) {
  const k = loadWasmKernelsSync({ variant });
  const m = new Model({ model: cfg[0], vocabSize: V, rnnSize: cfg[1], numLayers: cfg[2] }, { kernels: k });
  const opt = new Optimizer('rmsprop', m.params.length, { learningRate: 2e-3 }, (n) => k.alloc(n));
  const x = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
  const y = Int32Array.from({ length: B * T }, (_, i) => (i * 104729 + 3) % V);
  let carry = m.zeroState(B);
  const time = { total: 0, update: 0 };
  for (const fn of fns) {
    const orig = k[fn].bind(k);
    time[fn] = 0;
    k[fn] = (...a) => { const t0 = performance.now(); const r = orig(...a); time[fn] += performance.now() - t0; return r; };
  }
  const step = () => {
    const t0 = performance.now();
    carry = m.forwardBackward({ x, y, batchSize: B, seqLength: T }, carry).finalState;
    const t1 = performance.now();
    clipGradients(m.grads, 5, k);
    opt.step(m.params, m.grads, k);
    const t2 = performance.now();
    time.update += t2 - t1;
    time.total += t2 - t0;
  };
  return { step, time, chars: B * T };
}
const s = { 50: stepper(50), 25: stepper(25) };
const reps = cfg[1] > 200 ? 2 : 10;
for (const B of [50, 25]) { s[B].step(); for (const key in s[B].time) s[B].time[key] = 0; }
let n = { 50: 0, 25: 0 };
for (let round = 0; round < 6; round++) {
  for (const B of round % 2 ? [25, 50] : [50, 25]) for (let i = 0; i < reps; i++) { s[B].step(); n[B]++; }
}
const per = (B, key) => (s[B].time[key] * 1000) / (n[B] * s[B].chars); // µs per character
const rows = ['total', ...fns, 'update'];
let other50 = per(50, 'total'), other25 = per(25, 'total');
for (const key of rows.slice(1)) { other50 -= per(50, key); other25 -= per(25, key); }
console.log(`${name} (${variant}), µs per character at B 50 / B 25 (ratio):`);
for (const key of rows) {
  if (per(50, key) === 0 && per(25, key) === 0) continue;
  console.log(`  ${key.padEnd(22)} ${per(50, key).toFixed(3)} ${per(25, key).toFixed(3)} (${(per(25, key) / per(50, key)).toFixed(3)})`);
}
console.log(`  ${'JS/rest'.padEnd(22)} ${other50.toFixed(3)} ${other25.toFixed(3)} (${(other25 / other50).toFixed(3)})`);
