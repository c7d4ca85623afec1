/** grid-lstm eval: the loss of a text under a checkpoint. */
import { evaluateIds } from '../infer/generate.js';
import { COMMON, type OptSpec, UsageError, makeKernels, parseArgs } from './args.js';
import { loadCk, readData } from './files.js';

export const EVAL_OPTS: OptSpec[] = [
  { key: 'data', kind: 'string', arg: 'FILE', help: 'the text to evaluate (required)' },
  { key: 'encoding', kind: 'choice', choices: ['utf8', 'latin1'], default: 'utf8', help: 'how to read --data' },
  { key: 'json', kind: 'bool', default: false, help: 'print one JSON object {loss, bpc, predictions}' },
  ...COMMON,
];

export function cmdEval(argv: string[]): number {
  const { opts, pos } = parseArgs('eval', argv, EVAL_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError('eval needs a checkpoint: grid-lstm eval CK --data FILE');
  if (opts.data === undefined) throw new UsageError('eval needs --data FILE: the text to measure the loss on');
  const ck = loadCk(pos[0], makeKernels(opts.kernels));
  const { ids } = readData(opts.data as string, opts.encoding as 'utf8' | 'latin1', ck.vocab);
  if (ids.length < 2) throw new UsageError(`--data ${opts.data} has ${ids.length} character(s); at least 2 are needed`);
  const r = evaluateIds(ck.model, ids);
  if (opts.json) process.stdout.write(JSON.stringify({ loss: r.loss, bpc: r.bpc, predictions: r.predictions }) + '\n');
  else process.stdout.write(`${r.loss.toFixed(6)} nats/char, ${r.bpc.toFixed(6)} bits/char over ${r.predictions} predictions\n`);
  return 0;
}
