/**
 * The Trainer of Node: src/train/train-core.ts (re-exported here) with checkpoints and the loss
 * log as files (atomic writes), worker threads from worker_threads, and os.totalmem() as the
 * memory a run may use. What `grid-lstm train` runs:
 *
 *   const trainer = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 64 });
 *   trainer.run({ onStep: (s) => console.log(s.iteration, s.loss) });
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Kernels } from '../nn/kernels.js';
import { spawnNodeWorker } from '../parallel/node.js';
import { describeSystemError, readFileBytes, writeFileAtomic } from './safetensors.js';
import {
  type CheckpointStore,
  CheckpointDirError,
  type TrainOptions,
  type TrainerPlatform,
  Trainer as CoreTrainer,
  checkTrainingFits as checkFits,
} from './train-core.js';

export * from './train-core.js';

/** Checkpoints and the loss log as files. */
export class FileCheckpointStore implements CheckpointStore {
  prepare(dir: string, probe: Uint8Array): void {
    prepareCheckpointDir(dir, probe);
  }

  write(path: string, bytes: Uint8Array): void {
    writeFileAtomic(path, bytes);
  }

  read(path: string): Uint8Array {
    return readFileBytes(path);
  }

  remove(path: string): boolean {
    try {
      unlinkSync(path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new Error(describeSystemError(e));
    }
  }

  exists(path: string): boolean {
    return existsSync(path);
  }

  openLog(path: string, lines: string[], warn: (message: string) => void): LossLog {
    const log = new LossLog(path, warn);
    log.start(lines);
    return log;
  }
}

/** Node: files, worker_threads, the machine's memory, process warnings, the OS's paths. */
export const NODE_PLATFORM: TrainerPlatform = {
  store: () => new FileCheckpointStore(),
  spawner: () => spawnNodeWorker,
  totalMemory: () => totalmem(),
  warn: (message) => process.emitWarning(message),
  join: (dir, name) => join(dir, name),
  samePlace: (a, b) => resolve(a) === resolve(b),
};

/** The Trainer with checkpoints on disk and worker threads (see src/train/train-core.ts for the API). */
export class Trainer extends CoreTrainer {
  static override platform: TrainerPlatform = NODE_PLATFORM;
}

/**
 * Rejects a model or batch shape that cannot fit in this machine's memory (`total`, default
 * os.totalmem()): see train-core.ts.
 */
export function checkTrainingFits(o: TrainOptions, V: number, chars: number, kernels?: Kernels, total = totalmem()): void {
  checkFits(o, V, chars, kernels, total);
}

/**
 * The loss log of a run as it goes: rewritten from the history when the run starts (so that a
 * resumed run's log holds exactly its checkpoint's history, not lines of steps done after that
 * checkpoint), then a line appended per step and validation, each written through at once (so
 * `tail -f` and plotting tools see it). A failure to write is reported once and ends the log,
 * never the training.
 */
export class LossLog {
  private fd: number | null = null;

  constructor(
    readonly path: string,
    private readonly warn: (message: string) => void,
  ) {}

  /**
   * Writes the file anew with `lines` (header first). A log there that is not this run's (its
   * lines and this run's differ before either ends) is another run's, with the same --savefile:
   * it is moved aside to <stem>.<N>.log.csv, the first free N, and the warning says where.
   */
  start(lines: string[]): void {
    try {
      const text = new TextEncoder().encode(lines.map((l) => l + '\n').join(''));
      if (existsSync(this.path) && !isOwnLog(this.path, text, lines.length > 1)) {
        const aside = freeAsidePath(this.path);
        renameSync(this.path, aside);
        this.warn(`moved the loss log of another run to ${aside}; use --savefile to keep runs' logs apart`);
      }
      writeFileAtomic(this.path, text);
      this.fd = openSync(this.path, 'a');
    } catch (e) {
      this.fail(e);
    }
  }

