// Using grid-lstm as a library: train a small Grid LSTM on the built-in corpus for a minute,
// checkpoint it, reload it and sample. Run after `npm ci`:  node examples/library.mjs
import {
  DEFAULT_TRAIN_OPTIONS,
  Trainer,
  loadCheckpoint,
  loadDefaultCorpus,
  loadWasmKernelsSync,
  sample,
} from '../dist/index.js';

const kernels = loadWasmKernelsSync(); // WebAssembly SIMD; `new TsKernels('float32')` for the reference
const text = loadDefaultCorpus().slice(0, 2_000_000); // the first 2 M characters
const trainer = Trainer.fromText(
  text,
  { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 64, maxSteps: 150, evalValEvery: 150, checkpointDir: 'cv/example' },
  { kernels },
);
const outcome = trainer.run({
  onStep: (s) => s.iteration % 25 === 0 && console.log(`step ${s.iteration}: loss ${s.loss.toFixed(3)} nats/char`),
});
if (outcome.status !== 'done') throw new Error(`training ended: ${outcome.status}`);
console.log(`val loss ${outcome.valLoss.toFixed(3)} nats/char, checkpoint ${outcome.checkpoint}`);

// A checkpoint holds the model, its vocabulary and the training state.
const { model, vocab } = loadCheckpoint(outcome.checkpoint, { kernels });
console.log(sample(model, vocab, { length: 300, temperature: 0.8, primetext: 'The ', seed: 7 }));
