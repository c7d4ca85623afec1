/**
 * Command-line option parsing: specs, --help text, one-line usage errors with "did you mean"
 * suggestions, the kernels choice.
 *
 * Why hand-written rather than `commander` or `node:util` parseArgs (weighed for issue 19):
 * - every usage error here is one line naming the problem and its fix ("--rnn-size must be a
 *   whole number, got "big"", "--optim must be one of rmsprop, adam, sgd"), which the
 *   reliability suite checks; commander prints its own multi-line errors ("error: unknown
 *   option '--rnn_size'" then "(Did you mean --rnn-size?)"), and matching ours means overriding
 *   its output, its number parsing and its help layout, i.e. most of what it would bring;
 * - commander reads `-rnn_size` as the short options -r -n -n -_ ..., so char-rnn's spelling gets
 *   a confusing error instead of "did you mean --rnn-size?";
 * - node:util parseArgs has no numbers, choices, help or suggestions: it would replace only the
 *   twenty lines of the token loop;
 * - this is about 250 lines with no dependency (the package has one runtime dependency, the
 *   corpus), fully covered by test/args.test.ts.
 */
import type { Kernels } from '../nn/kernels.js';
import { TsKernels } from '../nn/kernels.js';
import { loadWasmKernelsSync } from '../nn/wasm-node.js';
import { optionFlag } from '../train/train.js';

/**
 * How the messages name the program in the commands they point to ("see grid-lstm train
 * --help"): the CLI sets it to the words this process was started with (e.g. "node dist/cli.js"),
 * so that the pointer runs when pasted (src/cli/command.ts); in-process it stays grid-lstm.
 */
export const program = { name: 'grid-lstm' };

/** An error the user can fix: printed as one line, exit code 2. */
export class UsageError extends Error {}

/** The width --help text is fitted to. */
export const HELP_WIDTH = 80;

// ---------------------------------------------------------------------------------------------
// Option parsing

export type Kind = 'int' | 'number' | 'string' | 'bool' | 'choice';
export interface OptSpec {
  key: string;
  kind: Kind;
  help: string;
  default?: unknown;
  choices?: string[];
  /** Value name in --help (choices are listed instead for a choice). */
  arg?: string;
}

/** Options every command takes, handled before its own (src/cli.ts). */
export const GLOBAL_FLAGS = ['--help', '--debug'];

/** The value an option takes, as --help and "needs a value" show it: N, FILE, rmsprop|adam|sgd. */
export function metavar(spec: OptSpec): string {
  if (spec.kind === 'choice') return spec.choices!.join('|');
  return spec.arg ?? { int: 'N', number: 'X', string: 'TEXT', bool: '', choice: '' }[spec.kind];
}

/**
 * Whether a token is an option rather than a positional argument: --name, or a single dash and
 * a letter (char-rnn's -rnn_size, or -h). "-" alone (stdin/stdout) and negative numbers such as
 * -1 or -.5 are positional; a value after an option is always taken as its value.
 */
function isOptionToken(a: string): boolean {
  return a.startsWith('--') || /^-[^-\d.]/.test(a);
}

