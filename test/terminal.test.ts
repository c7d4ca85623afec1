/**
 * `grid-lstm train` as a user runs it, with real processes (issue 19, "The terminal"):
 *
 * - after Ctrl-C, the printed "resume with: ..." command, pasted into a shell (`sh -c`), resumes
 *   the run, however it was started: `node dist/cli.js`, `node /path/to/cli.js` from elsewhere
 *   (paths with spaces and quotes), `npx grid-lstm`, `npm run` from a subdirectory;
 * - Ctrl-C through npx and npm run: signalled as a terminal does (to the whole foreground
 *   process group) the run stops cleanly with a checkpoint, exit 130, and no process is left;
 *   `kill <npx pid>` and `kill -9 <npx pid>` (to npm alone) stop it too (src/cli/stop.ts);
 * - on a terminal (a pseudo-terminal from script(1), 80 columns, then resized to 50) no redrawn
 *   line is wider than the terminal, and validation shows its progress.
 *
 * The CLI is run from dist/ (built by `npm ci` and by `npm test`'s pretest step).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { loadDefaultCorpus } from '../src/train/data.js';
import { waitFor } from './helpers/cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-terminal-'));
/** A directory whose name needs quoting in a shell. */
const odd = join(dir, "it's a dir");
const data = join(odd, 'slice.txt');
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    try {
      process.kill(-c.pid!, 'SIGKILL'); // its process group (spawned detached)
    } catch {
      c.kill('SIGKILL');
    }
  }
  await sleep(100);
  rmSync(dir, { recursive: true, force: true });
});
beforeAll(() => {
  mkdirSync(odd);
  writeFileSync(data, loadDefaultCorpus().slice(3_000_000, 3_030_000));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** ~20 ms a step: slow enough that a run is still going when the signal arrives. */
const SIZE = ['--rnn-size', '48', '--num-layers', '2', '--batch-size', '8', '--seq-length', '32', '--print-every', '1', '--eval-val-every', '1000'];
const MODEL = [...SIZE, '--max-steps', '30'];

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  /** When the child exits and its stderr is closed by every process that held it. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `cmd` in its own process group (detached), as a shell starts a foreground job, with
 * stderr collected; the environment is this one without npm's variables (as in a user's shell).
 */
function start(cmd: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}): Proc {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_|^INIT_CWD$/i.test(k)));
  const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...clean, ...env } });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { child, stderr: () => stderr, closed };
}

/** True while some process of process group `pgid` is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs a pasted command line in a shell, in `cwd`, to its end. */
function paste(line: string, cwd: string): Promise<{ code: number | null; stderr: string }> {
  const p = start('sh', ['-c', line], cwd);
  return p.closed.then(({ code }) => ({ code, stderr: p.stderr() }));
}

/**
 * Waits for the first step, sends SIGINT (to the process group when `group`, as Ctrl-C in a
 * terminal does, else to the process), and returns the resume command the run printed after
 * stopping, with the iteration it stopped at.
 */
async function interrupt(p: Proc, group: boolean): Promise<{ command: string; iteration: number; code: number | null; signal: NodeJS.Signals | null }> {
  await waitFor(() => /^1\/30 /m.test(p.stderr()), 60_000, `the first step (${p.stderr().slice(-400)})`);
  process.kill(group ? -p.child.pid! : p.child.pid!, 'SIGINT');
  const { code, signal } = await p.closed;
  const err = p.stderr();
  const m = /^stopped by SIGINT at iteration (\d+); resume with: (.+)$/m.exec(err);
  expect(m, err).not.toBeNull();
  // Two lines, each within 79 columns.
  expect(err).toMatch(/^SIGINT: saving a checkpoint after this step, then stopping\n\(Ctrl-\\ quits at once without saving\)$/m);
  expect(err).not.toMatch(/error/);
  return { command: m![2]!, iteration: Number(m![1]), code, signal };
}

/** The command resumed: it ran to the end of the run from the iteration it stopped at. */
function expectResumed(r: { code: number | null; stderr: string }, iteration: number): void {
  expect(r.stderr).toMatch(new RegExp(`^resuming .* at iteration ${iteration} `, 'm'));
  expect(r.stderr).toMatch(/^30\/30 /m);
  expect(r.stderr).toMatch(/^done: val_loss = \S+ nats\/char\ncheckpoint: .+\.safetensors$/m);
  expect(r.code, r.stderr).toBe(0);
}

