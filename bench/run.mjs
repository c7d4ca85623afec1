// grid-lstm benchmarks (`npm run bench`): training throughput, matrix-product GFLOP/s against
// the machine's measured WASM peak, sampling latency, and TensorFlow.js-wasm side by side.
// Everything but the thread-scaling table is single-threaded, measured in one run with mitata (medians), so compare the
// ratios, not the absolute numbers of different runs. Writes bench/results.json.
//
//   npm run bench                 everything (a few minutes)
//   npm run bench -- --quick      skip the M configurations and TensorFlow.js
//   npm run bench -- --threads    only the thread-scaling table (training and validation chars/s
//                                 at 1, 2, … threads, taking turns over 3 rounds, or
//                                 --rounds R; src/parallel/)
//                                 and PyTorch's nn.LSTM on the S-lstm step at the same thread
//                                 counts right after grid-lstm's (bench/pytorch_lstm.py; needs
//                                 python3 with torch, else skipped)
//   npm run bench -- --browser    only the browser row: S-lstm and S-grid training chars/s in
//                                 headless Chromium at 1 and all threads beside Node's
//                                 (bench/browser.mjs; skipped without Chromium). Also
//                                 `node bench/run.mjs --browser` after `npm run build`
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { measure } from 'mitata';
import { CharLoader, Model, Optimizer, TsKernels, buildVocab, clipGradients, encode, loadDefaultCorpus, sample } from '../dist/index.js';
import { loadWasmKernelsSync } from '../dist/nn/wasm-node.js';
import { DataParallel } from '../dist/parallel/pool.js';
import { spawnNodeWorker } from '../dist/parallel/node.js';
import { findTorchPython } from '../python/find-python.mjs';
import { browserRow } from './browser.mjs';

const quick = process.argv.includes('--quick');
const threadsOnly = process.argv.includes('--threads');
const browserOnly = process.argv.includes('--browser');
const B = 50;
const T = 50;
const results = { date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, B, T, configs: {}, matmul: {}, sampling: {} };
const log = (s) => process.stdout.write(s + '\n');

const text = loadDefaultCorpus();
const vocab = buildVocab(text);
const ids = encode(text, vocab);
const V = vocab.chars.length;
const wasm = loadWasmKernelsSync({ variant: 'auto' });
results.kernels = wasm.name;
log(`grid-lstm bench: node ${process.version}, ${results.cpu}, kernels ${wasm.name}, V=${V}, B=${B}, T=${T}`);

const p50s = async (fn, opts) => (await measure(fn, opts)).p50 / 1e9;
const CONFIGS = [
  ['S-grid', 'grid_lstm', 128, 2],
  ['S-lstm', 'lstm', 128, 2],
  ['S-gru', 'gru', 128, 2],
  ['S-rnn', 'rnn', 128, 2],
  ['M-grid', 'grid_lstm', 512, 3],
  ['M-lstm', 'lstm', 512, 3],
];

