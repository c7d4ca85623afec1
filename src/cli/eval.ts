/** grid-lstm eval: the loss of a text under a checkpoint. */
import { readFileSync } from 'node:fs';
import { evaluateIds } from '../infer/generate.js';
import { type AdditionSpec, addDigits, additionSequence, evalStream, evaluateSums, parseSum, streamOperands } from '../train/addition.js';
import { COMMON, type OptSpec, UsageError, makeKernels, parseArgs, program } from './args.js';
import { NEWEST_OPT, loadCk, readData } from './files.js';

export const EVAL_OPTS: OptSpec[] = [
  { key: 'data', kind: 'string', arg: 'FILE', help: 'the text to evaluate (required, except for --task addition checkpoints: a file of sums, one a+b=answer a line, the answer reversed)' },
  { key: 'sums', kind: 'int', arg: 'N', default: 2000, help: '--task addition checkpoints without --data: evaluate on N sums generated from --seed' },
  { key: 'seed', kind: 'int', arg: 'S', help: "--task addition: the seed of the generated sums (default: the run's own --seed; its eval sums are neither its training nor its validation ones)" },
  { key: 'encoding', kind: 'choice', choices: ['utf8', 'latin1'], default: 'utf8', help: 'how to read --data' },
  {
    key: 'unknown',
    kind: 'choice',
    choices: ['error', 'skip'],
    default: 'error',
    help: "characters of --data outside the checkpoint's vocabulary: error (refuse the text) or skip (leave them out of the text, and say how many)",
  },
  { key: 'json', kind: 'bool', default: false, help: 'print one JSON object {loss, bpc, predictions, skipped}' },
  {
    key: 'threads',
    kind: 'int',
    arg: 'N',
    default: 1,
    help:
      'accepted as train takes it, but eval runs on one thread: one stream is one step after another, and ' +
      'handing a part of each step to another thread costs more than it saves (docs/performance.md)',
  },
  NEWEST_OPT,
  ...COMMON,
];