describe('the printed resume command runs as printed', () => {
  it('node dist/cli.js from the repository: "node dist/cli.js train --resume \'<path with a space>\'"', async () => {
    const ck = join(odd, 'ck one');
    const p = start('node', ['dist/cli.js', 'train', '--data', data, ...MODEL, '--checkpoint-dir', ck], ROOT);
    const s = await interrupt(p, false);
    expect(s.code).toBe(130);
    expect(s.command).toMatch(/^node dist\/cli\.js train --resume '\/.*it'\\''s a dir\/ck one\/lm_grid_lstm_epoch[\d.]+_interrupted\.safetensors'$/);
    expectResumed(await paste(s.command, ROOT), s.iteration);
  });

  it('node /path/to/dist/cli.js from another directory, relative paths: the absolute cli, the relative checkpoint', async () => {
    const p = start(process.execPath, [CLI, 'train', '--data', 'slice.txt', ...MODEL, '--checkpoint-dir', 'ck two'], odd);
    const s = await interrupt(p, false);
    expect(s.code).toBe(130);
    expect(s.command).toMatch(new RegExp(`^\\S*node ${CLI.replace(/[.]/g, '\\.')} train --resume 'ck two/lm_\\S+\\.safetensors'$`));
    expectResumed(await paste(s.command, odd), s.iteration);
  });

  it('npx grid-lstm, Ctrl-C to the process group: a checkpoint, exit 130, nothing left running; "npx grid-lstm train --resume ..." resumes', async () => {
    const ck = join(odd, 'ck npx');
    const p = start('npx', ['--no-install', 'grid-lstm', 'train', '--data', data, ...MODEL, '--checkpoint-dir', ck], ROOT);
    const s = await interrupt(p, true);
    // npx re-raises the signal its child died of (the CLI exits 130: it "died of SIGINT").
    expect(s.code === 130 || s.signal === 'SIGINT', `${s.code} ${s.signal}`).toBe(true);
    await waitFor(() => !groupAlive(p.child.pid!), 5_000, 'the process group to be gone');
    expect(s.command).toMatch(/^npx grid-lstm train --resume '\/.*it'\\''s a dir\/ck npx\/lm_\S+_interrupted\.safetensors'$/);
    const ckPath = /'(.*)'$/.exec(s.command)![1]!.replace(/'\\''/g, "'");
    expect(loadCheckpoint(ckPath).training!.iteration).toBe(s.iteration);
    expectResumed(await paste(s.command, ROOT), s.iteration);
  });

  it('npm run from a subdirectory of a package: "cd .. && node ... train --resume <relative>", Ctrl-C to the group', async () => {
    const pkg = join(dir, 'pkg');
    mkdirSync(join(pkg, 'sub'), { recursive: true });
    writeFileSync(join(pkg, 'slice.txt'), readFileSync(data));
    const script = ['node', JSON.stringify(CLI), 'train', '--data', 'slice.txt', ...MODEL, '--checkpoint-dir', 'cv'].join(' ');
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'terminal-test', version: '1.0.0', private: true, scripts: { go: script } }));
    const p = start('npm', ['run', '--silent', 'go'], join(pkg, 'sub'));
    const s = await interrupt(p, true);
    await waitFor(() => !groupAlive(p.child.pid!), 5_000, 'the process group to be gone');
    expect(s.command).toMatch(new RegExp(`^cd \\.\\. && \\S*node ${CLI.replace(/[.]/g, '\\.')} train --resume cv/lm_\\S+_interrupted\\.safetensors$`));
    expectResumed(await paste(s.command, join(pkg, 'sub')), s.iteration);
  });
});

describe('a run started by npx stops when npx is killed', () => {
  // SIGTERM: npm passes it to its shell, which dies; SIGKILL: npm dies, its shell lives on. Either
  // way the CLI would run on alone to the end; it watches its parent (and npm behind a shell).
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`kill -${signal.slice(3)} <npx pid>: the run notices, saves, says how to resume`, async () => {
      const ck = join(dir, `ck-${signal}`);
      const p = start('npx', ['--no-install', 'grid-lstm', 'train', '--data', data, ...SIZE, '--max-steps', '100000', '--checkpoint-dir', ck], ROOT);
      await waitFor(() => /^1\/\d+ /m.test(p.stderr()), 60_000, 'the first step');
      const t0 = Date.now();
      process.kill(p.child.pid!, signal);
      // npm's stderr is also the CLI's: it closes when the CLI ends too.
      await p.closed;
      await waitFor(() => !groupAlive(p.child.pid!), 10_000, 'the process group to be gone');
      const err = p.stderr();
      expect(err).toMatch(/^the run's npm exited: saving a checkpoint after this step, then stopping\n\(Ctrl-\\ quits at once without saving\)$/m);
      const m = /^stopped by the exit of npm at iteration (\d+); resume with: npx grid-lstm train --resume (\S+)$/m.exec(err);
      expect(m, err).not.toBeNull();
      expect(loadCheckpoint(m![2]!).training!.iteration).toBe(Number(m![1]));
      // Noticed within the parent watch's poll (1 s), not at the end of 100 000 steps.
      expect(Date.now() - t0).toBeLessThan(5_000);
    });
  }
});

