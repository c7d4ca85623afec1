/**
 * The Node platform of the Trainer (src/train/train.ts) in-process: the checkpoint directory
 * made one level at a time and probed before training, the file store, the platform's paths.
 * (The CLI's messages for the same cases: test/reliability.test.ts, which mutation runs leave
 * out for its CLI runs; these reach src/train/train.ts in them.)
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CheckpointDirError,
  DEFAULT_TRAIN_OPTIONS,
  FileCheckpointStore,
  NODE_PLATFORM,
  checkTrainingFits,
  makeDirectories,
  prepareCheckpointDir,
} from '../src/train/train.js';

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-ckdir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'a-file');
writeFileSync(file, 'not a directory');

describe('makeDirectories', () => {
  it('makes every missing level, and leaves an existing directory alone', () => {
    const target = join(dir, 'one', 'two', 'three');
    makeDirectories(target);
    expect(statSync(target).isDirectory()).toBe(true);
    writeFileSync(join(target, 'kept'), 'x');
    makeDirectories(target);
    makeDirectories(join(dir, 'one'));
    expect(readdirSync(target)).toEqual(['kept']);
  });

  it('one line naming the level that cannot be made', () => {
    expect(() => makeDirectories(file)).toThrow(/^it exists and is not a directory$/);
    expect(() => makeDirectories(join(file, 'sub', 'cv'))).toThrow(/^not a directory \(ENOTDIR\)$/);
    if (process.platform === 'linux') {
      expect(() => makeDirectories('/proc/x/cv')).toThrow(/^cannot create \/proc\/x: no such file or directory \(ENOENT\)$/);
      expect(() => makeDirectories('/proc/self/cv')).toThrow(/^cannot create it: /);
      expect(existsSync('/proc/x')).toBe(false);
    }
  });
});

describe('prepareCheckpointDir', () => {
  it('makes the directory, writes the probe and removes it', () => {
    const cv = join(dir, 'cv', 'run');
    prepareCheckpointDir(cv, new Uint8Array(1000));
    prepareCheckpointDir(cv);
    expect(statSync(cv).isDirectory()).toBe(true);
    expect(readdirSync(cv)).toEqual([]);
  });

  it('a directory that cannot be used: CheckpointDirError naming it, the cause and the fix', () => {
    const bad = join(file, 'cv');
    let err: unknown;
    try {
      prepareCheckpointDir(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointDirError);
    expect((err as Error).name).toBe('CheckpointDirError');
    expect((err as Error).message).toBe(`cannot write checkpoints to ${bad}: not a directory (ENOTDIR); choose another --checkpoint-dir`);
    expect(() => prepareCheckpointDir(file)).toThrow(`cannot write checkpoints to ${file}: it exists and is not a directory; choose another --checkpoint-dir`);
  });

  it('a directory where the probe cannot be written: the write\'s cause', () => {
    // A directory where the probe's name is taken by a directory that is not empty.
    const cv = join(dir, 'probe-taken');
    mkdirSync(join(cv, `.probe-${process.pid}`, 'inside'), { recursive: true });
    expect(() => prepareCheckpointDir(cv)).toThrow(`cannot write checkpoints to ${cv}: cannot write ${join(cv, `.probe-${process.pid}`)}: it is an existing directory; choose another --checkpoint-dir`);
    expect(existsSync(join(cv, `.probe-${process.pid}`, 'inside'))).toBe(true);
  });
});

describe('FileCheckpointStore and NODE_PLATFORM', () => {
  it('writes, reads, tells what exists, removes (false when there was nothing), and says why it cannot', () => {
    const store = new FileCheckpointStore();
    const p = join(dir, 'store.bin');
    store.write(p, Uint8Array.from([1, 2, 3]));
    expect(Array.from(store.read(p))).toEqual([1, 2, 3]);
    expect(store.exists(p)).toBe(true);
    expect(store.remove(p)).toBe(true);
    expect(store.exists(p)).toBe(false);
    expect(store.remove(p)).toBe(false);
    const sub = join(dir, 'a-dir');
    mkdirSync(sub);
    expect(() => store.remove(sub)).toThrow(/^[a-z].* \(E[A-Z]+\)$/); // a directory is not unlinked
    expect(existsSync(sub)).toBe(true);
  });

  it('paths: joined and compared as the OS resolves them', () => {
    expect(NODE_PLATFORM.join('cv', 'lm_x.safetensors')).toBe(join('cv', 'lm_x.safetensors'));
    expect(NODE_PLATFORM.samePlace('cv', './cv/')).toBe(true);
    expect(NODE_PLATFORM.samePlace('cv', 'cv2')).toBe(false);
    expect(NODE_PLATFORM.store()).toBeInstanceOf(FileCheckpointStore);
    expect(NODE_PLATFORM.totalMemory()).toBeGreaterThan(0);
  });

  it('checkTrainingFits: the given memory, else the machine\'s', () => {
    const o = { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 128 };
    expect(() => checkTrainingFits(o, 65, 1000)).not.toThrow();
    expect(() => checkTrainingFits(o, 65, 1000, undefined, 1e6)).toThrow(/needs about \d+ MB of memory but this machine has 1 MB;/);
  });
});
