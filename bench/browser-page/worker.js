/**
 * The bench's training worker (threads need one: a page's main thread may not wait for them):
 * times Trainer.step() as bench/browser.mjs times it in Node.
 */
import { DEFAULT_TRAIN_OPTIONS, Trainer, browserThreads, loadWasmKernels } from 'grid-lstm';

let text = '';
self.onmessage = async (e) => {
  const { id, fn, args } = e.data;
  try {
    let value;
    if (fn === 'setText') text = args[0];
    else if (fn === 'threads') value = browserThreads();
    else value = await timeSteps(...args);
    self.postMessage({ id, value });
  } catch (err) {
    self.postMessage({ id, error: err?.message ?? String(err) });
  }
};

/** Seconds per step of `steps` Trainer steps after `warmup`, each timed (the kernels 'auto', as in Node). */
async function timeSteps(options, warmup, steps) {
  const kernels = await loadWasmKernels();
  const t = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, ...options }, { kernels });
  await t.startThreads();
  try {
    for (let i = 0; i < warmup; i++) t.step();
    const seconds = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      t.step();
      seconds.push((performance.now() - t0) / 1000);
    }
    return { seconds, kernels: kernels.name, threads: t.threads };
  } finally {
    t.close();
  }
}
