/**
 * Side-by-side reference: the S-lstm configuration (character LM, embedding V×128, 2 stacked
 * LSTM layers of 128 units, dense decoder to V, softmax cross-entropy; B = 50, T = 50; RMSprop
 * lr 2e-3, decay 0.95, eps 1e-8) trained and sampled with TensorFlow.js on its WebAssembly
 * backend, single thread.
 *
 *   npm run build && node bench/tfjs.mjs          # about 100 s on an idle 2-core machine
 *
 * Needs the dev dependencies @tensorflow/tfjs-core, -layers and -backend-wasm (the .wasm files
 * ship inside the npm package; nothing is downloaded at run time) and mitata. Without dist/ it
 * trains on random ids with V = 98.
 *
 * Env: TFJS_API=all|grads|basic|layers (default all: measure every variant, headline the fastest),
 *      BENCH_MS (time budget per timed training figure, default 4000; sampling gets half),
 *      TFJS_THREADS (passed to setThreadsCount, default 1).
 *
 * Variants (all on the `wasm` backend, same sizes, loss and optimiser):
 *   grads   hand-written: per step concat([x, h]) · W + b, gates; decoder and loss per step;
 *           tf.variableGrads, element-wise clip at 5 (as ours), optimizer.applyGradients. Every
 *           matMul has a tf.customGrad whose backward uses untransposed matMuls (see below).
 *   basic   the same loop with the stock ops: tf.basicLSTMCell and tf.matMul's own gradient.
 *   layers  tfl.sequential: one-hot → dense (embedding), tf.layers.lstm ×2 (returnSequences,
 *           sigmoid gates), dense; custom loss; model.trainOnBatch (no clipping: the layers
 *           optimisers have none). Sampling: a stateful batch-1 copy, model.predict.
 *
 * Figures: training characters per second = B·T / p50 of one train step (data prepared as
 * one-hot tensors beforehand; hidden state carried between batches in grads/basic); sampling µs
 * per character at batch 1 = p50 of one step (embedding gather, 2 LSTM layers, decoder, softmax
 * on the backend, the V probabilities read back, a character drawn in JS, state carried). Timed
 * with mitata's `measure` after warm-up. The last stdout line is `RESULT {json}`; its headline
 * figures are the fastest variant's (named in `api` and `sample_api`), all are in `variants`.
 *
 * What the wasm backend (4.22) forces here:
 * - no UnsortedSegmentSum kernel, so tf.gather (an embedding lookup) has no gradient on it:
 *   training feeds one-hot inputs and does the embedding as a matMul (the layers variant tries
 *   tf.layers.embedding first and reports the fallback);
 * - BatchMatMul with transposeA/transposeB takes a slow generic path (5-20× slower than the
 *   plain one at these shapes), and tf.matMul's gradient uses exactly that: hence `grads`;
 * - Slice/SplitV copy the whole input out of the heap for every piece, so one [T·B, ·] tensor
 *   split per time step is slow: inputs, decoder and loss are kept per step instead.
 * - In Node, importing tfjs-core alone registers no gradients (nor chained ops); they come with
 *   the tfjs-layers bundle, imported below.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setThreadsCount, getThreadsCount, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { measure } from 'mitata';

const B = 50;
const T = 50;
const H = 128;
const E = 128; // embedding size
const LAYERS = 2;
const LR = 2e-3;
const DECAY = 0.95;
const EPS = 1e-8;
const CLIP = 5;
const INIT = 0.08; // uniform(-0.08, 0.08), as char-rnn
const BUDGET_MS = Number(process.env.BENCH_MS ?? 4000);
const THREADS = Number(process.env.TFJS_THREADS ?? 1);
const WHICH = (process.env.TFJS_API ?? 'all').toLowerCase();
const WARMUP_TRAIN = 3;
const WARMUP_SAMPLE = 50;

const log = (...a) => console.log(...a);

// ---------------------------------------------------------------------------------------------
// Backend
// ---------------------------------------------------------------------------------------------

let threadsApi = 'setThreadsCount';
if (typeof setThreadsCount === 'function') setThreadsCount(THREADS);
else threadsApi = 'none (setThreadsCount missing)';
if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
await tf.ready();
const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
const multithread = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
// getThreadsCount reports the pool size of the threaded build; without it the backend runs on the
// main thread only.
const threads = multithread && typeof getThreadsCount === 'function' ? getThreadsCount() : 1;
const wasmFile = simd ? (multithread ? 'tfjs-backend-wasm-threaded-simd.wasm' : 'tfjs-backend-wasm-simd.wasm') : 'tfjs-backend-wasm.wasm';

// ---------------------------------------------------------------------------------------------
// Data: real batches from the built-in corpus (dist/train/data.js), else random ids with V = 98
// ---------------------------------------------------------------------------------------------

const NBATCH = 4; // distinct batches cycled through the timed steps
let V = 98;
let dataSource = 'random ids (V = 98)';
let batches; // [{ x: Int32Array(B*T) batch-major, y: Int32Array(B*T) }]
const distData = fileURLToPath(new URL('../dist/train/data.js', import.meta.url));
if (existsSync(distData)) {
  const { loadDefaultCorpus, buildVocab, encode } = await import('../dist/train/data.js');
  const text = loadDefaultCorpus();
  const vocab = buildVocab(text);
  const ids = encode(text, vocab);
  V = vocab.chars.length;
  dataSource = `built-in corpus (${ids.length} chars, V = ${V})`;
  // Like a char-rnn loader: B streams, each a contiguous slice of the text.
  const stride = Math.floor((ids.length - 1) / B);
  batches = [];
  for (let k = 0; k < NBATCH; k++) {
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        const p = b * stride + k * T + t;
        x[b * T + t] = ids[p];
        y[b * T + t] = ids[p + 1];
      }
    batches.push({ x, y });
  }
} else {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
  batches = [];
  for (let k = 0; k < NBATCH; k++) {
    const x = Int32Array.from({ length: B * T }, () => Math.floor(rnd() * V));
    const y = Int32Array.from({ length: B * T }, () => Math.floor(rnd() * V));
    batches.push({ x, y });
  }
}

// Sampling RNG (xorshift32) so that every variant draws the same way.
let rs = 0x9e3779b9;
function uniform() {
  rs ^= rs << 13;
  rs >>>= 0;
  rs ^= rs >>> 17;
  rs ^= rs << 5;
  rs >>>= 0;
  return rs / 2 ** 32;
}
function draw(p) {
  let u = uniform();
  for (let i = 0; i < p.length; i++) {
    u -= p[i];
    if (u <= 0) return i;
  }
  return p.length - 1;
}

/** One-hot float32 tensor of shape [...shape, V] for integer ids. */
const oneHot = (ids, shape) => tf.tidy(() => tf.cast(tf.oneHot(tf.tensor(Int32Array.from(ids), shape, 'int32'), V), 'float32'));