// --- Thread scaling (src/parallel/): training and validation chars/s of each configuration at
// 1 thread (the model called directly, as the Trainer does) and at 2, 4, 8 threads where the
// machine has the cores (a DataParallel pool over the same model, one per count, all kept open).
// The counts take turns: `--rounds R` rounds (default 3), each measuring every count once, the
// order reversed every other round, so that a change in what else the machine does reaches all
// counts alike. A row gives the median chars/s of each count over the rounds and, in brackets,
// the median of the rounds' ratios to 1 thread (each round's counts measured seconds apart);
// the ratios' range over the rounds follows when there are several rounds.
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(`bench: --rounds must be a positive integer, got ${process.argv[roundsArg + 1]}`);
  process.exit(2);
}
const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
async function threadScaling() {
  const counts = [1, ...[2, 4, 8].filter((n) => n <= availableParallelism())];
  results.threads = {};
  results.threadRounds = ROUNDS;
  log(`\nthread scaling (B=${B}, T=${T}, ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}): training and validation chars/s, median over the rounds; median ratio to 1 thread${ROUNDS > 1 ? ' [its range]' : ''}`);
  const loader = new CharLoader(ids, B, T, { trainFrac: 0.95, valFrac: 0.05 });
  for (const [name, kind, H, L] of CONFIGS) {
    if (quick && name.startsWith('M')) continue;
    const k = loadWasmKernelsSync({ variant: 'auto' });
    const model = new Model({ model: kind, vocabSize: V, rnnSize: H, numLayers: L }, { kernels: k });
    const opt = new Optimizer('rmsprop', model.params.length, { learningRate: 2e-3, decayRate: 0.95 }, (n) => k.alloc(n));
    const x = new Int32Array(B * T), y = new Int32Array(B * T);
    const big = H > 128;
    const valBatches = big ? 4 : 16;
    const row = { load: loadavg()[0], train: {}, val: {}, rounds: [] };
    const pools = new Map(counts.filter((n) => n > 1).map((n) => [n, new DataParallel(model, B, T, n, spawnNodeWorker)]));
    let state = model.zeroState(B);
    const measureCount = async (n) => {
      const dp = pools.get(n) ?? null;
      // The carried state is the 1-thread model's or the pool's (each pool keeps its own).
      const step = () => {
        loader.nextBatch('train', x, y);
        const r = dp ? dp.forwardBackward(x, y, state, model.rng) : model.forwardBackward({ x, y, batchSize: B, seqLength: T }, state);
        state = r.finalState;
        clipGradients(model.grads, 5, k);
        opt.step(model.params, model.grads, k);
      };
      const s = await p50s(step, { min_samples: big ? 2 : 5, max_samples: big ? 3 : 20, min_cpu_time: big ? 5e8 : 1e9, warmup_samples: 1 });
      // Validation: `valBatches` batches carried from a zero state, as Trainer.evaluate runs them.
      const validate = () => {
        let st = model.zeroState(B);
        dp?.resetState();
        for (let b = 0; b < valBatches; b++) {
          loader.getBatch('val', b % loader.splitSizes.val, x, y);
          if (dp) dp.evaluateBatch(x, y);
          else st = model.inference(() => model.forward({ x, y, batchSize: B, seqLength: T }, st)).finalState;
        }
      };
      const v = await p50s(validate, { min_samples: big ? 2 : 3, max_samples: big ? 3 : 10, min_cpu_time: big ? 5e8 : 1e9, warmup_samples: 1 });
      return { train: (B * T) / s, val: (valBatches * B * T) / v };
    };
    for (let r = 0; r < ROUNDS; r++) {
      const round = {};
      for (const n of r % 2 ? [...counts].reverse() : counts) {
        state = model.zeroState(B);
        round[n] = await measureCount(n);
      }
      row.rounds.push(round);
    }
    for (const dp of pools.values()) dp.close();
    for (const n of counts) {
      row.train[n] = median(row.rounds.map((q) => q[n].train));
      row.val[n] = median(row.rounds.map((q) => q[n].val));
    }
    row.loadAfter = loadavg()[0];
    results.threads[name] = row;
    const fmt = (what) =>
      counts
        .map((n) => {
          const cell = `${Math.round(row[what][n]).toString().padStart(6)}`;
          if (n === 1) return cell;
          const ratios = row.rounds.map((q) => q[n][what] / q[1][what]);
          const range = ROUNDS > 1 ? ` [${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}]` : '';
          return `${cell} (${median(ratios).toFixed(2)}×)${range}`;
        })
        .join('  ');
    log(`  ${name.padEnd(7)} load ${row.load.toFixed(2)}–${row.loadAfter.toFixed(2)}  train ${fmt('train')}`);
    log(`  ${''.padEnd(7)}                 val   ${fmt('val')}`);
    if (name === 'S-lstm') pytorchSideBySide(row, counts);
  }
  log(`  (columns: ${counts.join(', ')} threads)`);
}

