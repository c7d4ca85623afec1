/**
 * What the test page does with the library, on the page's main thread or in its worker (both
 * import 'grid-lstm' by name, as an application would: the bundler picks the browser entry).
 * Plain JavaScript: the project's TypeScript is compiled without the DOM's types.
 */
import { DEFAULT_TRAIN_OPTIONS, Trainer, browserThreads, encode, evaluateIds, loadWasmKernels, parseCheckpoint } from 'grid-lstm';

/** A run of `options` on `text` with the plain-SIMD kernels (the same numbers on every engine); its history and final checkpoint. */
export async function train(text, options) {
  const kernels = await loadWasmKernels({ variant: 'simd' });
  const t = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, ...options }, { kernels });
  const outcome = await t.runAsync();
  if (outcome.status !== 'done') throw new Error(`the run ended ${outcome.status}: ${outcome.message ?? ''}`);
  return {
    train: t.history.train,
    val: t.history.val,
    threads: t.threads,
    kernels: kernels.name,
    // The checkpoint the run ended with, kept in memory by the browser's Trainer.
    checkpoint: Array.from(t.store.read(outcome.checkpoint)),
    checkpointName: outcome.checkpoint,
  };
}

/** The mean loss of a checkpoint (its bytes) on `text`. */
export async function evaluate(bytes, text) {
  const kernels = await loadWasmKernels({ variant: 'simd' });
  const ck = parseCheckpoint(new Uint8Array(bytes).buffer, 'node.safetensors', { kernels });
  return { loss: evaluateIds(ck.model, encode(text, ck.vocab)).loss, model: ck.model.config.model, iteration: ck.training?.iteration ?? null };
}

/** What this page (or worker) allows: threads and why, and the kernels 'auto' picks. */
export async function environment() {
  const auto = await loadWasmKernels();
  return { ...browserThreads(), autoKernels: auto.name };
}
