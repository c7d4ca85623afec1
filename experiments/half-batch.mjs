// Throwaway (issue 13): what a thread's smaller share of the batch costs by itself. One thread,
// chars/s of forwardBackward at B 50 and at B 25 (each of two threads' share), T 50, V 65,
// alternating, 3 rounds; prints both and the ratio (below 1: the half batch is slower per character).
//   npm run build && node experiments/half-batch.mjs M-lstm [simd|relaxed]
// (The plain-SIMD build unless told: the bench and the CLI run the relaxed one where it loads.)
import { Model, loadWasmKernelsSync } from '../dist/index.js';

const name = process.argv[2] ?? 'S-lstm';
const variant = process.argv[3] ?? 'simd';
const cfg = { 'S-lstm': ['lstm', 128, 2], 'S-grid': ['grid_lstm', 128, 2], 'M-lstm': ['lstm', 512, 3], 'M-grid': ['grid_lstm', 512, 3] }[name];
const T = 50, V = 65;
const stepper = (B) => {
  const k = loadWasmKernelsSync({ variant });
  const m = new Model({ model: cfg[0], vocabSize: V, rnnSize: cfg[1], numLayers: cfg[2] }, { kernels: k });
  const x = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
  const y = Int32Array.from({ length: B * T }, (_, i) => (i * 104729 + 3) % V);
  let carry = m.zeroState(B);
  return () => {
    carry = m.forwardBackward({ x, y, batchSize: B, seqLength: T }, carry).finalState;
  };
};
const steps = { 50: stepper(50), 25: stepper(25) };
const reps = cfg[1] > 200 ? 2 : 10;
const rate = { 50: [], 25: [] };
for (const B of [50, 25]) steps[B]();
for (let round = 0; round < 3; round++) {
  for (const B of round % 2 ? [25, 50] : [50, 25]) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) steps[B]();
    rate[B].push(((B * T * reps) / (performance.now() - t0)) * 1000);
  }
}
console.log(
  `${name}, one thread: B 50 ${rate[50].map(Math.round).join(' ')} chars/s; B 25 ${rate[25].map(Math.round).join(' ')}; ` +
    `B 25 / B 50 ${rate[25].map((v, i) => (v / rate[50][i]).toFixed(3)).join(' ')}`,
);
