// Two builds' training step side by side, paired: bench/compare.mjs's step (forwardBackward,
// clip, RMSprop; one thread, T 50), but the two builds take turns step by step, and the figure
// is the median over rounds of the ratio of the two steps of a round (this / other), which the
// drift of a shared machine disturbs less than medians taken apart.
//   npm run build && node experiments/step-pairs.mjs OTHER_CHECKOUT [--models lstm] [--rnn-size 512]
//     [--num-layers 3] [--batch 25] [--rounds 15]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const other = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
const kinds = opt('--models', 'lstm,grid_lstm').split(',');
const B = Number(opt('--batch', 50)), T = 50, H = Number(opt('--rnn-size', 128)), L = Number(opt('--num-layers', 2));
const rounds = Number(opt('--rounds', 15));
const libs = [];
for (const root of ['.', other]) libs.push(await import(pathToFileURL(resolve(root, 'dist') + '/').href + 'index.js'));
const text = libs[0].loadDefaultCorpus();
const vocab = libs[0].buildVocab(text);
const ids = libs[0].encode(text, vocab);
const V = vocab.chars.length;
function stepper(m, kind) {
  const k = m.loadWasmKernelsSync({ variant: 'auto' });
  const model = new m.Model({ model: kind, vocabSize: V, rnnSize: H, numLayers: L }, { kernels: k });
  const optim = new m.Optimizer('rmsprop', model.params.length, { learningRate: 2e-3, decayRate: 0.95 }, (n) => k.alloc(n));
  const loader = new m.CharLoader(ids, B, T, { trainFrac: 0.95, valFrac: 0.05 });
  const x = new Int32Array(B * T), y = new Int32Array(B * T);
  let state = model.zeroState(B);
  return () => {
    loader.nextBatch('train', x, y);
    const t0 = performance.now();
    state = model.forwardBackward({ x, y, batchSize: B, seqLength: T }, state).finalState;
    m.clipGradients(model.grads, 5, k);
    optim.step(model.params, model.grads, k);
    return performance.now() - t0;
  };
}
const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
for (const kind of kinds) {
  const steps = libs.map((m) => stepper(m, kind));
  for (let i = 0; i < 2; i++) steps.forEach((s) => s()); // warm-up
  const ms = [[], []];
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) ms[i].push(steps[i]());
  }
  const ratios = ms[0].map((v, r) => v / ms[1][r]);
  const sorted = [...ratios].sort((p, q) => p - q);
  console.log(
    `${kind} ${L}×${H} B ${B}: this ${median(ms[0]).toFixed(1)} ms/step, other ${median(ms[1]).toFixed(1)}; ` +
      `paired ratio median ${median(ratios).toFixed(3)} (quartiles ${sorted[Math.floor(rounds / 4)].toFixed(3)}–${sorted[Math.floor((3 * rounds) / 4)].toFixed(3)}, ${rounds} rounds)`,
  );
}
