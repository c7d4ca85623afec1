/** What the commands read: the text of --data, and the checkpoint a CK argument names. */
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Kernels } from '../nn/kernels.js';
import { type CheckpointContents, type CheckpointInfo, CheckpointError, loadCheckpoint, readCheckpointInfo } from '../train/checkpoint.js';
import { type Corpus, type Vocab, corpusFromText, loadDefaultCorpus, readCorpus } from '../train/data.js';
import { type OptSpec, UsageError } from './args.js';

/**
 * The text of --data (or the built-in corpus) as ids: with `vocab` (a checkpoint's) encoded with
 * it, else with its own vocabulary; `report` says "loaded N characters in X s ..." (printed once
 * the run is known to start, so that an input error stays a single line). `unknown` (for a
 * command with --unknown) says what a character outside `vocab` does: 'error' refuses the file
 * (the message then points to --unknown skip), 'skip' leaves it out, counted in `skipped`.
 */
export function readData(
  path: string | undefined,
  encoding: 'utf8' | 'latin1',
  vocab?: Vocab,
  unknown?: 'error' | 'skip',
): Corpus & { report: string; skipped: number; skippedChars: string[] } {
  const t0 = performance.now();
  let corpus: Corpus & { skipped: number; skippedChars: string[] };
  try {
    corpus =
      path === undefined
        ? { ...corpusFromText(loadDefaultCorpus(), vocab), skipped: 0, skippedChars: [] }
        : readCorpus(path, { encoding, label: '--data', vocab, unknown });
  } catch (e) {
    let message = (e as Error).message;
    if (unknown !== undefined && vocab !== undefined && / does not contain \d+ character\(s\) of the text: /.test(message)) {
      message = `${message}, or pass --unknown skip to leave them out`;
    }
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

/** How a directory given as CK is read: its checkpoint of lowest validation loss, or its newest. */
export type CheckpointPick = 'best' | 'newest';

/** The `--newest` option of the commands that read a checkpoint. */
export const NEWEST_OPT: OptSpec = {
  key: 'newest',
  kind: 'bool',
  default: false,
  help: 'for a directory CK, take its newest checkpoint instead of the one with the lowest validation loss',
};

/** The file a CK argument stands for, and for a directory how it was chosen. */
export interface ChosenCheckpoint {
  file: string;
  /**
   * For a directory, one line for stderr naming the file and why it was taken ("using
   * cv/x.safetensors (lowest validation loss 1.9498 of 2 checkpoints)"); null for a file.
   */
  note: string | null;
}

/** A checkpoint read from a CK argument, with the file it came from. */
export interface LoadedCheckpoint extends CheckpointContents, ChosenCheckpoint {}

/**
 * Loads the checkpoint a CK argument names: a file, or for a directory the checkpoint that
 * {@link chooseCheckpoint} takes (by default the one with the lowest validation loss). Errors are
 * UsageErrors naming the file.
 */
export function loadCk(path: string, kernels?: Kernels, pick: CheckpointPick = 'best'): LoadedCheckpoint {
  const chosen = chooseCheckpoint(path, pick);
  try {
    return { ...loadCheckpoint(chosen.file, { kernels }), ...chosen };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    let message = (e as Error).message;
    // A file cut short (or empty): say what to pass instead.
    if (/\b(it|the file) is truncated or not a safetensors file$/.test(message)) {
      message += '; pass another checkpoint';
    }
    // Nothing there (the path stays first, as the library gives it): say what to pass.
    if (message === `${chosen.file}: no such file`) message += '; name a checkpoint file or a run directory';
    throw new UsageError(message);
  }
}

/**
 * The checkpoint file a CK argument names for `train --resume`: itself, or for a directory its
 * newest checkpoint (a resume continues where the run stopped, not from its best point).
 */
export function checkpointFile(path: string): string {
  return chooseCheckpoint(path, 'newest').file;
}

/** What a directory's checkpoint says about itself (from its header), and its file time. */
interface Candidate {
  file: string;
  mtimeMs: number;
  info: CheckpointInfo;
}

/**
 * The checkpoint a CK argument stands for. A file stands for itself. A directory's `.safetensors`
 * files (not those starting with ".", such as the temporary files of a write) are read by their
 * headers only, never their tensors, and:
 *
 * - `best`: the one whose own validation loss is lowest (the loss measured on the weights in the
 *   file: a checkpoint written between validations, e.g. on Ctrl-C, or a weights-only file, has
 *   none and is not taken while any file has one); ties go to the later iteration, then the newer
 *   file. Files of different runs in one directory compete alike; the note says how many runs.
 *   Without any validation loss, the newest. Files whose header is not a readable checkpoint are
 *   passed over (the note names them); when no file is readable, the error of the newest one.
 * - `newest`: the one written last (ties of the coarse file clock: the one furthest into
 *   training); it is not passed over when unreadable, its error is reported.
 */
export function chooseCheckpoint(path: string, pick: CheckpointPick): ChosenCheckpoint {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // Loading the path reports why it cannot be read.
  }
  if (!isDir) return { file: path, note: null };
  const dir = path;
  const files: { file: string; mtimeMs: number }[] = [];
  for (const name of readdirSync(dir)) {
    // Names starting with "." are never checkpoints (e.g. the temporary files of a write).
    if (!name.endsWith('.safetensors') || name.startsWith('.')) continue;
    try {
      const st = statSync(join(dir, name));
      if (st.isFile()) files.push({ file: join(dir, name), mtimeMs: st.mtimeMs });
    } catch {
      // removed meanwhile
    }
  }
  if (files.length === 0) {
    // Checkpoints one level down (cv/ holding a directory per run): name those directories.
    const subdirs = subdirectoriesWithCheckpoints(dir);
    if (subdirs.length > 0) {
      const shown = subdirs.length > 4 ? `${subdirs.slice(0, 4).join(', ')}, ...` : subdirs.join(', ');
      const example = join(dir, subdirs[0]!);
      const which = subdirs.length === 1 ? `its subdirectory ${shown} does: name it (${example})` : `its subdirectories ${shown} do: name one (e.g. ${example})`;
      throw new UsageError(`${dir} holds no .safetensors checkpoint; ${which}`);
    }
    throw new UsageError(`${dir} holds no .safetensors checkpoint; train one first or name a checkpoint file`);
  }
  // Newest first (file times come from a coarse clock, so ties are broken by iteration below).
  files.sort((a, b) => b.mtimeMs - a.mtimeMs);

  const count = `${files.length} checkpoint${files.length === 1 ? '' : 's'}`;
  const iteration = (c: Candidate) => c.info.training?.iteration ?? -1;
  const newestFirst = (a: Candidate, b: Candidate) => b.mtimeMs - a.mtimeMs || iteration(b) - iteration(a);

  if (pick === 'newest') {
    // Among the files of the newest time, the one furthest into training (read, then, by their
    // headers); an unreadable one counts as iteration -1, and is taken only when all are.
    const tied = files.filter((f) => f.mtimeMs === files[0]!.mtimeMs);
    let file = tied[0]!.file;
    if (tied.length > 1) {
      const read = tied.flatMap((f) => {
        try {
          return [{ ...f, info: readCheckpointInfo(f.file) }];
        } catch {
          return [];
        }
      });
      if (read.length > 0) file = read.sort(newestFirst)[0]!.file;
    }
    return { file, note: `using ${file} (newest of ${count})` };
  }

  const good: Candidate[] = [];
  const bad: { file: string; message: string }[] = [];
  for (const f of files) {
    try {
      good.push({ ...f, info: readCheckpointInfo(f.file) });
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      bad.push({ file: f.file, message: e.message });
    }
  }
  if (good.length === 0) {
    const first = bad[0]!;
    throw new UsageError(files.length === 1 ? first.message : `${dir} holds no readable checkpoint among its ${files.length} .safetensors files; the newest: ${first.message}`);
  }
  const scored = good.filter((c) => c.info.valLoss !== null);
  let file: string;
  let why: string;
  if (scored.length > 0) {
    scored.sort((a, b) => a.info.valLoss! - b.info.valLoss! || iteration(b) - iteration(a) || b.mtimeMs - a.mtimeMs);
    file = scored[0]!.file;
    why = `lowest validation loss ${scored[0]!.info.valLoss!.toFixed(4)} of ${count}`;
  } else {
    file = [...good].sort(newestFirst)[0]!.file;
    why = `newest of ${count}; none has a validation loss of its own`;
  }
  const runs = new Set(good.map((c) => runKey(c))).size;
  if (runs > 1) why += ` from ${runs} runs`;
  if (bad.length > 0) why += `; passed over ${bad.length} unreadable: ${bad.map((b) => basename(b.file)).slice(0, 3).join(', ')}${bad.length > 3 ? ', ...' : ''}`;
  return { file, note: `using ${file} (${why})` };
}

/** What tells runs apart in one directory: the model, its vocabulary and the run's --data and --savefile. */
function runKey(c: Candidate): string {
  const o = c.info.training?.options ?? {};
  return JSON.stringify([c.info.config, c.info.chars, o.data ?? null, o.savefile ?? null]);
}

/** The subdirectories of `dir` (sorted by name) that hold a .safetensors file, one level down. */
function subdirectoriesWithCheckpoints(dir: string): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return [];
  }
  for (const name of entries) {
    if (name.startsWith('.')) continue;
    try {
      if (!statSync(join(dir, name)).isDirectory()) continue;
      if (readdirSync(join(dir, name)).some((f) => f.endsWith('.safetensors') && !f.startsWith('.'))) out.push(name);
    } catch {
      // unreadable or removed meanwhile: not one to name
    }
  }
  return out;
}
