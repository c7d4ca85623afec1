/**
 * The command-line parser and its messages (src/cli/args.ts, src/cli/commands.ts, src/cli.ts):
 * "did you mean" for every one-edit typo of every flag of every command and for char-rnn's
 * spellings (-rnn_size, --max_epochs); negative numbers as values; --version from package.json;
 * --help within 80 columns listing every option, its choices and its default; and the small
 * consistencies of issue 19 (B×T, inspect's labels, sample --length 0).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type OptSpec,
  UsageError,
  commandFlags,
  editDistance,
  flagSynopsis,
  parseArgs,
  program,
  suggest,
  suggestCommand,
  suggestFlag,
  wrap,
} from '../src/cli/args.js';
import { COMMANDS, commandHelp, mainHelp, packageVersion } from '../src/cli/commands.js';
import { applicableOptions, optionWords, valHistoryWords } from '../src/cli/inspect.js';
import { CharLoader } from '../src/train/data.js';
import { DEFAULT_TRAIN_OPTIONS, Trainer, optionFlag } from '../src/train/train.js';
import { CLI } from './helpers/cli.js';
import { shellWord } from '../src/cli/files.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The message parseArgs throws for `argv` (fails the test when it does not throw a UsageError). */
function usageError(command: string, argv: string[], specs: OptSpec[], positionals: string[] = []): string {
  try {
    parseArgs(command, argv, specs, positionals);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`parseArgs accepted ${argv.join(' ')}`);
}

/** The flags an unknown-option message suggests ("did you mean --a or --b?"), or null. */
function suggested(message: string): string[] | null {
  const m = /; did you mean (.*)\? \(see grid-lstm \w+ --help\)$/.exec(message);
  return m ? m[1].split(/, | or /) : null;
}

const commands = Object.entries(COMMANDS).map(([name, c]) => ({ name, specs: c.opts() }));

/** Every string one edit away from `s`: an insertion, deletion, substitution or swap of neighbours. */
function oneEditTypos(s: string, alphabet: string): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i <= s.length; i++) {
    for (const c of alphabet) out.add(s.slice(0, i) + c + s.slice(i));
    if (i < s.length) {
      out.add(s.slice(0, i) + s.slice(i + 1));
      for (const c of alphabet) out.add(s.slice(0, i) + c + s.slice(i + 1));
    }
    if (i + 1 < s.length) out.add(s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2));
  }
  out.delete(s);
  return out;
}

