/**
 * What `grid-lstm train` shows on a terminal (src/cli/progress.ts), and the commands it prints
 * for the user to run (src/cli/command.ts), as pure functions: every width, every way of
 * starting the CLI. test/terminal.test.ts runs the real thing in a pseudo-terminal.
 */
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Launch, commandLineOf, commandPrefixOf } from '../src/cli/command.js';
import { EtaEstimator, type StepFields, TrainingDisplay, formatDuration, formatProgress, formatValidation, plainLine, validationsFrom } from '../src/cli/progress.js';
import { startedByNpm, stopExitCode } from '../src/cli/stop.js';

const fields = (over: Partial<StepFields> = {}): StepFields => ({
  iteration: 1234,
  total: 44500,
  epoch: 1.2345,
  loss: 2.93006871,
  gradParamRatio: 0.15734,
  seconds: 0.1779,
  charsPerSecond: 14049,
  eta: 3783,
  ...over,
});

const finite = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
const arbFields: fc.Arbitrary<StepFields> = fc
  .record({
    total: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    frac: fc.double({ min: 0, max: 1, noNaN: true }),
    epoch: finite(0, 1e6),
    loss: fc.oneof(finite(0, 1e30), fc.constantFrom(NaN, Infinity)),
    gradParamRatio: fc.oneof(finite(0, 1e30), fc.constantFrom(NaN, Infinity)),
    seconds: fc.oneof(finite(0, 1e6), fc.constant(0)),
    charsPerSecond: fc.oneof(finite(0, 1e12), fc.constant(Infinity)),
    eta: fc.oneof(finite(0, 1e9), fc.constantFrom(NaN, Infinity)),
  })
  .map(({ total, frac, ...rest }) => ({ ...rest, total, iteration: Math.max(1, Math.round(total * frac)) }));

describe('formatProgress', () => {
  it('never takes more than columns − 1 characters and always shows the iteration (property, any width ≥ 20)', () => {
    fc.assert(
      fc.property(arbFields, fc.integer({ min: 20, max: 400 }), (f, columns) => {
        const s = formatProgress(f, columns);
        expect([...s].length).toBeLessThanOrEqual(columns - 1);
        expect(s).toMatch(new RegExp(`(^|[ \\]])${f.iteration}/`));
        expect(s).not.toMatch(/[\r\n\x1b]/);
      }),
      { numRuns: 2000 },
    );
  });

  it("a wide terminal gets char-rnn's line with a bar and the ETA, as before", () => {
    const f = fields();
    const s = formatProgress(f, 200);
    expect(s).toBe(`[=                       ] ${plainLine(f)}, ETA 1h03m`);
    expect(s).toContain('1234/44500 (epoch 1.234), train_loss = 2.93006871, grad/param norm = 1.5734e-1, time/batch = 0.1779s, 14049 chars/s');
  });

  it('80 columns: iteration, epoch, loss, chars/s and ETA with a bar; no time/batch, no grad/param norm', () => {
    const s = formatProgress(fields(), 80);
    expect(s).toBe('[               ] 1234/44500, epoch 1.23, loss 2.9301, 14049 chars/s, ETA 1h03m');
    expect(s.length).toBe(79);
  });

  it('drops time/batch, then grad/param norm, then the bar, the epoch and chars/s as the terminal narrows', () => {
    const has = (s: string) => ({
      tb: /s\/batch|time\/batch/.test(s),
      gp: s.includes('grad/param'),
      bar: s.startsWith('['),
      epoch: s.includes('epoch'),
      cps: s.includes('chars/s'),
      loss: /loss( =)? 2\.930/.test(s),
      eta: s.includes('ETA 1h03m'),
    });
    const order = ['tb', 'gp', 'bar', 'epoch', 'cps'] as const;
    let lost = 0; // how many of `order` are gone: non-decreasing as the width shrinks
    for (let columns = 160; columns >= 20; columns--) {
      const h = has(formatProgress(fields(), columns));
      const gone = order.findIndex((k) => h[k]);
      const n = gone === -1 ? order.length : gone;
      // Everything before the first field still shown is gone, everything after it is shown.
      for (let k = n; k < order.length; k++) expect(h[order[k]], `${columns} columns: ${order[k]}`).toBe(true);
      expect(n).toBeGreaterThanOrEqual(lost);
      lost = n;
      if (columns >= 40) expect(h.loss && h.eta, `${columns} columns`).toBe(true);
    }
    expect(lost).toBe(order.length);
  });

  it('the bar shows the fraction done', () => {
    expect(formatProgress(fields({ iteration: 22250 }), 200)).toMatch(/^\[={12} {12}\] /);
    expect(formatProgress(fields({ iteration: 44500 }), 200)).toMatch(/^\[={24}\] /);
  });
});

