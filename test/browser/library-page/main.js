/** The test page: the library on the main thread, and in a worker (for threads). */
import { environment, evaluate, train } from './run.js';

const worker = new Worker(new URL('./train-worker.js', import.meta.url), { type: 'module' });
worker.onerror = (e) => console.error(`the training worker failed: ${e.message}`);
let next = 0;
const pending = new Map();
worker.onmessage = (e) => {
  const p = pending.get(e.data.id);
  pending.delete(e.data.id);
  if (e.data.error !== undefined) p.reject(new Error(e.data.error));
  else p.resolve(e.data.value);
};
/** Calls train, evaluate or environment in the worker. */
function inWorker(fn, ...args) {
  const id = next++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, fn, args });
  });
}

window.lib = { train, evaluate, environment, inWorker };
document.body.dataset.ready = '1';
