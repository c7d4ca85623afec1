// Throwaway (issue 13): this checkout's 1- and 2-thread training step (forwardBackward, clip,
// RMSprop) and validation batch against another checkout's, B 50, T 50, V 65, the four builds ×
// thread counts measured in turn (order reversed every other round) in one process, so that
// they share whatever else the machine is doing. Prints medians and ratios, not a benchmark:
// wall time, and the CPU time of the whole process (all its threads), which on a machine
// shared with other work is the steadier measure of the work done.
//   git worktree add ../before <commit> && (cd ../before && npm ci)
//   npm run build && node experiments/threads-side-by-side.mjs ../before S-lstm [rounds]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [other, name = 'S-lstm', roundsArg = '5'] = process.argv.slice(2);
const cfg = { 'S-lstm': ['lstm', 128, 2], 'S-grid': ['grid_lstm', 128, 2], 'M-lstm': ['lstm', 512, 3], 'M-grid': ['grid_lstm', 512, 3] }[name];
if (!other || !cfg) {
  console.error('usage: node experiments/threads-side-by-side.mjs OTHER_CHECKOUT S-lstm|S-grid|M-lstm|M-grid [rounds]');
  process.exit(2);
}
const rounds = Number(roundsArg);
const B = 50, T = 50, V = 65;
const big = cfg[1] > 200;
async function load(root) {
  const dist = pathToFileURL(resolve(root, 'dist') + '/').href;
  return { ...(await import(dist + 'index.js')), ...(await import(dist + 'parallel/pool.js')), ...(await import(dist + 'parallel/node.js')) };
}
const libs = { this: await load('.'), other: await load(other) };
const setups = [];
for (const build of ['other', 'this']) for (const threads of [1, 2]) {
  const L = libs[build];
  const k = L.loadWasmKernelsSync({ variant: 'simd' });
  const m = new L.Model({ model: cfg[0], vocabSize: V, rnnSize: cfg[1], numLayers: cfg[2] }, { kernels: k });
  const opt = new L.Optimizer('rmsprop', m.params.length, { learningRate: 2e-3 }, (n) => k.alloc(n));
  const dp = threads > 1 ? new L.DataParallel(m, B, T, threads, L.spawnNodeWorker) : null;
  const x = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
  const y = Int32Array.from({ length: B * T }, (_, i) => (i * 104729 + 3) % V);
  let carry = m.zeroState(B);
  const train = () => {
    carry = (dp ? dp.forwardBackward(x, y, carry, m.rng) : m.forwardBackward({ x, y, batchSize: B, seqLength: T }, carry)).finalState;
    L.clipGradients(m.grads, 5, k);
    opt.step(m.params, m.grads, k);
  };
  const val = () => {
    if (dp) {
      dp.resetState();
      dp.evaluateBatch(x, y);
    } else m.inference(() => m.forward({ x, y, batchSize: B, seqLength: T }, m.zeroState(B)));
  };
  train();
  val();
  setups.push({ build, threads, train, val, t: [], v: [], tc: [], vc: [], dp });
}
const reps = big ? 2 : 10;
for (let r = 0; r < rounds; r++) {
  for (const s of r % 2 ? [...setups].reverse() : setups) {
    const cpu = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    let t0 = performance.now();
    let c0 = cpu();
    for (let i = 0; i < reps; i++) s.train();
    s.t.push((performance.now() - t0) / reps);
    s.tc.push((cpu() - c0) / reps);
    t0 = performance.now();
    c0 = cpu();
    for (let i = 0; i < reps; i++) s.val();
    s.v.push((performance.now() - t0) / reps);
    s.vc.push((cpu() - c0) / reps);
  }
}
const med = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const get = (b, n) => setups.find((s) => s.build === b && s.threads === n);
for (const kind of ['t', 'v', 'tc', 'vc']) {
  const [o1, o2, n1, n2] = [['other', 1], ['other', 2], ['this', 1], ['this', 2]].map(([b, n]) => med(get(b, n)[kind]));
  const what = { t: 'training   wall', v: 'validation wall', tc: 'training   CPU ', vc: 'validation CPU ' }[kind];
  console.log(
    `${name} ${what} ms (median of ${rounds}): other 1→2 threads ${o1.toFixed(1)} → ${o2.toFixed(1)} (${(o1 / o2).toFixed(2)}×), ` +
      `this ${n1.toFixed(1)} → ${n2.toFixed(1)} (${(n1 / n2).toFixed(2)}×); this/other: 1 thread ${(n1 / o1).toFixed(3)}, 2 threads ${(n2 / o2).toFixed(3)}`,
  );
}
for (const s of setups) s.dp?.close();