const initU = (shape, seed) => tf.randomUniform(shape, -INIT, INIT, 'float32', seed);

/** Summed-over-time, batch-mean NLL from logits [..., V] and one-hot targets of the same shape. */
function nll(yOneHot, logits) {
  return tf.div(tf.neg(tf.sum(tf.mul(yOneHot, tf.logSoftmax(logits)))), B);
}

async function timeIt(f, budgetMs, minSamples) {
  const stats = await measure(f, { min_cpu_time: budgetMs * 1e6, min_samples: minSamples, max_samples: 1e6 });
  return stats;
}

/** Tensors created and not disposed since `before` (should be 0). */
function checkLeak(before) {
  return tf.memory().numTensors - before;
}

/**
 * Warms up and times one sampled character; notes a tensor-count drift of training
 * (`leakTrain`) or of sampling. Returns mitata's statistics.
 */
async function timeSampling(sampleOne, leakTrain, notes) {
  for (let w = 0; w < WARMUP_SAMPLE; w++) sampleOne();
  const before = tf.memory().numTensors;
  const stats = await timeIt(sampleOne, Math.max(1000, BUDGET_MS / 2), 50);
  const leakSample = checkLeak(before);
  if (leakTrain || leakSample) notes.push(`tensor count drift: train ${leakTrain}, sample ${leakSample}`);
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Variant 1: tf.layers (sequential, tf.layers.lstm, trainOnBatch)
// ---------------------------------------------------------------------------------------------

function layersModel(kind, batchInputShape, stateful) {
  const m = tfl.sequential();
  if (kind === 'embedding') {
    m.add(tfl.layers.embedding({ inputDim: V, outputDim: E, batchInputShape, embeddingsInitializer: tfl.initializers.randomUniform({ minval: -INIT, maxval: INIT, seed: 1 }) }));
  } else {
    // One-hot input; the embedding is a bias-free dense layer (a matMul whose gradient is a matMul).
    m.add(tfl.layers.dense({ units: E, useBias: false, batchInputShape, kernelInitializer: tfl.initializers.randomUniform({ minval: -INIT, maxval: INIT, seed: 1 }) }));
  }
  for (let l = 0; l < LAYERS; l++) {
    m.add(
      tfl.layers.lstm({
        units: H,
        returnSequences: true,
        stateful,
        recurrentActivation: 'sigmoid',
        kernelInitializer: tfl.initializers.randomUniform({ minval: -INIT, maxval: INIT, seed: 2 + l }),
        recurrentInitializer: tfl.initializers.randomUniform({ minval: -INIT, maxval: INIT, seed: 12 + l }),
      }),
    );
  }
  m.add(tfl.layers.dense({ units: V, kernelInitializer: tfl.initializers.randomUniform({ minval: -INIT, maxval: INIT, seed: 9 }) }));
  return m;
}

async function benchLayers() {
  const notes = [];
  const yData = batches.map((b) => oneHot(b.y, [B, T]));
  let kind = 'embedding';
  let model;
  let xData;
  const build = (k) => {
    const m = layersModel(k, k === 'embedding' ? [B, T] : [B, T, V], false);
    // Custom loss: the layers API would otherwise average over time too; returning a scalar keeps
    // the sum over time of the batch-mean NLL (its own mean of a scalar is the scalar).
    m.compile({ optimizer: tf.train.rmsprop(LR, DECAY, 0, EPS, false), loss: (yt, yp) => nll(yt, yp) });
    return m;
  };
  model = build('embedding');
  xData = batches.map((b) => tf.tensor2d(b.x, [B, T], 'float32'));
  try {
    await model.trainOnBatch(xData[0], yData[0]);
  } catch (e) {
    notes.push(`layers.embedding gradient failed on wasm (${String(e.message ?? e).split('\n')[0]}); fell back to one-hot input + dense(useBias: false)`);
    model.dispose();
    xData.forEach((t) => t.dispose());
    kind = 'onehot-dense';
    model = build(kind);
    xData = batches.map((b) => oneHot(b.x, [B, T]));
  }
  let k = 0;
  const step = async () => {
    const i = k++ % NBATCH;
    return model.trainOnBatch(xData[i], yData[i]);
  };
  const loss0 = await step();
  await step();
  const m0 = tf.memory().numTensors;
  const st = await timeIt(step, BUDGET_MS, 5);
  const leakTrain = checkLeak(m0);
  const lossN = await step();

  // Sampling: a stateful batch-1, one-step copy sharing the trained weights. It always uses an
  // embedding layer (forward gather is fine on wasm; the one-hot dense kernel has the same shape).
  const sampler = layersModel('embedding', [1, 1], true);
  sampler.setWeights(model.getWeights());
  let id = batches[0].x[0];
  const sampleOne = () => {
    const p = tf.tidy(() => tf.reshape(tf.softmax(sampler.predict(tf.tensor2d([id], [1, 1], 'float32'))), [V]));
    const probs = p.dataSync();
    p.dispose();
    id = draw(probs);
    return id;
  };
  const ss = await timeSampling(sampleOne, leakTrain, notes);
  model.dispose();
  sampler.dispose();
  xData.forEach((t) => t.dispose());
  yData.forEach((t) => t.dispose());
  return { api: 'layers', embedding: kind, train: st, sample: ss, loss0: +loss0, lossN: +lossN, notes };
}

// ---------------------------------------------------------------------------------------------
// Variants 2 and 3: hand-written graph, tf.variableGrads + clip + optimizer.applyGradients
// ---------------------------------------------------------------------------------------------

/**
 * a·W whose gradient uses only untransposed matMuls: the wasm backend's BatchMatMul runs a slow
 * generic loop when transposeA or transposeB is set (5-20× slower at these shapes), and the stock
 * matMul gradient uses exactly those. W^T is computed once per forward pass and passed in.
 */
const matMulFastGrad = (WT) =>
  tf.customGrad((a, W, save) => {
    save([a, WT]);
    return { value: tf.matMul(a, W), gradFunc: (dy, [a_, WT_]) => [tf.matMul(dy, WT_), tf.matMul(tf.transpose(a_), dy)] };
  });
/** a·W for a constant input a (one-hot data): only W's gradient is computed. */
const matMulConstInput = tf.customGrad((a, W, save) => {
  save([a]);
  return { value: tf.matMul(a, W), gradFunc: (dy, [a_]) => [tf.zerosLike(a_), tf.matMul(tf.transpose(a_), dy)] };
});

async function benchHand(cell) {
  const notes = [];
  const fast = cell === 'grads';
  const vars = {};
  const v = (name, shape, seed, zero = false) => (vars[name] = tf.variable(zero ? tf.zeros(shape) : initU(shape, seed), true, `${cell}/${name}`));
  const Wemb = v('emb', [V, E], 1);
  const W = []; // [in + H, 4H]: concat([x, h]) · W, as tf.basicLSTMCell lays it out
  const bias = [];
  for (let l = 0; l < LAYERS; l++) {
    W.push(v(`W${l}`, [(l === 0 ? E : H) + H, 4 * H], 2 + l));
    bias.push(v(`b${l}`, [4 * H], 0, true));
  }
  const Wdec = v('dec', [H, V], 9);
  const bdec = v('bdec', [V], 0, true);
  const varList = Object.values(vars);
  const forgetBias = tf.scalar(0);
  const opt = tf.train.rmsprop(LR, DECAY, 0, EPS, false);

  // Gate order [i, f, o | g]: one sigmoid over 3H columns, one tanh over H.
  const gates = (z, c) => {
    const sig = tf.sigmoid(tf.slice(z, [0, 0], [-1, 3 * H]));
    const g = tf.tanh(tf.slice(z, [0, 3 * H], [-1, H]));
    const [i, f, o] = tf.split(sig, 3, 1);
    const c2 = tf.add(tf.mul(f, c), tf.mul(i, g));
    const h2 = tf.mul(o, tf.tanh(c2));
    return [c2, h2];
  };

  // Hidden state carried from batch to batch (as ours and char-rnn do), not differentiated.
  let state = [];
  for (let l = 0; l < LAYERS; l++) state.push({ c: tf.zeros([B, H]), h: tf.zeros([B, H]) });

  // Per-time-step one-hot inputs and targets, T × [B, V]. Splitting one [T*B, ...] tensor per step
  // instead is slow on wasm: its Slice/SplitV read back (copy) the whole input for every piece.
  const perStep = (a) => {
    const out = [];
    for (let t = 0; t < T; t++) {
      const ids = new Int32Array(B);
      for (let b = 0; b < B; b++) ids[b] = a[b * T + t];
      out.push(oneHot(ids, [B]));
    }
    return out;
  };
  const xData = batches.map((b) => perStep(b.x));
  const yData = batches.map((b) => perStep(b.y));

  const forward = (xs, ys) => {
    let inp = xs.map((x) => (fast ? matMulConstInput(x, Wemb) : tf.matMul(x, Wemb))); // T × [B, E]
    const next = [];
    for (let l = 0; l < LAYERS; l++) {
      let { c, h } = state[l];
      const hs = [];
      const mm = fast ? matMulFastGrad(tf.transpose(W[l])) : null;
      for (let t = 0; t < T; t++) {
        if (fast) [c, h] = gates(tf.add(mm(tf.concat([inp[t], h], 1), W[l]), bias[l]), c);
        else [c, h] = tf.basicLSTMCell(forgetBias, W[l], bias[l], inp[t], c, h);
        hs.push(h);
      }
      next.push({ c: tf.keep(c), h: tf.keep(h) });
      inp = hs;
    }
    // Decoder and loss per step too (a concat then one big matMul would need a split in backward).
    const md = fast ? matMulFastGrad(tf.transpose(Wdec)) : null;
    const terms = inp.map((h, t) => tf.sum(tf.mul(ys[t], tf.logSoftmax(tf.add(fast ? md(h, Wdec) : tf.matMul(h, Wdec), bdec)))));
    return { loss: tf.div(tf.neg(tf.addN(terms)), B), next };
  };

  let k = 0;
  const step = () => {
    const i = k++ % NBATCH;
    let next;
    const lossValue = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const r = forward(xData[i], yData[i]);
        next = r.next;
        return r.loss;
      }, varList);
      const clipped = {};
      for (const [name, g] of Object.entries(grads)) clipped[name] = tf.clipByValue(g, -CLIP, CLIP);
      opt.applyGradients(clipped);
      return value;
    });
    for (const s of state) (s.c.dispose(), s.h.dispose());
    state = next;
    const l = lossValue.dataSync()[0];
    lossValue.dispose();
    return l;
  };
  const loss0 = step();
  for (let w = 0; w < (fast ? WARMUP_TRAIN : 1); w++) step();
  const m0 = tf.memory().numTensors;
  const st = await timeIt(step, BUDGET_MS, fast ? 8 : 5);
  const leakTrain = checkLeak(m0);
  const lossN = step();

  // Sampling at batch 1, state carried.
  let s1 = [];
  for (let l = 0; l < LAYERS; l++) s1.push({ c: tf.zeros([1, H]), h: tf.zeros([1, H]) });
  let id = batches[0].x[0];
  const sampleOne = () => {
    const next = [];
    const p = tf.tidy(() => {
      let x = tf.gather(Wemb, tf.tensor1d([id], 'int32')); // forward gather is fine on wasm
      for (let l = 0; l < LAYERS; l++) {
        let c;
        let h;
        if (fast) [c, h] = gates(tf.add(tf.matMul(tf.concat([x, s1[l].h], 1), W[l]), bias[l]), s1[l].c);
        else [c, h] = tf.basicLSTMCell(forgetBias, W[l], bias[l], x, s1[l].c, s1[l].h);
        next.push({ c: tf.keep(c), h: tf.keep(h) });
        x = h;
      }
      return tf.reshape(tf.softmax(tf.add(tf.matMul(x, Wdec), bdec)), [V]);
    });
    const probs = p.dataSync();
    p.dispose();
    for (const s of s1) (s.c.dispose(), s.h.dispose());
    s1 = next;
    id = draw(probs);
    return id;
  };
  const ss = await timeSampling(sampleOne, leakTrain, notes);

  for (const s of [...state, ...s1]) (s.c.dispose(), s.h.dispose());
  varList.forEach((t) => t.dispose());
  forgetBias.dispose();
  opt.dispose();
  [...xData, ...yData].flat().forEach((t) => t.dispose());
  return { api: cell, embedding: 'onehot-matmul', train: st, sample: ss, loss0, lossN, notes };
}