export function parseArgs(command: string, argv: string[], specs: OptSpec[], positionals: string[]): { opts: Record<string, unknown>; pos: string[]; given: Set<string> } {
  const byFlag = new Map(specs.map((s) => [optionFlag(s.key), s]));
  const opts: Record<string, unknown> = {};
  for (const s of specs) opts[s.key] = s.default;
  const given = new Set<string>();
  const pos: string[] = [];
  let optionsEnded = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (optionsEnded || !isOptionToken(a)) {
      pos.push(a);
      continue;
    }
    if (a === '--') {
      // Everything after "--" is positional (e.g. a checkpoint named "-x.safetensors").
      optionsEnded = true;
      continue;
    }
    let flag = a;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (eq > 0) {
      flag = a.slice(0, eq);
      value = a.slice(eq + 1);
    }
    let spec = a.startsWith('--') ? byFlag.get(flag) : undefined;
    let negated = false;
    if (!spec && flag.startsWith('--no-')) {
      spec = byFlag.get('--' + flag.slice(5));
      negated = spec?.kind === 'bool';
      if (!negated) spec = undefined;
    }
    if (!spec) throw new UsageError(unknownOptionMessage(command, flag, specs, value ?? argv[i + 1]));
    given.add(spec.key);
    if (spec.kind === 'bool') {
      const name = optionFlag(spec.key);
      if (value !== undefined) throw new UsageError(`${flag} takes no value; use ${name} or --no-${name.slice(2)}`);
      opts[spec.key] = !negated;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value (${metavar(spec)})`);
      value = argv[++i];
      // "--data --rnn-size 8": the value forgotten, not a file named --rnn-size (--data=--x says that).
      if (byFlag.has(value.split('=')[0]) || GLOBAL_FLAGS.includes(value)) {
        throw new UsageError(`${flag} needs a value (${metavar(spec)}), got the option ${value}; write ${flag}=${value} if that is the value`);
      }
    }
    opts[spec.key] = convert(flag, spec, value);
  }
  if (pos.length > positionals.length) {
    const extra = pos[positionals.length];
    const head = `unexpected argument ${JSON.stringify(extra)} for 'grid-lstm ${command}'`;
    // char-rnn and other tools take the text as an argument; here it is --data FILE.
    if (byFlag.has('--data') && opts.data === undefined && !extra.startsWith('-')) {
      throw new UsageError(`${head}; did you mean --data ${extra}? (see ${program.name} ${command} --help)`);
    }
    throw new UsageError(`${head}; see ${program.name} ${command} --help`);
  }
  return { opts, pos, given };
}

/** Every flag a command accepts, --no-X forms and the global ones included. */
export function commandFlags(specs: OptSpec[]): string[] {
  const flags: string[] = [];
  for (const s of specs) {
    flags.push(optionFlag(s.key));
    if (s.kind === 'bool') flags.push(`--no-${optionFlag(s.key).slice(2)}`);
  }
  return [...flags, ...GLOBAL_FLAGS];
}

/**
 * "unknown option --rnn_size for 'grid-lstm train'; did you mean --rnn-size? (see grid-lstm
 * train --help)", or without a likely meaning "...; see grid-lstm train --help". A char-rnn flag
 * with no flag of the same name here gets what to write instead ({@link charRnnHint}); `value` is
 * the word after the flag (or after its "="), which some of those depend on.
 */
export function unknownOptionMessage(command: string, flag: string, specs: OptSpec[], value?: string): string {
  const head = `unknown option ${flag} for 'grid-lstm ${command}'`;
  const hint = charRnnHint(flag, value, commandFlags(specs));
  if (hint !== null) return `${head}; ${hint}`;
  const guesses = suggestFlag(flag, commandFlags(specs));
  if (guesses.length === 0) return `${head}; see ${program.name} ${command} --help`;
  return `${head}; did you mean ${orList(guesses)}? (see ${program.name} ${command} --help)`;
}

/**
 * What to write instead of a char-rnn flag that has no flag of the same meaning here, or null:
 * -gpuid / -opencl (the GPU: there is none to choose), sample's -sample 0|1 (--argmax, or the
 * default) and -verbose 0|1 (--quiet, or the default), -data_dir DIR (--data takes the file).
 */
export function charRnnHint(flag: string, value: string | undefined, flags: string[]): string | null {
  const name = normaliseName(flag);
  const has = (f: string) => flags.includes(f);
  const given = value !== undefined && !isOptionToken(value) ? value : undefined;
  switch (name) {
    case 'gpuid':
    case 'gpu':
    case 'opencl':
    case 'cuda':
      return `grid-lstm runs on the CPU (WebAssembly), there is no GPU to choose; drop ${flag}`;
    case 'sample':
      if (!has('--argmax')) return null;
      if (given === '0') return `char-rnn's ${flag} 0 is --argmax here`;
      if (given === '1') return `sampling is the default here; drop ${flag} 1`;
      return `char-rnn's ${flag} 0 is --argmax here; sampling (${flag} 1) is the default`;
    case 'verbose':
      if (!has('--quiet')) return given === undefined ? `drop ${flag}` : `drop ${flag} ${given}`;
      if (given === '0') return `char-rnn's ${flag} 0 is --quiet here`;
      if (given === '1') return `the diagnostics are shown by default; drop ${flag} 1`;
      return `char-rnn's ${flag} 0 is --quiet here; the diagnostics are shown by default`;
    case 'data-dir':
      if (!has('--data')) return null;
      if (given === undefined) return `--data takes the text file itself: --data DIR/input.txt`;
      return `--data takes the text file itself: --data ${given.replace(/\/+$/, '')}/input.txt`;
    default:
      return null;
  }
}

