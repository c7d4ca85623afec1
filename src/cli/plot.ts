/** grid-lstm plot: loss curves of runs, as SVG, PNG or in the terminal. */
import {
  FONT_FAMILY,
  type LossRun,
  type PlotCurves,
  type PlotTheme,
  type PlotXAxis,
  PlotInputError,
  accuracyRunFromCheckpoint,
  lossRunFromCheckpoint,
  plotLossCurves,
  plotLossCurvesAscii,
} from '../viz/plot.js';
import { checkOutputPath, writeOutputFile } from '../viz/output-file.js';
import { type OptSpec, UsageError, parseArgs, program } from './args.js';
import { loadCk } from './files.js';

export const PLOT_OPTS: OptSpec[] = [
  { key: 'out', kind: 'string', arg: 'FILE', help: 'write the figure: FILE.svg, FILE.png (needs @resvg/resvg-js), or - for SVG on stdout (default: an ASCII plot on stdout)' },
  { key: 'x', kind: 'choice', choices: ['iteration', 'epoch', 'chars'], default: 'iteration', help: 'x axis: iteration, epoch, or chars (training characters: iteration × batch size × seq length)' },
  { key: 'bits', kind: 'bool', default: false, help: 'losses in bits per character instead of nats' },
  { key: 'curves', kind: 'choice', choices: ['both', 'val', 'train'], default: 'both', help: 'which losses to draw: both, val or train' },
  { key: 'smooth', kind: 'number', arg: 'F', default: 0.01, help: 'moving average of the training loss over this fraction of the steps (0: raw)' },
  { key: 'theme', kind: 'choice', choices: ['auto', 'light', 'dark'], default: 'auto', help: 'auto: SVG for light and dark pages (transparent, prefers-color-scheme), PNG light; light/dark: that palette on an opaque background' },
  { key: 'ascii', kind: 'bool', default: false, help: 'print the ASCII plot too when --out is given' },
  {
    key: 'accuracy',
    kind: 'choice',
    choices: ['none', 'sums', 'chars'],
    default: 'none',
    help: '--task addition runs: draw the validation accuracy instead of the losses, of whole sums or of the answers\' characters (%)',
  },
];

/**
 * The run of one CK argument, as plotted: a file, or a directory's newest checkpoint (not its
 * best: each checkpoint holds the run's history up to its own iteration, so the newest holds the
 * whole run; the choice is not printed, the legend names the run).
 */
export function plotRun(arg: string, x: PlotXAxis, accuracy: 'none' | 'sums' | 'chars' = 'none'): LossRun {
  const ck = loadCk(arg, undefined, 'newest');
  try {
    if (accuracy !== 'none') return accuracyRunFromCheckpoint(ck, accuracy === 'sums' ? 'numbers' : 'chars', { x });
    return lossRunFromCheckpoint(ck, { x });
  } catch (e) {
    if (e instanceof PlotInputError) throw new UsageError(`${ck.file}: ${e.message}`);
    throw e;
  }
}

/** The PNG of an SVG, drawn by @resvg/resvg-js with the system fonts (imported only when needed). */
export async function renderPng(svg: string): Promise<Buffer> {
  type Resvg = new (svg: string, options: object) => { render(): { asPng(): Buffer; pixels: Buffer } };
  let Resvg: Resvg;
  try {
    const specifier = '@resvg/resvg-js'; // an optional dependency: not a static import
    Resvg = ((await import(specifier)) as { Resvg: Resvg }).Resvg;
  } catch {
    throw new UsageError('--out .png needs the optional package @resvg/resvg-js: install it (npm install @resvg/resvg-js) or write an .svg');
  }
  const font = { loadSystemFonts: true };
  // resvg draws text only with the fonts it finds; a text-only probe shows whether there are any.
  const probe = new Resvg(`<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="2" y="15" font-size="14" font-family="${FONT_FAMILY}">Ag</text></svg>`, { font }).render();
  if (!probe.pixels.some((v, i) => i % 4 === 3 && v > 0)) {
    process.stderr.write('warning: no system fonts found, so the PNG has no text; install a font (e.g. the fonts-dejavu-core package) or write an .svg\n');
  }
  return new Resvg(svg, { font, fitTo: { mode: 'zoom', value: 2 } }).render().asPng();
}

/** checkOutputPath, its error a usage error (exit 2). */
export function checkOut(out: string): void {
  try {
    checkOutputPath(out);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export async function cmdPlot(argv: string[]): Promise<number> {
  const { opts, pos } = parseArgs('plot', argv, PLOT_OPTS, argv.map(() => 'CK'));
  if (pos.length < 1) throw new UsageError(`plot needs at least one checkpoint: ${program.name} plot CK... (.safetensors files or directories of them)`);
  const smooth = opts.smooth as number;
  if (!(smooth >= 0 && smooth <= 1)) throw new UsageError(`--smooth must be a fraction in [0, 1], got ${smooth}`);
  const out = opts.out as string | undefined;
  const format = out === undefined ? null : out === '-' ? 'svg' : /\.svg$/i.test(out) ? 'svg' : /\.png$/i.test(out) ? 'png' : undefined;
  if (format === undefined) throw new UsageError(`--out ${out} must end in .svg or .png (or be - for SVG on stdout)`);
  if (out === '-' && opts.ascii) throw new UsageError('--out - and --ascii both write to stdout; use one of them');
  if (out !== undefined && out !== '-') checkOut(out);
  const x = opts.x as PlotXAxis;
  const accuracy = opts.accuracy as 'none' | 'sums' | 'chars';
  if (accuracy !== 'none' && (opts.curves as string) === 'train') throw new UsageError('--accuracy draws the validation accuracy; drop --curves train');
  const runs = pos.map((p) => plotRun(p, x, accuracy));
  // Runs with the same label (same model, size and --savefile) are told apart by their argument.
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.label, (counts.get(r.label) ?? 0) + 1);
  runs.forEach((r, i) => {
    if (counts.get(r.label)! > 1) r.label = `${r.label} — ${pos[i]}`;
  });
  const common = {
    x,
    bits: opts.bits as boolean,
    curves: accuracy === 'none' ? (opts.curves as PlotCurves) : ('val' as const),
    smoothing: smooth,
    ...(accuracy === 'none' ? {} : { yTitle: accuracy === 'sums' ? 'validation sums right (%)' : "validation answer characters right (%)", bits: false }),
  };
  if (format !== null) {
    const themeOpt = opts.theme as PlotTheme;
    const theme = format === 'png' && themeOpt === 'auto' ? 'light' : themeOpt;
    const svg = plotLossCurves(runs, { ...common, theme });
    const bytes = format === 'png' ? await renderPng(svg) : Buffer.from(svg, 'utf8');
    if (out === '-') process.stdout.write(bytes);
    else {
      writeOutputFile(out!, bytes);
      process.stderr.write(`wrote ${out} (${runs.length} run${runs.length === 1 ? '' : 's'}, x ${x})\n`);
    }
  }
  if (format === null || opts.ascii) {
    const columns = process.stdout.isTTY ? Math.max(40, Math.min(process.stdout.columns || 80, 80)) : 80;
    process.stdout.write(plotLossCurvesAscii(runs, { ...common, width: columns }));
  }
  return 0;
}
