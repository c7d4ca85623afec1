/** grid-lstm inspect: what a checkpoint holds. */
import { paramCount } from '../nn/params.js';
import { UsageError, parseArgs } from './args.js';
import { loadCk } from './files.js';

export function cmdInspect(argv: string[]): number {
  const { pos } = parseArgs('inspect', argv, [], ['CK']);
  if (pos.length < 1) throw new UsageError('inspect needs a checkpoint: grid-lstm inspect CK');
  const ck = loadCk(pos[0]);
  const c = ck.model.config;
  const out: string[] = [
    `model:         ${c.model}${c.model === 'grid_lstm' ? (c.tieWeights ? ' (depth weights tied)' : ' (depth weights untied)') : ''}`,
    `rnn_size:      ${c.rnnSize}`,
    `num_layers:    ${c.numLayers}`,
    `dropout:       ${c.dropout}`,
    `vocabulary:    ${c.vocabSize} characters`,
    `parameters:    ${paramCount(c).toLocaleString('en-US')}`,
  ];
  const t = ck.training;
  if (t) {
    const last = <T>(a: T[]) => (a.length ? a[a.length - 1] : undefined);
    const lt = last(t.history.train);
    const lv = last(t.history.val);
    out.push(
      `iteration:     ${t.iteration}`,
      `epoch:         ${t.epoch.toFixed(3)}`,
      `learning rate: ${t.learningRate}`,
      `optimiser:     ${t.optimizer.name}`,
      `train loss:    ${lt ? `${lt[1].toFixed(4)} (iteration ${lt[0]})` : '-'}`,
      `val loss:      ${lv ? `${lv[1].toFixed(4)} nats/char, ${(lv[1] / Math.LN2).toFixed(4)} bits/char (iteration ${lv[0]})` : '-'}`,
      `val history:   ${t.history.val.map(([i, v]) => `${i}:${v.toFixed(4)}`).join(' ') || '-'}`,
      `options:       ${JSON.stringify(t.options)}`,
    );
  } else out.push('training:      none (weights only)');
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}