  append(line: string): void {
    if (this.fd === null) return;
    try {
      writeSync(this.fd, line + '\n');
    } catch (e) {
      this.fail(e);
    }
  }

  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // Nothing more to write.
    }
    this.fd = null;
  }

  private fail(e: unknown): void {
    this.close();
    const cause = (e as Error & { cause?: unknown }).cause;
    this.warn(`cannot write the loss log ${this.path}: ${describeSystemError(cause ?? e)}; training goes on without it`);
  }
}

/**
 * Whether the log at `path` is this run's, whose log is `text` (`hasSteps`: with a line after
 * the header): one of the two is the start of the other (a run killed after its checkpoint
 * logged more steps; a log that stopped being written has fewer). A log with lines after its
 * header, when this run has none yet, is another's. Reads at most the length of `text` + 1.
 */
function isOwnLog(path: string, text: Uint8Array, hasSteps: boolean): boolean {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(text.length + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, n)) > 0; ) n += r;
    const header = buf.indexOf(0x0a);
    if (!hasSteps && header >= 0 && header + 1 < n) return false;
    const m = Math.min(n, text.length);
    return Buffer.compare(buf.subarray(0, m), Buffer.from(text.buffer, text.byteOffset, m)) === 0;
  } finally {
    closeSync(fd);
  }
}

/** `<stem>.<N>.log.csv` for `<stem>.log.csv` (`<path>.<N>` for another name), the first N ≥ 1 with no file. */
function freeAsidePath(path: string): string {
  const suffix = '.log.csv';
  const [stem, ext] = path.endsWith(suffix) ? [path.slice(0, -suffix.length), suffix] : [path, ''];
  for (let n = 1; ; n++) {
    const p = `${stem}.${n}${ext}`;
    if (!existsSync(p)) return p;
  }
}

/**
 * Creates the checkpoint directory if needed and writes (atomically, as checkpoints are written)
 * then removes a probe file, so that an unwritable directory or a full disk is found before hours
 * of training rather than after. `probe`: the bytes to write, e.g. a real checkpoint, so that the
 * space for one checkpoint is known to be there (default: a few bytes).
 *
 * @throws CheckpointDirError naming the directory, the cause and what to do
 */
export function prepareCheckpointDir(dir: string, probe?: Uint8Array): void {
  const path = join(dir, `.probe-${process.pid}`);
  let written = false;
  try {
    makeDirectories(dir);
    try {
      writeFileAtomic(path, probe ?? new TextEncoder().encode('grid-lstm write probe\n'));
      written = true;
    } catch (e) {
      // writeFileAtomic says "cannot write <path>: <why>"; keep the why.
      const cause = (e as Error & { cause?: unknown }).cause;
      throw new Error(cause !== undefined ? describeSystemError(cause) : (e as Error).message);
    }
  } catch (e) {
    const why = (e as Error).message;
    const space = /ENOSPC|EDQUOT/.test(why) ? ' or free some space' : '';
    throw new CheckpointDirError(`cannot write checkpoints to ${dir}: ${why}; choose another --checkpoint-dir${space}`);
  } finally {
    if (written) {
      try {
        unlinkSync(path);
      } catch {
        // A leftover probe (a dot file) is harmless.
      }
    }
  }
}

/**
 * Creates `dir` and its missing parents one level at a time (not mkdirSync's recursive mode,
 * which Node 20 retries forever on paths such as /proc/x/y, where mkdir answers ENOENT).
 * Throws a one-line error naming the level that cannot be made.
 */
export function makeDirectories(dir: string): void {
  const target = resolve(dir);
  const missing: string[] = [];
  for (let p = target; ; p = dirname(p)) {
    let st;
    try {
      st = statSync(p, { throwIfNoEntry: false });
    } catch (e) {
      throw new Error(describeSystemError(e)); // e.g. ENOTDIR: a file on the way
    }
    if (st !== undefined) {
      if (st.isDirectory()) break;
      throw new Error(p === target ? 'it exists and is not a directory' : `${p} is not a directory`);
    }
    missing.push(p);
    if (dirname(p) === p) break; // no root: let mkdir say why
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(p).isDirectory()) continue; // made meanwhile
      const why = describeSystemError(e);
      throw new Error(p === target ? `cannot create it: ${why}` : `cannot create ${p}: ${why}`);
    }
  }
}

