/**
 * Checkpoint files in Node: save to and load from a path, and read a file's header alone. The
 * format (bytes in, bytes out) is src/train/checkpoint-core.ts, re-exported here, which runs
 * anywhere.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { Vocab } from './data-core.js';
import type { Model } from '../nn/model.js';
import { readFileBytes, readSafetensorsHeader, SafetensorsError, writeFileAtomic } from './safetensors.js';
import {
  type CheckpointContents,
  type CheckpointExtra,
  type CheckpointInfo,
  CheckpointError,
  type LoadCheckpointOptions,
  buildCheckpoint,
  failWith,
  interpretHeader,
  ownValLoss,
  parseCheckpoint,
  refuseNonSafetensors,
  rethrowAsCheckpointError,
} from './checkpoint-core.js';

export * from './checkpoint-core.js';

/**
 * Writes a checkpoint to `path` atomically (see writeFileAtomic): readers see the old file or
 * the complete new one. Validation errors are CheckpointErrors naming `path`; I/O errors are
 * writeFileAtomic's ("cannot write <path>: ...").
 */
export function saveCheckpoint(path: string, model: Model, vocab: Vocab, extra: CheckpointExtra = {}): void {
  writeFileAtomic(path, buildCheckpoint(model, vocab, extra, failWith(`cannot save ${path}`)));
}

/** Reads a checkpoint file; errors are labelled with `path`. See {@link parseCheckpoint}. */
export function loadCheckpoint(path: string, options: LoadCheckpointOptions = {}): CheckpointContents {
  return parseCheckpoint(rethrowAsCheckpointError(() => readFileBytes(path)), path, options);
}

/**
 * Reads what a checkpoint file says about itself from its header alone (config, vocabulary,
 * training state and loss history), without reading its tensors: cheap however large the model.
 * Makes every check of {@link loadCheckpoint} that does not need the tensors' values (the file's
 * structure, the metadata, the tensors' names, dtypes and shapes against the config), with the
 * same messages; the values (a NaN weight) are only checked by loading it.
 *
 * @throws CheckpointError for anything wrong with the file that the header shows
 */
export function readCheckpointInfo(path: string): CheckpointInfo {
  const fail = failWith(path);
  let header: ReturnType<typeof readSafetensorsHeader>;
  try {
    header = readSafetensorsHeader(path);
  } catch (err) {
    if (!(err instanceof SafetensorsError)) throw err;
    // The first bytes tell a text (or other) file from a truncated checkpoint.
    refuseNonSafetensors(firstBytes(path), fileSize(path), path);
    throw new CheckpointError(err.message, { cause: err });
  }
  const { config, chars, training, task } = interpretHeader(header.metadata, header.tensors, fail);
  return { config, chars, training, valLoss: training ? ownValLoss(training) : null, size: header.size, task };
}

/** Up to 64 bytes from the start of a file (empty when it cannot be read). */
function firstBytes(path: string): Uint8Array {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = new Uint8Array(64);
    return buf.subarray(0, readSync(fd, buf, 0, 64, 0));
  } catch {
    return new Uint8Array(0);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A file's size in bytes, or 0 when it cannot be read. */
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