describe('unknown options get a suggestion', () => {
  it('every one-edit typo of every flag of every command suggests that flag', () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
    let checked = 0;
    const wrong: string[] = [];
    for (const { name, specs } of commands) {
      const valid = new Set(commandFlags(specs));
      for (const flag of commandFlags(specs)) {
        const word = flag.slice(2);
        for (const typo of oneEditTypos(word, alphabet)) {
          // A one-letter name (plot's --x) has one-letter substitutions that share nothing with it.
          if (word.length === 1 && typo.length === 1) continue;
          const t = `--${typo}`;
          // Not a typo if it is another flag, or "--" (the end of the options) or "--=..."
          if (valid.has(t) || typo === '' || typo.startsWith('=')) continue;
          let message = `accepted`;
          try {
            parseArgs(name, [t], specs, []);
          } catch (e) {
            message = (e as Error).message;
          }
          // (expect() once at the end: tens of thousands of cases.)
          if (!message.startsWith(`unknown option ${t} for 'grid-lstm ${name}'; `) || !suggested(message)?.includes(flag)) wrong.push(`${name} ${t}: ${message}`);
          checked++;
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(10_000);
  });

  it("char-rnn's spellings (-rnn_size, --max_epochs, -seq_length) name the flag, and only it", () => {
    for (const { name, specs } of commands) {
      for (const s of specs) {
        const flag = optionFlag(s.key);
        const snake = flag.slice(2).replace(/-/g, '_');
        for (const spelling of [`-${snake}`, `--${snake}`, `-${flag.slice(2)}`, `--${flag.slice(2).toUpperCase()}`]) {
          if (spelling === flag) continue;
          const message = usageError(name, [spelling, '1'], specs);
          expect(suggested(message), `${name} ${spelling}: ${message}`).toEqual([flag]);
        }
      }
    }
  });

  it('the messages of issue 19, exactly', () => {
    const train = COMMANDS.train.opts();
    expect(usageError('train', ['--rnn_size', '128'], train)).toBe("unknown option --rnn_size for 'grid-lstm train'; did you mean --rnn-size? (see grid-lstm train --help)");
    expect(usageError('train', ['-rnn_size', '128'], train)).toBe("unknown option -rnn_size for 'grid-lstm train'; did you mean --rnn-size? (see grid-lstm train --help)");
    expect(usageError('train', ['--max-step', '3'], train)).toBe("unknown option --max-step for 'grid-lstm train'; did you mean --max-steps? (see grid-lstm train --help)");
    expect(usageError('train', ['-max_epochs=3'], train)).toMatch(/did you mean --max-epochs\?/);
    // Nothing close: the pointer to --help alone (as before).
    expect(usageError('train', ['--frobnicate'], train)).toBe("unknown option --frobnicate for 'grid-lstm train'; see grid-lstm train --help");
    expect(usageError('train', ['-n', '3'], train)).toBe("unknown option -n for 'grid-lstm train'; see grid-lstm train --help");
  });

  it('PyTorch spellings, prefixes and longer names', () => {
    const train = COMMANDS.train.opts();
    const cases: [string, string[]][] = [
      ['--lr', ['--learning-rate']],
      ['--epochs', ['--max-epochs']],
      ['--hidden_size', ['--rnn-size']],
      ['--rnn', ['--rnn-size']],
      ['--max', ['--max-epochs', '--max-steps']],
      ['--learning-rate-decay-aftr', ['--learning-rate-decay-after']],
      ['--tie-weight', ['--tie-weights']],
      ['--no-tie-weight', ['--no-tie-weights']],
      ['--hepl', ['--help']],
    ];
    for (const [typo, want] of cases) expect(suggested(usageError('train', [typo], train)), typo).toEqual(want);
    expect(suggested(usageError('sample', ['--temp', '0.5'], COMMANDS.sample.opts(), ['CK']))).toEqual(['--temperature']);
    expect(suggested(usageError('plot', ['-x', 'epoch'], COMMANDS.plot.opts(), ['CK']))).toEqual(['--x']);
    expect(suggested(usageError('plot', ['--x-axis', 'epoch'], COMMANDS.plot.opts(), ['CK']))).toEqual(['--x']);
  });

  it('a single-dash word is an option error, not an unexpected argument; "-", negative numbers and words after "--" are arguments', () => {
    const sample = COMMANDS.sample.opts();
    expect(usageError('sample', ['ck', '-length', '5'], sample, ['CK'])).toMatch(/^unknown option -length .*did you mean --length\?/);
    expect(parseArgs('sample', ['-'], sample, ['CK']).pos).toEqual(['-']);
    expect(parseArgs('sample', ['--', '-length'], sample, ['CK']).pos).toEqual(['-length']);
    expect(parseArgs('plot', ['a', '--', '--b', '-c'], COMMANDS.plot.opts(), ['CK', 'CK', 'CK']).pos).toEqual(['a', '--b', '-c']);
    expect(usageError('sample', ['a', '--', 'b'], sample, ['CK'])).toBe(`unexpected argument "b" for 'grid-lstm sample'; see grid-lstm sample --help`);
  });

  it('negative numbers are values', () => {
    const sample = COMMANDS.sample.opts();
    expect(parseArgs('sample', ['ck', '--temperature', '-1'], sample, ['CK']).opts.temperature).toBe(-1);
    expect(parseArgs('sample', ['ck', '--temperature', '-.5'], sample, ['CK']).opts.temperature).toBe(-0.5);
    expect(parseArgs('sample', ['ck', '--temperature=-2e-3'], sample, ['CK']).opts.temperature).toBe(-2e-3);
    expect(parseArgs('sample', ['ck', '--seed', '-7'], sample, ['CK']).opts.seed).toBe(-7);
    expect(parseArgs('sample', ['ck', '--primetext', '-rnn_size'], sample, ['CK']).opts.primetext).toBe('-rnn_size');
    expect(parseArgs('train', ['--grad-clip', '-1'], COMMANDS.train.opts(), []).opts.gradClip).toBe(-1);
  });

  it('a choice value close to one gets it suggested; the message keeps its shape', () => {
    const train = COMMANDS.train.opts();
    expect(usageError('train', ['--optim', 'Adam'], train)).toBe('--optim must be one of rmsprop, adam, sgd, got "Adam"; did you mean adam?');
    expect(usageError('train', ['--model', 'gridlstm'], train)).toBe('--model must be one of grid_lstm, lstm, gru, rnn, got "gridlstm"; did you mean grid_lstm?');
    expect(usageError('train', ['--optim', 'lbfgs'], train)).toBe('--optim must be one of rmsprop, adam, sgd, got "lbfgs"');
    expect(usageError('train', ['--optim'], train)).toBe('--optim needs a value (rmsprop|adam|sgd)');
  });

  it('commands: typos, other names, and options before the command', () => {
    const words = [...Object.keys(COMMANDS), 'help', 'version'];
    expect(suggestCommand('trian', words)).toEqual(['train']);
    expect(suggestCommand('smaple', words)).toEqual(['sample']);
    expect(suggestCommand('evaluate', words)).toEqual(['eval']);
    expect(suggestCommand('generate', words)).toEqual(['sample']);
    expect(suggestCommand('Inspect', words)).toEqual(['inspect']);
    expect(suggestCommand('frobnicate', words)).toEqual([]);
    const r = run(['trian']);
    expect(r.code).toBe(2);
    // The pointer names the program as it was started (here node and the CLI's absolute path, as
    // the test runs it from another directory), so that it runs when pasted.
    const prog = `node ${shellWord(CLI)}`;
    expect(r.stderr).toBe(`grid-lstm: error: unknown command "trian"; did you mean train? (see ${prog} --help)\n`);
    const o = run(['--rnn-size', '3']);
    expect(o.code).toBe(2);
    expect(o.stderr).toBe(`grid-lstm: error: --rnn-size before a command; the command comes first: ${prog} train --rnn-size ... (see ${prog} --help)\n`);
  });

  it('editDistance is the optimal string alignment distance', () => {
    expect(editDistance('', '')).toBe(0);
    expect(editDistance('abc', '')).toBe(3);
    expect(editDistance('lenght', 'length')).toBe(1); // a swap is one edit
    expect(editDistance('max-step', 'max-steps')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('ca', 'abc')).toBe(3); // OSA, not unrestricted Damerau–Levenshtein (2)
    expect(suggest('zzzz', ['x'], {})).toEqual([]);
    // Only the closest: a farther candidate listed first is dropped.
    expect(suggest('abcdef', ['abcdxy', 'abcdex', 'abcdez', 'abcdeg', 'abcdeh'], {})).toEqual(['abcdex', 'abcdez', 'abcdeg']);
    expect(suggestFlag('--', ['--x'])).toEqual([]);
  });
});

describe('--version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  it("prints package.json's version, as --version, -V and version", () => {
    expect(packageVersion()).toBe(pkg.version);
    for (const a of ['--version', '-V', 'version']) {
      const r = run([a]);
      expect(r.code, a).toBe(0);
      expect(r.stdout, a).toBe(`grid-lstm ${pkg.version}\n`);
      expect(r.stderr, a).toBe('');
    }
  });
  it('is listed in the main help', () => {
    expect(mainHelp()).toMatch(/^ {2}-V, --version +print the version$/m);
    expect(mainHelp()).toMatch(/^ {2}version +print the version$/m);
  });
});