export function cmdEval(argv: string[]): number {
  const { opts, pos, given } = parseArgs('eval', argv, EVAL_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError(`eval needs a checkpoint: ${program.name} eval CK --data FILE`);
  if ((opts.threads as number) < 1) throw new UsageError(`--threads must be a whole number ≥ 1, got ${opts.threads}`);
  if ((opts.sums as number) < 1) throw new UsageError(`--sums must be a whole number ≥ 1, got ${opts.sums}`);
  const ck = loadCk(pos[0], makeKernels(opts.kernels), opts.newest ? 'newest' : 'best');
  // The file a directory stood for, before the data is read: an error about the data (a
  // character outside this checkpoint's vocabulary) then says of which checkpoint.
  if (ck.note) process.stderr.write(`${ck.note}\n`);
  if (ck.task.kind === 'addition') return evalAddition(ck, ck.task, opts, given);
  if (opts.seed !== undefined) throw new UsageError('--seed is for checkpoints of --task addition (the sums it generates); a text needs none');
  if (opts.data === undefined) throw new UsageError('eval needs --data FILE: the text to measure the loss on');
  const { ids, skipped, skippedChars } = readData(opts.data as string, opts.encoding as 'utf8' | 'latin1', ck.vocab, opts.unknown as 'error' | 'skip');
  if (ids.length < 2) {
    const after = skipped > 0 ? ` left after skipping ${skipped} outside the vocabulary` : '';
    throw new UsageError(`--data ${opts.data} has ${ids.length} character(s)${after}; at least 2 are needed`);
  }
  // Diagnostics on stderr (stdout holds only the result), once the input is known to be good:
  // what was skipped.
  if (skipped > 0) process.stderr.write(`${skippedLine(skipped, skippedChars)}\n`);
  const r = evaluateIds(ck.model, ids);
  if (opts.json) process.stdout.write(JSON.stringify({ loss: r.loss, bpc: r.bpc, predictions: r.predictions, skipped }) + '\n');
  else process.stdout.write(`${r.loss.toFixed(6)} nats/char, ${r.bpc.toFixed(6)} bits/char over ${r.predictions} predictions\n`);
  return 0;
}

/** "skipped 12 characters outside the checkpoint's vocabulary (3 distinct: "é", "—", "’")" */
export function skippedLine(skipped: number, chars: string[]): string {
  const shown = chars.slice(0, 10).map((c) => JSON.stringify(c).replace(/[\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16)}`));
  const more = chars.length > 10 ? `, and ${chars.length - 10} more` : '';
  return `skipped ${skipped} character${skipped === 1 ? '' : 's'} outside the checkpoint's vocabulary (${chars.length} distinct: ${shown.join(', ')}${more})`;
}

/**
 * eval of a checkpoint of the addition task: the loss over the answers' characters and the
 * accuracy, on --sums sums generated from --seed, or on the sums of --data (one a+b=answer a
 * line, the answer reversed with D + 1 digits, as the task lays them out).
 */
function evalAddition(ck: ReturnType<typeof loadCk>, spec: AdditionSpec, opts: Record<string, unknown>, given: ReadonlySet<string>): number {
  const D = spec.digitLength;
  let count: number;
  let sequence: (i: number) => string;
  let what: string;
  if (opts.data !== undefined) {
    const file = opts.data as string;
    for (const k of ['sums', 'seed'] as const) {
      if (given.has(k)) throw new UsageError(`--${k} is for generated sums, and --data ${file} gives the sums to evaluate; drop --${k} (or --data)`);
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`--data ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass a file of sums`);
    }
    const lines = text.split(/\r?\n/);
    const sums: string[] = [];
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      const p = parseSum(line.trim(), D);
      if (p === null || p.answer.length !== D + 1) {
        throw new UsageError(
          `--data ${file} line ${i + 1}: ${JSON.stringify(line)} is not a sum of this checkpoint's task: ` +
            `two ${D}-digit numbers, "+", "=" and the ${D + 1}-digit answer reversed (e.g. ${exampleSum(D)})`,
        );
      }
      // The file's answer must be the sum's: the accuracy is counted against it.
      const right = [...addDigits(p.a, p.b)].reverse().join('');
      if (p.answer !== right) {
        throw new UsageError(
          `--data ${file} line ${i + 1}: ${JSON.stringify(line)} has the answer ${p.answer}, but ${p.a} + ${p.b} = ` +
            `${addDigits(p.a, p.b).replace(/^0+(?=[0-9])/, '')}, written ${right} (its ${D + 1} digits reversed); correct it`,
        );
      }
      sums.push(`${p.a}+${p.b}=${p.answer}`);
    });
    if (sums.length === 0) throw new UsageError(`--data ${file} holds no sums; write one a+b=answer a line (e.g. ${exampleSum(D)})`);
    count = sums.length;
    sequence = (i) => ' '.repeat(spec.seqLength - sums[i].length) + sums[i];
    what = `the ${count} sums of ${file}`;
  } else {
    const saved = (ck.training?.options as { seed?: unknown } | undefined)?.seed;
    const seed = (opts.seed as number | undefined) ?? (typeof saved === 'number' ? saved : 123);
    const base = evalStream(seed);
    count = opts.sums as number;
    sequence = (i) => {
      const [a, b] = streamOperands(base, i, D);
      return additionSequence(a, b, spec.seqLength);
    };
    what = `${count} sums generated from --seed ${seed}`;
  }
  const r = evaluateSums(ck.model, spec, count, sequence);
  const charAcc = r.correctChars / r.chars;
  const numberAcc = r.correctNumbers / r.numbers;
  if (opts.json) {
    process.stdout.write(
      JSON.stringify({ loss: r.loss, bpc: r.loss / Math.LN2, predictions: r.chars, char_accuracy: charAcc, number_accuracy: numberAcc, sums: r.numbers }) + '\n',
    );
  } else {
    process.stdout.write(
      `${r.loss.toFixed(6)} nats/char over the answers' ${r.chars} characters; ` +
        `${(100 * charAcc).toFixed(2)}% of the characters and ${(100 * numberAcc).toFixed(2)}% of the sums right (${what})\n`,
    );
  }
  return 0;
}

/** A sum as the addition task writes it, for error messages: 12+34=640 for D = 2. */
function exampleSum(D: number): string {
  const a = '1'.repeat(D);
  const b = '2'.repeat(D);
  return `${a}+${b}=${[...('0' + '3'.repeat(D))].reverse().join('')}`;
}
