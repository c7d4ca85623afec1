/** grid-lstm viz: an HTML report of what a model's units do over a text. */
import { TRACE_KINDS, type TraceKind, traceKinds } from '../infer/trace.js';
import { aModel } from '../nn/params.js';
import { DEFAULT_REPORT_BITS, buildReportData } from '../viz/report-data.js';
import { writeOutputFile } from '../viz/output-file.js';
import { renderReport } from '../viz/report.js';
import { COMMON, type OptSpec, UsageError, makeKernels, parseArgs, program } from './args.js';
import { checkOut } from './plot.js';
import { NEWEST_OPT, loadCk, readData } from './files.js';

export const VIZ_OPTS: OptSpec[] = [
  { key: 'data', kind: 'string', arg: 'FILE', help: 'the text to run the model over (required)' },
  { key: 'encoding', kind: 'choice', choices: ['utf8', 'latin1'], default: 'utf8', help: 'how to read --data' },
  { key: 'out', kind: 'string', arg: 'FILE', help: 'the file to write, - for stdout (default: report.html; with --json, stdout)' },
  { key: 'json', kind: 'bool', default: false, help: "write the report's data as JSON (format grid-lstm/viz-1) instead of HTML" },
  { key: 'start', kind: 'int', arg: 'S', default: 0, help: 'the first character shown (the model reads the text from its beginning)' },
  { key: 'length', kind: 'int', arg: 'N', default: 2000, help: 'how many characters are shown' },
  {
    key: 'kinds',
    kind: 'string',
    arg: 'LIST',
    help:
      "the values stored for the page, from its cells' kinds (lstm, grid_lstm: i,f,o,g,c,tc,h; gru: h,z,r,n; rnn: h); " +
      'default: all but tc (tanh(c) is computed from c unless tc is listed); fewer make a smaller file',
  },
  { key: 'bits', kind: 'int', arg: 'B', default: DEFAULT_REPORT_BITS, help: 'bits per stored value, 1 to 8 (6: 64 levels, as many as the page has colours); fewer make a smaller file' },
  NEWEST_OPT,
  ...COMMON,
];

export function cmdViz(argv: string[]): number {
  const { opts, pos } = parseArgs('viz', argv, VIZ_OPTS, ['CK']);
  if (pos.length < 1) throw new UsageError(`viz needs a checkpoint: ${program.name} viz CK --data FILE`);
  if (opts.data === undefined) throw new UsageError('viz needs --data FILE: the text to run the model over');
  const start = opts.start as number;
  const length = opts.length as number;
  if (start < 0) throw new UsageError(`--start must be a whole number ≥ 0, got ${start}`);
  if (length < 1) throw new UsageError(`--length must be a whole number > 0, got ${length}`);
  const bits = opts.bits as number;
  if (bits < 1 || bits > 8) throw new UsageError(`--bits must be a whole number from 1 to 8, got ${bits}`);
  const given = opts.kinds as string | undefined;
  const kinds = given === undefined ? undefined : given.split(',').map((k) => k.trim()).filter((k) => k !== '');
  if (kinds !== undefined && (kinds.length === 0 || kinds.some((k) => !TRACE_KINDS.includes(k as TraceKind)))) {
    throw new UsageError(`--kinds must list some of ${TRACE_KINDS.join(',')}, got ${JSON.stringify(given)}`);
  }
  const out = (opts.out as string | undefined) ?? (opts.json ? '-' : 'report.html');
  if (out !== '-') checkOut(out);
  const ck = loadCk(pos[0], makeKernels(opts.kernels), opts.newest ? 'newest' : 'best');
  const file = ck.file;
  const { ids } = readData(opts.data as string, opts.encoding as 'utf8' | 'latin1', ck.vocab);
  if (start >= ids.length) throw new UsageError(`--start ${start} is past the end of --data ${opts.data} (${ids.length} characters)`);
  if (ck.note) process.stderr.write(`${ck.note}\n`);
  const model = ck.model.config.model;
  const absent = kinds?.filter((k) => !traceKinds(model).includes(k as TraceKind)) ?? [];
  if (absent.length > 0) {
    throw new UsageError(`--kinds ${absent.join(',')}: ${aModel(model)} has no ${absent.join(', ')}; the kinds of its cells are ${traceKinds(model).join(',')}`);
  }
  const data = buildReportData(ck.model, ck.vocab, ids, { start, length, bits, kinds: kinds as TraceKind[] | undefined, label: file.split(/[\\/]/).pop() });
  const text = opts.json ? JSON.stringify(data) + '\n' : renderReport(data);
  if (out === '-') {
    process.stdout.write(text);
    return 0;
  }
  const bytes = writeOutputFile(out, text);
  const shown = [...data.text].length;
  process.stderr.write(
    `wrote ${out} (${bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.ceil(bytes / 1e3)} kB`}): characters ${start}–${start + shown - 1} of ${ids.length}` +
      `${data.meanLoss === null ? '' : `, mean loss ${data.meanLoss.toFixed(4)} nats/char`}${opts.json ? '' : '; open it in a browser'}\n`,
  );
  return 0;
}
