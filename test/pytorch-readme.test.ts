/**
 * The README's section "Outgrowing a laptop" runs as shown, as test/readme.test.ts runs the other
 * sections: train with the CLI, continue the run in PyTorch under torchrun, bring it back to
 * sample, plot and visualise. Cut short as there: `train` with `--max-steps 2`; the torchrun with
 * 2 processes on this CPU and `--max-steps 4`; on a text of 8 batches of 50×50.
 * Needs PyTorch (test/helpers/torch.ts): skipped with "skipped: PyTorch not installed" without it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { loadDefaultCorpus } from '../src/train/data.js';
import { ROOT, commandsOf, fencedBlocks, sectionOf } from './helpers/docblocks.js';
import { PY_ENV, python, torchTests, torchrunOptions } from './helpers/torch.js';

/** What runs for a command of that section: training cut short, torchrun with 2 processes on CPU. */
function asRunHere(command: string, launcher: string[]): string {
  if (/[|;&<>]/.test(command)) throw new Error(`a command of "Outgrowing a laptop" must be a plain command: ${command}`);
  if (/^node dist\/cli\.js train\b/.test(command)) return `${command} --max-steps 2`;
  const torchrun = /^torchrun --nproc_per_node \d+ (python\/train\.py .*)$/.exec(command);
  if (torchrun) {
    // (python/torchrun.py: torchrun as Debian's torch 1.13 needs it on Python 3.11.)
    return `"${python}" python/torchrun.py ${launcher.join(' ')} ${torchrun[1]} --max-steps 4`;
  }
  if (/^(torchrun|python)/.test(command)) throw new Error(`give "${command}" a rule in test/pytorch.test.ts`);
  return command;
}

describe.skipIf(!torchTests)('the README\'s round trip to PyTorch and back ("Outgrowing a laptop")', () => {
  const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = sectionOf(md, 'Outgrowing a laptop');
  const blocks = fencedBlocks(md).filter((b) => b.lang === 'sh' && b.open > section.start && b.open < section.end);
  const work = join(mkdtempSync(join(tmpdir(), 'grid-lstm-roundtrip-')), 'grid-lstm');
  beforeAll(() => {
    mkdirSync(work);
    for (const name of ['dist', 'build', 'node_modules', 'package.json', 'python']) symlinkSync(join(ROOT, name), join(work, name));
    // A text of 8 batches of 50×50 (7 train, 1 validation): the run's shape, quickly.
    writeFileSync(join(work, 'input.txt'), loadDefaultCorpus().slice(0, 20_001));
  });
  afterAll(() => rmSync(dirname(work), { recursive: true, force: true }));

  it('has the three steps: train here, continue under torchrun, use the result here', () => {
    const all = blocks.flatMap((b) => commandsOf(b.code));
    expect(all.some((c) => c.startsWith('node dist/cli.js train'))).toBe(true);
    expect(all.some((c) => c.startsWith('torchrun '))).toBe(true);
    expect(all.some((c) => c.startsWith('node dist/cli.js sample'))).toBe(true);
  });

  for (const b of blocks) {
    const commands = commandsOf(b.code);
    it(`README.md:${b.line}: ${commands[0]}${commands.length > 1 ? ' …' : ''}`, async () => {
      const launcher = await torchrunOptions();
      for (const command of commands) {
        const r = spawnSync('bash', ['-c', `set -eo pipefail\n${asRunHere(command, launcher)}`], { cwd: work, env: PY_ENV, encoding: 'utf8', timeout: 240_000 });
        expect(r.status === 0 ? 0 : `${command}: exit ${r.status}\n${r.stderr}`).toBe(0);
      }
    });
  }

  it('the run came back: 2 steps on the laptop, 2 under torchrun, its whole history in the checkpoint', () => {
    const dir = join(work, 'cv', 'gpu');
    const files = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
    const last = files.map((f) => loadCheckpoint(join(dir, f))).sort((x, y) => y.training!.iteration - x.training!.iteration)[0];
    expect(last.training!.iteration).toBe(4);
    expect(last.training!.history.train.map(([it]) => it)).toEqual([1, 2, 3, 4]);
    expect(last.training!.history.val.map(([it]) => it)).toEqual([2, 4]);
    expect(last.model.config.dropout).toBe(0.25);
    expect(existsSync(join(work, 'gpu.html'))).toBe(true);
  });
});
