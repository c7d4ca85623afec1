/** What the commands read: the text of --data, and the checkpoint a CK argument names. */
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Kernels } from '../nn/kernels.js';
import { type CheckpointContents, loadCheckpoint } from '../train/checkpoint.js';
import { type Corpus, type Vocab, corpusFromText, loadDefaultCorpus, readCorpus } from '../train/data.js';
import { UsageError } from './args.js';

/**
 * The text of --data (or the built-in corpus) as ids: with `vocab` (a checkpoint's) encoded with
 * it, else with its own vocabulary; `report` says "loaded N characters in X s ..." (printed once
 * the run is known to start, so that an input error stays a single line).
 */
export function readData(path: string | undefined, encoding: 'utf8' | 'latin1', vocab?: Vocab): Corpus & { report: string } {
  const t0 = performance.now();
  let corpus: Corpus;
  try {
    corpus = path === undefined ? corpusFromText(loadDefaultCorpus(), vocab) : readCorpus(path, { encoding, label: '--data', vocab });
  } catch (e) {
    const message = (e as Error).message;
    throw new UsageError(path === undefined ? `the built-in corpus: ${message}` : message);
  }
  const seconds = (performance.now() - t0) / 1000;
  const report = `loaded ${corpus.ids.length} characters in ${seconds.toFixed(2)} s from ${path ?? 'the built-in corpus'} (vocabulary ${corpus.vocab.chars.length})`;
  return { ...corpus, report };
}

/** A path as a shell word (quoted when it holds anything but safe characters). */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function loadCk(path: string, kernels?: Kernels): CheckpointContents {
  try {
    return loadCheckpoint(checkpointFile(path), { kernels });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message);
  }
}

/** The checkpoint file a CK argument names: itself, or for a directory its newest checkpoint. */
export function checkpointFile(path: string): string {
  try {
    if (statSync(path).isDirectory()) return newestCheckpoint(path);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  return path;
}

/** The most recently written .safetensors file in a directory. */
export function newestCheckpoint(dir: string): string {
  const files: { f: string; t: number }[] = [];
  for (const name of readdirSync(dir)) {
    // Names starting with "." are never checkpoints (e.g. the temporary files of a write).
    if (!name.endsWith('.safetensors') || name.startsWith('.')) continue;
    try {
      const st = statSync(join(dir, name));
      if (st.isFile()) files.push({ f: join(dir, name), t: st.mtimeMs });
    } catch {
      // removed meanwhile
    }
  }
  if (files.length === 0) throw new UsageError(`${dir} holds no .safetensors checkpoint; train one first or name a checkpoint file`);
  // File times come from a coarse clock (a few ms), so checkpoints written in quick succession
  // can share one: among the newest, take the one furthest into training.
  const newest = Math.max(...files.map((x) => x.t));
  const tied = files.filter((x) => x.t === newest);
  if (tied.length === 1) return tied[0].f;
  return tied.map((x) => ({ f: x.f, i: savedIteration(x.f) })).sort((a, b) => b.i - a.i)[0].f;
}

/** The training iteration recorded in a checkpoint's header, or -1 (read without loading it). */
export function savedIteration(path: string): number {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) !== 8) return -1;
    const n = Number(head.readBigUInt64LE(0));
    if (n > 100_000_000) return -1;
    const header = Buffer.alloc(n);
    if (readSync(fd, header, 0, n, 8) !== n) return -1;
    const training = JSON.parse(JSON.parse(header.toString('utf8')).__metadata__.training) as { iteration?: unknown };
    return typeof training.iteration === 'number' ? training.iteration : -1;
  } catch {
    return -1;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
