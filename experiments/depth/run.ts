/**
 * npm run experiment:depth [-- OPTIONS]: the seed's depth experiment (depth.ts), as one command.
 *
 *   npm run experiment:depth                    # the whole experiment: 6 runs, about an hour on 2 cores
 *   npm run experiment:depth -- --plan          # the plan and the time it would take, then stop
 *   npm run experiment:depth -- --smoke         # tiny models for a few steps (what the tests run)
 *
 * Ctrl-C stops the current run with a checkpoint; the same command continues the experiment.
 */
import { helpRows, suggestFlag, wrap } from '../../dist/cli/args.js';
import { shellWord } from '../../dist/cli/files.js';
import { startedByNpm, stopExitCode, stopRequests } from '../../dist/cli/stop.js';
import { DEFAULTS, type DepthOptions, ExperimentError, RUNS, defaultThreads, runExperiment } from './depth.js';

type Kind = 'int' | 'chars' | 'ints' | 'names' | 'string' | 'bool';
interface Spec {
  flag: string;
  kind: Kind;
  arg?: string;
  help: string;
}

const SPECS: Spec[] = [
  { flag: '--rnn-size', kind: 'int', arg: 'N', help: `hidden units per LSTM, the same for every run (default: ${DEFAULTS.rnnSize})` },
  {
    flag: '--chars',
    kind: 'chars',
    arg: 'C',
    help: `training characters per run, e.g. 4M or 500k, rounded to whole batches of 50\u00a0×\u00a050 (default: ${DEFAULTS.chars / 1e6}M)`,
  },
  { flag: '--evals', kind: 'int', arg: 'K', help: `validations per run, evenly spaced, each over the whole val split (default: ${DEFAULTS.evals})` },
  { flag: '--threads', kind: 'int', arg: 'N', help: 'threads per run (default: the cores, at most 8)' },
  {
    flag: '--seeds',
    kind: 'ints',
    arg: 'S,S',
    help: `one run of each model per seed; the runs of seed 123 are named plainly, the others NAME-seedS (default: ${DEFAULTS.seeds.join(',')})`,
  },
  { flag: '--only', kind: 'names', arg: 'RUN,RUN', help: `train only these runs, of: ${RUNS.map((r) => r.name).join(', ')}` },
  { flag: '--untied', kind: 'bool', help: 'add grid-6-untied (grid-6 without tied depth weights)' },
  { flag: '--out', kind: 'string', arg: 'DIR', help: `where the runs and results go (default: ${DEFAULTS.out}; with --smoke, ${DEFAULTS.out}-smoke)` },
  { flag: '--data', kind: 'string', arg: 'FILE', help: 'train on this UTF-8 text instead of the built-in corpus' },
  {
    flag: '--smoke',
    kind: 'bool',
    help: 'tiny models (rnn size 8, batches of 4 × 10) for 8 steps on the first 30 000 characters, 1 thread: checks that everything works in seconds',
  },
  { flag: '--plan', kind: 'bool', help: 'print the plan and the time it would take (measured on a few steps), then stop' },
];

const USAGE = 'npm run experiment:depth -- [OPTIONS]';

function help(): string {
  const about =
    "The seed's experiment at laptop scale: stacked LSTMs and Grid LSTMs of 3 and 6 layers with dropout 0.25, " +
    'and both 6-layer models without dropout, trained one after another on the same number of characters ' +
    '(RMSprop, lr 1e-3, batches of 50\u00a0×\u00a050, 95/5 split), then results.md, results.json and curves.svg in --out. ' +
    'Ctrl-C stops with a checkpoint; the same command continues where it stopped.';
  const rows: [string, string][] = SPECS.map((s) => [s.arg ? `${s.flag} ${s.arg}` : s.flag, s.help]);
  rows.push(['-h, --help', 'show this help']);
  return [`usage: ${USAGE}`, '', ...wrap(about, 79), '', 'options:', ...helpRows(rows), ''].join('\n');
}

/** "4M", "500k", "2500000" as a whole number of characters. */
function parseChars(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v.trim());
  const n = m ? Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1e3 : 1e6) : NaN;
  if (!(Number.isSafeInteger(Math.round(n)) && n >= 1)) {
    throw new ExperimentError(`${flag} must be a count of characters such as 4M, 500k or 2500000, got ${JSON.stringify(v)}`);
  }
  return Math.round(n);
}