describe('--help', () => {
  const helps = [...commands.map(({ name }) => ({ name, text: commandHelp(name) })), { name: '(main)', text: mainHelp() }];

  it("every line fits in 80 columns", () => {
    for (const { name, text } of helps) {
      for (const line of text.split('\n')) expect(line.length, `${name}: ${line}`).toBeLessThanOrEqual(80);
    }
  });

  it('every option of every command is listed, with its choices and its default', () => {
    for (const { name, specs } of commands) {
      const text = commandHelp(name);
      // The help as one line of words (descriptions are wrapped).
      const flat = text.replace(/\s+/g, ' ');
      for (const s of specs) {
        expect(s.help.trim(), `${name} ${s.key}`).not.toBe('');
        expect(text, `${name} ${s.key}`).toMatch(new RegExp(`^ {2}${flagSynopsis(s).replace(/[|.*+?^${}()[\]\\]/g, '\\$&')}( |$)`, 'm'));
        if (s.kind === 'choice') expect(text, `${name} ${s.key}`).toContain(`${optionFlag(s.key)} ${s.choices!.join('|')}`);
        if (s.default !== undefined && s.default !== null && s.kind !== 'bool') expect(flat, `${name} ${s.key}`).toContain(`(default: ${String(s.default)})`);
      }
      expect(text).toMatch(/^ {2}-h, --help +show this help$/m);
    }
    const train = commandHelp('train');
    expect(train).toContain('--optim rmsprop|adam|sgd');
    expect(train).toContain('--model grid_lstm|lstm');
    expect(train).toContain('--kernels wasm|wasm-simd|ts');
    expect(train).toContain('--encoding utf8|latin1');
    expect(commandHelp('plot')).toContain('--x iteration|epoch|chars');
  });

  it('descriptions wrap under their column; "(default: X)" is never split', () => {
    const lines = commandHelp('train').split('\n');
    const at = lines.findIndex((l) => l.startsWith('  --kernels '));
    // A long flag takes its own line; the description follows in the column.
    expect(lines[at + 1]).toMatch(/^ {30}compute kernels/);
    for (const l of lines) expect(l, l).not.toMatch(/\(default:$/);
    expect(wrap('aaa bbb ccc', 7)).toEqual(['aaa bbb', 'ccc']);
    expect(wrap('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
  });

  it('the CLI prints the same help, for --help, -h and help CMD', () => {
    for (const args of [['train', '--help'], ['train', '-h'], ['help', 'train']]) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toBe(commandHelp('train') + '\n');
    }
    expect(run(['help']).stdout).toBe(mainHelpAs(`node ${shellWord(CLI)}`) + '\n');
  });
});

describe('small consistencies', () => {
  let ck = '';
  beforeAll(() => {
    const text = Array.from({ length: 40 }, (_, i) => `the quick brown fox ${i % 7} jumps over the lazy dog.\n`).join('');
    const t = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 4, numLayers: 1, batchSize: 2, seqLength: 8, maxSteps: 2, evalValEvery: 2, checkpointDir: join(dir, 'ck') });
    expect(t.run().status).toBe('done');
    ck = t.lastCheckpoint!;
  });

  it('batch shapes are written B×T', () => {
    const loader = new CharLoader(new Uint16Array(200), 2, 8, { trainFrac: 0.9, valFrac: 0.1 });
    expect(loader.warnings.join('\n')).toContain('batch(es) of 2×8 characters');
    expect(() => loader.nextBatch('train', new Int32Array(3), new Int32Array(3))).toThrow(/a batch is 2×8 = 16/);
  });

  it("inspect: every line is 'label: value', the values in one column", () => {
    const r = run(['inspect', ck]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(10);
    const column = lines[0].search(/: +\S/) + lines[0].match(/: +/)![0].length;
    for (const l of lines) {
      // A long value (the options) goes on in the value column on the lines after its label.
      if (/^ +\S/.test(l)) {
        expect(l.search(/\S/), l).toBe(column);
        continue;
      }
      expect(l, l).toMatch(/^[a-z_ ]+: +\S/);
      expect(l.search(/: +\S/) + l.match(/: +/)![0].length, l).toBe(column);
    }
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
    expect(r.stdout).toMatch(/^learning rate: +0\.002$/m);
  });

  it('sample --length 0 prints nothing; with --primetext, the primetext and a newline', () => {
    const empty = run(['sample', ck, '--length', '0', '--quiet']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('');
    const primed = run(['sample', ck, '--length', '0', '--quiet', '--primetext', 'the ']);
    expect(primed.stdout).toBe('the \n');
    const some = run(['sample', ck, '--length', '5', '--quiet', '--argmax']);
    expect(some.stdout).toMatch(/^[^]{5}\n$/u);
  });

  it('every error the parser gives is one line starting "grid-lstm: error: ", exit code 2', () => {
    for (const args of [['train', '-rnn_size', '8'], ['sample', ck, '--lenght', '3'], ['plot', ck, '--x', 'epochs'], ['bogus'], ['-x']]) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^grid-lstm: error: [^\n]+\n$/);
    }
  });
});

