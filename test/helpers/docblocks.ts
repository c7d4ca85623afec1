/**
 * Runs the code of a Markdown document as its reader would, and compares what it prints with
 * what the document shows.
 *
 * Every fenced block whose language is `ts` or `js` runs. The blocks of one document run in
 * order as one program (like the cells of a notebook: a name defined in one block is seen by the
 * next ones), as an ES module that imports the package by its name (`from 'grid-lstm'`), from the
 * repository's root, with tsx. A `text` block that follows a code block (nothing but blank lines
 * between them) is that block's expected output: what the block prints must equal it, line for
 * line (trailing spaces ignored).
 *
 * From the command line (after `npm run build`):
 *   node --import tsx test/helpers/docblocks.ts docs/walkthrough/01-one-cell.md           prints each block's output
 *   node --import tsx test/helpers/docblocks.ts docs/walkthrough/01-one-cell.md --write   also rewrites the text blocks
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface DocBlock {
  /** Language of the fence (ts, js, text, sh, …). */
  lang: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** Line indices (0-based) of the opening and closing fences. */
  open: number;
  close: number;
}

export interface RunnableBlock extends DocBlock {
  /** The text block that shows its output, if there is one. */
  output: DocBlock | null;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/;

/** Every fenced block of a Markdown text, in order. */
export function fencedBlocks(md: string): DocBlock[] {
  const lines = md.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = FENCE.exec(lines[i]);
    if (!m) continue;
    const fence = m[2];
    let j = i + 1;
    while (j < lines.length && !(lines[j].trim().startsWith(fence) && lines[j].trim().replace(/[`~]/g, '') === '')) j++;
    if (j >= lines.length) throw new Error(`line ${i + 1}: a code fence that is never closed`);
    blocks.push({ lang: m[3].toLowerCase(), code: lines.slice(i + 1, j).join('\n'), line: i + 1, open: i, close: j });
    i = j;
  }
  return blocks;
}

/** The commands of a shell block: continuation lines (ending in `\`) joined, blank lines dropped. */
export function commandsOf(code: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const line of code.split('\n')) {
    if (/\\\s*$/.test(line)) {
      cur += line.replace(/\\\s*$/, '').trimEnd() + ' ';
      continue;
    }
    cur += cur === '' ? line : line.trim();
    if (cur.trim() !== '') out.push(cur.trim());
    cur = '';
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

/** The 0-based line range [start, end) of the `## heading` section of a Markdown text (to the next `## `). */
export function sectionOf(md: string, heading: string): { start: number; end: number } {
  const lines = md.split('\n');
  const start = lines.indexOf(`## ${heading}`);
  if (start < 0) throw new Error(`no "## ${heading}" section`);
  const next = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  return { start, end: next < 0 ? lines.length : next };
}

/** The blocks that run (ts, js), each with the text block that shows its output. */
export function runnableBlocks(md: string): RunnableBlock[] {
  const lines = md.split('\n');
  const all = fencedBlocks(md);
  const out: RunnableBlock[] = [];
  all.forEach((b, k) => {
    if (b.lang !== 'ts' && b.lang !== 'js') return;
    const next = all[k + 1];
    const onlyBlank = next !== undefined && lines.slice(b.close + 1, next.open).every((l) => l.trim() === '');
    out.push({ ...b, output: next && next.lang === 'text' && onlyBlank ? next : null });
  });
  return out;
}

export interface BlockResult {
  block: RunnableBlock;
  /** What the block printed (console.log and process.stdout), trailing spaces trimmed. */
  printed: string;
}

export interface DocRun {
  /** Per runnable block, in order; shorter than the list if the program stopped early. */
  results: BlockResult[];
  /** The program's exit code and what it wrote to stderr. */
  code: number | null;
  stderr: string;
}

const MARK = '\u241eDOCBLOCK';

/** Trailing spaces of every line and trailing blank lines removed. */
export function normalise(s: string): string {
  return s
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .replace(/\n+$/, '');
}

/** Runs the blocks of the Markdown file `file` as one program and splits its output per block. */
export function runDoc(file: string, options: { timeoutMs?: number } = {}): DocRun {
  const md = readFileSync(file, 'utf8');
  const blocks = runnableBlocks(md);
  const dir = join(ROOT, 'test-output', 'docblocks');
  mkdirSync(dir, { recursive: true });
  const program = join(dir, basename(file).replace(/\.md$/, '') + '.mts');
  const rel = relative(ROOT, file);
  const parts = blocks.map((b, k) => `process.stdout.write(${JSON.stringify(`${MARK} ${k}\n`)});\n// ${rel}:${b.line}\n${b.code}\n`);
  writeFileSync(program, parts.join('\n'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', program], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 300_000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  const results: BlockResult[] = [];
  const chunks = (r.stdout ?? '').split(new RegExp(`${MARK} (\\d+)\\n`));
  // chunks: [before, k0, out0, k1, out1, ...]
  for (let j = 1; j < chunks.length; j += 2) {
    const k = Number(chunks[j]);
    results.push({ block: blocks[k], printed: normalise(chunks[j + 1] ?? '') });
  }
  return { results, code: r.status, stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

/** The Markdown with each shown output replaced by what its block printed. */
export function withOutputs(md: string, run: DocRun): string {
  const lines = md.split('\n');
  const edits = run.results.filter((r) => r.block.output !== null).reverse();
  for (const r of edits) {
    const o = r.block.output!;
    lines.splice(o.open + 1, o.close - o.open - 1, ...(r.printed === '' ? [] : r.printed.split('\n')));
  }
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = resolve(process.argv[2] ?? '');
  const run = runDoc(file);
  for (const r of run.results) {
    console.log(`--- block at line ${r.block.line}${r.block.output ? ' (output shown)' : ''}`);
    if (r.printed) console.log(r.printed);
  }
  if (run.code !== 0) {
    console.error(run.stderr);
    process.exit(1);
  }
  if (process.argv.includes('--write')) {
    writeFileSync(file, withOutputs(readFileSync(file, 'utf8'), run));
    console.log(`rewrote the shown outputs of ${relative(ROOT, file)}`);
  }
}
