/**
 * The Node edge of the coordinator: starts a worker thread (worker_threads) running
 * src/parallel/worker.ts. A browser would pass a spawner that makes a Web Worker instead.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type Spawn, defaultThreadCount } from './pool.js';
import type { WorkerInit } from './protocol.js';

/** The compiled worker: next to this file in dist/, or dist/ when this runs from src/ (tests, tsx). */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('../../dist/parallel/worker.js', import.meta.url)
    : new URL('./worker.js', import.meta.url);
}

export const spawnNodeWorker: Spawn = (init: WorkerInit) => {
  const w = new Worker(workerUrl(), { workerData: init });
  // A pool left open must not keep the process alive; close() ends the threads.
  w.unref();
  return { terminate: () => void w.terminate() };
};

/** The default thread count for a run (defaultThreadCount with the cores this process may use). */
export function defaultThreads(o: Parameters<typeof defaultThreadCount>[1]): number {
  return defaultThreadCount(availableParallelism(), o);
}
