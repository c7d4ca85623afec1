/**
 * Writing what `viz` and `plot` make to an --out file: the path is checked before any work (so a
 * path that cannot be written is a one-line error at once, not after minutes of it), then the
 * file is written atomically.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describeSystemError, writeFileAtomic } from '../train/safetensors.js';

/** Throws a one-line error when `path` (--out) cannot be a file written by this process. */
export function checkOutputPath(path: string, flag = '--out'): void {
  if (path === '' || /[\\/]$/.test(path)) throw new Error(`${flag} ${JSON.stringify(path)} is not a file name; name the file to write, e.g. ${flag} report.html`);
  try {
    if (statSync(path).isDirectory()) throw new Error(`${flag} ${path} is a directory; name a file in it, e.g. ${flag} ${path.replace(/\/+$/, '')}/report.html`);
  } catch (e) {
    if (!(e as NodeJS.ErrnoException).code) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new Error(`cannot write ${flag} ${path}: a part of the path is not a directory`);
    // ENOENT: a new file
  }
  const dir = dirname(resolve(path));
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    throw new Error(`cannot write ${flag} ${path}: its directory ${dir} ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read: ${describeSystemError(e)}`}; create it or choose another place`);
  }
  if (!isDir) throw new Error(`cannot write ${flag} ${path}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new Error(`cannot write ${flag} ${path}: ${describeSystemError(e)}; choose another place`);
  }
}

/** Writes `data` (text as UTF-8) to `path` atomically (an old file stays whole until the new one is complete); returns the bytes written. */
export function writeOutputFile(path: string, data: string | Uint8Array): number {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  writeFileAtomic(path, bytes);
  return bytes.length;
}
