/**
 * A killed run loses nothing (issue 5):
 *
 * - SIGKILL at many random moments, many of them while a checkpoint is being written: every
 *   .safetensors file in the checkpoint directory always loads, leftover temporary files are
 *   never taken for checkpoints, and the run resumes from the newest checkpoint each time;
 * - Ctrl-C (SIGINT) and SIGTERM finish the step, write a checkpoint, print how to resume, and
 *   exit with 130 and 143; the checkpoint resumes;
 * - a run killed after checkpoint k and resumed to step n gives the same tensors, bit for bit,
 *   as an uninterrupted run to step n.
 *
 * The CLI is run from dist/ (built by `npm ci` and by `npm test`'s pretest step).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { loadDefaultCorpus } from '../src/train/data.js';
import { parseSafetensors } from '../src/train/safetensors.js';
import { waitFor } from './helpers/cli.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-kill-'));
const dataFile = join(dir, 'slice.txt');
/** Every process started, so that none outlives a failed test. */
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await sleep(100);
  rmSync(dir, { recursive: true, force: true });
});
beforeAll(() => {
  // 30k characters of the built-in corpus: ~900 batches of 4×8.
  writeFileSync(dataFile, loadDefaultCorpus().slice(3_000_000, 3_030_000));
});

/** A tiny model that checkpoints after every step, so that kills often land in a write. */
const TINY = ['--rnn-size', '8', '--num-layers', '1', '--batch-size', '4', '--seq-length', '8', '--val-frac', '0.01'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running CLI process with its stderr collected. */
function start(args: string[]): { child: ChildProcess; stderr: () => string; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => stderr, exit };
}