describe('messages that name the fix', () => {
  const train = COMMANDS.train.opts();
  it('a value given to a switch names both forms', () => {
    expect(usageError('train', ['--tie-weights=yes'], train)).toBe('--tie-weights takes no value; use --tie-weights or --no-tie-weights');
    expect(usageError('train', ['--no-tie-weights=1'], train)).toBe('--no-tie-weights takes no value; use --tie-weights or --no-tie-weights');
  });
  it('a text given as an argument suggests --data (as char-rnn users and other tools pass it)', () => {
    expect(usageError('train', ['input.txt'], train)).toBe(`unexpected argument "input.txt" for 'grid-lstm train'; did you mean --data input.txt? (see grid-lstm train --help)`);
    expect(usageError('eval', ['ck', 'text.txt'], COMMANDS.eval.opts(), ['CK'])).toMatch(/did you mean --data text\.txt\?/);
    // With --data given, or for a command without it: no such guess.
    expect(usageError('train', ['--data', 'a.txt', 'extra'], train)).toBe(`unexpected argument "extra" for 'grid-lstm train'; see grid-lstm train --help`);
    expect(usageError('sample', ['ck', 'extra'], COMMANDS.sample.opts(), ['CK'])).toBe(`unexpected argument "extra" for 'grid-lstm sample'; see grid-lstm sample --help`);
  });
  it('an option where a value was due: the value was forgotten', () => {
    expect(usageError('train', ['--data', '--rnn-size', '8'], train)).toBe('--data needs a value (FILE), got the option --rnn-size; write --data=--rnn-size if that is the value');
    expect(usageError('sample', ['ck', '--primetext', '--help'], COMMANDS.sample.opts(), ['CK'])).toMatch(/^--primetext needs a value \(TEXT\), got the option --help;/);
    expect(parseArgs('sample', ['ck', '--primetext=--seed'], COMMANDS.sample.opts(), ['CK']).opts.primetext).toBe('--seed');
    expect(parseArgs('sample', ['ck', '--primetext', '--not-an-option'], COMMANDS.sample.opts(), ['CK']).opts.primetext).toBe('--not-an-option');
  });
});

