/**
 * Big corpora (issue 5): a 100 MB UTF-8 file must load, build its vocabulary and batch with ids
 * of 2 bytes per character, `grid-lstm train` on it must stay under 1 GB of peak resident memory,
 * and loading must take under 15 s.
 *
 *   npm run build && npx tsx bench/bigcorpus.ts            # 100 MB
 *   npx tsx bench/bigcorpus.ts --mb 300 --keep              # another size; keep the file
 *
 * It writes the built-in corpus, repeated, to a file in os.tmpdir() (cut at a character
 * boundary), then runs
 *
 *   node dist/cli.js train --data FILE --max-steps 1 --rnn-size 32 --eval-val-every 1000000
 *     --val-frac 0.0001 --checkpoint-dir TMP
 *
 * under /usr/bin/time -v when there is one (else polling VmHWM in /proc/<pid>/status), and
 * prints the peak RSS, the load time the CLI reports ("loaded N characters in X s": reading,
 * validating, vocabulary, ids), the time from start to the first training line, and the total.
 *
 * --val-frac 0.0001: with --max-steps 1 the run ends with a validation pass over the whole val
 * split, and the default 5% of 100 MB is 5 M characters, 2000 batches of 50×50: minutes of
 * forward passes on the plain TypeScript kernels that say nothing about loading. The split
 * fractions do not change what is loaded or kept in memory.
 *
 * Exit code 1 when a limit is exceeded.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDefaultCorpus } from '../dist/train/data.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const value = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const MB = value('--mb', 100);
const RSS_LIMIT_MB = 1024;
const LOAD_LIMIT_S = 15;

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
if (!existsSync(CLI)) {
  console.error('dist/cli.js is missing: run `npm run build` (or `npx tsc -p .`) first');
  process.exit(2);
}

/** The corpus file: the built-in corpus repeated to MB MiB, cut at a character boundary. */
function corpusFile(): string {
  const path = join(tmpdir(), `grid-lstm-bigcorpus-${MB}mb.txt`);
  const target = MB * 1024 * 1024;
  if (existsSync(path) && statSync(path).size <= target && statSync(path).size > target - 4) return path;
  const t0 = performance.now();
  const piece = Buffer.from(loadDefaultCorpus() + '\n\n', 'utf8');
  const fd = openSync(path, 'w');
  let written = 0;
  while (written < target) {
    let n = Math.min(piece.length, target - written);
    // The last, partial piece must not end inside a UTF-8 sequence: piece[n] is the first byte
    // left out, so back off while it is a continuation byte.
    if (n < piece.length) while (n > 0 && (piece[n]! & 0xc0) === 0x80) n--;
    writeSync(fd, piece, 0, n);
    written += n;
    if (n < piece.length) break;
  }
  closeSync(fd);
  console.log(`wrote ${path} (${(written / 2 ** 20).toFixed(1)} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}

interface Result {
  code: number | null;
  peakRssMB: number;
  rssSource: string;
  loadReported: number | null;
  chars: number | null;
  firstStepAfter: number | null;
  total: number;
  stderr: string;
}

function measure(cmd: string[]): Promise<Result> {
  const useTime = existsSync('/usr/bin/time');
  const argv = useTime ? ['/usr/bin/time', '-v', ...cmd] : cmd;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let firstStepAfter: number | null = null;
    let hwm = 0;
    const poll = useTime
      ? null
      : setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) hwm = Math.max(hwm, Number(m[1]));
          } catch {
            // gone
          }
        }, 20);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (firstStepAfter === null && /^1\/\d+ \(epoch/m.test(stderr)) firstStepAfter = (performance.now() - t0) / 1000;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (poll) clearInterval(poll);
      const total = (performance.now() - t0) / 1000;
      const timeRss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const loaded = /loaded (\d+) characters in ([\d.]+) s/.exec(stderr);
      resolve({
        code,
        peakRssMB: (timeRss ? Number(timeRss[1]) : hwm) / 1024,
        rssSource: timeRss ? '/usr/bin/time -v' : '/proc/<pid>/status VmHWM',
        loadReported: loaded ? Number(loaded[2]) : null,
        chars: loaded ? Number(loaded[1]) : null,
        firstStepAfter,
        total,
        stderr,
      });
    });
  });
}

const file = corpusFile();
const ckDir = mkdtempSync(join(tmpdir(), 'grid-lstm-bigcorpus-cv-'));
const cmd = [
  process.execPath,
  CLI,
  'train',
  '--data',
  file,
  '--max-steps',
  '1',
  '--rnn-size',
  '32',
  '--eval-val-every',
  '1000000',
  '--val-frac',
  '0.0001',
  '--checkpoint-dir',
  ckDir,
];
console.log(`$ ${cmd.map((a) => (a === process.execPath ? 'node' : a === CLI ? 'dist/cli.js' : a)).join(' ')}`);
const r = await measure(cmd);
rmSync(ckDir, { recursive: true, force: true });
if (!flag('--keep')) rmSync(file, { force: true });

const cliLines = r.stderr.split('\n').filter((l) => !/^\s|^\tCommand being timed|^$/.test(l) && !/^\t/.test(l));
console.log(cliLines.map((l) => `  | ${l}`).join('\n'));
if (r.code !== 0) {
  console.error(`the run failed with exit code ${r.code}`);
  process.exit(1);
}
console.log(`corpus:            ${MB} MiB, ${r.chars?.toLocaleString('en-US')} characters`);
console.log(`peak RSS:          ${r.peakRssMB.toFixed(0)} MB (limit ${RSS_LIMIT_MB} MB; from ${r.rssSource})`);
console.log(`load (CLI):        ${r.loadReported?.toFixed(2)} s (limit ${LOAD_LIMIT_S} s; read + validate + vocabulary + ids)`);
console.log(`to the first step: ${r.firstStepAfter?.toFixed(2)} s (node start, load, model, first training step)`);
console.log(`total:             ${r.total.toFixed(2)} s`);
const ok = r.peakRssMB < RSS_LIMIT_MB && r.loadReported !== null && r.loadReported < LOAD_LIMIT_S;
console.log(ok ? 'OK: within the limits' : 'FAIL: a limit is exceeded');
process.exit(ok ? 0 : 1);