// ---------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------

const require = createRequire(import.meta.url);
const versions = {
  core: tf.version_core,
  layers: tfl.version_layers,
  wasm: version_wasm,
  cpu: (() => {
    try {
      return require('@tensorflow/tfjs-backend-cpu/package.json').version;
    } catch {
      return undefined;
    }
  })(),
};

log(`TensorFlow.js ${versions.core} (layers ${versions.layers}, backend-wasm ${versions.wasm}) on Node ${process.versions.node}`);
log(`backend ${tf.getBackend()}: ${wasmFile}, SIMD ${simd}, multithread build ${multithread}, threads ${threads} (${threadsApi}(${THREADS}))`);
log(`S-lstm: V=${V} emb ${E}, ${LAYERS}×LSTM ${H}, B=${B} T=${T}, RMSprop lr ${LR} decay ${DECAY} eps ${EPS}; data: ${dataSource}`);

const VARIANTS = ['grads', 'basic', 'layers'];
if (WHICH !== 'all' && !VARIANTS.includes(WHICH)) throw new Error(`TFJS_API=${WHICH}: expected all, ${VARIANTS.join(', ')}`);
const plan = WHICH === 'all' ? VARIANTS : [WHICH];
const results = [];
for (const name of plan) {
  const t0 = performance.now();
  let r;
  try {
    r = name === 'layers' ? await benchLayers() : await benchHand(name);
  } catch (e) {
    log(`${name}: FAILED: ${String(e.stack ?? e).split('\n').slice(0, 3).join(' | ')}`);
    results.push({ api: name, failed: String(e.message ?? e) });
    continue;
  }
  r.seconds = (performance.now() - t0) / 1e3;
  results.push(r);
  for (const n of r.notes) log(`  note (${name}): ${n}`);
}