const list = (d: string) => {
  try {
    return readdirSync(d);
  } catch {
    return []; // not created yet
  }
};
const checkpoints = (d: string) => list(d).filter((f) => f.endsWith('.safetensors') && !f.startsWith('.'));
const tempFiles = (d: string) => list(d).filter((f) => f.includes('.tmp-'));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The raw bytes of every tensor of a checkpoint file. */
function tensorBytes(path: string): Map<string, Buffer> {
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(path)));
  return new Map([...tensors].map(([k, t]) => [k, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
}

describe('SIGKILL at random moments', () => {
  it('every checkpoint always loads, temp files are never taken for checkpoints, and the run resumes each time', async () => {
    const ckDir = join(dir, 'killed');
    // 40 kills, or as many as fit in 40 s on a busy machine (at least 25).
    const KILLS = 40;
    const MIN_KILLS = 25;
    const BUDGET_MS = 40_000;
    const verified = new Set<string>(); // inode and mtime of the files verified (inodes get reused, so both)
    let checked = 0;
    let survived = 0;
    let duringWrite = 0; // kills that left a temporary file behind (killed mid-write)
    let lastIteration = 0;
    const t0 = Date.now();
    for (let k = 0; k < KILLS && (k < MIN_KILLS || Date.now() - t0 < BUDGET_MS); k++) {
      const startedAt = Date.now();
      const args =
        k === 0
          ? ['train', '--data', dataFile, ...TINY, '--eval-val-every', '1', '--max-steps', '1000000', '--print-every', '1000000', '--checkpoint-dir', ckDir]
          : ['train', '--resume', ckDir];
      const p = start(args);
      // Wait for this run's first checkpoint (a new file, or a newer version of one).
      await waitFor(
        () => checkpoints(ckDir).some((f) => statSync(join(ckDir, f)).mtimeMs >= startedAt - 1),
        30_000,
        `the first checkpoint of run ${k} (${p.stderr().slice(-500)})`,
        2,
      );
      if (k % 2 === 0) {
        await sleep(Math.random() * 300);
      } else {
        // Aim at a write in progress: kill as soon as a new temporary file shows up.
        const before = new Set(tempFiles(ckDir));
        const deadline = Date.now() + 200 + Math.random() * 200;
        while (Date.now() < deadline && !tempFiles(ckDir).some((f) => !before.has(f))) await new Promise((r) => setImmediate(r));
      }
      p.child.kill('SIGKILL');
      const { signal } = await p.exit;
      expect(signal, p.stderr().slice(-1000)).toBe('SIGKILL');
      // Each resumed run started from the furthest checkpoint written before.
      if (k > 0) expect(/resuming \S+ at iteration (\d+) /.exec(p.stderr())?.[1], p.stderr().slice(0, 500)).toBe(String(lastIteration));
      // writeFileAtomic's temporary files are named .<name>.tmp-<pid>-<random>.
      if (tempFiles(ckDir).some((f) => f.startsWith('.lm_') && f.includes(`.tmp-${p.child.pid}-`))) duringWrite++;

      // Every checkpoint file that is new or changed since it was last checked loads.
      for (const f of checkpoints(ckDir)) {
        const path = join(ckDir, f);
        const st = statSync(path, { bigint: true });
        const ino = `${st.ino}:${st.mtimeNs}:${st.size}`;
        if (verified.has(ino)) continue;
        const ck = loadCheckpoint(path);
        expect(ck.training).not.toBeNull();
        lastIteration = Math.max(lastIteration, ck.training!.iteration);
        verified.add(ino);
        checked++;
      }
      survived++;
    }
    const tempLeft = tempFiles(ckDir).length;
    // Leftover temporary files are allowed; a decoy that is newer than everything and not a
    // checkpoint must not be picked up either (dot files are never checkpoints).
    writeFileSync(join(ckDir, '.decoy.safetensors'), 'not a checkpoint');
    writeFileSync(join(ckDir, `.lm_grid_lstm_epoch9.99_0.0000.safetensors.tmp-1-abcdef`), 'half a checkpoint');
    const s = run(['sample', ckDir, '--length', '20', '--quiet']);
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    // Resume from the newest checkpoint (the furthest into training) and run a couple of steps
    // to a normal end.
    const at = lastIteration;
    const r = run(['train', '--resume', ckDir, '--max-steps', String(at + 2), '--checkpoint-dir', join(dir, 'after-kills')]);
    expect(r.stderr).toMatch(new RegExp(`resuming ${ckDir}/lm_\\S+\\.safetensors at iteration ${at} `));
    expect(r.code).toBe(0);
    const after = checkpoints(join(dir, 'after-kills')).map((f) => loadCheckpoint(join(dir, 'after-kills', f)).training!.iteration);
    expect(Math.max(...after)).toBe(at + 2);
    console.log(
      `kill test: ${survived} SIGKILLs survived (all of them) in ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
        `${duringWrite} of them left a temporary file (killed mid-write), ${tempLeft} temporary files in all; ` +
        `${checked} checkpoint files checked, the run reached iteration ${lastIteration}`,
    );
    expect(survived).toBeGreaterThanOrEqual(MIN_KILLS);
    expect(duringWrite).toBeGreaterThan(0);
  });
});

describe('Ctrl-C and SIGTERM', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal}: finishes the step, writes a checkpoint, says how to resume, exits ${code}`, async () => {
      const ckDir = join(dir, `signal-${signal}`);
      // A model big enough that a step takes a while (the signal arrives mid-step).
      const p = start(['train', '--data', dataFile, '--rnn-size', '48', '--num-layers', '2', '--batch-size', '8', '--seq-length', '32', '--max-steps', '100000', '--eval-val-every', '1000', '--checkpoint-dir', ckDir]);
      await waitFor(() => /^3\/\d+ /m.test(p.stderr()), 60_000, 'three steps', 2);
      p.child.kill(signal);
      const { code: exitCode } = await p.exit;
      const err = p.stderr();
      expect(err).toMatch(new RegExp(`${signal}: saving a checkpoint after this step, then stopping`));
      // The command as this process was started (test/terminal.test.ts runs it as printed).
      const m = new RegExp(`stopped by ${signal} at iteration (\\d+); resume with: \\S*node \\S+/cli\\.js train --resume (\\S+)`).exec(err);
      expect(m, err).not.toBeNull();
      expect(exitCode).toBe(code);
      expect(err).not.toMatch(/error/);
      const [iteration, path] = [Number(m![1]), m![2]!];
      expect(iteration).toBeGreaterThanOrEqual(3);
      expect(err).toContain(`saved checkpoint ${path}`);
      // The checkpoint holds the state after the last step that finished.
      const lastStep = Math.max(...[...err.matchAll(/^(\d+)\/\d+ /gm)].map((x) => Number(x[1])));
      expect(lastStep).toBe(iteration);
      const ck = loadCheckpoint(resolve(dir, path));
      expect(ck.training!.iteration).toBe(iteration);
      const r = run(['train', '--resume', path, '--max-steps', String(iteration + 2)]);
      expect(r.stderr).toMatch(new RegExp(`resuming .* at iteration ${iteration}`));
      expect(r.code).toBe(0);
    });
  }
});

describe('resume after SIGKILL reproduces the uninterrupted run', () => {
  it('killed after checkpoint k, resumed to n: bit-identical tensors, RNG and data position', async () => {
    const N = 120;
    const args = (ckDir: string) => ['train', '--data', dataFile, ...TINY, '--dropout', '0.2', '--optim', 'adam', '--max-steps', String(N), '--eval-val-every', '7', '--print-every', '1', '--checkpoint-dir', ckDir];
    const whole = run(args('whole'));
    expect(whole.code).toBe(0);
    const final = /^done: val_loss = \S+ nats\/char\ncheckpoint: (\S+)$/m.exec(whole.stderr)![1]!;

    const killedDir = join(dir, 'killed-exact');
    const p = start(args(killedDir));
    // Kill at a random moment after the checkpoint of iteration 35 (written before step 36).
    await waitFor(() => /^(3[6-9]|4\d)\/120 /m.test(p.stderr()), 60_000, 'iteration 36', 2);
    await sleep(Math.random() * 30);
    p.child.kill('SIGKILL');
    await p.exit;
    // The newest checkpoint by iteration (every one of them loads).
    const cks = checkpoints(killedDir).map((f) => ({ f: join(killedDir, f), ck: loadCheckpoint(join(killedDir, f)) }));
    const last = cks.sort((a, b) => b.ck.training!.iteration - a.ck.training!.iteration)[0]!;
    const k = last.ck.training!.iteration;
    expect(k).toBeGreaterThanOrEqual(35);
    expect(k).toBeLessThan(N);
    const r = run(['train', '--resume', last.f, '--checkpoint-dir', 'resumed-exact']);
    expect(r.stderr).toMatch(new RegExp(`resuming .* at iteration ${k}`));
    expect(r.code).toBe(0);
    const resumedFinal = /^done: val_loss = \S+ nats\/char\ncheckpoint: (\S+)$/m.exec(r.stderr)![1]!;

    const a = tensorBytes(resolve(dir, final));
    const b = tensorBytes(resolve(dir, resumedFinal));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a.keys()].filter((x) => x.startsWith('optimizer.')).sort()).toEqual(['optimizer.m', 'optimizer.v']);
    for (const [name, bytes] of a) expect(bytes.equals(b.get(name)!), name).toBe(true);
    const [ta, tb] = [loadCheckpoint(resolve(dir, final)), loadCheckpoint(resolve(dir, resumedFinal))];
    expect(tb.training!.iteration).toBe(N);
    expect(tb.training!.rngState).toBe(ta.training!.rngState);
    expect(tb.training!.batchIx).toEqual(ta.training!.batchIx);
    expect(tb.training!.optimizer).toEqual(ta.training!.optimizer);
    expect(Buffer.from(tb.carry!.h.buffer).equals(Buffer.from(ta.carry!.h.buffer))).toBe(true);
    expect(Buffer.from(tb.carry!.c.buffer).equals(Buffer.from(ta.carry!.c.buffer))).toBe(true);
    // The losses of the steps after k are the same too.
    const losses = (s: string) => new Map([...s.matchAll(/^(\d+)\/120 \(epoch [\d.]+\), train_loss = (\S+),/gm)].map((x) => [Number(x[1]), x[2]]));
    const [la, lb] = [losses(whole.stderr), losses(r.stderr)];
    for (let i = k + 1; i <= N; i++) expect(lb.get(i), `iteration ${i}`).toBe(la.get(i));
  });
});
