/**
 * What `grid-lstm train` shows while it runs.
 *
 * On a terminal (stderr a TTY): one line redrawn in place (`\r`), fitted to the terminal's width
 * so that it never wraps (a wrapped line cannot be redrawn: every step would leave a new line),
 * and redrawn when the terminal is resized. During validation the line shows the validation's own
 * progress. The ETA counts the validations still to come.
 *
 * Otherwise (a file, a pipe, CI): char-rnn's plain line every --print-every iterations, a format
 * that scripts parse, so it does not change.
 *
 * The formatting is pure functions (formatProgress, formatValidation), tested for every width;
 * a progress-bar library (cli-progress and the like) would bring its own format, a dependency
 * and little else: the hard part here is choosing which fields to show in a given width.
 */
import type { StepResult } from '../train/train.js';

/** What a progress line shows after a training step. */
export interface StepFields {
  iteration: number;
  total: number;
  epoch: number;
  /** Train loss of the step (nats per character). */
  loss: number;
  gradParamRatio: number;
  /** Wall time of the step. */
  seconds: number;
  charsPerSecond: number;
  /** Estimated seconds to the end of the run (NaN or Infinity: not known). */
  eta: number;
}

/** "1h02m" (an hour or more) or "5m03s"; "?" when not known. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.max(0, s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

/** char-rnn's progress line: printed as is when stderr is not a terminal (scripts parse it). */
export function plainLine(f: StepFields): string {
  return (
    `${f.iteration}/${f.total} (epoch ${f.epoch.toFixed(3)}), train_loss = ${f.loss.toFixed(8)}, ` +
    `grad/param norm = ${f.gradParamRatio.toExponential(4)}, time/batch = ${f.seconds.toFixed(4)}s, ` +
    `${Math.round(f.charsPerSecond)} chars/s`
  );
}

/** The progress bar: `[=====     ]`, `width` characters inside the brackets. */
function bar(fraction: number, width: number): string {
  const done = Math.max(0, Math.min(width, Math.round(width * fraction)));
  return `[${'='.repeat(done)}${' '.repeat(width - done)}]`;
}

const BAR_MAX = 24;
const BAR_MIN = 10;

/** Cuts `s` to at most `max` characters (all of them ASCII here: one column each). */
function cut(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, Math.max(0, max));
}

/**
 * The progress line for a terminal `columns` wide: at most columns − 1 characters (writing in the
 * last column makes some terminals wrap), always starting with the iteration. Wide terminals get
 * char-rnn's line with a bar and the ETA; narrower ones a compact form that drops, in this order,
 * time/batch, grad/param norm, the bar, the epoch and chars/s, keeping iteration/total, the loss
 * and the ETA (then the ETA and the loss, in terminals narrower than those three).
 */
export function formatProgress(f: StepFields, columns: number): string {
  const max = Math.max(1, Math.floor(columns) - 1);
  const fraction = f.total > 0 ? f.iteration / f.total : 0;
  const eta = `ETA ${formatDuration(f.eta)}`;
  const full = `${bar(fraction, BAR_MAX)} ${plainLine(f)}, ${eta}`;
  if (full.length <= max) return full;

  // Compact fields, in the order shown; `drop` ranks them (1 is dropped first, 0 never).
  const fields: { text: string; drop: number }[] = [
    { text: `${f.iteration}/${f.total}`, drop: 0 },
    { text: `epoch ${f.epoch.toFixed(2)}`, drop: 4 },
    { text: `loss ${f.loss.toFixed(4)}`, drop: 0 },
    { text: `grad/param ${f.gradParamRatio.toExponential(2)}`, drop: 2 },
    { text: `${f.seconds.toFixed(3)}s/batch`, drop: 1 },
    { text: `${Math.round(f.charsPerSecond)} chars/s`, drop: 5 },
    { text: eta, drop: 0 },
  ];
  const BAR_RANK = 3;
  for (let dropped = 0; dropped <= 5; dropped++) {
    const text = fields
      .filter((x) => x.drop === 0 || x.drop > dropped)
      .map((x) => x.text)
      .join(', ');
    if (dropped < BAR_RANK) {
      // With a bar: as wide as there is room for, up to BAR_MAX; too narrow for BAR_MIN: drop more.
      const room = max - text.length - 3; // the brackets and a space
      if (room >= BAR_MIN) return `${bar(fraction, Math.min(BAR_MAX, room))} ${text}`;
    } else if (text.length <= max) {
      return text;
    }
  }
  // Narrower than any of those: what fits of iteration, loss and ETA, whole words only.
  const count = `${f.iteration}/${f.total}`;
  for (const s of [`${count} ${f.loss.toFixed(4)} ${eta}`, `${count} ${f.loss.toFixed(4)}`]) if (s.length <= max) return s;
  return cut(count, max);
}

/** What the line shows during a validation pass. */
export interface ValidationFields {
  done: number;
  batches: number;
  /** Seconds to the end of this validation pass. */
  eta: number;
  /** Seconds to the end of the run. */
  runEta: number;
}

