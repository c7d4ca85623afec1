/**
 * Safetensors files in Node: reading a file (whole, or only its header) and the atomic write
 * that every file grid-lstm saves goes through. The format itself is src/train/safetensors-core.ts
 * (re-exported here), which runs anywhere.
 */
import { closeSync, existsSync, fchmodSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { getSystemErrorMap } from 'node:util';
import {
  MAX_HEADER_LENGTH,
  SafetensorsError,
  type SafetensorsContents,
  type SafetensorsHeader,
  type TensorHeaderEntry,
  type TensorSpec,
  failWith,
  parseHeader,
  parseSafetensors,
} from './safetensors-core.js';

export * from './safetensors-core.js';

/**
 * Reads and parses a safetensors file, using `path` as the label of error messages.
 *
 * @throws SafetensorsError when the file is missing, is a directory, cannot be read, or is not
 *   a valid safetensors file
 */
export function readSafetensorsFile(path: string): SafetensorsContents {
  return parseSafetensors(readFileBytes(path), path);
}

/**
 * The bytes of a file meant to be a safetensors file, with the errors of
 * {@link readSafetensorsFile} for a file that cannot be read (labelled with `path`).
 *
 * @throws SafetensorsError when the file is missing, is a directory or a device, or cannot be read
 */
export function readFileBytes(path: string): Uint8Array {
  try {
    const st = statSync(path);
    // A device (/dev/zero, a tty) would be read forever or wait for input.
    if (st.isCharacterDevice() || st.isBlockDevice()) throw new SafetensorsError(`${path}: is a device, not a safetensors file`);
    return readFileSync(path);
  } catch (err) {
    throw fileError(err, path);
  }
}

/** A SafetensorsError for a failure to open or read `path`. */
function fileError(err: unknown, path: string): SafetensorsError {
  if (err instanceof SafetensorsError) return err;
  const code = errorCode(err);
  const why =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EISDIR'
        ? 'is a directory, not a safetensors file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : `cannot read the file: ${describeSystemError(err)}`;
  return new SafetensorsError(`${path}: ${why}`, { cause: err });
}

/**
 * Reads only the header of a safetensors file (its metadata and the tensors' names, dtypes and
 * shapes), with every check of {@link readSafetensorsFile} that does not need the tensors' data:
 * the same messages for a short file, a header length beyond the file, a header that is not
 * JSON, offsets outside the data section, tensors that overlap or leave bytes uncovered. Reads
 * 8 + (header length) bytes however large the file is.
 *
 * @throws SafetensorsError as {@link readSafetensorsFile}
 */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fail = failWith(path);
  let fd: number | undefined;
  let head: Uint8Array;
  let size: number;
  try {
    fd = openSync(path, 'r');
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (st.isCharacterDevice() || st.isBlockDevice()) throw new SafetensorsError(`${path}: is a device, not a safetensors file`);
    if (!st.isFile()) {
      // A pipe or the like has no size to check the header against: read it whole.
      closeSync(fd);
      fd = undefined;
      const bytes = readFileBytes(path);
      const { metadata, specs } = parseHeader(bytes, bytes.length, fail);
      return { metadata, tensors: headerEntries(specs), size: bytes.length };
    }
    size = st.size;
    head = readAt(fd, 0, Math.min(8, size));
    if (head.length === 8) {
      const claimed = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
      if (claimed <= BigInt(Math.min(size - 8, MAX_HEADER_LENGTH))) {
        const whole = new Uint8Array(8 + Number(claimed));
        whole.set(head, 0);
        whole.set(readAt(fd, 8, Number(claimed)), 8);
        head = whole;
      }
    }
  } catch (err) {
    throw fileError(err, path);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  // A file that changed size while read: what was read decides (a short read fails as truncated).
  const { metadata, specs } = parseHeader(head, head.length < 8 ? head.length : size, fail);
  return { metadata, tensors: headerEntries(specs), size };
}

/** `length` bytes of an open file from `position` (fewer when the file ends first). */
function readAt(fd: number, position: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** The tensor specs of a header as a map of header entries (in data order). */
function headerEntries(specs: readonly TensorSpec[]): Map<string, TensorHeaderEntry> {
  return new Map(specs.map((s) => [s.name, { name: s.name, dtype: s.dtype, shape: s.shape }]));
}

// ---------------------------------------------------------------------------------------------
// Atomic write
// ---------------------------------------------------------------------------------------------

/** The `code` of a Node system error ("ENOENT"...), or undefined. */
function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** "no space left on device (ENOSPC)" for a Node system error; the message for anything else. */
export function describeSystemError(err: unknown): string {
  const code = errorCode(err);
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (code !== undefined && typeof errno === 'number') {
    const known = getSystemErrorMap().get(errno);
    if (known) return `${known[1]} (${code})`;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Errors of fsync on a directory that only mean "not supported here". */
const IGNORABLE_DIRECTORY_SYNC_ERRORS = new Set(['EISDIR', 'EPERM', 'EACCES', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EBADF']);

/**
 * Replaces the file at `path` with `bytes` atomically: readers see either the old file or the
 * complete new one, even across a crash or power loss.
 *
 * Writes a temporary file `.<name>.tmp-<pid>-<random>` in the same directory, fsyncs it, renames
 * it over `path`, then fsyncs the directory so the rename itself is durable (skipped where the
 * platform cannot fsync directories). An existing target's permission bits are kept. On failure
 * the temporary file is removed and any existing target is left untouched.
 *
 * @throws Error naming `path` and the cause, e.g. "cannot write out/model.safetensors: no space
 *   left on device (ENOSPC)"
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  if (typeof path !== 'string' || path === '' || /[\\/]$/.test(path)) {
    throw new Error(`cannot write ${JSON.stringify(path)}: not a file path`);
  }
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);

  let existingMode: number | undefined;
  try {
    const stats = statSync(path);
    if (stats.isDirectory()) throw new Error(`cannot write ${path}: it is an existing directory`);
    existingMode = stats.mode & 0o7777;
  } catch (err) {
    if (errorCode(err) === undefined) throw err; // our own "is a directory" error
    // Otherwise (usually ENOENT) there is no old file to take permissions from.
  }

  let fd: number | undefined;
  let created = false;
  try {
    fd = openSync(temp, 'wx', existingMode ?? 0o666);
    created = true;
    if (existingMode !== undefined) fchmodSync(fd, existingMode);
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Already failing; the original error is the one to report.
      }
    }
    if (created) {
      try {
        unlinkSync(temp);
      } catch {
        // Nothing more we can do; report the original error.
      }
    }
    let why = describeSystemError(err);
    if (errorCode(err) === 'ENOENT' && !existsSync(dir)) why = `the directory ${dir} does not exist`;
    throw new Error(`cannot write ${path}: ${why}`, { cause: err });
  }

  syncDirectory(dir, path);
}

/** Fsyncs a directory so a rename in it is durable; ignores platforms that cannot do this. */
function syncDirectory(dir: string, path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (err) {
    const code = errorCode(err);
    if (code === undefined || !IGNORABLE_DIRECTORY_SYNC_ERRORS.has(code)) {
      throw new Error(`wrote ${path} but could not sync its directory ${dir}: ${describeSystemError(err)}`, { cause: err });
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
