/** grid-lstm sample: char-rnn's sample.lua. */
import { checkPrimetext, sample } from '../infer/generate.js';
import { COMMON, type OptSpec, UsageError, makeKernels, parseArgs, program } from './args.js';
import { NEWEST_OPT, loadCk } from './files.js';
import { addDigits, parseSum, sumPrefix } from '../train/addition.js';

export const SAMPLE_OPTS: OptSpec[] = [
  { key: 'length', kind: 'int', default: 2000, help: 'number of characters to generate (--task addition checkpoints: the rest of the answer)' },
  { key: 'temperature', kind: 'number', default: 1, help: 'sampling temperature (> 0); lower is more conservative' },
  {
    key: 'primetext',
    kind: 'string',
    arg: 'TEXT',
    help: 'text to warm the state up with (printed first); --task addition checkpoints: a sum to complete, e.g. "1234+5678="',
  },
  { key: 'argmax', kind: 'bool', default: false, help: 'take the most likely character each time (deterministic)' },
  { key: 'seed', kind: 'int', default: 123, help: 'random seed' },
  { key: 'quiet', kind: 'bool', default: false, help: 'print only the text, no diagnostics' },
  {
    key: 'threads',
    kind: 'int',
    arg: 'N',
    default: 1,
    help:
      'accepted as train takes it, but sampling runs on one thread: each character needs the one before, and ' +
      'handing a part of each step to another thread costs more than it saves (docs/performance.md)',
  },
  NEWEST_OPT,
  ...COMMON,
];

export function cmdSample(argv: string[]): number {
  const { opts, pos, given } = parseArgs('sample', argv, SAMPLE_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError(`sample needs a checkpoint: ${program.name} sample CK (a .safetensors file or a directory of them)`);
  if ((opts.length as number) < 0) throw new UsageError(`--length must be a whole number ≥ 0, got ${opts.length}`);
  if ((opts.threads as number) < 1) throw new UsageError(`--threads must be a whole number ≥ 1, got ${opts.threads}`);
  if (opts.temperature === 0) {
    throw new UsageError('--temperature must be a number > 0, got 0; for the most likely character each time (char-rnn\'s -sample 0), use --argmax');
  }
  if (!((opts.temperature as number) > 0)) throw new UsageError(`--temperature must be a number > 0, got ${opts.temperature}`);
  if ((opts.temperature as number) < 1e-300) {
    throw new UsageError(`--temperature ${opts.temperature} is too small to compute with (below 1e-300); use --argmax for the most likely character each time`);
  }
  const ck = loadCk(pos[0], makeKernels(opts.kernels), opts.newest ? 'newest' : 'best');
  const prime = (opts.primetext as string | undefined) ?? '';
  // The addition task: the model reads the sum laid out as in training (spaces in front, those
  // typed before it left out), and by default writes the rest of its answer, read back to front
  // on stderr.
  let modelPrime = prime;
  let sum: { a: string; b: string; answer: string } | null = null;
  if (ck.task.kind === 'addition') {
    const D = ck.task.digitLength;
    sum = parseSum(prime, D);
    if (sum === null) {
      throw new UsageError(
        `this checkpoint adds ${D}-digit numbers: give --primetext "a+b=" with two ${D}-digit numbers (e.g. "${'1'.repeat(D)}+${'2'.repeat(D)}="), ` +
          'optionally followed by the first digits of the reversed answer',
      );
    }
    modelPrime = sumPrefix(sum, ck.task.seqLength);
    if (!given.has('length')) opts.length = D + 1 - sum.answer.length;
  }
  try {
    checkPrimetext(prime, ck.vocab); // before anything is printed
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  // A directory: which of its checkpoints was taken, and why (one line), then what is done.
  if (!opts.quiet) process.stderr.write(ck.note ? `${ck.note}\nsampling ${opts.length} characters\n` : `sampling ${opts.length} characters from ${ck.file}\n`);
  const stopped = Symbol('output closed');
  /** Writes to stdout; stops sampling once stdout has failed (e.g. `| head` has exited). */
  const write = (text: string) => {
    process.stdout.write(text);
    if (process.stdout.errored) throw stopped;
  };
  let buf = '';
  let written = '';
  try {
    write(prime);
    sample(ck.model, ck.vocab, {
      length: opts.length as number,
      temperature: opts.temperature as number,
      primetext: modelPrime,
      argmax: opts.argmax as boolean,
      seed: opts.seed as number,
      onChar: (c) => {
        buf += c;
        written += c;
        if (buf.length >= 64 || c === '\n') {
          write(buf);
          buf = '';
        }
      },
    });
    // A final newline ends the text; with nothing written (--length 0, no --primetext) there is no line.
    if (prime !== '' || (opts.length as number) > 0) write(buf + '\n');
  } catch (e) {
    if (e !== stopped) throw e;
  }
  if (sum !== null && !opts.quiet) {
    // The answer as a reader writes it, and whether it is the sum.
    const digits = (sum.answer + written).slice(0, sum.a.length + 1);
    const right = addDigits(sum.a, sum.b);
    const read = [...digits].reverse().join('');
    const verdict = digits.length < sum.a.length + 1 || /[^0-9]/.test(digits) ? 'not a whole answer' : read === right ? 'right' : 'wrong';
    process.stderr.write(`the answer read back to front: ${read} (${sum.a} + ${sum.b} = ${right.replace(/^0+(?=[0-9])/, '')}: ${verdict})\n`);
  }
  return 0;
}
