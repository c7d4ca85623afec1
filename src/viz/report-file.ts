/**
 * Writing a `viz` report to a file: checked before the model runs (so a path that cannot be
 * written is a one-line error at once, not after minutes of work), then written atomically.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describeSystemError, writeFileAtomic } from '../safetensors.js';

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

/** Writes `text` to `path` atomically (the old file, if any, stays whole until the new one is complete). */
export function writeReportFile(path: string, text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  writeFileAtomic(path, bytes);
  return bytes.length;
}
