// Throwaway (issue 13): the work that depends only on the weights, per training step and per
// validation batch on one thread: packing the weight matrices for the products (the kernels'
// packXWt / packDyW) and filling the first layer's tables (Model's computeTables). With several
// threads each thread used to do all of it; src/parallel/shared.ts now does it once, shared.
// B 50, T 50, V 65; ms per step / batch, averaged.
//   npm run build && node experiments/duplicated-work.mjs S-grid
import { Model, Optimizer, clipGradients, loadWasmKernelsSync } from '../dist/index.js';

const name = process.argv[2] ?? 'S-lstm';
const cfg = { 'S-lstm': ['lstm', 128, 2], 'S-grid': ['grid_lstm', 128, 2], 'M-lstm': ['lstm', 512, 3], 'M-grid': ['grid_lstm', 512, 3] }[name];
const B = 50, T = 50, V = 65;
const k = loadWasmKernelsSync({ variant: 'simd' });
const m = new Model({ model: cfg[0], vocabSize: V, rnnSize: cfg[1], numLayers: cfg[2] }, { kernels: k });
const opt = new Optimizer('rmsprop', m.params.length, { learningRate: 2e-3 }, (n) => k.alloc(n));
const x = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
const y = Int32Array.from({ length: B * T }, (_, i) => (i * 104729 + 3) % V);
let carry = m.zeroState(B);
const train = () => {
  carry = m.forwardBackward({ x, y, batchSize: B, seqLength: T }, carry).finalState;
  clipGradients(m.grads, 5, k);
  opt.step(m.params, m.grads, k);
};
const val = () => m.inference(() => m.forward({ x, y, batchSize: B, seqLength: T }, m.zeroState(B)));
train();
val();
const time = {};
const wrap = (obj, fn, key) => {
  const orig = obj[fn].bind(obj);
  obj[fn] = (...a) => {
    const t0 = performance.now();
    const r = orig(...a);
    time[key] = (time[key] ?? 0) + performance.now() - t0;
    return r;
  };
};
// (The module's exports object is frozen: wrap a copy.)
k.ex = Object.assign(Object.create(null), k.ex);
wrap(k.ex, 'packXWt', 'pack');
wrap(k.ex, 'packDyW', 'pack');
wrap(m, 'computeTables', 'tables');
const reps = cfg[1] > 200 ? 3 : 15;
for (const [what, fn] of [['training step', train], ['validation batch', val]]) {
  for (const key of Object.keys(time)) delete time[key];
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  const total = (performance.now() - t0) / reps;
  const pack = (time.pack ?? 0) / reps;
  const tables = (time.tables ?? 0) / reps;
  console.log(
    `${name} ${what}: ${total.toFixed(1)} ms; packing ${pack.toFixed(2)} ms, tables ${tables.toFixed(2)} ms ` +
      `(${((100 * (pack + tables)) / total).toFixed(1)}%)`,
  );
}
