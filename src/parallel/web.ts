/**
 * The browser edge of the coordinator (src/parallel/pool.ts), as node.ts is Node's: a spawner
 * that starts Web Workers running src/parallel/web-worker.ts over the shared memory, and what a
 * page can use.
 *
 * Threads in a browser need two things:
 * - a cross-origin isolated page (served with `Cross-Origin-Opener-Policy: same-origin` and
 *   `Cross-Origin-Embedder-Policy: require-corp`): only then may a shared memory be sent to a
 *   worker (`crossOriginIsolated` is true);
 * - a coordinator that may block: the pool waits for its workers with Atomics.wait, which a
 *   page's main thread may not call. So a page trains inside a Web Worker of its own (the
 *   coordinator, thread 0), which starts the other workers.
 * Otherwise training runs on one thread (browserThreads() says which and why).
 */
import { type Spawn, defaultThreadCount } from './pool.js';
import { STATUS, type WorkerInit, fail } from './protocol.js';

/** The little of the Web Worker API used here (the project compiles without the DOM lib). */
interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  addEventListener(type: 'error', listener: (e: { message?: string }) => void): void;
}
type WorkerConstructor = new (url: URL, options: { type: 'module' }) => WebWorker;

const web = globalThis as unknown as {
  crossOriginIsolated?: boolean;
  navigator?: { hardwareConcurrency?: number };
  WorkerGlobalScope?: unknown;
  Worker?: WorkerConstructor;
};

/**
 * Starts a Web Worker that runs runWorker(init). The URL is written out in full in the `new
 * Worker(new URL('./web-worker.js', import.meta.url), { type: 'module' })` form, the one bundlers
 * (Vite, webpack 5, Parcel) turn into a worker bundle of their own.
 */
export const spawnWebWorker: Spawn = (init: WorkerInit) => {
  const Worker = web.Worker;
  if (!Worker) throw new Error('this JavaScript runtime has no Web Workers');
  const w = new Worker(new URL('./web-worker.js', import.meta.url), { type: 'module' });
  // A script that does not load (or an error runWorker did not catch) stops the pool at once, not at its start timeout.
  w.addEventListener('error', (e) => {
    fail(init, STATUS.GONE, e.message ? `its Web Worker threw: ${e.message}` : "its Web Worker's script (web-worker.js) did not load");
  });
  w.postMessage(init);
  return { terminate: () => w.terminate() };
};

/** Threads a Trainer can use in this page (or worker), and why, for a page to show. */
export interface BrowserThreads {
  /** Threads a Trainer running in a Web Worker of this page can use: the cores when cross-origin isolated, else 1. */
  threads: number;
  /** navigator.hardwareConcurrency (1 when unknown). */
  cores: number;
  /** crossOriginIsolated: shared memory may go to workers. */
  isolated: boolean;
  /** Whether this code runs in a worker (where the Trainer's threads may run), not a page's main thread. */
  inWorker: boolean;
  /** One line saying why. */
  why: string;
}

export function browserThreads(): BrowserThreads {
  const cores = Math.max(1, Math.floor(web.navigator?.hardwareConcurrency ?? 1));
  const isolated = web.crossOriginIsolated === true;
  const inWorker = web.WorkerGlobalScope !== undefined;
  const why = isolated
    ? `cross-origin isolated: up to ${cores} thread${cores === 1 ? '' : 's'} (${cores} core${cores === 1 ? '' : 's'}), for a Trainer run inside a Web Worker`
    : 'one thread: the page is not cross-origin isolated (threads need it served with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
  return { threads: isolated ? cores : 1, cores, isolated, inWorker, why };
}

/**
 * The spawner a Trainer uses here, or why there is none: not cross-origin isolated, or on a
 * page's main thread (which may not wait for the workers).
 */
export function webSpawner(): Spawn | string {
  const t = browserThreads();
  if (!t.isolated) return `${t.why}; train with threads 1`;
  if (!t.inWorker) {
    return "a page's main thread may not wait for worker threads (Atomics.wait): run the Trainer inside a Web Worker, or train with threads 1";
  }
  return spawnWebWorker;
}

/** The default thread count for a run here (defaultThreadCount over browserThreads().threads). */
export function defaultBrowserThreads(o: Parameters<typeof defaultThreadCount>[1]): number {
  return defaultThreadCount(browserThreads().threads, o);
}
