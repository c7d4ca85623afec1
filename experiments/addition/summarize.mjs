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
    // Two decimals: exact for 2 000 sums (steps of 0.05%) of 5 characters (0.01%).
    return a ? `${(100 * a[2]).toFixed(2)} / ${(100 * a[1]).toFixed(2)}` : '-';
  };
  const best = Math.max(...t.history.accuracy.map((r) => r[2]));
  rows.push(
    `| ${name} | ${params.toLocaleString('en-US')} | ${[5000, 10000, 15000, 20000].map(at).join(' | ')} | ${(100 * best).toFixed(2)} | ` +
      `${val.get(t.iteration).toFixed(4)} | ${Math.round(secs)} |`,
  );
}
writeFileSync('experiments/addition/results.csv', csv.join('\n') + '\n');
console.log('| run | parameters | 5 000 | 10 000 | 15 000 | 20 000 | best % sums | final val loss | wall s |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);

// Which digits of the answer each final model gets right: the accuracy at each of the D + 1
// answer positions (least significant digit first, as written), over 2 000 sums of the stream
// `eval` uses (neither training nor validation sums).
import { additionSequence, additionVocab, encodeSequence, evalStream, streamOperands } from '../../dist/index.js';
console.log('\n| run | ' + 'digit 1 (units) | digit 2 | digit 3 | digit 4 | digit 5 (carry) |'.trim());
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const name of readdirSync(root).sort()) {
  const dir = join(root, name);
  const file = readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort().at(-1);
  const ck = loadCheckpoint(join(dir, file));
  const spec = { digitLength: ck.task.digitLength, seqLength: ck.task.seqLength };
  const { digitLength: D, seqLength: T } = spec;
  const vocab = additionVocab();
  const V = vocab.chars.length;
  const base = evalStream(ck.training.options.seed);
  const B = 50;
  const right = new Array(D + 1).fill(0);
  let n = 0;
  ck.model.inference(() => {
    for (let first = 0; first < 2000; first += B) {
      const x = new Int32Array(B * T);
      const y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) encodeSequence(additionSequence(...streamOperands(base, first + b, D), T), spec, vocab, x, y, b);
      ck.model.forward({ x, y, batchSize: B, seqLength: T }, ck.model.zeroState(B));
      const logp = ck.model.activations().logp;
      for (let b = 0; b < B; b++) {
        for (let k = 0; k <= D; k++) {
          const t = T - D - 2 + k;
          const row = (t * B + b) * V;
          let best = 0;
          for (let v = 1; v < V; v++) if (logp[row + v] > logp[row + best]) best = v;
          if (best === y[b * T + t]) right[k]++;
        }
      }
      n += B;
    }
  });
  console.log(`| ${name} | ${right.map((r) => (100 * r / n).toFixed(1)).join(' | ')} |`);
}