// PyTorch's nn.LSTM on the same S-lstm step (bench/pytorch_lstm.py), right after grid-lstm's
// S-lstm row so that both are measured under the same load; skipped when python3 has no torch.
function pytorchSideBySide(row, counts) {
  const script = fileURLToPath(new URL('./pytorch_lstm.py', import.meta.url));
  const torch = {};
  // The python with torch ($PYTHON, python3, /usr/bin/python3: python/find-python.mjs).
  const python = findTorchPython();
  if (!python) {
    log("  PyTorch skipped: no python3 with torch (install Debian's python3-torch, or set PYTHON)");
    return;
  }
  // OpenBLAS's own threads on top of torch's oversubscribe the cores (measured here with Debian's
  // torch 1.13: 2 torch threads over a 2-thread OpenBLAS gave 4 700–8 000 chars/s against 25 000–
  // 29 000 over a 1-thread OpenBLAS), so torch's threads alone do the parallel work.
  const env = { ...process.env, OPENBLAS_NUM_THREADS: '1' };
  for (const n of counts) {
    const r = spawnSync(python, [script, '--threads', String(n), '--rnn-size', '128', '--num-layers', '2', '--batch-size', String(B), '--seq-length', String(T), '--vocab', String(V)], { encoding: 'utf8', timeout: 300_000, env: { ...env, OMP_NUM_THREADS: String(n) } });
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) {
      log(`  PyTorch skipped: ${r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop() || 'no result'} (install python3 with torch, e.g. Debian's python3-torch)`);
      return;
    }
    torch[n] = JSON.parse(line.slice(7));
  }
  results.pytorch = { torch: torch[1].torch, train: Object.fromEntries(counts.map((n) => [n, torch[n].chars_per_s])) };
  const cells = counts.map((n) => `${Math.round(torch[n].chars_per_s).toString().padStart(6)} (grid-lstm ${(row.train[n] / torch[n].chars_per_s).toFixed(2)}×)`);
  log(`  PyTorch ${torch[1].torch} nn.LSTM, S-lstm train ${cells.join('  ')}  load after ${loadavg()[0].toFixed(2)}`);
}
// The browser row trains on the corpus's first 2 M characters (the same text in Node beside it).
const browserText = () => text.slice(0, 2_000_000);
if (browserOnly) {
  await browserRow(browserText(), log);
  process.exit(0);
}
if (threadsOnly) {
  await threadScaling();
  writeFileSync(new URL('./results-threads.json', import.meta.url), JSON.stringify(results, null, 2) + '\n');
  log('\nwrote bench/results-threads.json');
  process.exit(0);
}

// --- The peak: a register-only f32x4 multiply-add loop (96 flops per iteration). On a shared
// machine the rate available to one thread drifts from minute to minute, so besides the peak at
// the start, every matrix product is compared with the peak measured right before and after it
// (their mean): the percentages compare numbers taken seconds apart.
const ITERS = 2_000_000;
const peakOf = async (k, opts = { min_samples: 10, min_cpu_time: 5e8 }) => (96 * ITERS) / (await p50s(() => k.peakMulAdd(ITERS), opts)) / 1e9;
for (const variant of ['simd', 'relaxed']) {
  const k = variant === 'simd' ? loadWasmKernelsSync({ variant: 'simd' }) : wasm.variant === 'relaxed' ? wasm : null;
  if (!k) continue;
  results[`peak_${variant}_gflops`] = await peakOf(k);
}
const nearPeak = () => peakOf(wasm, { min_samples: 5, min_cpu_time: 1e8 });
log(`peak f32x4 multiply-add: ${results.peak_simd_gflops.toFixed(1)} GFLOP/s (simd)` +
  (results.peak_relaxed_gflops ? `, ${results.peak_relaxed_gflops.toFixed(1)} GFLOP/s (relaxed madd)` : ''));

// --- Matrix products at the shapes training uses (2·M·N·K flops each), run as training runs
// them: forwardBackward declares every weight matrix constant for its pass, so the kernels pack
// W once per pass. One sample of a product with W is therefore one such scope holding the calls
// of one pass: T one-step products (the recurrence), or one all-steps product; the packing is
// included. dW += dYᵀ·X has no constant operand.
function matmulShapes(H) {
  const M = T * B;
  return [
    ['X·Wᵀ all steps', 'matmulXWt', M, 4 * H, H],
    ['X·Wᵀ one step', 'matmulXWt', B, 4 * H, H],
    ['decoder X·Wᵀ', 'matmulXWt', M, V, H],
    ['dY·W all steps', 'matmulDyW', M, 4 * H, H],
    ['dY·W one step', 'matmulDyW', B, 4 * H, H],
    ['dW += dYᵀ·X', 'matmulDyTX', M, 4 * H, H],
  ];
}
async function gflops(k, op, M, N, K, samples) {
  const fill = (a) => { for (let j = 0; j < a.length; j++) a[j] = Math.sin(j) * 0.1; return a; };
  const calls = M === B ? T : 1; // products per pass
  let run;
  if (op === 'matmulXWt') {
    const Y = k.alloc(M * N), X = fill(k.alloc(M * K)), W = fill(k.alloc(N * K)), b = fill(k.alloc(N));
    run = () => k.withConstantWeights(W, N, K, () => { for (let t = 0; t < calls; t++) k.matmulXWt(Y, X, W, b, M, N, K, false); });
  } else if (op === 'matmulDyW') {
    const dX = k.alloc(M * K), dY = fill(k.alloc(M * N)), W = fill(k.alloc(N * K));
    run = () => k.withConstantWeights(W, N, K, () => { for (let t = 0; t < calls; t++) k.matmulDyW(dX, dY, W, M, N, K); });
  } else {
    const dW = k.alloc(N * K), db = k.alloc(N), dY = fill(k.alloc(M * N)), X = fill(k.alloc(M * K));
    run = () => k.matmulDyTX(dW, db, dY, X, M, N, K);
  }
  const s = await p50s(run, samples);
  return (2 * M * N * K * calls) / s / 1e9;
}
const ts = new TsKernels('float32');
for (const [label, H] of quick ? [['S', 128]] : [['S', 128], ['M', 512]]) {
  log(`\nmatrix products, ${label} shapes (H=${H}): GFLOP/s (% of the peak measured around it)`);
  for (const [name, op, M, N, K] of matmulShapes(H)) {
    const before = await nearPeak();
    const w = await gflops(wasm, op, M, N, K, { min_samples: 5, min_cpu_time: 3e8 });
    const localPeak = (before + (await nearPeak())) / 2;
    // The TypeScript reference only at the S shapes: at M shapes one call takes seconds.
    const t = label === 'S' ? await gflops(ts, op, M, N, K, { min_samples: 2, max_samples: 3, min_cpu_time: 1e8 }) : null;
    results.matmul[`${label} ${name} [${M}×${N}×${K}]`] = { wasm: w, ts: t, peak: localPeak, fractionOfPeak: w / localPeak };
    log(`  ${`${name} M=${M} N=${N} K=${K}`.padEnd(36)} wasm ${w.toFixed(1).padStart(5)} (${((100 * w) / localPeak).toFixed(0)}% of ${localPeak.toFixed(1)})` +
      (t === null ? '' : `   ts ${t.toFixed(2)}`));
  }
}

