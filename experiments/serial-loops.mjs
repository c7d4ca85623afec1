// Throwaway (issue 13): the serial work after the threads' gradient sum, on thread 0, beside
// the clip + RMSprop update: Trainer.step's passes over all parameters (the check for
// non-finite gradients, and the norms of the parameters and gradients of the progress line),
// as plain JavaScript loops (before) and as the kernels' firstNonFinite and sumSquares2 (now).
// ms per step, averaged over 20.
//   npm run build && node experiments/serial-loops.mjs
import { Model, Optimizer, clipGradients, loadWasmKernelsSync, norm } from '../dist/index.js';

// As Trainer.step's were.
function firstNonFinite(a) {
  for (let j = 0; j < a.length; j++) {
    const v = a[j];
    if (v - v !== 0) return j;
  }
  return -1;
}
for (const [name, kind, N, L] of [['S-lstm', 'lstm', 128, 2], ['M-lstm', 'lstm', 512, 3]]) {
  const k = loadWasmKernelsSync({ variant: 'simd' });
  const m = new Model({ model: kind, vocabSize: 65, rnnSize: N, numLayers: L }, { kernels: k });
  const opt = new Optimizer('rmsprop', m.params.length, { learningRate: 2e-3 }, (n) => k.alloc(n));
  for (let j = 0; j < m.grads.length; j++) m.grads[j] = Math.sin(j) * 1e-3;
  const t = { check: 0, update: 0, norms: 0, kcheck: 0, knorms: 0 };
  const reps = 20;
  for (let i = 0; i < reps + 3; i++) {
    const a = performance.now();
    firstNonFinite(m.grads);
    const b = performance.now();
    clipGradients(m.grads, 5, k);
    opt.step(m.params, m.grads, k);
    const c = performance.now();
    norm(m.params);
    norm(m.grads);
    const d = performance.now();
    k.firstNonFinite(m.grads);
    const e = performance.now();
    k.sumSquares2(m.params, m.grads);
    const f = performance.now();
    if (i >= 3) {
      t.check += b - a;
      t.update += c - b;
      t.norms += d - c;
      t.kcheck += e - d;
      t.knorms += f - e;
    }
  }
  const ms = (v) => (v / reps).toFixed(2);
  console.log(
    `${name} (${m.params.length} parameters): clip + RMSprop ${ms(t.update)} ms; JS loops: non-finite check ${ms(t.check)} ms, ` +
      `two norms ${ms(t.norms)} ms; kernels: firstNonFinite ${ms(t.kcheck)} ms, sumSquares2 ${ms(t.knorms)} ms`,
  );
}
