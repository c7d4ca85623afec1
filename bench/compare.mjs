// Two builds side by side: the training step of this checkout against another checkout's, the
// two measured in turn, several rounds, in one process, so that they share whatever else the
// machine is doing. For a change that must not slow the step (e.g. a refactor of the models):
//
//   git worktree add ../before <commit> && (cd ../before && npm ci)
//   npm run build && node bench/compare.mjs ../before [--models lstm,grid_lstm] [--rounds 5]
//     [--rnn-size 128] [--num-layers 2] [--batch 50]
//
// Prints, per configuration, each build's median ms per step over the rounds and the ratio
// (this build / the other): below 1 this one is faster. The step is the Trainer's: one
// forwardBackward over B × T=50 (B = 50 unless --batch; --batch 25 is one of two threads' share
// of the bench's batch), gradient clipping, one RMSprop step, single-threaded.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { measure } from 'mitata';

const args = process.argv.slice(2);
const other = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (!other) {
  console.error('usage: node bench/compare.mjs OTHER_CHECKOUT [--models lstm,grid_lstm] [--rounds N] [--rnn-size N] [--num-layers L] [--batch B]');
  process.exit(2);
}
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const kinds = opt('--models', 'lstm,grid_lstm').split(',');
const rounds = Number(opt('--rounds', '5'));
const B = Number(opt('--batch', '50')), T = 50, H = Number(opt('--rnn-size', '128')), L = Number(opt('--num-layers', '2'));

async function load(root) {
  const dist = pathToFileURL(resolve(root, 'dist') + '/').href;
  const lib = await import(dist + 'index.js');
  // (from the package entry: the module that holds it moved, dist/nn/wasm.js → wasm-node.js)
  return { lib, loadWasmKernelsSync: lib.loadWasmKernelsSync };
}
const builds = [
  { name: 'this', ...(await load('.')) },
  { name: 'other', ...(await load(other)) },
];

// The same text for both: this build's corpus and vocabulary.
const { lib } = builds[0];
const text = lib.loadDefaultCorpus();
const vocab = lib.buildVocab(text);
const ids = lib.encode(text, vocab);
const V = vocab.chars.length;
console.log(`compare: this checkout against ${other}; ${L}×${H}, B=${B}, T=${T}, V=${V}; ${rounds} rounds`);

function stepper(build, kind) {
  const { lib: m, loadWasmKernelsSync } = build;
  const k = loadWasmKernelsSync({ variant: 'auto' });
  const model = new m.Model({ model: kind, vocabSize: V, rnnSize: H, numLayers: L }, { kernels: k });
  const optim = new m.Optimizer('rmsprop', model.params.length, { learningRate: 2e-3, decayRate: 0.95 }, (n) => k.alloc(n));
  const loader = new m.CharLoader(ids, B, T, { trainFrac: 0.95, valFrac: 0.05 });
  const x = new Int32Array(B * T), y = new Int32Array(B * T);
  let state = model.zeroState(B);
  return () => {
    loader.nextBatch('train', x, y);
    state = model.forwardBackward({ x, y, batchSize: B, seqLength: T }, state).finalState;
    m.clipGradients(model.grads, 5, k);
    optim.step(model.params, model.grads, k);
  };
}

const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
for (const kind of kinds) {
  const steps = builds.map((b) => stepper(b, kind));
  const ms = builds.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < builds.length; i++) {
      const s = await measure(steps[i], { min_samples: 8, max_samples: 30, min_cpu_time: 1.5e9, warmup_samples: 2 });
      ms[i].push(s.p50 / 1e6);
    }
  }
  const [a, b] = ms.map(median);
  console.log(
    `  ${kind.padEnd(9)} this ${a.toFixed(1)} ms/step, other ${b.toFixed(1)} ms/step: ratio ${(a / b).toFixed(3)} ` +
      `(rounds: this ${ms[0].map((v) => v.toFixed(1)).join(' ')}; other ${ms[1].map((v) => v.toFixed(1)).join(' ')})`,
  );
}