// --- Training: forward + backward + clip + RMSprop update on real batches of the corpus.
// Matrix-product flops per character of a training step as the issue counts them: forward
// 2·(in·out) per linear map (per layer 2 maps of G·N×N for lstm (G = 4), gru (3) and rnn (1), 4
// maps of 4N×N for grid_lstm, plus the decoder N×V), backward twice that. The model runs fewer:
// the first layer's maps of the embedding (1 for the stacked models, 2 for grid_lstm) are tables
// of V rows, computed once per step with their two backward products (3 products of V rows
// instead of B·T).
const BLOCKS = { grid_lstm: 4, lstm: 4, gru: 3, rnn: 1 };
const maps = (kind) => (kind === 'grid_lstm' ? 4 : 2);
const flopsPerChar = (kind, H, L) => 3 * (L * maps(kind) * 2 * H * BLOCKS[kind] * H + 2 * H * V);
const flopsRunPerChar = (kind, H, L) =>
  flopsPerChar(kind, H, L) - (maps(kind) / 2) * 3 * 2 * H * BLOCKS[kind] * H * (1 - V / (B * T));
log('\ntraining (B=50, T=50): characters per second; the matrix-product flops per second they imply, counting the products run (% of the peak around it)');
const loader = new CharLoader(ids, B, T, { trainFrac: 0.95, valFrac: 0.05 });
for (const [name, kind, H, L] of CONFIGS) {
  if (quick && name.startsWith('M')) continue;
  const k = loadWasmKernelsSync({ variant: 'auto' }); // a fresh memory per configuration
  const model = new Model({ model: kind, vocabSize: V, rnnSize: H, numLayers: L }, { kernels: k });
  const opt = new Optimizer('rmsprop', model.params.length, { learningRate: 2e-3, decayRate: 0.95 }, (n) => k.alloc(n));
  const x = new Int32Array(B * T), y = new Int32Array(B * T);
  let state = model.zeroState(B);
  const step = () => {
    loader.nextBatch('train', x, y);
    state = model.forwardBackward({ x, y, batchSize: B, seqLength: T }, state).finalState;
    clipGradients(model.grads, 5, k);
    opt.step(model.params, model.grads, k);
  };
  const big = H > 128;
  const before = await nearPeak();
  const s = await p50s(step, { min_samples: big ? 3 : 8, max_samples: big ? 4 : 40, min_cpu_time: big ? 1e9 : 3e9, warmup_samples: 1 });
  const localPeak = (before + (await nearPeak())) / 2;
  const cps = (B * T) / s;
  const gflops = (cps * flopsRunPerChar(kind, H, L)) / 1e9;
  results.configs[name] = {
    model: kind, rnnSize: H, numLayers: L, secondsPerStep: s, charsPerSecond: cps,
    mflopsPerChar: flopsPerChar(kind, H, L) / 1e6, mflopsRunPerChar: flopsRunPerChar(kind, H, L) / 1e6,
    gflops, peak: localPeak, fractionOfPeak: gflops / localPeak,
  };
  log(`  ${name.padEnd(8)} ${kind.padEnd(9)} ${L}×${H}: ${Math.round(cps).toString().padStart(7)} chars/s (${(s * 1000).toFixed(1)} ms/step; ` +
    `${(flopsPerChar(kind, H, L) / 1e6).toFixed(2)} MFLOP/char counted, ${(flopsRunPerChar(kind, H, L) / 1e6).toFixed(2)} run → ` +
    `${gflops.toFixed(1)} GFLOP/s, ${((100 * gflops) / localPeak).toFixed(0)}% of ${localPeak.toFixed(1)})`);
}

