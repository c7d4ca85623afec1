/** grid-lstm eval: the loss of a text under a checkpoint. */
import { evaluateIds } from '../infer/generate.js';
import { COMMON, type OptSpec, UsageError, makeKernels, parseArgs, program } from './args.js';
import { NEWEST_OPT, loadCk, readData } from './files.js';

export const EVAL_OPTS: OptSpec[] = [
  { key: 'data', kind: 'string', arg: 'FILE', help: 'the text to evaluate (required)' },
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
  const { opts, pos } = parseArgs('eval', argv, EVAL_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError(`eval needs a checkpoint: ${program.name} eval CK --data FILE`);
  if (opts.data === undefined) throw new UsageError('eval needs --data FILE: the text to measure the loss on');
  if ((opts.threads as number) < 1) throw new UsageError(`--threads must be a whole number ≥ 1, got ${opts.threads}`);
  const ck = loadCk(pos[0], makeKernels(opts.kernels), opts.newest ? 'newest' : 'best');
  // The file a directory stood for, before the data is read: an error about the data (a
  // character outside this checkpoint's vocabulary) then says of which checkpoint.
  if (ck.note) process.stderr.write(`${ck.note}\n`);
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