describe('formatValidation', () => {
  it('"validating done/batches", at most columns − 1 characters (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e9 }), fc.double({ min: 0, max: 1, noNaN: true }), finite(0, 1e9), finite(0, 1e9), fc.integer({ min: 20, max: 300 }), (batches, frac, eta, runEta, columns) => {
        const done = Math.round(batches * frac);
        const s = formatValidation({ done, batches, eta, runEta }, columns);
        expect(s.length).toBeLessThanOrEqual(columns - 1);
        expect(s).toMatch(/^validating /);
        if (columns >= 40) expect(s).toContain(`${done}/${batches}`);
      }),
    );
  });

  it('the result of a validation fits in 80 columns up to iteration 999 999 and 9999 s (a loss < 10: ln of a vocabulary < 22 026)', () => {
    const t = new FakeTerminal(false);
    const d = new TrainingDisplay(t, { printEvery: 10, charsPerBatch: 100, evalValEvery: 50, total: 1e6, valBatches: 4 });
    d.validated({ iteration: 999_999, valLoss: 9.87654, seconds: 9999.4 });
    expect(t.out).toBe('validation at iteration 999999: val_loss = 9.8765 nats/char (14.25 bits), 9999s\n');
    expect(t.out.length - 1).toBeLessThanOrEqual(79);
  });

  it('wide: the pass and the run; narrow: the pass', () => {
    const v = { done: 12, batches: 40, eta: 5, runEta: 3725 };
    expect(formatValidation(v, 80)).toBe('validating 12/40 batches, ETA 0m05s, run ETA 1h02m');
    expect(formatValidation(v, 40)).toBe('validating 12/40 batches, ETA 0m05s');
  });
});

describe('ETA', () => {
  it('formatDuration', () => {
    expect(formatDuration(5)).toBe('0m05s');
    expect(formatDuration(3725)).toBe('1h02m');
    expect(formatDuration(NaN)).toBe('?');
    expect(formatDuration(-3)).toBe('0m00s');
  });

  it('validationsFrom counts one validation every K iterations and one at the end', () => {
    // Brute force against the trainer's rule: after step i, validate if i % K === 0 or i === total.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 320 }), (total, every, from) => {
        let n = 0;
        for (let i = Math.max(1, from); i <= total; i++) if (i % every === 0 || i === total) n++;
        expect(validationsFrom(from, total, every)).toBe(n);
      }),
    );
  });

  it('counts the validations to come: estimated from the step time, then measured', () => {
    const e = new EtaEstimator(1000, 100, 20);
    e.addStep(0.5);
    // 900 steps and 10 validations (at 100 … 1000: the one at 100 still to come) of 20 batches.
    expect(e.afterStep(100)).toBeCloseTo(900 * 0.5 + 10 * 20 * 0.5 * 0.35);
    e.valBatchSeconds = 0.1;
    expect(e.afterStep(100)).toBeCloseTo(900 * 0.5 + 10 * 2);
    e.validationSeconds = 3;
    expect(e.afterStep(150)).toBeCloseTo(850 * 0.5 + 9 * 3);
    // During the validation at 100 with 5 of 20 batches done: 15 batches, then 9 validations.
    const d = e.duringValidation(100, 5);
    expect(d.pass).toBeCloseTo(1.5);
    expect(d.run).toBeCloseTo(1.5 + 900 * 0.5 + 9 * 3);
  });
});