/**
 * The line during a validation pass, at most columns − 1 characters, always starting with
 * "validating done/batches": "validating 12/40 batches, ETA 0m05s, run ETA 1h02m", dropping the
 * run's ETA, then the word "batches", then cut.
 */
export function formatValidation(v: ValidationFields, columns: number): string {
  const max = Math.max(1, Math.floor(columns) - 1);
  const count = `${v.done}/${v.batches}`;
  for (const s of [
    `validating ${count} batches, ETA ${formatDuration(v.eta)}, run ETA ${formatDuration(v.runEta)}`,
    `validating ${count} batches, ETA ${formatDuration(v.eta)}`,
    `validating ${count}, ETA ${formatDuration(v.eta)}`,
  ]) {
    if (s.length <= max) return s;
  }
  return cut(`validating ${count}`, max);
}

/**
 * The number of validations a run does from iteration `from` (the one at `from` included) to
 * `total`: one every `every` iterations and one at the end (Trainer.runSteps's rule).
 */
export function validationsFrom(from: number, total: number, every: number): number {
  const a = Math.max(1, from);
  if (a > total) return 0;
  const multiples = Math.floor(total / every) - Math.floor((a - 1) / every);
  return multiples + (total % every !== 0 ? 1 : 0);
}

/**
 * A forward pass over a validation batch, as a fraction of a training step (forward, backward
 * and update), used for the ETA until a validation batch has been timed: 0.35 measured with the
 * default model and kernels (a step 0.16 s, a validation batch 0.056 s, 2 cores). A guess is
 * enough: the first validation batch replaces it with a measurement.
 */
const VAL_BATCH_PER_STEP = 0.35;

/** Estimates of the time left in a run: the steps to do and the validations to come. */
export class EtaEstimator {
  /** Smoothed seconds per training step (0: none yet). */
  stepSeconds = 0;
  /** Seconds per validation batch, measured (null: not yet). */
  valBatchSeconds: number | null = null;
  /** Seconds of the last whole validation, with its checkpoint (null: none yet). */
  validationSeconds: number | null = null;

  constructor(
    readonly total: number,
    readonly evalEvery: number,
    readonly valBatches: number,
  ) {}

  addStep(seconds: number): void {
    // An exponential average: steady, but follows a machine that gets busier or quieter.
    this.stepSeconds = this.stepSeconds === 0 ? seconds : 0.9 * this.stepSeconds + 0.1 * seconds;
  }

  /** Seconds a validation pass takes: as measured, else from the batch time or the step time. */
  perValidation(): number {
    if (this.validationSeconds !== null) return this.validationSeconds;
    return this.valBatches * (this.valBatchSeconds ?? this.stepSeconds * VAL_BATCH_PER_STEP);
  }

  /** After the step that reached `iteration` (its validation, if any, still to come). */
  afterStep(iteration: number): number {
    return (this.total - iteration) * this.stepSeconds + validationsFrom(iteration, this.total, this.evalEvery) * this.perValidation();
  }

  /** During the validation at `iteration`, `done` of its batches done. */
  duringValidation(iteration: number, done: number): { pass: number; run: number } {
    const perBatch = this.valBatchSeconds ?? (this.validationSeconds !== null ? this.validationSeconds / Math.max(1, this.valBatches) : this.stepSeconds * VAL_BATCH_PER_STEP);
    const pass = (this.valBatches - done) * perBatch;
    return { pass, run: pass + (this.total - iteration) * this.stepSeconds + validationsFrom(iteration + 1, this.total, this.evalEvery) * this.perValidation() };
  }
}

/** The part of a stream (process.stderr) the display uses. */
export interface Terminal {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
  on(event: 'resize', f: () => void): unknown;
  removeListener(event: 'resize', f: () => void): unknown;
}

/** Redraws of the line at most this often (ms), as tqdm: a fast run would flood the terminal. */
const REDRAW_MS = 100;

/**
 * The display of a training run on `out` (process.stderr). Call {@link step},
 * {@link validationProgress}, {@link validated} and {@link note} from the run's hooks, and
 * {@link close} at the end.
 */
export class TrainingDisplay {
  readonly tty: boolean;
  readonly eta: EtaEstimator;
  /** What the live line shows (null: no live line on screen). */
  private live: { kind: 'step'; f: StepFields } | { kind: 'validation'; iteration: number; done: number } | null = null;
  private last: StepFields | null = null;
  private lastDraw = -Infinity;
  private validationStart: number | null = null;
  /** The length of the live line on the screen, the cursor after it (0: none drawn). */
  private drawn = 0;
  private readonly onResize = () => this.resized();

  constructor(
    private readonly out: Terminal,
    private readonly o: { printEvery: number; charsPerBatch: number; evalValEvery: number; total: number; valBatches: number },
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tty = out.isTTY === true;
    this.eta = new EtaEstimator(o.total, o.evalValEvery, o.valBatches);
    // Node emits 'resize' on a TTY stream on SIGWINCH (after updating its columns).
    if (this.tty) out.on('resize', this.onResize);
  }

  private get columns(): number {
    return this.out.columns && this.out.columns > 0 ? this.out.columns : 80;
  }

