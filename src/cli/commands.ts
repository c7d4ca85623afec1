/** The commands of the grid-lstm CLI: what runs each, and its --help. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeSystemError } from '../train/safetensors.js';
import { HELP_WIDTH, type OptSpec, helpRows, helpText, program } from './args.js';
import { EVAL_OPTS, cmdEval } from './eval.js';
import { INSPECT_OPTS, cmdInspect } from './inspect.js';
import { PLOT_OPTS, cmdPlot } from './plot.js';
import { SAMPLE_OPTS, cmdSample } from './sample.js';
import { TRAIN_OPTS, cmdTrain } from './train.js';
import { VIZ_OPTS, cmdViz } from './viz.js';

export interface Command {
  run: (argv: string[]) => number | Promise<number>;
  /** One line for the main help. */
  summary: string;
  usage: string;
  about: string;
  /** The options, read when --help is shown (so entries added to them later are listed). */
  opts: () => OptSpec[];
}

export const COMMANDS: Record<string, Command> = {
  train: {
    run: cmdTrain,
    summary: 'train a grid_lstm, lstm, gru or rnn model on a text (default: the built-in corpus), or on sums (--task addition)',
    usage: 'grid-lstm train [options]',
    about: 'Train a character-level language model on a text (char-rnn options and defaults), or on sums of two D-digit numbers generated from --seed (--task addition).',
    opts: () => TRAIN_OPTS,
  },
  sample: {
    run: cmdSample,
    summary: 'generate text from a checkpoint, or complete a sum',
    usage: 'grid-lstm sample CK [options]',
    about: 'Generate text from a checkpoint (a file, or a directory: its checkpoint with the lowest validation loss, or with --newest its newest).',
    opts: () => SAMPLE_OPTS,
  },
  eval: {
    run: cmdEval,
    summary: 'measure the loss of a text (or of sums) under a checkpoint',
    usage: 'grid-lstm eval CK --data FILE [options]',
    about: 'Mean negative log-likelihood of FILE, read as one stream, in nats and bits per character. A checkpoint of --task addition: the loss over the answers and the accuracy, on sums generated from --seed, or on those of FILE.',
    opts: () => EVAL_OPTS,
  },
  inspect: {
    run: cmdInspect,
    summary: 'show what a checkpoint holds',
    usage: 'grid-lstm inspect CK [options]',
    about: 'Show a checkpoint: config, parameter count, iteration, epoch, losses (a directory: its checkpoint with the lowest validation loss, or with --newest its newest).',
    opts: () => INSPECT_OPTS,
  },
  plot: {
    run: cmdPlot,
    summary: 'draw the loss or accuracy curves of runs (SVG, PNG or the terminal)',
    usage: 'grid-lstm plot CK... [options]',
    about:
      'Training and validation loss curves of one or more runs, from the loss history in their checkpoints (a directory: its newest checkpoint). Without --out, a plot in the terminal.',
    opts: () => PLOT_OPTS,
  },
  viz: {
    run: cmdViz,
    summary: "an HTML report of what a model's units do over a text",
    usage: 'grid-lstm viz CK --data FILE [options]',
    about:
      "A self-contained HTML report of what the model's units do over a window of FILE: the text coloured by any unit, the units that track text features, gate saturation, the depth cells (grid_lstm), the top-5 predictions at every character.",
    opts: () => VIZ_OPTS,
  },
};

/** A command's --help text. */
export function commandHelp(name: string): string {
  const c = COMMANDS[name];
  return helpText(c.usage, c.about, c.opts());
}

/**
 * The main help: the commands, the global options. The usage line names the program grid-lstm,
 * as a synopsis does; the commands shown to run name it as this process was started
 * (program.name: "node dist/cli.js" in a clone), so that they run when pasted.
 */
export function mainHelp(): string {
  const prog = program.name;
  // The example on one line of the column (no-break spaces); a name too long for that (a long
  // absolute path) would be cut there: the line at the end shows it whole.
  const example = `${prog} help train`;
  const helpRow = `this help, or a command's: ${example.length <= 60 ? example.replace(/ /g, '\u00a0') : 'help <command>'}`;
  const footer = `'${prog} <command> --help' lists a command's options.`;
  return [
    'usage: grid-lstm <command> [options]',
    '',
    'commands:',
    ...helpRows([...Object.entries(COMMANDS).map(([name, c]): [string, string] => [name, c.summary]), ['help', helpRow], ['version', 'print the version']]),
    '',
    'options:',
    ...helpRows([
      ['-h, --help', "show this help (after a command: the command's options)"],
      ['-V, --version', 'print the version'],
      ['--debug', 'print stack traces on errors'],
    ]),
    '',
    // The command whole on a line of its own when the sentence does not fit.
    ...(footer.length <= HELP_WIDTH ? [footer] : ["A command's options:", `  ${prog} <command> --help`]),
  ].join('\n');
}

/** This package's version, read from its package.json (next to dist/ in a clone or an install). */
export function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown }).version;
  } catch (e) {
    throw new Error(`cannot read the version from ${fileURLToPath(url)}: ${e instanceof SyntaxError ? e.message : describeSystemError(e)}`);
  }
  if (typeof version !== 'string') throw new Error(`cannot read the version from ${fileURLToPath(url)}: it has no "version"`);
  return version;
}
