/** grid-lstm inspect: what a checkpoint holds. */
import { paramCount } from '../nn/params.js';
import { CHECKPOINT_FORMAT, ownValLoss } from '../train/checkpoint.js';
import { optionFlag } from '../train/train.js';
import { type OptSpec, UsageError, parseArgs, program } from './args.js';
import { NEWEST_OPT, loadCk, shellWord } from './files.js';

export const INSPECT_OPTS: OptSpec[] = [
  {
    key: 'json',
    kind: 'bool',
    default: false,
    help:
      'print one JSON object instead, with these keys: file (the checkpoint read), format, ' +
      'config {model, vocab (the characters in id order), vocab_size, rnn_size, num_layers, tie_weights, dropout}, ' +
      'parameters (the count), val_loss (the validation loss of the weights in this file, or null), ' +
      'task {kind: char, or addition with digit_length and seq_length}, ' +
      'training (null for a weights-only file, else the saved training state: iteration, epoch, learningRate, ' +
      'optimizer {name, stepCount, decayRate, beta1, beta2, epsilon}, options (the run\'s options), ' +
      'history {train, val: lists of [iteration, loss]; addition: accuracy, a list of [iteration, characters right, sums right]}, ' +
      'bestValLoss, and the other fields saved for --resume)',
  },
  NEWEST_OPT,
];

export function cmdInspect(argv: string[]): number {
  const { opts, pos } = parseArgs('inspect', argv, INSPECT_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError(`inspect needs a checkpoint: ${program.name} inspect CK`);
  const ck = loadCk(pos[0], undefined, opts.newest ? 'newest' : 'best');
  if (ck.note) process.stderr.write(`${ck.note}\n`);
  const c = ck.model.config;
  const t = ck.training;
  if (opts.json) {
    const out = {
      file: ck.file,
      format: CHECKPOINT_FORMAT,
      config: {
        model: c.model,
        vocab: ck.vocab.chars,
        vocab_size: c.vocabSize,
        rnn_size: c.rnnSize,
        num_layers: c.numLayers,
        tie_weights: c.tieWeights,
        dropout: c.dropout,
      },
      parameters: paramCount(c),
      val_loss: t ? ownValLoss(t) : null,
      task: ck.task.kind === 'addition' ? { kind: 'addition', digit_length: ck.task.digitLength, seq_length: ck.task.seqLength } : { kind: 'char' },
      training: t,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  }
  const out: string[] = [
    `model:         ${c.model}${c.model === 'grid_lstm' ? (c.tieWeights ? ' (depth weights tied)' : ' (depth weights untied)') : ''}`,
    `rnn_size:      ${c.rnnSize}`,
    `num_layers:    ${c.numLayers}`,
    `dropout:       ${c.dropout}`,
    `vocabulary:    ${c.vocabSize} characters`,
    `parameters:    ${paramCount(c).toLocaleString('en-US')}`,
  ];
  if (ck.task.kind === 'addition') {
    out.splice(0, 0, `task:          addition of ${ck.task.digitLength}-digit numbers, seq_length ${ck.task.seqLength}, answer reversed`);
  }
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
      ...accuracyLines(t.history.accuracy),
      ...labelled('val history:   ', valHistoryWords(t.history.val)),
      ...labelled('options:       ', optionWords(applicableOptions(t.options))),
    );
  } else out.push('training:      none (weights only)');
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

/** The width inspect's lines are fitted to (a word longer than the room is never cut). */
const WIDTH = 80;

/** How many of the latest validations `val history` shows (all of them: inspect --json). */
export const VAL_HISTORY_SHOWN = 10;

/**
 * `label` and the words after it, wrapped to {@link WIDTH} columns, continuation lines starting
 * in the value column; a word longer than the room has a line of its own, whole. No words: "-".
 */
export function labelled(label: string, words: string[]): string[] {
  const room = WIDTH - label.length;
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && line.length + 1 + w.length <= room) line += ' ' + w;
    else {
      if (line !== '') lines.push(line);
      line = w;
    }
  }
  lines.push(line === '' ? '-' : line);
  return lines.map((l, i) => (i === 0 ? label : ' '.repeat(label.length)) + l);
}

/** The last {@link VAL_HISTORY_SHOWN} validations as "iteration:loss", after "… N earlier" when there were more. */
export function valHistoryWords(val: [number, number][]): string[] {
  const shown = val.slice(-VAL_HISTORY_SHOWN).map(([i, v]) => `${i}:${v.toFixed(4)}`);
  const earlier = val.length - shown.length;
  return earlier > 0 ? [`… ${earlier} earlier`, ...shown] : shown;
}

/**
 * The options of a run that apply to it, as inspect lists them: --tie-weights for a grid_lstm
 * only, --digit-length for --task addition only (checkpoints record every option).
 */
export function applicableOptions(options: Record<string, unknown>): Record<string, unknown> {
  const o = { ...options };
  if (o.model !== 'grid_lstm') delete o.tieWeights;
  if (o.task !== 'addition') delete o.digitLength;
  return o;
}

/**
 * A run's options as the command-line flags that give them ("--rnn-size 128", "--tie-weights",
 * "--no-tie-weights", values shell-quoted), one word per option; unset ones (null) left out.
 */
export function optionWords(options: Record<string, unknown>): string[] {
  const words: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === null || value === undefined) continue;
    const flag = optionFlag(key);
    if (value === true) words.push(flag);
    else if (value === false) words.push(`--no-${flag.slice(2)}`);
    else words.push(`${flag} ${shellWord(typeof value === 'string' ? value : typeof value === 'number' ? String(value) : JSON.stringify(value))}`);
  }
  return words;
}

/** The addition task's last validation accuracy, and its history as "iteration:sums right %". */
function accuracyLines(acc: [number, number, number][] | undefined): string[] {
  if (acc === undefined) return [];
  const last = acc.at(-1);
  if (last === undefined) return ['accuracy:      -'];
  const pc = (x: number) => `${(100 * x).toFixed(1)}%`;
  const shown = acc.slice(-VAL_HISTORY_SHOWN).map(([i, , n]) => `${i}:${pc(n)}`);
  const earlier = acc.length - shown.length;
  return [
    `accuracy:      ${pc(last[2])} of sums, ${pc(last[1])} of answer characters (iteration ${last[0]})`,
    ...labelled('sums right:    ', earlier > 0 ? [`… ${earlier} earlier`, ...shown] : shown),
  ];
}