function parseInt1(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 1) {
    throw new ExperimentError(`${flag} must be a whole number of at least 1, got ${JSON.stringify(v)}`);
  }
  return n;
}

export function parseOptions(argv: string[]): DepthOptions | 'help' {
  const given = new Map<string, unknown>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return 'help';
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const spec = SPECS.find((s) => s.flag === flag);
    if (!spec) {
      const guesses = a.startsWith('-') ? suggestFlag(flag, SPECS.map((s) => s.flag)) : [];
      const hint = guesses.length > 0 ? `did you mean ${guesses.join(' or ')}? ` : '';
      const what = a.startsWith('-') ? 'option' : 'argument';
      throw new ExperimentError(`unknown ${what} ${JSON.stringify(a)}; ${hint}(see ${USAGE.replace('[OPTIONS]', '--help')})`);
    }
    if (spec.kind === 'bool') {
      if (eq > 0 && a.startsWith('--')) throw new ExperimentError(`${flag} takes no value`);
      given.set(flag, true);
      continue;
    }
    let v: string;
    if (eq > 0) v = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new ExperimentError(`${flag} needs a value (${spec.arg})`);
      v = argv[++i];
    }
    switch (spec.kind) {
      case 'int':
        given.set(flag, parseInt1(flag, v));
        break;
      case 'chars':
        given.set(flag, parseChars(flag, v));
        break;
      case 'ints': {
        const seeds = v.split(',').map((s) => {
          const n = Number(s);
          if (s.trim() === '' || !Number.isSafeInteger(n) || n < 0) {
            throw new ExperimentError(`${flag} must be whole numbers ≥ 0 separated by commas, got ${JSON.stringify(v)}`);
          }
          return n;
        });
        if (new Set(seeds).size !== seeds.length) throw new ExperimentError(`${flag} names a seed twice: ${v}`);
        given.set(flag, seeds);
        break;
      }
      case 'names':
        given.set(
          flag,
          v.split(',').map((s) => s.trim()),
        );
        break;
      default:
        if (v === '') throw new ExperimentError(`${flag} needs a value (${spec.arg})`);
        given.set(flag, v);
    }
  }
  const smoke = given.get('--smoke') === true;
  const get = <T>(flag: string, normal: T, inSmoke: T): T => (given.has(flag) ? (given.get(flag) as T) : smoke ? inSmoke : normal);
  const batchSize = smoke ? 4 : DEFAULTS.batchSize;
  const seqLength = smoke ? 10 : DEFAULTS.seqLength;
  const command = `npm run experiment:depth${argv.length > 0 ? ` -- ${argv.map(shellWord).join(' ')}` : ''}`;
  return {
    rnnSize: get('--rnn-size', DEFAULTS.rnnSize, 8),
    chars: get('--chars', DEFAULTS.chars, 8 * batchSize * seqLength),
    evals: get('--evals', DEFAULTS.evals, 2),
    threads: get('--threads', defaultThreads(batchSize), 1),
    seeds: get('--seeds', DEFAULTS.seeds, DEFAULTS.seeds),
    only: get<string[] | null>('--only', null, null),
    untied: given.get('--untied') === true,
    out: get('--out', DEFAULTS.out, `${DEFAULTS.out}-smoke`),
    data: get<string | null>('--data', null, null),
    dataChars: smoke ? 30_000 : null,
    batchSize,
    seqLength,
    learningRate: DEFAULTS.learningRate,
    plan: given.get('--plan') === true,
    command,
  };
}

async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  try {
    const o = parseOptions(args);
    if (o === 'help') {
      process.stdout.write(help());
      return 0;
    }
    const stop = stopRequests((why) => {
      const what = why === 'parent-exit' ? 'npm exited' : why;
      process.stderr.write(`\n${what}: saving a checkpoint after this step, then stopping (Ctrl-\\ quits at once without saving)\n`);
    }, startedByNpm());
    try {
      const outcome = await runExperiment(o, {
        err: process.stderr,
        out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
        shouldStop: () => stop.reason() !== null,
      });
      return outcome === 'stopped' ? stopExitCode(stop.reason()) : 0;
    } finally {
      stop.dispose();
    }
  } catch (e) {
    if (debug) console.error(e);
    else process.stderr.write(`experiment:depth: error: ${(e as Error).message}\n`);
    return e instanceof ExperimentError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
