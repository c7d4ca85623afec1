/**
 * What readTextFile and readCorpus (src/train/data.ts) do on what the operating system rarely
 * does to them: each system error of opening or reading a file (permission denied cannot be made
 * when the tests run as root, nor a file over 2 GiB, nor an I/O error), reads that return fewer
 * bytes than asked, and a file that shrinks while it is read. node:fs is replaced here by one
 * that does those things for the paths that ask for them; every other call goes to the real
 * node:fs, and readSync's calls are recorded.
 *   /errno/<CODE>/…: stat and open fail with that code.
 *   a name holding `.short.`: each read returns at most 3 bytes.
 *   a name holding `.shrinks.`: the second read finds the end of the file.
 *   a name holding `.eio.`: every read fails with EIO.
 *   a name holding `.changes.`: the second pass (a read at offset 0 again) reads the file named
 *   the same plus `.then` instead, as if it had been rewritten between the passes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

/** readSync's calls on files opened through the mock: the buffer's size, and length and position asked. */
const reads: { bufSize: number; length: number; position: number }[] = [];

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const fail = (path: unknown) => {
    const m = /^\/errno\/([A-Z_]+)\//.exec(String(path));
    if (m) throw Object.assign(new Error(`${m[1]}: made up by the test`), { code: m[1] });
  };
  const opened = new Map<number, string>();
  const passes = new Map<number, number>();
  return {
    ...fs,
    statSync: ((path: string, ...rest: unknown[]) => (fail(path), (fs.statSync as Function)(path, ...rest))) as typeof fs.statSync,
    openSync: ((path: string, ...rest: unknown[]) => {
      fail(path);
      const fd = (fs.openSync as Function)(path, ...rest) as number;
      opened.set(fd, String(path));
      passes.delete(fd); // (numbers of closed files are given again)
      return fd;
    }) as typeof fs.openSync,
    readSync: ((fd: number, buf: Uint8Array, offset: number, length: number, position: number) => {
      const path = opened.get(fd) ?? '';
      reads.push({ bufSize: buf.length, length, position });
      if (path.includes('.shrinks.') && reads.length > 1) return 0;
      if (path.includes('.eio.')) throw Object.assign(new Error('EIO: made up by the test'), { code: 'EIO' });
      if (position === 0) passes.set(fd, (passes.get(fd) ?? 0) + 1);
      if (path.includes('.changes.') && passes.get(fd)! > 1) {
        const then = fs.openSync(`${path}.then`, 'r');
        try {
          return fs.readSync(then, buf, offset, length, position);
        } finally {
          fs.closeSync(then);
        }
      }
      return fs.readSync(fd, buf, offset, path.includes('.short.') ? Math.min(length, 3) : length, position);
    }) as typeof fs.readSync,
  };
});

const { decode, readCorpus, readTextFile } = await import('../src/train/data.js');

const dir = mkdtempSync(join(tmpdir(), 'grid-lstm-file-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a system error of reading a file is one line naming the file and the fix', () => {
  const cases: [code: string, message: string][] = [
    ['ENOENT', 'no such file; pass an existing UTF-8 text file'],
    ['EISDIR', 'is a directory; pass a text file'],
    ['ENOTDIR', 'a part of the path is not a directory; check the path'],
    ['EACCES', "permission denied; check the file's permissions"],
    ['EPERM', "permission denied; check the file's permissions"],
    ['ERR_FS_FILE_TOO_LARGE', 'the file is too large to read at once'],
    ['EIO', 'cannot read (EIO); check the path and its permissions'],
  ];
  for (const [code, message] of cases) {
    it(code, () => {
      const path = `/errno/${code}/a.txt`;
      expect(() => readTextFile(path)).toThrow(new Error(`--data ${path}: ${message}`));
      expect(() => readCorpus(path, { label: '--prime-file' })).toThrow(new Error(`--prime-file ${path}: ${message}`));
    });
  }
});

describe('readCorpus reads a file in pieces of a fixed buffer', () => {
  const text = 'ab€😀c'.repeat(10); // 100 bytes: 'ab€😀c' is 2 + 3 + 4 + 1
  const file = (name: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('asks for chunkSize bytes at a time, front to back, into one buffer of chunkSize + 4 bytes', () => {
    const p = file('plain.txt');
    for (const [chunkSize, bufSize] of [
      [16, 20],
      [1, 8], // at least 4 bytes are read at a time
      [1 << 20, 104], // never more than the file
    ] as const) {
      reads.length = 0;
      const got = readCorpus(p, { chunkSize });
      expect(decode(got.ids, got.vocab)).toBe(text);
      // Two passes over the file; each read starts where the last one ended.
      const pass = reads.slice(0, reads.length / 2);
      expect(reads.slice(reads.length / 2)).toEqual(pass);
      expect(pass.every((r) => r.bufSize === bufSize)).toBe(true);
      const room = bufSize - 4;
      expect(pass.map((r) => r.position)).toEqual(Array.from({ length: Math.ceil(100 / room) }, (_, i) => i * room));
      expect(pass.map((r) => r.length)).toEqual(pass.map((r) => Math.min(room, 100 - r.position)));
    }
  });

  it('gives the same ids when each read returns only 3 bytes', () => {
    const p = file('a.short.txt');
    for (const chunkSize of [4, 7, 16, 1 << 20]) {
      const got = readCorpus(p, { chunkSize });
      expect(decode(got.ids, got.vocab), `reads of ${chunkSize}`).toBe(text);
    }
  });

  it('says so when the file holds other characters at the second pass', () => {
    // 'aaé' (61 61 C3 A9) then 'éé' (C3 A9 C3 A9): the same size and characters, one fewer;
    // 'éé' then 'aaé': one more.
    for (const [before, after] of [
      ['aaé', 'éé'],
      ['éé', 'aaé'],
    ]) {
      const p = join(dir, `${before}.changes.txt`);
      writeFileSync(p, before);
      writeFileSync(`${p}.then`, after);
      expect(() => readCorpus(p, { chunkSize: 4 }), `${before} then ${after}`).toThrow(
        new Error(`--data ${p}: the file changed while it was being read; try again when nothing is writing to it`),
      );
    }
  });

  it('latin1: says so when the file holds a byte at the second pass that it did not at the first', () => {
    const p = join(dir, 'latin1.changes.txt');
    writeFileSync(p, 'aab');
    writeFileSync(`${p}.then`, 'aac');
    expect(() => readCorpus(p, { encoding: 'latin1', chunkSize: 4 })).toThrow(
      new Error(`--data ${p}: the file changed while it was being read; try again when nothing is writing to it`),
    );
  });

  it('names a read that fails', () => {
    const p = file('a.eio.txt');
    expect(() => readCorpus(p, { chunkSize: 16 })).toThrow(new Error(`--data ${p}: cannot read (EIO); check the path and its permissions`));
  });

  it('says so when the file ends before the size it had when opened', () => {
    const p = file('a.shrinks.txt');
    reads.length = 0;
    expect(() => readCorpus(p, { chunkSize: 16 })).toThrow(
      new Error(`--data ${p}: the file changed while it was being read; try again when nothing is writing to it`),
    );
  });
});
