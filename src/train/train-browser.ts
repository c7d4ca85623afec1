/**
 * The Trainer of a browser: src/train/train-core.ts with checkpoints kept in memory
 * (MemoryCheckpointStore: `trainer.store.read(path)` gives a checkpoint's bytes, e.g. for a
 * download) and worker threads as Web Workers where the page allows them (src/parallel/web.ts).
 */
import { webSpawner } from '../parallel/web.js';
import { MEMORY_PLATFORM, type TrainerPlatform, Trainer as CoreTrainer } from './train-core.js';

/** Memory for checkpoints, Web Workers for threads, console.warn for warnings. */
export const BROWSER_PLATFORM: TrainerPlatform = { ...MEMORY_PLATFORM, spawner: webSpawner, threadsStartAsync: true };

/** The Trainer with checkpoints in memory and Web Workers (see src/train/train-core.ts for the API). */
export class Trainer extends CoreTrainer {
  static override platform: TrainerPlatform = BROWSER_PLATFORM;
}