const ok = results.filter((r) => !r.failed);
if (ok.length === 0) throw new Error('every variant failed');
const fmt = (x, d = 0) => x.toFixed(d);
const rows = ok.map((r) => ({
  api: r.api,
  embedding: r.embedding,
  'train ms/step (p50)': fmt(r.train.p50 / 1e6, 1),
  'train chars/s': fmt((B * T) / (r.train.p50 / 1e9)),
  'steps timed': r.train.samples.length,
  'sample µs/char (p50)': fmt(r.sample.p50 / 1e3, 1),
  'loss first→last': `${fmt(r.loss0, 1)}→${fmt(r.lossN, 1)}`,
}));
console.table(rows);

const bestTrain = ok.reduce((a, r) => (r.train.p50 < a.train.p50 ? r : a));
const bestSample = ok.reduce((a, r) => (r.sample.p50 < a.sample.p50 ? r : a));
const result = {
  tfjs_train_chars_per_s: Math.round((B * T) / (bestTrain.train.p50 / 1e9)),
  tfjs_sample_us_per_char: Math.round(bestSample.sample.p50 / 1e2) / 10,
  backend: tf.getBackend(),
  threads,
  simd,
  api: bestTrain.api,
  sample_api: bestSample.api,
  V,
  B,
  T,
  hidden: H,
  layers: LAYERS,
  data: existsSync(distData) ? 'corpus' : 'random',
  versions,
  variants: Object.fromEntries(
    results.map((r) => [
      r.api,
      r.failed
        ? { failed: r.failed }
        : {
            train_chars_per_s: Math.round((B * T) / (r.train.p50 / 1e9)),
            train_ms_per_step: Math.round(r.train.p50 / 1e4) / 100,
            sample_us_per_char: Math.round(r.sample.p50 / 1e2) / 10,
            embedding: r.embedding,
          },
    ]),
  ),
};
log(`fastest training: ${bestTrain.api}; fastest sampling: ${bestSample.api}`);
log(`RESULT ${JSON.stringify(result)}`);
