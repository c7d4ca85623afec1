/**
 * The Node platform of the Trainer (src/train/train.ts) in-process: the checkpoint directory
 * made one level at a time and probed before training, the file store, the platform's paths.
 * (The CLI's messages for the same cases: test/reliability.test.ts, which mutation runs leave
 * out for its CLI runs; these reach src/train/train.ts in them.)
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  CheckpointDirError,
  DEFAULT_TRAIN_OPTIONS,
  FileCheckpointStore,
  LOG_HEADER,
  LossLog,
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

describe('the loss log and the probe: files closed, other runs\' logs moved aside, causes kept', () => {
  const fds = () => (process.platform === 'linux' ? readdirSync('/proc/self/fd').length : 0);

  it('LossLog: writes the lines, appends until closed, closes its file once', () => {
    const path = join(dir, 'closing.log.csv');
    const warnings: string[] = [];
    const before = fds();
    const log = new LossLog(path, (m) => warnings.push(m));
    log.start([LOG_HEADER, '1,0.5,2,,0.1']);
    log.append('2,1,1.5,,0.1');
    log.close();
    log.append('3,1.5,1,,0.1'); // after close: nothing
    log.close();
    expect(readFileSync(path, 'utf8')).toBe(`${LOG_HEADER}\n1,0.5,2,,0.1\n2,1,1.5,,0.1\n`);
    expect(fds()).toBe(before);
    expect(warnings).toEqual([]);
  });

  it('a log that is only this run\'s header, or a header cut short, is this run\'s: rewritten in place', () => {
    for (const old of [`${LOG_HEADER}\n`, 'iteration,epoch']) {
      const path = join(dir, `own-${old.length}.log.csv`);
      writeFileSync(path, old);
      const warnings: string[] = [];
      const before = fds();
      const log = new LossLog(path, (m) => warnings.push(m));
      log.start([LOG_HEADER]);
      log.close();
      expect(warnings).toEqual([]);
      expect(readFileSync(path, 'utf8')).toBe(`${LOG_HEADER}\n`);
      expect(fds()).toBe(before);
    }
  });

  it('another run\'s log of another name is moved to <name>.<N>', () => {
    const path = join(dir, 'other.txt');
    writeFileSync(path, `${LOG_HEADER}\n1,0.5,9,,0.1\n`);
    writeFileSync(`${path}.1`, 'taken');
    const warnings: string[] = [];
    new LossLog(path, (m) => warnings.push(m)).start([LOG_HEADER]);
    expect(warnings).toEqual([`moved the loss log of another run to ${path}.2; use --savefile to keep runs' logs apart`]);
    expect(readFileSync(`${path}.2`, 'utf8')).toBe(`${LOG_HEADER}\n1,0.5,9,,0.1\n`);
  });

  it('a log that cannot be read or written: one warning with the cause, and no file left open', () => {
    const path = join(dir, 'a-log-dir.log.csv');
    mkdirSync(path);
    const warnings: string[] = [];
    const before = fds();
    const log = new LossLog(path, (m) => warnings.push(m));
    log.start([LOG_HEADER, '1,0.5,2,,0.1']);
    log.append('2,1,1.5,,0.1');
    expect(warnings).toEqual([`cannot write the loss log ${path}: illegal operation on a directory (EISDIR); training goes on without it`]);
    expect(fds()).toBe(before);
    const gone = join(dir, 'no-such-dir', 'x.log.csv');
    new LossLog(gone, (m) => warnings.push(m)).start([LOG_HEADER]);
    expect(warnings[1]).toMatch(/^cannot write the loss log .*no-such-dir\/x\.log\.csv: no such file or directory \(ENOENT\); training goes on without it$/);
  });

  it.runIf(process.platform === 'linux')('a probe the system refuses: the system\'s reason, not the path again', () => {
    expect(() => prepareCheckpointDir('/proc/self')).toThrow(/^cannot write checkpoints to \/proc\/self: [a-z ]+ \(E[A-Z]+\); choose another --checkpoint-dir$/);
  });

  it('NODE_PLATFORM.warn is a process warning', () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      NODE_PLATFORM.warn('careful');
      expect(spy).toHaveBeenCalledWith('careful');
    } finally {
      spy.mockRestore();
    }
  });
});
