/**
 * The page's training worker: the coordinator of a run's threads (a page's main thread may not
 * wait for worker threads), answering the page's calls { id, fn, args }.
 */
import { environment, evaluate, train } from './run.js';

const calls = { train, evaluate, environment };
self.onmessage = async (e) => {
  const { id, fn, args } = e.data;
  try {
    self.postMessage({ id, value: await calls[fn](...args) });
  } catch (err) {
    self.postMessage({ id, error: err?.message ?? String(err) });
  }
};
