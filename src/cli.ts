#!/usr/bin/env node
/**
 * The grid-lstm command line: a thin layer over the library (src/index.ts).
 *
 *   grid-lstm train [options]            train a model (char-rnn's train.lua)
 *   grid-lstm sample CK [options]        generate text (char-rnn's sample.lua)
 *   grid-lstm eval CK --data FILE        loss of a text in nats and bits per character
 *   grid-lstm inspect CK                 config, size and progress of a checkpoint
 *   grid-lstm viz CK --data FILE         an HTML report of what the model's units do over a text
 *
 * Exit codes: 0 success, 2 a usage or input error, 1 a failure at run time, 130/143 when
 * stopped by Ctrl-C / SIGTERM (after saving a checkpoint).
 */
import { describeSystemError } from './train/safetensors.js';
import { UsageError, helpText } from './cli/args.js';
import { EVAL_OPTS, cmdEval } from './cli/eval.js';
import { cmdInspect } from './cli/inspect.js';
import { PLOT_OPTS, cmdPlot } from './cli/plot.js';
import { SAMPLE_OPTS, cmdSample } from './cli/sample.js';
import { TRAIN_OPTS, cmdTrain } from './cli/train.js';
import { VIZ_OPTS, cmdViz } from './cli/viz.js';

const COMMANDS: Record<string, { run: (argv: string[]) => number | Promise<number>; help: () => string }> = {
  train: {
    run: cmdTrain,
    help: () => helpText('grid-lstm train [options]', 'Train a character-level language model (char-rnn options and defaults).', TRAIN_OPTS),
  },
  sample: {
    run: cmdSample,
    help: () => helpText('grid-lstm sample CK [options]', 'Generate text from a checkpoint (a file, or a directory: its newest checkpoint).', SAMPLE_OPTS),
  },
  eval: {
    run: cmdEval,
    help: () => helpText('grid-lstm eval CK --data FILE [--json]', 'Mean negative log-likelihood of FILE, read as one stream, in nats and bits per character.', EVAL_OPTS),
  },
  inspect: { run: cmdInspect, help: () => helpText('grid-lstm inspect CK', 'Show a checkpoint: config, parameter count, iteration, epoch, losses.', []) },
  plot: {
    run: cmdPlot,
    help: () =>
      helpText(
        'grid-lstm plot CK... [--out curves.svg|curves.png] [--x iteration|epoch|chars] [--bits] [--ascii]',
        'Training and validation loss curves of one or more runs, from the loss history in their checkpoints (a directory: its newest checkpoint). Without --out, a plot in the terminal.',
        PLOT_OPTS,
      ),
  },
  viz: {
    run: cmdViz,
    help: () =>
      helpText(
        'grid-lstm viz CK --data FILE [--out report.html] [--json] [--start S] [--length N]',
        "A self-contained HTML report of what the model's units do over a window of FILE: the text coloured by any unit, the units that track text features, gate saturation, the depth cells (grid_lstm), the top-5 predictions at every character.",
        VIZ_OPTS,
      ),
  },
};

const MAIN_HELP = `usage: grid-lstm <command> [options]

commands:
  train      train a grid_lstm or lstm model on a text file (default: the built-in corpus)
  sample     generate text from a checkpoint
  eval       measure the loss of a text under a checkpoint
  inspect    show what a checkpoint holds
  plot       draw the loss curves of runs (SVG, PNG or in the terminal)
  viz        an HTML report of what a model's units do over a text

'grid-lstm <command> --help' lists a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  argv = argv.filter((a) => a !== '--debug');
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(MAIN_HELP + '\n');
      return command === undefined ? 2 : 0;
    }
    const cmd = COMMANDS[command];
    if (!cmd) throw new UsageError(`unknown command ${JSON.stringify(command)}; use train, sample, eval, inspect, plot or viz`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(cmd.help() + '\n');
      return 0;
    }
    const code = await cmd.run(rest);
    const failed = outputError(process.stdout.errored);
    if (failed !== null) throw new Error(failed);
    return code;
  } catch (e) {
    const err = e as Error;
    if (outputErrorReported) return 1;
    outputErrorReported = /^cannot write the output: /.test(err?.message ?? '');
    process.stderr.write(`grid-lstm: error: ${oneLine(err?.message ?? String(e))}\n`);
    if (debug) process.stderr.write(`${err.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

/**
 * The message for a failed write to stdout, or null when there is none or it is EPIPE (whoever
 * read the output has stopped, as with "| head": not an error, as for other command-line tools).
 */
function outputError(e: unknown): string | null {
  if (!e || (e as NodeJS.ErrnoException).code === 'EPIPE') return null;
  return `cannot write the output: ${describeSystemError(e)}`;
}

// A failed write to stdout or stderr is reported as an 'error' event, which would otherwise end
// the process with a stack trace. Diagnostics on a closed stderr are dropped (training goes on).
let outputErrorReported = false;
process.stdout.on('error', (e) => {
  const message = outputError(e);
  if (message !== null && !outputErrorReported) {
    outputErrorReported = true;
    process.stderr.write(`grid-lstm: error: ${message}\n`);
    process.exitCode = 1;
  }
});
process.stderr.on('error', () => {});

/** A message on one line: line breaks and other control characters become spaces. */
function oneLine(message: string): string {
  return message.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();
}

process.exitCode = await main(process.argv.slice(2));
