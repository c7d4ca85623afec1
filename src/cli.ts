#!/usr/bin/env node
/**
 * The grid-lstm command line: a thin layer over the library (src/index.ts).
 *
 *   grid-lstm train [options]            train a model (char-rnn's train.lua)
 *   grid-lstm sample CK [options]        generate text (char-rnn's sample.lua)
 *   grid-lstm eval CK --data FILE        loss of a text in nats and bits per character
 *   grid-lstm inspect CK                 config, size and progress of a checkpoint
 *   grid-lstm viz CK --data FILE         an HTML report of what the model's units do over a text
 *   grid-lstm plot CK...                 loss curves of runs
 *   grid-lstm --version                  the version, from package.json
 *
 * Exit codes: 0 success, 2 a usage or input error, 1 a failure at run time, 130/143 when
 * stopped by Ctrl-C / SIGTERM (after saving a checkpoint).
 */
import { describeSystemError } from './train/safetensors.js';
import { GLOBAL_FLAGS, UsageError, commandFlags, orList, program, suggestCommand } from './cli/args.js';
import { commandPrefix } from './cli/command.js';
import { shellWord } from './cli/files.js';
import { COMMANDS, commandHelp, mainHelp, packageVersion } from './cli/commands.js';

/** The command words besides the commands: what an unknown command is compared with. */
const WORDS = [...Object.keys(COMMANDS), 'help', 'version'];

/**
 * "unknown command "trian"; did you mean train? (see grid-lstm --help)". An option in the place of
 * the command is one given before the command, except after `help` (`afterHelp`), which names a
 * command: there it is an unknown command too.
 */
function unknownCommand(word: string, afterHelp = false): UsageError {
  const names = Object.keys(COMMANDS);
  if (word.startsWith('-') && !afterHelp) {
    // An option before the command: name the commands that take it.
    const flag = word.split('=')[0];
    const takers = names.filter((n) => commandFlags(COMMANDS[n].opts()).includes(flag) && !GLOBAL_FLAGS.includes(flag));
    const example = takers.length > 0 ? takers.join('|') : '<command>';
    return new UsageError(`${word} before a command; the command comes first: ${program.name} ${example} ${word} ... (see ${program.name} --help)`);
  }
  const guesses = suggestCommand(word, WORDS);
  if (guesses.length > 0) return new UsageError(`unknown command ${JSON.stringify(word)}; did you mean ${orList(guesses)}? (see ${program.name} --help)`);
  return new UsageError(`unknown command ${JSON.stringify(word)}; use ${orList(names)} (see ${program.name} --help)`);
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  argv = argv.filter((a) => a !== '--debug');
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || (command === 'help' && rest.length === 0)) {
      process.stdout.write(mainHelp() + '\n');
      return command === undefined ? 2 : 0;
    }
    if (command === '--version' || command === '-V' || command === '-v' || command === 'version') {
      process.stdout.write(`grid-lstm ${packageVersion()}\n`);
      return 0;
    }
    if (command === 'help') {
      // grid-lstm help train: the command's help.
      // help -h / help --help / help help / help version: the main help; help --version: the version.
      if (['-h', '--help', 'help', 'version'].includes(rest[0])) return main(['--help']);
      if (['--version', '-V', '-v'].includes(rest[0])) return main(['--version']);
      if (!Object.hasOwn(COMMANDS, rest[0])) throw unknownCommand(rest[0], true);
      process.stdout.write(commandHelp(rest[0]) + '\n');
      return 0;
    }
    if (!Object.hasOwn(COMMANDS, command)) throw unknownCommand(command);
    const cmd = COMMANDS[command];
    // --help or -h among the options (not after "--", where everything is an argument).
    const end = rest.indexOf('--');
    const options = end < 0 ? rest : rest.slice(0, end);
    if (options.includes('--help') || options.includes('-h')) {
      process.stdout.write(commandHelp(command) + '\n');
      return 0;
    }
    if (options.includes('--version')) return main(['--version']);
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

// The pointers in messages ("see grid-lstm train --help") name the program as it was started.
program.name = commandPrefix().map(shellWord).join(' ');
process.exitCode = await main(process.argv.slice(2));
