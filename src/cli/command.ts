/**
 * The command lines the tool prints for the user to paste (e.g. "resume with: ..."), written the
 * way this process was started, so that they run as printed:
 *
 *   npx grid-lstm train ...           → npx grid-lstm train --resume CK
 *   node dist/cli.js train ...        → node dist/cli.js train --resume CK
 *   node /abs/path/dist/cli.js ...    → node /abs/path/dist/cli.js ... (the cli is not under the cwd)
 *   npm run demo (a package script)   → node dist/cli.js ... (the script's name is not a command),
 *                                       after "cd DIR &&" when npm ran it in another directory
 *   grid-lstm train ... (on the PATH) → grid-lstm train --resume CK
 *
 * The command runs in this process's directory, as relative paths in it (and those recorded in a
 * checkpoint: --data, --checkpoint-dir) are relative to that. Use {@link commandLine}.
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import { basename, delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { shellWord } from './files.js';

/** What decides how to print a command: this process's environment, argv[1] and cwd. */
export interface Launch {
  env: Record<string, string | undefined>;
  /** process.argv[1]: the script node runs, as an absolute path (node makes it absolute). */
  script: string;
  cwd: string;
  /** Where `name` is found on `PATH` (resolved through symlinks), or null. */
  which: (name: string, path: string) => string | null;
  /** A path resolved through symlinks (the path itself when that fails). */
  realpath: (p: string) => string;
  /** process.execPath: printed instead of "node" when there is no node on the PATH. */
  execPath: string;
}

/** The bin name package.json gives the CLI. */
const BIN = 'grid-lstm';

/**
 * The directory the user's shell is in. `npm run` runs a package script in the package's root
 * (and says where the user was in INIT_CWD); a process that npm started in some other directory
 * (say a test that `npm test` runs) is not such a script, so its own cwd counts.
 */
export function userCwd(l: Pick<Launch, 'env' | 'cwd'>): string {
  const { INIT_CWD, npm_package_json } = l.env;
  if (INIT_CWD && npm_package_json && resolve(l.cwd) === resolve(dirname(npm_package_json))) return INIT_CWD;
  return l.cwd;
}

/** The words that start a command line running this CLI, from the user's shell. */
export function commandPrefixOf(l: Launch): string[] {
  const viaBin = basename(l.script) === BIN; // a bin link (the .js file itself is cli.js)
  // npx / npm exec sets npm_command=exec for what it runs; npx finds the package's bin again
  // (in the package itself, a project that depends on it, or the npx cache).
  if (viaBin && l.env.npm_command === 'exec') return ['npx', BIN];
  if (viaBin) {
    // The bin on the user's PATH (a global install); npm run adds node_modules/.bin directories
    // to PATH for its scripts, which the user's shell does not have, so those do not count.
    const path = (l.env.PATH ?? '')
      .split(delimiter)
      .filter((d) => d !== '' && !d.split(sep).includes('node_modules'))
      .join(delimiter);
    const found = l.which(BIN, path);
    if (found !== null && found === l.realpath(l.script)) return [BIN];
    // A project's node_modules/.bin/grid-lstm (an npm script said "grid-lstm ..."): npx finds it.
    if (l.script.split(sep).includes('node_modules')) return ['npx', BIN];
  }
  // node PATH/cli.js (or the script run through its shebang): the same file, relative to the
  // directory the command runs in when it is under it, else absolute (which works from anywhere).
  const rel = relative(l.cwd, l.script);
  const script = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : l.script;
  return [l.which('node', l.env.PATH ?? '') !== null ? 'node' : l.execPath, script];
}

/** Finds an executable on a PATH string, resolved through symlinks; null when not there. */
function which(name: string, path: string): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return realpathSync(p);
    } catch {
      // not here
    }
  }
  return null;
}

function realpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

function thisLaunch(): Launch {
  return { env: process.env, script: process.argv[1] ?? 'dist/cli.js', cwd: process.cwd(), which, realpath, execPath: process.execPath };
}

/** The words that start a command running this CLI, as this process was started (in its cwd). */
export function commandPrefix(): string[] {
  return commandPrefixOf(thisLaunch());
}

/**
 * A whole command line for the user to paste in their shell, each word shell-quoted, run in this
 * process's directory: `commandLineOf(launch, ['train', '--resume', ck])` →
 * "npx grid-lstm train --resume 'cv/my run/x.safetensors'", or under `npm run` started in a
 * subdirectory of the package "cd .. && node dist/cli.js train --resume ...".
 */
export function commandLineOf(l: Launch, args: string[]): string {
  const from = userCwd(l);
  const cd = resolve(from) === resolve(l.cwd) ? '' : `cd ${shellWord(relative(from, l.cwd) || '.')} && `;
  return cd + [...commandPrefixOf(l), ...args].map(shellWord).join(' ');
}

/** {@link commandLineOf} for this process: `commandLine('train', '--resume', ck)`. */
export function commandLine(...args: string[]): string {
  return commandLineOf(thisLaunch(), args);
}
