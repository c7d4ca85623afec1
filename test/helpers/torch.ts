/**
 * Running the PyTorch side (python/) in tests: the Python with torch, if any, and whether its
 * tests run (`torchTests`): when it is found, or when REQUIRE_PYTORCH=1 (set by .ci/run, which
 * installs Debian's python3-torch), where a missing torch fails them. Otherwise a test file that
 * imports this prints "skipped: PyTorch not installed" and skips its PyTorch tests.
 */
import { spawn } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { resolve } from 'node:path';
import { findTorchPython } from '../../python/find-python.mjs';

export const PYTHON_DIR = resolve(import.meta.dirname, '..', '..', 'python');
export const python = findTorchPython();
const required = process.env.REQUIRE_PYTORCH === '1';
if (python === null) {
  process.stderr.write(
    required
      ? '\n  REQUIRE_PYTORCH=1 but no Python with torch was found: install python3-torch (apt-get install python3-torch) or set PYTHON\n\n'
      : '\n  skipped: PyTorch not installed (install python3-torch, or set PYTHON to a python with torch, to run the PyTorch tests)\n\n',
  );
}
export const torchTests = python !== null || required;

/** Environment of the Python processes: one BLAS thread each (torch's own threads do the work). */
export const PY_ENV = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' };

/** Runs python ARGS (in `cwd`, default python/), resolving with its output; rejects with its stderr when it fails. */
export function runPython(args: string[], cwd = PYTHON_DIR): Promise<{ stdout: string; stderr: string }> {
  if (python === null) throw new Error('REQUIRE_PYTORCH=1 but no Python with torch was found');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(python, args, { cwd, env: PY_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise({ stdout, stderr });
      else reject(new Error(`python ${args.join(' ')} exited with ${code}:\n${stderr}`));
    });
  });
}

/** A TCP port free on the loopback now, for a torchrun's rendezvous (static: quicker than c10d's). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  await new Promise((ok) => server.close(ok));
  return port;
}

/** torchrun's options for 2 processes on this machine (run by python/torchrun.py, see there). */
export async function torchrunOptions(): Promise<string[]> {
  return ['--nproc_per_node', '2', '--monitor_interval', '0.2', '--master_addr', '127.0.0.1', '--master_port', String(await freePort())];
}

