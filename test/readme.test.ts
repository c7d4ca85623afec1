/**
 * The README runs as shown: every command and every code block in it, and the output it shows.
 *
 * How the commands run:
 * - Every ```sh (or bash, console, shell) block runs as one bash script (`set -eo pipefail`;
 *   a line ending in `\` continues on the next), in order, each from a work directory shared by
 *   all of them, and must exit with 0. The work directory stands for a clone without copying
 *   one: it is a temporary directory named grid-lstm whose dist/, build/, docs/, examples/,
 *   node_modules/ and package.json are links to this repository's, so what the commands write
 *   (cv/, report.html, curves.svg, ../my-project) lands in it, never in the repository. It
 *   also holds the `input.txt` the README trains on, made by this test: the first 150 000
 *   characters of the built-in corpus (more than the 125 001 below which training warns).
 * - The blocks of the section "Outgrowing a laptop" (PyTorch) run in test/pytorch-readme.test.ts instead,
 *   which has PyTorch where this test may not.
 * - Training is cut short: a `train` command runs with `--max-steps 2` appended (`--max-steps 4`
 *   with `--resume`, so that the resumed run trains too); the parser lets a later option
 *   override an earlier one. Everything else runs as written.
 * - npm: `npm ci` and `npm test` are not run here (CI runs both, .ci/run). `npm run demo` is run
 *   (in the background, while the other blocks run: about 80 s on 2 cores), and its sample and
 *   validation loss must be those the README quotes. `npm install ../grid-lstm` (about 50 s
 *   when npm does it, which was checked by hand) is replaced by what it makes: the link
 *   node_modules/grid-lstm and its command node_modules/.bin/grid-lstm, made executable as npm
 *   makes a bin. `npm run playground` (a server that runs until stopped) and `npm run build:web`
 *   are not run here: test/browser/playground.test.ts builds the same site and serves it. Any
 *   other npm line fails the test until it is given a rule here.
 * - A ```text block right after a command block (only blank lines between) is its expected
 *   standard output, line for line (trailing spaces ignored); standard error is not compared.
 *   A sample drawn with the default kernels (relaxed SIMD) may round differently on another
 *   processor; if the text differs, the command runs again with `--kernels wasm-simd`, which
 *   gives the same numbers on every machine, and that must match (the README says so).
 * - The sample at the top of the README is the grid-2x128-it2000 checkpoint's, by the same
 *   options as the other samples.
 *
 * The `ts`/`js` blocks of README.md and docs/library.md run through test/helpers/docblocks.ts as
 * the walkthrough's do (each file's blocks as one program importing 'grid-lstm'; a following
 * `text` block is the expected output). And: every line of a code block in the README fits in 80
 * columns; every relative link of the README and of the docs pages points to a file that
 * exists, and to a heading of it when it names one (experiments/depth/README.md's and
 * python/README.md's too).
 *
 * Needs the build (dist/), as `npm test` makes it in its pretest step. About 150 s on 2 cores;
 * the demo, beside the other commands, takes 75–100 s of it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { loadDefaultCorpus } from '../src/train/data.js';
import { type DocBlock, ROOT, commandsOf, fencedBlocks, normalise, runDoc, sectionOf } from './helpers/docblocks.js';

const README = join(ROOT, 'README.md');
const md = readFileSync(README, 'utf8');
const lines = md.split('\n');
const blocks = fencedBlocks(md);
const SHELL = new Set(['sh', 'bash', 'console', 'shell']);

/** The text block shown right after block k (only blank lines between), or null. */
function shownOutput(k: number): DocBlock | null {
  const b = blocks[k];
  const next = blocks[k + 1];
  if (!next || next.lang !== 'text') return null;
  return lines.slice(b.close + 1, next.open).every((l) => l.trim() === '') ? next : null;
}