  step(s: StepResult): void {
    this.finishValidation();
    this.eta.addStep(s.seconds);
    const f: StepFields = {
      iteration: s.iteration,
      total: s.totalIterations,
      epoch: s.epoch,
      loss: s.loss,
      gradParamRatio: s.gradParamRatio,
      seconds: s.seconds,
      charsPerSecond: this.o.charsPerBatch / s.seconds,
      eta: this.eta.afterStep(s.iteration),
    };
    this.last = f;
    if (!this.tty) {
      if (s.iteration % this.o.printEvery === 0 || s.iteration === s.totalIterations) this.out.write(plainLine(f) + '\n');
      return;
    }
    this.live = { kind: 'step', f };
    const t = this.now();
    if (t - this.lastDraw >= REDRAW_MS || s.iteration === s.totalIterations) this.redraw();
  }

  /** `done` of `batches` validation batches done (0 when the pass starts). */
  validationProgress(done: number, batches: number): void {
    const t = this.now();
    if (done === 0) {
      this.validationStart = t;
      // The step line stays on the screen, above the validation's (the loss there and then).
      if (this.live?.kind === 'step') this.commit();
    } else if (this.validationStart !== null) {
      this.eta.valBatchSeconds = (t - this.validationStart) / 1000 / done;
    }
    if (!this.tty) return;
    this.live = { kind: 'validation', iteration: this.last?.iteration ?? 0, done };
    void batches; // the same count as the estimator's (the val split's size)
    if (done === 0 || t - this.lastDraw >= REDRAW_MS) this.redraw();
  }

  /** The result of a validation: a line of its own, in place of the validation's progress line. */
  validated(e: { iteration: number; valLoss: number; seconds: number; accuracy?: { chars: number; numbers: number; sums: number } }): void {
    if (this.live?.kind === 'validation') this.clear();
    // At most 79 characters up to iteration 999 999 and 9999 s: no wrap in 80 columns.
    const secs = e.seconds < 100 ? e.seconds.toFixed(1) : Math.round(e.seconds);
    this.note(`validation at iteration ${e.iteration}: val_loss = ${e.valLoss.toFixed(4)} nats/char (${(e.valLoss / Math.LN2).toFixed(2)} bits), ${secs}s`);
    // The addition task: its accuracy on a line of its own.
    const a = e.accuracy;
    if (a) this.note(`  answers right: ${(100 * a.chars).toFixed(1)}% of characters, ${(100 * a.numbers).toFixed(1)}% of sums (of ${a.sums})`);
    // Until the checkpoint is written (finishValidation): the time of the pass alone.
    this.eta.validationSeconds = e.seconds;
  }

  /** A message on a line of its own; a step line on the screen stays above it. */
  note(message: string): void {
    if (this.live?.kind === 'step') this.commit();
    else if (this.live) this.clear();
    this.out.write(message + '\n');
  }

  /** Ends the display: the live line stays on the screen; no more redraws on resize. */
  close(): void {
    if (this.live?.kind === 'step') this.commit();
    else if (this.live) this.clear();
    if (this.tty) this.out.removeListener('resize', this.onResize);
  }

  /** The first step after a validation: the validation's whole time, checkpoint included. */
  private finishValidation(): void {
    if (this.validationStart === null) return;
    this.eta.validationSeconds = (this.now() - this.validationStart) / 1000;
    this.validationStart = null;
  }

  private render(): string {
    const live = this.live!;
    if (live.kind === 'step') return formatProgress(live.f, this.columns);
    const { pass, run } = this.eta.duringValidation(live.iteration, live.done);
    return formatValidation({ done: live.done, batches: this.o.valBatches, eta: pass, runEta: run }, this.columns);
  }

  private redraw(): void {
    if (!this.tty || !this.live) return;
    // \r: back to the start of the line; \x1b[K: erase what a longer line left after it.
    const line = this.render();
    this.out.write(`\r${line}\x1b[K`);
    this.drawn = line.length; // ASCII: one column per character
    this.lastDraw = this.now();
  }

  /**
   * The terminal's new width. A terminal that reflows its lines (tmux, VTE, iTerm2, kitty,
   * Windows Terminal) wraps the live line, drawn for the old width, over several rows when it
   * narrows, the cursor on the last of them; \r and \x1b[K would clear only that row and leave
   * the rest as a stale copy. So the cursor first goes up over the rows the old line now takes
   * (ceil(length / columns) − 1) and everything from there down is erased (\x1b[J).
   */
  private resized(): void {
    if (!this.tty || !this.live) return;
    const rows = Math.ceil(this.drawn / this.columns);
    if (rows > 1) this.out.write(`\r\x1b[${rows - 1}A\x1b[J`);
    this.redraw();
  }

  /** Draws the live line once more (it may be a few steps behind) and leaves it on the screen. */
  private commit(): void {
    this.redraw();
    this.out.write('\n');
    this.live = null;
    this.drawn = 0;
  }

  private clear(): void {
    this.out.write('\r\x1b[K');
    this.live = null;
    this.drawn = 0;
  }
}
