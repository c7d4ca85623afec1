/**
 * Quick single-thread throughput of the kernels: the WebAssembly SIMD build (and the relaxed-SIMD
 * build when the runtime accepts it) against the TypeScript reference, on the shapes a char-rnn
 * sized model uses (B = 50, T = 50, H = 128 or 512, V ≈ 100).
 *
 *   npm run build && node bench/kernels-quick.mjs
 *   node --experimental-wasm-relaxed-simd bench/kernels-quick.mjs     # Node 20, relaxed SIMD too
 *
 * Each figure is the best of many timed calls within a time budget (robust to a busy machine).
 */
import { TsKernels } from '../dist/kernels.js';
import { Model } from '../dist/model.js';
import { loadWasmKernelsSync, wasmAvailable } from '../dist/wasm.js';

const BUDGET_MS = Number(process.env.BENCH_MS ?? 1500);

function best(f) {
  f();
  f();
  let t = Infinity;
  const end = performance.now() + BUDGET_MS;
  do {
    const t0 = performance.now();
    f();
    t = Math.min(t, performance.now() - t0);
  } while (performance.now() < end);
  return t / 1e3; // seconds per call
}

function filled(k, n, scale = 1) {
  const a = k.alloc(n);
  for (let j = 0; j < a.length; j++) a[j] = (Math.random() * 2 - 1) * scale;
  return a;
}

const kernels = [new TsKernels('float32'), loadWasmKernelsSync({ variant: 'simd' })];
if (wasmAvailable('relaxed')) kernels.push(loadWasmKernelsSync({ variant: 'relaxed' }));

const rows = [];
const report = (what, k, value, unit) => rows.push({ what, kernels: k.name, value: value.toFixed(unit === 'GFLOP/s' ? 2 : 1), unit });

for (const [M, N, K] of [[2500, 512, 128], [50, 512, 128], [2500, 2048, 512], [50, 2048, 512], [2500, 100, 128]]) {
  for (const k of kernels) {
    const ts = k.name === 'ts';
    if (ts && M * N * K > 2e8) continue; // the reference takes seconds there
    const X = filled(k, M * K), W = filled(k, N * K), b = filled(k, N), Y = filled(k, M * N);
    const flops = 2 * M * N * K;
    report(`matmulXWt  M=${M} N=${N} K=${K}`, k, flops / best(() => k.matmulXWt(Y, X, W, b, M, N, K, false)) / 1e9, 'GFLOP/s');
    if (ts) continue;
    const dX = k.alloc(M * K), dW = k.alloc(N * K), db = k.alloc(N);
    report(`matmulDyW  M=${M} N=${N} K=${K}`, k, flops / best(() => k.matmulDyW(dX, Y, W, M, N, K)) / 1e9, 'GFLOP/s');
    report(`matmulDyTX M=${M} N=${N} K=${K}`, k, flops / best(() => k.matmulDyTX(dW, db, Y, X, M, N, K)) / 1e9, 'GFLOP/s');
  }
}

{
  const [M, N, V] = [2500, 128, 100];
  for (const k of kernels) {
    const g = filled(k, 4 * M * N, 3), cp = filled(k, M * N), c = k.alloc(M * N), tc = k.alloc(M * N), h = k.alloc(M * N);
    const g0 = g.slice();
    report(`lstmForward  M=${M} N=${N}`, k, (M * N) / best(() => { g.set(g0); k.lstmForward(g, cp, c, tc, h, M, N); }) / 1e6, 'M units/s');
    const dh = filled(k, M * N), dc = filled(k, M * N), dG = k.alloc(4 * M * N);
    report(`lstmBackward M=${M} N=${N}`, k, (M * N) / best(() => k.lstmBackward(g, cp, tc, dh, dc, dG, dc, M, N)) / 1e6, 'M units/s');
    const logits = filled(k, M * V, 5), l0 = logits.slice();
    const targets = Int32Array.from({ length: M }, () => Math.floor(Math.random() * V));
    report(`logSoftmaxNll M=${M} V=${V}`, k, (M * V) / best(() => { logits.set(l0); k.logSoftmaxNll(logits, targets, M, V); }) / 1e6, 'M logits/s');
  }
}

{
  // One training step (forward + backward) of a char-rnn sized model.
  const config = { model: 'grid_lstm', vocabSize: 65, rnnSize: 128, numLayers: 2 };
  const [B, T] = [50, 50];
  const x = Array.from({ length: B * T }, () => Math.floor(Math.random() * 65));
  const y = Array.from({ length: B * T }, () => Math.floor(Math.random() * 65));
  for (const k of kernels) {
    const model = new Model(config, { kernels: k });
    const state = model.zeroState(B);
    const t = best(() => model.forwardBackward({ x, y, batchSize: B, seqLength: T }, state));
    report(`grid_lstm H=128 L=2 B=50 T=50 step`, k, t * 1e3, 'ms');
  }
}

console.table(rows);
