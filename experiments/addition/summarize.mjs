// The table of experiments/addition/README.md from the runs of run.sh: for each run, its
// parameters and its validation accuracy (sums right, answer characters right) and loss every
// 5 000 steps, read from the histories of the runs' final checkpoints; also results.csv, every
// validation of every run. Run from the repository's root: node experiments/addition/summarize.mjs
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, paramCount } from '../../dist/index.js';

const root = 'experiments/addition/runs';
const rows = [];
const csv = ['run,parameters,iteration,val_loss,val_char_accuracy,val_number_accuracy'];
for (const name of readdirSync(root).sort()) {
  const dir = join(root, name);
  const file = readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort().at(-1);
  const ck = loadCheckpoint(join(dir, file));
  const t = ck.training;
  const params = paramCount(ck.model.config);
  const val = new Map(t.history.val);
  for (const [it, chars, sums] of t.history.accuracy) csv.push([name, params, it, val.get(it), chars, sums].join(','));
  // Wall time: the directory (made as the run started) to the final checkpoint.
  const secs = (statSync(join(dir, file)).mtimeMs - statSync(dir).birthtimeMs) / 1000;
  const at = (it) => {
    const a = t.history.accuracy.find((r) => r[0] === it);
    return a ? `${(100 * a[2]).toFixed(1)} / ${(100 * a[1]).toFixed(1)}` : '-';
  };
  const best = Math.max(...t.history.accuracy.map((r) => r[2]));
  rows.push(
    `| ${name} | ${params.toLocaleString('en-US')} | ${[5000, 10000, 15000, 20000].map(at).join(' | ')} | ${(100 * best).toFixed(1)} | ` +
      `${val.get(t.iteration).toFixed(4)} | ${Math.round(secs)} |`,
  );
}
writeFileSync('experiments/addition/results.csv', csv.join('\n') + '\n');
console.log('| run | parameters | 5 000 | 10 000 | 15 000 | 20 000 | best % sums | final val loss | wall s |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);
