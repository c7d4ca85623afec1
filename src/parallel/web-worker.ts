/**
 * The browser edge of a worker (as worker.ts is Node's): a Web Worker module that takes its
 * WorkerInit from the first message and runs the platform-neutral loop (worker-core.ts). A
 * script that fails to load is reported by the spawner's 'error' listener (web.ts); a failure
 * while running, through the control words by runWorker itself.
 */
import type { WorkerInit } from './protocol.js';
import { runWorker } from './worker-core.js';

const scope = globalThis as unknown as { onmessage: ((e: { data: WorkerInit }) => void) | null };
scope.onmessage = (e) => {
  scope.onmessage = null;
  runWorker(e.data);
};