/** A fake stderr: what was written, and a resize to send. */
class FakeTerminal extends EventEmitter {
  out = '';
  isTTY: boolean;
  columns: number;
  constructor(tty: boolean, columns = 80) {
    super();
    this.isTTY = tty;
    this.columns = columns;
  }
  write(s: string) {
    this.out += s;
    return true;
  }
  /** The text as the screen shows it: each line as last redrawn. */
  screen(): string[] {
    return this.out.split('\n').map((l) => l.split('\r').at(-1)!.replace(/\x1b\[K/g, ''));
  }
}

const step = (iteration: number, total = 100) => ({ iteration, totalIterations: total, epoch: iteration / 50, loss: 2.5, gradParamRatio: 0.1, seconds: 0.2, learningRate: 0.002 });

describe('TrainingDisplay', () => {
  it('not a terminal: the plain lines every --print-every, nothing per validation batch', () => {
    const t = new FakeTerminal(false);
    const d = new TrainingDisplay(t, { printEvery: 10, charsPerBatch: 100, evalValEvery: 50, total: 100, valBatches: 4 });
    for (let i = 1; i <= 50; i++) d.step(step(i));
    for (let k = 0; k <= 4; k++) d.validationProgress(k, 4);
    d.validated({ iteration: 50, valLoss: 2, seconds: 1.5 });
    d.note('saved checkpoint cv/x.safetensors');
    d.close();
    expect(t.out).toBe(
      [10, 20, 30, 40, 50].map((i) => `${i}/100 (epoch ${(i / 50).toFixed(3)}), train_loss = 2.50000000, grad/param norm = 1.0000e-1, time/batch = 0.2000s, 500 chars/s\n`).join('') +
        'validation at iteration 50: val_loss = 2.0000 nats/char (2.89 bits), 1.5s\nsaved checkpoint cv/x.safetensors\n',
    );
    expect(t.listenerCount('resize')).toBe(0);
  });

  it('a terminal: one line redrawn in place, kept above the validation; the validation shown as it goes', () => {
    let now = 0;
    const t = new FakeTerminal(true, 60);
    const d = new TrainingDisplay(t, { printEvery: 10, charsPerBatch: 100, evalValEvery: 50, total: 100, valBatches: 4 }, () => now);
    for (let i = 1; i <= 50; i++) {
      now += 200;
      d.step(step(i));
    }
    d.validationProgress(0, 4);
    expect(t.screen().at(-1)).toMatch(/^validating 0\/4 batches, ETA /);
    for (let k = 1; k <= 4; k++) {
      now += 150;
      d.validationProgress(k, 4);
    }
    expect(t.screen().at(-1)).toMatch(/^validating 4\/4 batches, ETA 0m00s/);
    d.validated({ iteration: 50, valLoss: 2, seconds: 0.6 });
    d.note('saved checkpoint cv/x.safetensors');
    now += 200;
    d.step(step(51));
    d.close();
    const screen = t.screen();
    // 59 characters: no room for a bar (dropped before the epoch and chars/s).
    expect(screen).toEqual([
      '50/100, epoch 1.00, loss 2.5000, 500 chars/s, ETA 0m10s',
      'validation at iteration 50: val_loss = 2.0000 nats/char (2.89 bits), 0.6s',
      'saved checkpoint cv/x.safetensors',
      '51/100, epoch 1.02, loss 2.5000, 500 chars/s, ETA 0m10s',
      '',
    ]);
    // Every redrawn line (after a \r) fits in 59 characters (the messages are lines of their own).
    // (A redraw is \r, the line, then \x1b[K to erase what a longer line left.)
    for (const l of t.out.split('\r').slice(1)) expect(l.split('\x1b[K')[0].length).toBeLessThanOrEqual(59);
    // The run's ETA after the validation counts one more validation (at 100): measured, 0.6 s
    // for the pass and its checkpoint (the time from its start to the next step).
    expect(d.eta.validationSeconds).toBeCloseTo(0.8);
  });

  it('redraws at most every 100 ms, and at the last step', () => {
    let now = 0;
    const t = new FakeTerminal(true, 100);
    const d = new TrainingDisplay(t, { printEvery: 10, charsPerBatch: 100, evalValEvery: 1000, total: 100, valBatches: 4 }, () => now);
    for (let i = 1; i <= 100; i++) {
      now += 10;
      d.step(step(i));
    }
    const draws = t.out.split('\r').length - 1;
    expect(draws).toBeGreaterThanOrEqual(10);
    expect(draws).toBeLessThanOrEqual(12);
    expect(t.screen().at(-1)).toMatch(/ 100\/100, /);
  });

  it('redraws for the new width when the terminal is resized, and stops listening at the end', () => {
    const t = new FakeTerminal(true, 120);
    const d = new TrainingDisplay(t, { printEvery: 10, charsPerBatch: 100, evalValEvery: 1000, total: 100, valBatches: 4 });
    d.step(step(1));
    expect(t.screen().at(-1)!.length).toBeGreaterThan(59);
    t.columns = 40;
    t.emit('resize');
    expect(t.screen().at(-1)!.length).toBeLessThanOrEqual(39);
    expect(t.screen().at(-1)).toMatch(/^1\/100, loss 2\.5000/);
    d.close();
    expect(t.listenerCount('resize')).toBe(0);
  });

  it('narrowed below the line drawn: up over the rows the reflowed line takes, erase to the end of the screen, redraw', () => {
    const t = new FakeTerminal(true, 80);
    const d = new TrainingDisplay(t, { printEvery: 10, charsPerBatch: 100, evalValEvery: 1000, total: 100, valBatches: 4 });
    d.step(step(1));
    const drawn = t.out.slice(1, t.out.indexOf('\x1b[K')); // "\r" + the line + "\x1b[K"
    expect(drawn.length).toBe(79);
    // 79 characters in 30 columns: 3 rows, the cursor on the last; up 2, then \x1b[J.
    t.out = '';
    t.columns = 30;
    t.emit('resize');
    expect(t.out).toMatch(/^\r\x1b\[2A\x1b\[J\r[^\r\n\x1b]{1,29}\x1b\[K$/);
    // At 50 columns the line drawn (at most 29 characters) takes one row: a plain redraw, wider.
    t.out = '';
    t.columns = 50;
    t.emit('resize');
    expect(t.out).toMatch(/^\r[^\r\n\x1b]{30,49}\x1b\[K$/);
    // That line (30 to 49 characters) in 15 columns: 2 to 4 rows, up one fewer.
    const length = t.out.length - '\r\x1b[K'.length;
    t.out = '';
    t.columns = 15;
    t.emit('resize');
    expect(t.out.startsWith(`\r\x1b[${Math.ceil(length / 15) - 1}A\x1b[J\r`), JSON.stringify(t.out)).toBe(true);
    // A line committed (a note after it): nothing of it is erased on a resize.
    d.note('saved checkpoint cv/x.safetensors');
    t.out = '';
    t.columns = 20;
    t.emit('resize');
    expect(t.out).toBe('');
    d.close();
  });
});

describe('the command printed for the user to run', () => {
  const launch = (over: Partial<Launch> & { env?: Record<string, string> }): Launch => ({
    env: { PATH: '/usr/local/bin:/usr/bin' },
    script: '/home/u/grid-lstm/dist/cli.js',
    cwd: '/home/u/grid-lstm',
    which: (name, path) => (name === 'node' && path.split(':').includes('/usr/bin') ? '/usr/bin/node' : null),
    realpath: (p) => p,
    execPath: '/opt/node/bin/node',
    ...over,
  });
  const npmRun = { npm_command: 'run', npm_lifecycle_event: 'demo', npm_package_json: '/home/u/grid-lstm/package.json', PATH: '/home/u/grid-lstm/node_modules/.bin:/usr/bin' };

  it('node dist/cli.js: the same, relative to the cwd', () => {
    expect(commandPrefixOf(launch({}))).toEqual(['node', 'dist/cli.js']);
  });
  it('node with the cli elsewhere: its absolute path', () => {
    expect(commandPrefixOf(launch({ cwd: '/tmp/work' }))).toEqual(['node', '/home/u/grid-lstm/dist/cli.js']);
  });
  it('no node on the PATH: the node that runs now', () => {
    expect(commandPrefixOf(launch({ env: { PATH: '/bin' } }))).toEqual(['/opt/node/bin/node', 'dist/cli.js']);
  });
  it('npx / npm exec: npx grid-lstm', () => {
    const env = { npm_command: 'exec', npm_lifecycle_event: 'npx', PATH: '/usr/bin' };
    expect(commandPrefixOf(launch({ env, script: '/home/ada/.npm/_npx/5eec/node_modules/.bin/grid-lstm' }))).toEqual(['npx', 'grid-lstm']);
  });
  it('npm run (a script with node dist/cli.js): node dist/cli.js, after a cd to where npm ran it', () => {
    expect(commandLineOf(launch({ env: { ...npmRun, INIT_CWD: '/home/u/grid-lstm' } }), ['train', '--resume', 'cv/demo/x.safetensors'])).toBe(
      'node dist/cli.js train --resume cv/demo/x.safetensors',
    );
    // npm run from a subdirectory runs the script in the package root: relative paths (and those
    // a checkpoint records: --data, --checkpoint-dir) are relative to that.
    const sub = launch({ env: { ...npmRun, INIT_CWD: '/home/u/grid-lstm/docs/my notes' } });
    expect(commandLineOf(sub, ['train', '--resume', 'cv/demo/x.safetensors'])).toBe("cd ../.. && node dist/cli.js train --resume cv/demo/x.safetensors");
  });
  it('every word shell-quoted', () => {
    expect(commandLineOf(launch({ cwd: "/tmp/it's here" }), ['train', '--resume', "cv/a b/it's.safetensors"])).toBe(
      `node /home/u/grid-lstm/dist/cli.js train --resume 'cv/a b/it'\\''s.safetensors'`,
    );
  });
  it("a process npm's environment reached but npm did not start in the package root (a test): its own cwd", () => {
    const l = launch({ env: { ...npmRun, INIT_CWD: '/home/u/grid-lstm/docs' }, cwd: '/tmp/t' });
    expect(commandLineOf(l, ['train'])).toBe('node /home/u/grid-lstm/dist/cli.js train');
  });
  it('the grid-lstm bin on the PATH (a global install): grid-lstm', () => {
    const l = launch({
      script: '/usr/local/bin/grid-lstm',
      realpath: (p) => (p === '/usr/local/bin/grid-lstm' ? '/usr/local/lib/node_modules/grid-lstm/dist/cli.js' : p),
      which: (name, path) => (name === 'grid-lstm' && path.split(':').includes('/usr/local/bin') ? '/usr/local/lib/node_modules/grid-lstm/dist/cli.js' : '/usr/bin/node'),
    });
    expect(commandPrefixOf(l)).toEqual(['grid-lstm']);
  });
  it("a project's node_modules/.bin/grid-lstm from an npm script (not on the user's PATH): npx grid-lstm", () => {
    const l = launch({
      env: { ...npmRun, PATH: '/home/u/app/node_modules/.bin:/usr/bin', npm_package_json: '/home/u/app/package.json', INIT_CWD: '/home/u/app' },
      cwd: '/home/u/app',
      script: '/home/u/app/node_modules/.bin/grid-lstm',
      which: (name, path) => (name === 'grid-lstm' && path.includes('node_modules/.bin') ? '/home/u/app/node_modules/grid-lstm/dist/cli.js' : '/usr/bin/node'),
      realpath: (p) => (p.endsWith('.bin/grid-lstm') ? '/home/u/app/node_modules/grid-lstm/dist/cli.js' : p),
    });
    expect(commandPrefixOf(l)).toEqual(['npx', 'grid-lstm']);
  });
});

describe('stopping', () => {
  it('exit codes: 130 for Ctrl-C, 143 for SIGTERM and for the exit of npm', () => {
    expect(stopExitCode('SIGINT')).toBe(130);
    expect(stopExitCode('SIGTERM')).toBe(143);
    expect(stopExitCode('parent-exit')).toBe(143);
  });
  it('the parent is watched only when npm started the process', () => {
    expect(startedByNpm({})).toBe(false);
    expect(startedByNpm({ npm_command: 'exec', npm_lifecycle_event: 'npx' })).toBe(true);
    expect(startedByNpm({ npm_command: 'run', npm_lifecycle_event: 'demo' })).toBe(true);
  });
});
