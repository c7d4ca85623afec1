/**
 * Running the built CLI (dist/cli.js) in tests, and the shape every usage error must have.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `grid-lstm ARGS` in `cwd` without blocking (so tests can run side by side), killed after
 * 60 s. `nodeArgs` go to node before the script; `uid`/`gid` run it as another user.
 */
export function runCli(args: string[], options: { cwd: string; uid?: number; gid?: number; nodeArgs?: string[] }): Promise<CliResult> {
  const { nodeArgs = [], ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exit code 2, exactly one line on stderr, "grid-lstm: error: " + a message matching `re`, no stack trace. */
export function expectOneLineUsageError(r: { code: number | null; stderr: string }, re: RegExp): void {
  expect(r.stderr).toMatch(re);
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^grid-lstm: error: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.code).toBe(2);
}

/** Polls `f` every `pollMs` until it returns a truthy value; fails naming `what` after `ms`. */
export async function waitFor<T>(f: () => T, ms: number, what: string, pollMs = 5): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
