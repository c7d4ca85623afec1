/**
 * The Node edge of a worker: a worker_threads entry point that runs the platform-neutral loop
 * (worker-core.ts) with its workerData, and reports the thread's end to the coordinator if it
 * ends any other way than being told to quit.
 */
import { workerData } from 'node:worker_threads';
import { STATUS, type WorkerInit } from './protocol.js';
import { fail, runWorker } from './worker-core.js';

const init = workerData as WorkerInit;
process.on('exit', () => fail(init, STATUS.GONE, `worker thread ${init.index} exited`));
runWorker(init);