export function convert(flag: string, spec: OptSpec, value: string): unknown {
  switch (spec.kind) {
    case 'int': {
      const v = Number(value);
      if (value.trim() === '' || !Number.isInteger(v)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
      if (!Number.isSafeInteger(v)) throw new UsageError(`${flag} must be a whole number between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}, got ${value}`);
      return v;
    }
    case 'number': {
      const v = Number(value);
      if (value.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${flag} must be a number, got ${JSON.stringify(value)}`);
      return v;
    }
    case 'choice': {
      if (spec.choices!.includes(value)) return value;
      const guesses = suggest(value, spec.choices!, {});
      const hint = guesses.length > 0 ? `; did you mean ${orList(guesses)}?` : '';
      throw new UsageError(`${flag} must be one of ${spec.choices!.join(', ')}, got ${JSON.stringify(value)}${hint}`);
    }
    default:
      return value;
  }
}

// ---------------------------------------------------------------------------------------------
// Suggestions

/**
 * Spellings from PyTorch scripts and char-rnn that no edit-distance rule finds, by normalised
 * name (lower case, "_" as "-", no leading dashes).
 */
export const FLAG_ALIASES: Record<string, string> = {
  lr: 'learning-rate',
  epochs: 'max-epochs',
  'num-epochs': 'max-epochs',
  steps: 'max-steps',
  'hidden-size': 'rnn-size',
  'hidden-dim': 'rnn-size',
  'n-layers': 'num-layers',
  'max-grad-norm': 'grad-clip',
  'clip-grad': 'grad-clip',
  optimizer: 'optim',
  optimiser: 'optim',
  'sample-length': 'length',
  prime: 'primetext',
  'prime-text': 'primetext',
  greedy: 'argmax',
};

/** Command names for other spellings of them. */
export const COMMAND_ALIASES: Record<string, string> = {
  generate: 'sample',
  evaluate: 'eval',
  visualize: 'viz',
  visualise: 'viz',
  info: 'inspect',
  show: 'inspect',
};

/** Lower case, "_" as "-", without leading dashes: "-rnn_size" and "--RNN-size" both give "rnn-size". */
export function normaliseName(s: string): string {
  return s.replace(/^-+/, '').toLowerCase().replace(/_/g, '-');
}

/**
 * The flags `flag` was likely meant to be (at most 3, empty when none is close): char-rnn's
 * spelling (-rnn_size, --max_epochs) and other case/underscore/dash variants exactly, then
 * {@link FLAG_ALIASES}, then the closest by Damerau–Levenshtein distance (--max-step,
 * --lenght), then the flags it is a prefix of or starts with (--rnn, --data-dir).
 */
export function suggestFlag(flag: string, flags: string[]): string[] {
  const names = flags.map((f) => f.slice(2));
  return suggest(normaliseName(flag), names, FLAG_ALIASES).map((n) => `--${n}`);
}

/** The command `word` was likely meant to be (see {@link suggest}). */
export function suggestCommand(word: string, commands: string[]): string[] {
  return suggest(word.toLowerCase(), commands, COMMAND_ALIASES);
}

/**
 * The candidates `word` likely means, by these rules in turn (the first that finds any wins):
 * the same after normalising, an alias, the least edit distance within a bound that grows with
 * the length (1 up to 4 characters, 2 up to 9, then 3, and never more than half the length),
 * then a prefix either way (at least 3 characters; a candidate that starts `word` needs 4, or
 * a "-" after it). At most 3 are returned, in the candidates' order.
 */
export function suggest(word: string, candidates: string[], aliases: Record<string, string>): string[] {
  const norm = normaliseName(word);
  if (norm === '') return [];
  const names = candidates.map(normaliseName);
  const byNorm = candidates.filter((_, i) => names[i] === norm);
  if (byNorm.length > 0) return byNorm.slice(0, 3);
  const alias = aliases[norm];
  if (alias !== undefined && candidates.includes(alias)) return [alias];
  let best = Infinity;
  let close: string[] = [];
  candidates.forEach((c, i) => {
    const n = names[i];
    const bound = Math.min(n.length <= 4 ? 1 : n.length <= 9 ? 2 : 3, Math.floor(Math.max(norm.length, n.length) / 2));
    if (Math.abs(norm.length - n.length) > Math.min(bound, best)) return; // the distance is at least that
    const d = editDistance(norm, n);
    if (d > bound || d > best) return;
    if (d < best) close = [];
    best = d;
    close.push(c);
  });
  if (close.length > 0) return close.slice(0, 3);
  const prefixed = candidates.filter((_, i) => {
    const n = names[i];
    if (norm.length >= 3 && n.startsWith(norm)) return true;
    return norm.startsWith(n) && (n.length >= 4 || norm[n.length] === '-');
  });
  return prefixed.length <= 3 ? prefixed : [];
}

/**
 * The optimal string alignment distance (Damerau–Levenshtein without edits of an edited
 * substring): the fewest insertions, deletions, substitutions and swaps of two adjacent
 * characters that turn `a` into `b`.
 */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev2 = new Int32Array(n + 1);
  let prev = Int32Array.from({ length: n + 1 }, (_, j) => j);
  let cur = new Int32Array(n + 1);
  for (let i = 1; i <= m; i++) {
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur[j] = d;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[n];
}

/** "a", "a or b", "a, b or c". */
export function orList(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

// ---------------------------------------------------------------------------------------------
// Help

/** `text` broken at spaces into lines of at most `width` characters (a longer word is cut). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  // A no-break space (U+00A0) joins words that stay on one line, such as "(default: 128)".
  for (let word of text.split(/[ \t\n]+/).filter((w) => w !== '')) {
    while (word.length > width) {
      if (line !== '') lines.push(line);
      lines.push(word.slice(0, width));
      word = word.slice(width);
      line = '';
    }
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ' ' + word;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line);
  return lines.map((l) => l.replace(/\u00a0/g, ' '));
}

/** Help rows: `  FLAG  description`, the descriptions in one column, wrapped to HELP_WIDTH. */
export function helpRows(rows: [string, string][], maxFlagWidth = 26): string[] {
  const flagWidth = Math.min(maxFlagWidth, Math.max(0, ...rows.map(([f]) => f.length)));
  const col = 2 + flagWidth + 2;
  const out: string[] = [];
  for (const [flag, text] of rows) {
    const body = wrap(text, HELP_WIDTH - col);
    if (flag.length > flagWidth) out.push(`  ${flag}`);
    else out.push(`  ${flag.padEnd(flagWidth)}  ${body.shift()}`);
    for (const l of body) out.push(' '.repeat(col) + l);
  }
  return out;
}

/** How an option is shown in --help: "--rnn-size N", "--optim rmsprop|adam|sgd", "--argmax". */
export function flagSynopsis(s: OptSpec): string {
  const flag = optionFlag(s.key);
  if (s.kind === 'bool') return s.default === true ? `${flag}/--no-${flag.slice(2)}` : flag;
  return `${flag} ${metavar(s)}`;
}

/** " (default: 128)", " (default: --tie-weights)" for a switch that is on, or "" for none; kept on one line. */
function defaultNote(s: OptSpec): string {
  if (s.default === undefined || s.default === null || s.default === '') return '';
  const value = s.kind === 'bool' ? (s.default === true ? optionFlag(s.key) : '') : String(s.default);
  return value === '' ? '' : ` (default:\u00a0${value.replace(/ /g, '\u00a0')})`;
}

export function helpText(usage: string, about: string, specs: OptSpec[]): string {
  const lines = [...wrapHanging(`usage: ${usage}`, 'usage: '.length), '', ...wrap(about, HELP_WIDTH), '', 'options:'];
  const rows: [string, string][] = specs.map((s) => [flagSynopsis(s), s.help + defaultNote(s)]);
  rows.push(['--debug', 'print stack traces on errors'], ['-h, --help', 'show this help']);
  lines.push(...helpRows(rows));
  return lines.join('\n');
}

/** A line wrapped to HELP_WIDTH, the lines after the first indented by `indent`. */
export function wrapHanging(text: string, indent: number): string[] {
  const [first, ...rest] = wrap(text, HELP_WIDTH - indent);
  return [first, ...rest.map((l) => ' '.repeat(indent) + l)];
}

// ---------------------------------------------------------------------------------------------
// Kernels

export const COMMON: OptSpec[] = [
  {
    key: 'kernels',
    kind: 'choice',
    choices: ['wasm', 'wasm-simd', 'ts'],
    default: 'wasm',
    help: 'compute kernels: wasm (WebAssembly, relaxed SIMD where the engine has it), wasm-simd (plain SIMD), ts (the TypeScript reference, slow)',
  },
];

export function makeKernels(name: unknown): Kernels {
  if (name === 'ts') return new TsKernels('float32');
  if (name === 'wasm' || name === 'wasm-simd') return loadWasmKernelsSync({ variant: name === 'wasm' ? 'auto' : 'simd' });
  throw new UsageError(`unknown kernels ${String(name)}`);
}