/** What the test runs for one README command (see the header), or null for one it skips. */
export function asRun(command: string): string | null {
  if (/^npm (ci|test)\b/.test(command)) return null;
  if (/^npm run demo\b/.test(command)) return null; // run in the background, see below
  // The playground's build and server: test/browser/playground.test.ts builds the same Vite config and serves it.
  if (/^npm run (playground|build:web)$/.test(command)) return null;
  const install = /^npm install (\S+)$/.exec(command);
  if (install) {
    const target = install[1];
    return `mkdir -p node_modules/.bin && ln -s ../${target} node_modules/grid-lstm && ln -s ../grid-lstm/dist/cli.js node_modules/.bin/grid-lstm && chmod +x node_modules/.bin/grid-lstm`; // npm makes a bin executable
  }
  if (/^npm /.test(command) && !/^npm init -y$/.test(command)) throw new Error(`the README runs "${command}": give it a rule in test/readme.test.ts`);
  if (/^(node dist\/cli\.js|npx grid-lstm) train\b/.test(command)) {
    if (/[|#;&<>]/.test(command)) throw new Error(`a train command must be a plain command to be cut short: ${command}`);
    return `${command} --max-steps ${/--resume\b/.test(command) ? 4 : 2}`;
  }
  return command;
}

/** The same command with `--kernels wasm-simd` given to the grid-lstm command in it. */
function withPlainSimd(command: string): string {
  const pipe = command.indexOf(' | ');
  return pipe < 0 ? `${command} --kernels wasm-simd` : `${command.slice(0, pipe)} --kernels wasm-simd${command.slice(pipe)}`;
}

let base: string;
let work: string;
let demo: { child: ChildProcess; done: Promise<number | null>; out: string; err: string } | null = null;

function runShell(commands: string[], cwd: string): { code: number | null; stdout: string; stderr: string } {
  const script = ['set -eo pipefail', ...commands].join('\n');
  const r = spawnSync('bash', ['-c', script], { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'grid-lstm-readme-'));
  work = join(base, 'grid-lstm');
  mkdirSync(work);
  for (const name of ['dist', 'build', 'docs', 'examples', 'node_modules', 'package.json']) symlinkSync(join(ROOT, name), join(work, name));
  writeFileSync(join(work, 'input.txt'), loadDefaultCorpus().slice(0, 150_000));
  // The demo, as `npm run demo` runs it from a clone, in the background.
  const out = join(base, 'demo.out');
  const err = join(base, 'demo.err');
  const fo = openSync(out, 'w');
  const fe = openSync(err, 'w');
  const child = spawn('npm', ['run', 'demo'], { cwd: work, stdio: ['ignore', fo, fe], env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
  closeSync(fo);
  closeSync(fe);
  const done = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  demo = { child, done, out, err };
});

afterAll(() => {
  if (demo && demo.child.exitCode === null) demo.child.kill('SIGKILL');
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('the README runs as shown', () => {
  // The section "Outgrowing a laptop" trains in PyTorch: test/pytorch-readme.test.ts runs its commands
  // where PyTorch is (always in CI), cut short as here.
  const torch = sectionOf(md, 'Outgrowing a laptop');
  const inTorchSection = (b: DocBlock) => b.open > torch.start && b.open < torch.end;
  const shellBlocks = blocks.map((b, k) => ({ b, k })).filter(({ b }) => SHELL.has(b.lang) && !inTorchSection(b));

  it('has commands, and every one is run or has a rule', () => {
    expect(shellBlocks.length).toBeGreaterThan(5);
    expect(blocks.filter((b) => SHELL.has(b.lang) && inTorchSection(b)).length).toBeGreaterThan(1);
    const skipped = shellBlocks.flatMap(({ b }) => commandsOf(b.code)).filter((c) => asRun(c) === null);
    expect(skipped).toEqual(['npm ci', 'npm run demo', 'npm run playground', 'npm run build:web']);
  });

  for (const { b, k } of shellBlocks) {
    const commands = commandsOf(b.code);
    const runs = commands.map(asRun).filter((c): c is string => c !== null);
    if (runs.length === 0) continue;
    it(`README.md:${b.line}: ${commands[0]}${commands.length > 1 ? ' …' : ''}`, () => {
      const r = runShell(runs, work);
      expect(r.code === 0 ? 0 : `exit ${r.code}\n${r.stderr}`).toBe(0);
      const shown = shownOutput(k);
      if (shown === null) return;
      const expected = normalise(shown.code);
      let printed = normalise(r.stdout);
      if (printed !== expected && runs.length === 1 && / sample /.test(runs[0])) {
        // Relaxed SIMD may round differently here than where the README was made.
        printed = normalise(runShell([withPlainSimd(runs[0])], work).stdout);
      }
      expect(`README.md:${shown.line}\n${printed}`).toBe(`README.md:${shown.line}\n${expected}`);
    });
  }

  it("the sample at the top is the 2 000-step grid's", () => {
    const quote = /primed with "The Congress ":\n\n((?:> .*\n)+)/.exec(md);
    expect(quote).not.toBeNull();
    const shown = quote![1].replace(/^> /gm, '').split(/\s+/).join(' ').trim();
    const command = 'node dist/cli.js sample docs/walkthrough/runs/grid-2x128-it2000.safetensors --primetext "The Congress " --length 240 --temperature 0.7 --seed 1 --quiet';
    let r = runShell([command], work);
    expect(r.code).toBe(0);
    if (r.stdout.split(/\s+/).join(' ').trim() !== shown) r = runShell([withPlainSimd(command)], work);
    expect(r.stdout.split(/\s+/).join(' ').trim()).toBe(shown);
    expect(md).toContain('(the grid after 2 000 steps) it wrote the sample at the top of this page');
  });

  it('the ts blocks run and print what is shown', () => {
    for (const file of [README, join(ROOT, 'docs', 'library.md')]) {
      const run = runDoc(file);
      const name = relative(ROOT, file);
      expect(run.stderr === '' ? run.code : `${run.code}: ${run.stderr}`).toBe(0);
      expect(run.results.length).toBeGreaterThan(0);
      for (const r of run.results) {
        if (r.block.output === null) continue;
        expect(`${name}:${r.block.line}\n${r.printed}`).toBe(`${name}:${r.block.line}\n${normalise(r.block.output.code)}`);
      }
    }
  });

  it('every line of its code blocks fits in 80 columns', () => {
    const wide = blocks.flatMap((b) =>
      b.code
        .split('\n')
        .map((l, i) => ({ line: b.open + 2 + i, width: [...l].length }))
        .filter((l) => l.width > 80),
    );
    expect(wide).toEqual([]);
  });

  it('npm run demo prints the sample and reaches the loss the README quotes', { timeout: 400_000 }, async () => {
    const code = await demo!.done;
    const out = readFileSync(demo!.out, 'utf8');
    expect(code === 0 ? 0 : `exit ${code}\n${readFileSync(demo!.err, 'utf8')}`).toBe(0);
    const quote = /the sample begins:\n\n((?:> .*\n)+)/.exec(md);
    expect(quote).not.toBeNull();
    const begins = quote![1].replace(/^> /gm, '').split(/\s+/).join(' ').trim().replace(/ …$/, '');
    expect(begins.length).toBeGreaterThan(100);
    expect(out.split(/\s+/).join(' ')).toContain(begins);
    // The loss, from the last checkpoint's history rather than the printed lines.
    const dir = join(work, 'cv', 'demo');
    const files = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
    const last = files.map((f) => loadCheckpoint(join(dir, f))).sort((a, b) => b.training!.iteration - a.training!.iteration)[0];
    const val = last.training!.history.val;
    const [iteration, loss] = val[val.length - 1];
    expect(iteration).toBe(300);
    const quoted = /reached a validation loss of ([\d.]+) nats\/char \(([\d.]+) bits\/char\)/.exec(md);
    expect(quoted).not.toBeNull();
    expect([loss.toFixed(3), (loss / Math.LN2).toFixed(2)]).toEqual([quoted![1], quoted![2]]);
  });

  // The README points to it in prose (`node examples/library.mjs`), not in a block run above.
  it('node examples/library.mjs trains, checkpoints, reloads and samples, as the README says', { timeout: 180_000 }, () => {
    expect(md).toContain('`node examples/library.mjs`');
    const r = spawnSync('node', ['examples/library.mjs'], { cwd: work, encoding: 'utf8', timeout: 170_000 });
    expect(r.status === 0 ? 0 : `exit ${r.status}: ${r.stderr}${r.error ?? ''}`).toBe(0);
    const out = r.stdout.split('\n');
    const steps = out.filter((l) => /^step \d+: loss \d+\.\d{3} nats\/char$/.test(l)).map((l) => Number(/^step (\d+)/.exec(l)![1]));
    expect(steps).toEqual([25, 50, 75, 100, 125, 150]);
    const at = out.findIndex((l) => l.startsWith('val loss '));
    const m = /^val loss (\d+\.\d{3}) nats\/char, checkpoint (cv\/example\/\S+\.safetensors)$/.exec(out[at] ?? '');
    expect(m, r.stdout).not.toBeNull();
    // The checkpoint it names is where it says (under the directory it ran in), at step 150.
    expect(loadCheckpoint(join(work, m![2])).training!.iteration).toBe(150);
    // Then the sample: the 300 characters drawn after the primetext, and console.log's newline.
    const sampled = out.slice(at + 1).join('\n');
    expect(sampled.endsWith('\n')).toBe(true);
    expect([...sampled.slice(0, -1)]).toHaveLength(300);
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

describe('the README and the docs pages link to what exists', () => {
  const docsDir = join(ROOT, 'docs');
  const pages = [
    README,
    ...readdirSync(docsDir)
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(docsDir, f)),
    join(ROOT, 'experiments/depth/README.md'),
    join(ROOT, 'python/README.md'),
  ];
  for (const page of pages) {
    it(relative(ROOT, page), () => {
      const text = readFileSync(page, 'utf8');
      // Links outside code: drop fenced blocks and inline code first.
      const prose = text.replace(/^(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\s*$/gm, '').replace(/`[^`\n]*`/g, '');
      const broken: string[] = [];
      for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue;
        const [file, anchor] = target.split('#');
        const path = file === '' ? page : resolve(dirname(page), file);
        if (!existsSync(path)) {
          broken.push(`${target}: no such file`);
          continue;
        }
        if (anchor && path.endsWith('.md')) {
          const headings = readFileSync(path, 'utf8')
            .replace(/^(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\s*$/gm, '')
            .split('\n')
            .filter((l) => /^#{1,6} /.test(l))
            .map((l) => slug(l.replace(/^#+ /, '')));
          if (!headings.includes(anchor)) broken.push(`${target}: no heading #${anchor}`);
        }
      }
      expect(broken).toEqual([]);
    });
  }
});