describe('help and version in other places', () => {
  it('help help / help version / help -h: the main help; help --version and CMD --version: the version', () => {
    const main = mainHelpAs(`node ${shellWord(CLI)}`);
    for (const args of [['help', 'help'], ['help', 'version'], ['help', '-h']]) expect(run(args).stdout, args.join(' ')).toBe(main + '\n');
    const version = `grid-lstm ${packageVersion()}\n`;
    for (const args of [['help', '--version'], ['train', '--version'], ['sample', 'x', '--version']]) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toBe(version);
    }
  });
});

/** The main help as the CLI prints it when started as `prog` (program.name). */
function mainHelpAs(prog: string): string {
  const saved = program.name;
  program.name = prog;
  try {
    return mainHelp();
  } finally {
    program.name = saved;
  }
}

describe('commands printed to run name the program as it was started', () => {
  const prog = `node ${shellWord(CLI)}`;

  it("the main help's commands: PROG help train, 'PROG <command> --help'; the usage line stays a synopsis", () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    // The command table wraps at 80 columns: where the clone lives decides whether the example
    // stays on the row or goes whole onto the next line (indented under the description).
    expect(r.stdout.split('\n').every((l) => l.length <= 80)).toBe(true);
    const table = r.stdout.replace(/\n {11}(?=\S)/g, ' ');
    expect(table).toMatch(new RegExp(`^ {2}help +this help, or a command's: ${escapeRe(prog)} help train$`, 'm'));
    expect(r.stdout).toContain(`${prog} help train\n`);
    expect(r.stdout).toMatch(new RegExp(`^'${escapeRe(prog)} <command> --help' lists a command's options\\.$`, 'm'));
    expect(r.stdout).toMatch(/^usage: grid-lstm <command> \[options\]$/m);
    expect(r.stdout).not.toMatch(/'grid-lstm|grid-lstm help/);
    // In-process (no launch to name): grid-lstm, within 80 columns; a long name is not cut.
    expect(mainHelp()).toContain("  help     this help, or a command's: grid-lstm help train\n");
    const long = mainHelpAs(`node /${'x'.repeat(70)}/dist/cli.js`);
    expect(long).toContain(`node /${'x'.repeat(70)}/dist/cli.js <command> --help`);
    const named = long.split('\n').filter((l) => l.includes('xxx'));
    expect(named).toEqual([`  node /${'x'.repeat(70)}/dist/cli.js <command> --help`]);
    expect(long).toMatch(/^ {2}help +this help, or a command's: help <command>$/m);
  });

  it('"needs a checkpoint" errors show the command as it runs', () => {
    const cases: [string[], string][] = [
      [['sample'], `sample needs a checkpoint: ${prog} sample CK (a .safetensors file or a directory of them)`],
      [['eval'], `eval needs a checkpoint: ${prog} eval CK --data FILE`],
      [['inspect'], `inspect needs a checkpoint: ${prog} inspect CK`],
      [['viz'], `viz needs a checkpoint: ${prog} viz CK --data FILE`],
      [['plot'], `plot needs at least one checkpoint: ${prog} plot CK... (.safetensors files or directories of them)`],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toBe(`grid-lstm: error: ${message}\n`);
    }
  });
});

function escapeRe(s: string): string {
  return s.replace(/[|.*+?^${}()[\]\\/]/g, '\\$&');
}

describe("char-rnn's flags that have no flag of that name here say what to write", () => {
  const train = COMMANDS.train.opts();
  const sample = COMMANDS.sample.opts();
  const head = (flag: string, command: string) => `unknown option ${flag} for 'grid-lstm ${command}'; `;

  it('-gpuid / -opencl: there is no GPU; drop it', () => {
    expect(usageError('train', ['-gpuid', '-1'], train)).toBe(`${head('-gpuid', 'train')}grid-lstm runs on the CPU (WebAssembly), there is no GPU to choose; drop -gpuid`);
    expect(usageError('train', ['-opencl', '1'], train)).toBe(`${head('-opencl', 'train')}grid-lstm runs on the CPU (WebAssembly), there is no GPU to choose; drop -opencl`);
    expect(usageError('sample', ['-gpuid=0'], sample, ['CK'])).toMatch(/; drop -gpuid$/);
  });

  it('sample -sample 0 is --argmax; -sample 1 is the default', () => {
    expect(usageError('sample', ['ck', '-sample', '0'], sample, ['CK'])).toBe(`${head('-sample', 'sample')}char-rnn's -sample 0 is --argmax here`);
    expect(usageError('sample', ['ck', '-sample', '1'], sample, ['CK'])).toBe(`${head('-sample', 'sample')}sampling is the default here; drop -sample 1`);
    expect(usageError('sample', ['-sample'], sample, ['CK'])).toMatch(/-sample 0 is --argmax here; sampling \(-sample 1\) is the default$/);
  });

  it('-verbose 0 is --quiet; -verbose 1 is the default', () => {
    expect(usageError('sample', ['ck', '-verbose', '0'], sample, ['CK'])).toBe(`${head('-verbose', 'sample')}char-rnn's -verbose 0 is --quiet here`);
    expect(usageError('sample', ['ck', '-verbose', '1'], sample, ['CK'])).toBe(`${head('-verbose', 'sample')}the diagnostics are shown by default; drop -verbose 1`);
  });

  it('-data_dir DIR: --data takes the file, DIR/input.txt in char-rnn', () => {
    expect(usageError('train', ['-data_dir', 'data/x'], train)).toBe(`${head('-data_dir', 'train')}--data takes the text file itself: --data data/x/input.txt`);
    expect(usageError('train', ['--data-dir=data/x/'], train)).toBe(`${head('--data-dir', 'train')}--data takes the text file itself: --data data/x/input.txt`);
    expect(usageError('train', ['--data_dir'], train)).toBe(`${head('--data_dir', 'train')}--data takes the text file itself: --data DIR/input.txt`);
  });

  it('from the CLI: one line, exit code 2', () => {
    for (const [args, tail] of [
      [['train', '-gpuid', '-1'], 'drop -gpuid'],
      [['sample', 'x', '-sample', '0'], 'is --argmax here'],
      [['sample', 'x', '-verbose', '0'], 'is --quiet here'],
      [['train', '-data_dir', 'data/x'], '--data data/x/input.txt'],
    ] as [string[], string][]) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^grid-lstm: error: [^\n]+\n$/);
      expect(r.stderr.trimEnd().endsWith(tail), r.stderr).toBe(true);
    }
  });
});