/** Whether script(1) from util-linux is there to give the CLI a pseudo-terminal. */
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasScript)('on a terminal', () => {
  /** The lines as drawn: every redraw is "\r" + line + "\x1b[K"; messages end in "\n". */
  const redraws = (out: string) => [...out.matchAll(/\r([^\r\n\x1b]*)\x1b\[K/g)].map((m) => m[1]!);

  it('80 columns: no redrawn line wider than 79; validation shows its batches; resized to 50: no line wider than 49', async () => {
    const ck = join(dir, 'ck-tty');
    // script runs the command in a new pseudo-terminal: stty sets its width, exec makes node
    // the child of script (so its pid is known), which writes everything it sees to stdout.
    const cmd = `stty cols 80 rows 24; exec node ${JSON.stringify(CLI)} train --data ${JSON.stringify(data)} --rnn-size 8 --num-layers 1 --batch-size 4 --seq-length 8 --train-frac 0.7 --val-frac 0.3 --eval-val-every 200 --max-steps 100000 --checkpoint-dir ${JSON.stringify(ck)}`;
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: dir, detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm' } });
    children.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let ended = false;
    const closed = new Promise<number | null>((r) => child.on('close', (code) => ((ended = true), r(code))));
    await waitFor(() => out.includes('validation at iteration 200:') || ended, 60_000, 'a validation');
    expect(ended, out.slice(-500)).toBe(false);
    // The node process: script's child (exec replaced the shell).
    const node = await waitFor(
      () => {
        const pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
        return pids.length === 1 ? Number(pids[0]) : null;
      },
      5_000,
      'the node process',
    );
    const before = out.length;
    // Resize the terminal (the kernel sends SIGWINCH to its foreground process group).
    execFileSync('stty', ['-F', readlinkSync(`/proc/${node}/fd/2`), 'cols', '50']);
    // script relays the output with some delay: lines drawn before the resize can come after
    // `before`. Wait for the first narrow line, then two more redraws.
    const narrowFrom = () => redraws(out.slice(before)).findIndex((l) => l.length <= 49);
    await waitFor(() => narrowFrom() >= 0 && redraws(out.slice(before)).length >= narrowFrom() + 3, 10_000, 'redraws after the resize');
    process.kill(node, 'SIGINT');
    await closed;

    const wide = redraws(out.slice(0, before));
    expect(wide.length).toBeGreaterThan(3);
    for (const l of wide) expect(l.length, l).toBeLessThanOrEqual(79);
    expect(wide.some((l) => /^\[=* *\] \d+\/\d+, epoch [\d.]+, loss [\d.]+, \d+ chars\/s, ETA /.test(l)), wide.slice(-3).join('\n')).toBe(true);
    expect(wide.some((l) => /^validating 0\/\d+ batches, ETA \S+, run ETA \S+$/.test(l)), wide.join('\n')).toBe(true);
    // The screen: each line as last drawn. The step line stays above the validation's result,
    // with the iteration it was at.
    const screen = out.split('\n').map((l) => l.split('\r').filter((x) => x !== '').at(-1)?.replace(/\x1b\[K/g, '') ?? '');
    const v = screen.findIndex((l) => l.startsWith('validation at iteration 200: val_loss = '));
    expect(screen[v - 1], screen.slice(0, v + 1).join('\n')).toMatch(/ 200\/\d+, epoch /);
    const after = redraws(out.slice(before));
    expect(narrowFrom()).toBeLessThanOrEqual(3);
    const narrow = after.slice(narrowFrom());
    expect(narrow.length).toBeGreaterThanOrEqual(3);
    for (const l of narrow) expect(l.length, l).toBeLessThanOrEqual(49);
    // Stopped as usual, and says so on a line of its own.
    expect(out).toMatch(/\nstopped by SIGINT at iteration \d+; resume with: node /);
    expect(existsSync(resolve(ck))).toBe(true);
  });
});