// --- Sampling at batch 1 (2×128): one model step + drawing a character, for 2000 characters
// (the CLI's default length) after a 4-character prime text. The figure includes sample()'s
// one-time preparation of the weights (model.inference()), spread over the 2004 steps.
// Each model on kernels of its own (as the CLI's sample command has), not in the memory that the
// M configurations above filled. The figure is the steady state, after a warm-up of 5 samplings
// (bench/tfjs.mjs warms up too): the first samplings of a process run while V8 is still
// compiling the code they run (WebAssembly functions start in its baseline compiler), the very
// first at about 3× the steady time (measured in a fresh process); it settles within a few
// samplings. The first sampling with each model here is printed too.
log('\nsampling, batch 1, 2×128: µs per character, steady state (the first sampling with the model in brackets)');
for (const kind of ['lstm', 'grid_lstm']) {
  const kernels = loadWasmKernelsSync({ variant: wasm.variant });
  const model = new Model({ model: kind, vocabSize: V, rnnSize: 128, numLayers: 2 }, { kernels });
  const n = 2000;
  const run = () => sample(model, vocab, { length: n, primetext: 'The ' });
  const t0 = performance.now();
  run();
  const first = ((performance.now() - t0) / 1e3 / (n + 4)) * 1e6;
  for (let w = 0; w < 4; w++) run();
  const s = await p50s(run, { min_samples: 10, min_cpu_time: 1e9 });
  results.sampling[kind] = { usPerChar: (s / (n + 4)) * 1e6, firstRunUsPerChar: first };
  log(`  ${kind.padEnd(9)} ${((s / (n + 4)) * 1e6).toFixed(1)} µs/char (${first.toFixed(0)})`);
}

// --- TensorFlow.js with the wasm backend, S-lstm, same sizes and optimiser (bench/tfjs.mjs).
if (!quick) {
  const script = fileURLToPath(new URL('./tfjs.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 600_000 });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
  if (line) {
    results.tfjs = JSON.parse(line.slice(7));
    const ours = results.configs['S-lstm'].charsPerSecond;
    results.tfjs.ratio_train = ours / results.tfjs.tfjs_train_chars_per_s;
    results.tfjs.ratio_sample = results.tfjs.tfjs_sample_us_per_char / results.sampling.lstm.usPerChar;
    log(`\nTensorFlow.js (${results.tfjs.backend}, ${results.tfjs.threads} thread): S-lstm ${Math.round(results.tfjs.tfjs_train_chars_per_s)} chars/s, ` +
      `sampling ${results.tfjs.tfjs_sample_us_per_char.toFixed(0)} µs/char; grid-lstm is ${results.tfjs.ratio_train.toFixed(1)}× faster training, ` +
      `${results.tfjs.ratio_sample.toFixed(1)}× faster sampling`);
    // Every TensorFlow.js formulation it ran (the headline above is its fastest).
    for (const [api, v] of Object.entries(results.tfjs.variants ?? {})) {
      if (v.failed) log(`  ${api.padEnd(7)} failed: ${v.failed}`);
      else log(`  ${api.padEnd(7)} ${String(v.train_chars_per_s).padStart(6)} chars/s (${(ours / v.train_chars_per_s).toFixed(1)}×), ` +
        `sampling ${v.sample_us_per_char.toFixed(0)} µs/char (${(v.sample_us_per_char / results.sampling.lstm.usPerChar).toFixed(1)}×)`);
    }
  } else {
    log(`\nTensorFlow.js bench did not run: ${(r.stderr ?? r.error?.message ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  }
}

await threadScaling();

results.browser = await browserRow(browserText(), log);

writeFileSync(new URL('./results.json', import.meta.url), JSON.stringify(results, null, 2) + '\n');
log('\nwrote bench/results.json');