describe('help X: X names a command', () => {
  it('an unknown word or option after help is an unknown command, with suggestions', () => {
    const prog = `node ${shellWord(CLI)}`;
    const foo = run(['help', '--foo']);
    expect(foo.code).toBe(2);
    expect(foo.stderr).toBe(`grid-lstm: error: unknown command "--foo"; use train, sample, eval, inspect, plot or viz (see ${prog} --help)\n`);
    expect(run(['help', '--tarin']).stderr).toBe(`grid-lstm: error: unknown command "--tarin"; did you mean train? (see ${prog} --help)\n`);
    expect(run(['help', 'smaple']).stderr).toBe(`grid-lstm: error: unknown command "smaple"; did you mean sample? (see ${prog} --help)\n`);
    // Still: help --help, help -V.
    expect(run(['help', '--help']).code).toBe(0);
    expect(run(['help', '-V']).stdout).toBe(`grid-lstm ${packageVersion()}\n`);
  });
});

describe('inspect: the options as flags, the latest validations', () => {
  it('options are --flag value words (booleans as the switch or --no-, unset ones left out, values shell-quoted)', () => {
    expect(optionWords({ rnnSize: 128, tieWeights: true, evalValEvery: 1000, savefile: null, data: 'my text.txt', model: 'grid_lstm' })).toEqual([
      '--rnn-size 128',
      '--tie-weights',
      '--eval-val-every 1000',
      "--data 'my text.txt'",
      '--model grid_lstm',
    ]);
    expect(optionWords({ tieWeights: false, learningRate: 0.002 })).toEqual(['--no-tie-weights', '--learning-rate 0.002']);
  });

  it('only the options that apply: --tie-weights for a grid_lstm, --digit-length for --task addition', () => {
    const o = { model: 'gru', task: 'char', rnnSize: 8, tieWeights: true, digitLength: 4 };
    expect(optionWords(applicableOptions(o))).toEqual(['--model gru', '--task char', '--rnn-size 8']);
    const grid = { ...o, model: 'grid_lstm', task: 'addition', digitLength: 2 };
    expect(optionWords(applicableOptions(grid))).toEqual(['--model grid_lstm', '--task addition', '--rnn-size 8', '--tie-weights', '--digit-length 2']);
  });

  it('at most the last 10 validations, after "… N earlier"', () => {
    const val: [number, number][] = Array.from({ length: 25 }, (_, i) => [(i + 1) * 100, 3 - i / 10]);
    const words = valHistoryWords(val);
    expect(words).toHaveLength(11);
    expect(words[0]).toBe('… 15 earlier');
    expect(words[1]).toBe('1600:1.5000');
    expect(words.at(-1)).toBe('2500:0.6000');
    expect(valHistoryWords(val.slice(0, 10))).toHaveLength(10);
    expect(valHistoryWords([])).toEqual([]);
  });

  it('from the CLI: the options wrapped within 80 columns in the value column, 12 validations shown as 10; --json keeps them all', () => {
    const text = Array.from({ length: 40 }, (_, i) => `the quick brown fox ${i % 7} jumps over the lazy dog.\n`).join('');
    const t = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 4, numLayers: 1, batchSize: 2, seqLength: 8, maxSteps: 12, evalValEvery: 1, keep: 'last-1', log: 'none', checkpointDir: join(dir, 'ck12') });
    expect(t.run().status).toBe('done');
    const r = run(['inspect', t.lastCheckpoint!]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
    const at = lines.findIndex((l) => l.startsWith('options: '));
    const options = lines.slice(at).map((l) => l.slice(15)).join(' ');
    expect(lines.slice(at + 1).every((l) => /^ {15}--/.test(l))).toBe(true);
    expect(options).toContain('--rnn-size 4 --num-layers 1');
    expect(options).toContain('--max-steps 12');
    expect(options).toContain('--keep last-1');
    expect(options).toContain('--tie-weights'); // a grid_lstm of --task char: no --digit-length
    expect(options).not.toContain('--digit-length');
    expect(r.stdout).not.toMatch(/[{}"]|rnnSize/);
    const history = r.stdout.slice(r.stdout.indexOf('val history:'), r.stdout.indexOf('options:')).replace(/\s+/g, ' ').trim();
    expect(history).toMatch(/^val history: … 2 earlier 3:\d\.\d{4} .* 12:\d\.\d{4}$/);
    expect(history.match(/\d+:\d\.\d{4}/g)).toHaveLength(10);
    const json = JSON.parse(run(['inspect', t.lastCheckpoint!, '--json']).stdout);
    expect(json.training.history.val).toHaveLength(12);
    expect(json.training.options.rnnSize).toBe(4);
  });
});
