/**
 * Stopping a training run cleanly: Ctrl-C (SIGINT), SIGTERM, and the death of the npm process
 * that started it.
 *
 * The handlers only record the request; the run asks (RunHooks.shouldStop) between steps and
 * between validation batches, then writes a checkpoint of the last completed step and ends.
 * A signal repeated before that is ignored; Ctrl-\ (SIGQUIT) still quits at once without saving.
 *
 * Why watch npm: `npx grid-lstm train` and `npm run` run the CLI as `sh -c '...'` under npm.
 * npm forwards SIGINT and SIGTERM to that shell only; dash (Debian's and Ubuntu's /bin/sh) does
 * not pass them on to its child. So `kill -INT <npx pid>` never reaches this process (nothing
 * here can see it: docs/errors.md says what to do instead), and `kill <npx pid>` kills the
 * shell and npm and leaves this process running on its own to the end of the run. That second
 * case is seen here: the process that started this one is gone (or npm, its parent, is: after
 * `kill -9 <npx pid>` the shell lives on). Ctrl-C in a terminal signals the
 * whole foreground process group, this process included, and works however it was started.
 */

import { readFileSync } from 'node:fs';

/** Why a run is asked to stop. */
export type StopReason = NodeJS.Signals | 'parent-exit';

/** How often the parent is looked at, ms. */
const PARENT_POLL_MS = 1000;

/**
 * Listens for SIGINT and SIGTERM (and, when `watchParent`, for the parent process exiting), and
 * calls `onStop` once, at the first of them. `reason()` says which (null: none yet); `dispose()`
 * removes the listeners.
 */
export function stopRequests(onStop: (reason: StopReason) => void, watchParent: boolean): { reason: () => StopReason | null; dispose: () => void } {
  let reason: StopReason | null = null;
  const stop = (r: StopReason) => {
    if (reason !== null) return;
    reason = r;
    onStop(r);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let timer: NodeJS.Timeout | undefined;
  if (watchParent) {
    // process.ppid does not change: it is the process that started this one. When that is npm's
    // shell, npm too: `kill -9 <npx pid>` leaves the shell waiting for this process.
    const watched = [process.ppid, ...shellsParent(process.ppid)];
    timer = setInterval(() => {
      if (!watched.every(alive)) stop('parent-exit');
    }, PARENT_POLL_MS);
    timer.unref(); // never keeps the process alive by itself
  }
  return {
    reason: () => reason,
    dispose: () => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      if (timer) clearInterval(timer);
    },
  };
}

/**
 * The parent of process `pid` when `pid` is a shell (npm runs commands with `sh -c`), read from
 * /proc (Linux); [] when it is not a shell or /proc cannot tell.
 */
function shellsParent(pid: number): number[] {
  try {
    // /proc/PID/stat: "PID (COMM) STATE PPID ..."; COMM may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return /^(sh|dash|bash|zsh|ash)$/.test(comm) && ppid > 1 ? [ppid] : [];
  } catch {
    return [];
  }
}

/** True while process `pid` exists (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // it exists, owned by someone else
  }
}

/**
 * True when npm started this process for `npx`/`npm exec` or a package script (`npm run`):
 * then the parent dying means the user stopped the run. Started any other way (a shell, nohup),
 * a parent that exits (a closed terminal after `nohup ... &`) is no reason to stop.
 */
export function startedByNpm(env: Record<string, string | undefined> = process.env): boolean {
  return env.npm_lifecycle_event !== undefined && env.npm_command !== undefined;
}

/** The exit code of a run stopped for `reason` (as a shell reports a process killed by it). */
export function stopExitCode(reason: StopReason | null): number {
  return reason === 'SIGTERM' || reason === 'parent-exit' ? 143 : 130;
}
