import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  MAX_HEADER_LENGTH,
  parseSafetensors,
  readSafetensorsFile,
  SafetensorsError,
  writeFileAtomic,
  writeSafetensors,
  type TensorInput,
} from '../src/train/safetensors.js';
import { runs } from './helpers/arbitraries.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const DTYPE_SIZES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

/** Assembles a file from a header text (unpadded) and a data section; the length field may be overridden. */
function assemble(headerText: string, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const header = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

/** A file from a header object (serialised with JSON.stringify) and `dataLength` zero bytes. */
function fileFrom(header: unknown, dataLength = 0): Uint8Array {
  return assemble(JSON.stringify(header), new Uint8Array(dataLength));
}

/** The raw bytes of a typed array. */
function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Expects `fn` to throw a SafetensorsError whose message matches `pattern`. */
function expectSafetensorsError(fn: () => unknown, pattern: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a SafetensorsError').toBeInstanceOf(SafetensorsError);
  const message = (thrown as Error).message;
  expect(message).toMatch(pattern);
  expect(message).not.toContain('\n');
}

/** Product of a shape. */
function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Checks what a successful parse must guarantee: every tensor's data length matches its shape
 * and dtype, and the total allocated for tensor data is at most the file size.
 */
function checkParsed(result: ReturnType<typeof parseSafetensors>, fileSize: number): void {
  let total = 0;
  for (const [name, t] of result.tensors) {
    expect(t.name).toBe(name);
    const size = DTYPE_SIZES[t.dtype];
    expect(size).toBeDefined();
    for (const d of t.shape) expect(Number.isSafeInteger(d) && d >= 0).toBe(true);
    const count = product(t.shape);
    if (t.dtype === 'F32') expect(t.data).toBeInstanceOf(Float32Array);
    else if (t.dtype === 'F64') expect(t.data).toBeInstanceOf(Float64Array);
    else expect(t.data).toBeInstanceOf(Uint8Array);
    expect(t.data.byteLength).toBe(count * size!);
    total += t.data.byteLength;
  }
  expect(total).toBeLessThanOrEqual(fileSize);
  for (const value of Object.values(result.metadata)) expect(typeof value).toBe('string');
}

/** Runs the parser on a corrupted file: it must return a consistent result or throw SafetensorsError. */
function parseMustBeSafe(bytes: Uint8Array): void {
  let result: ReturnType<typeof parseSafetensors>;
  try {
    result = parseSafetensors(bytes, 'fuzz.safetensors');
  } catch (err) {
    if (!(err instanceof SafetensorsError)) throw err;
    expect(err.message.startsWith('fuzz.safetensors: ')).toBe(true);
    expect(err.message).not.toContain('\n');
    return;
  }
  checkParsed(result, bytes.length);
}

// ---------------------------------------------------------------------------------------------
// Round trip and layout
// ---------------------------------------------------------------------------------------------

describe('writeSafetensors / parseSafetensors round trip', () => {
  it('preserves several tensors bit for bit, including NaN payloads and -0, plus metadata', () => {
    const special = new Float32Array(6);
    const specialBits = new Uint32Array(special.buffer);
    specialBits.set([0x7fc00001, 0xffa00123, 0x80000000, 0x7f800000, 0x00000001, 0x3f800000]); // quiet/signalling NaN, -0, +inf, subnormal, 1
    const f64 = new Float64Array([Math.PI, -0, Number.MIN_VALUE, -Infinity, 1e300, NaN]);
    new BigUint64Array(f64.buffer)[5] = 0x7ff8_dead_beef_0001n; // NaN with a payload
    const matrix = Float32Array.from({ length: 12 }, (_, i) => i * 0.25 - 1);
    const tensors: TensorInput[] = [
      { name: 'special', shape: [2, 3], data: special },
      { name: 'f64', shape: [6], data: f64 },
      { name: 'scalar', shape: [], data: new Float32Array([42.5]) },
      { name: 'empty', shape: [0, 3], data: new Float32Array(0) },
      { name: 'matrix', shape: [3, 4, 1], data: matrix },
      { name: '10', shape: [1], data: new Float64Array([10]) },
      { name: '2', shape: [1], data: new Float64Array([2]) },
      { name: 'ünïcødé ✓ 🚀', shape: [1], data: new Float32Array([-1]) },
    ];
    const metadata = { format: 'pt', step: '1234', note: 'émoji 🚀 "quoted"\nnewline', __proto__x: 'y' };

    const bytes = writeSafetensors(tensors, metadata);
    const { tensors: read, metadata: readMeta } = parseSafetensors(bytes);

    expect(readMeta).toEqual(metadata);
    // Tensors come back in the order written (the data order), even for integer-like names.
    expect([...read.keys()]).toEqual(tensors.map((t) => t.name));
    for (const t of tensors) {
      const got = read.get(t.name)!;
      expect(got.shape).toEqual(t.shape);
      expect(got.dtype).toBe(t.data instanceof Float32Array ? 'F32' : 'F64');
      expect(got.data.constructor).toBe(t.data.constructor);
      expect(Array.from(bytesOf(got.data))).toEqual(Array.from(bytesOf(t.data)));
    }
    expect(Array.from(new Uint32Array(read.get('special')!.data.buffer))).toEqual(Array.from(specialBits));
    expect(new BigUint64Array(read.get('f64')!.data.buffer)[5]).toBe(0x7ff8_dead_beef_0001n);
  });

  it('returns fresh arrays that do not alias the input', () => {
    const bytes = writeSafetensors([{ name: 'w', shape: [2], data: new Float32Array([1, 2]) }]);
    const w = parseSafetensors(bytes).tensors.get('w')!.data as Float32Array;
    w[0] = 99;
    expect((parseSafetensors(bytes).tensors.get('w')!.data as Float32Array)[0]).toBe(1);
    expect(w.byteOffset).toBe(0);
  });

  it('reads from an unaligned view into a larger buffer (e.g. a pooled Buffer)', () => {
    const file = writeSafetensors([
      { name: 'a', shape: [3], data: new Float32Array([1, 2, 3]) },
      { name: 'b', shape: [2], data: new Float64Array([4, 5]) },
    ]);
    const big = new Uint8Array(file.length + 10);
    big.set(file, 3);
    const view = big.subarray(3, 3 + file.length);
    const read = parseSafetensors(view);
    expect(Array.from(read.tensors.get('a')!.data)).toEqual([1, 2, 3]);
    expect(Array.from(read.tensors.get('b')!.data)).toEqual([4, 5]);
  });

  it('handles no tensors and no metadata', () => {
    const bytes = writeSafetensors([]);
    expect(new TextDecoder().decode(bytes.subarray(8))).toBe('{}      ');
    const read = parseSafetensors(bytes);
    expect(read.tensors.size).toBe(0);
    expect(read.metadata).toEqual({});
  });

  it('keeps a metadata key named __proto__ as an ordinary entry', () => {
    const header = '{"__metadata__":{"__proto__":"x","a":"b"}}';
    const read = parseSafetensors(assemble(header));
    expect(Object.keys(read.metadata)).toEqual(['__proto__', 'a']);
    expect(read.metadata['__proto__']).toBe('x');
    expect(Object.getPrototypeOf(read.metadata)).toBe(Object.prototype);
  });

  it('property: random F32/F64 tensors and metadata survive a round trip bit for bit', () => {
    const arbTensor = fc.record({
      name: fc.string({ minLength: 1, maxLength: 8 }).filter((s) => s !== '__metadata__' && !/\p{Surrogate}/u.test(s)),
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
      f64: fc.boolean(),
      bits: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 8 }),
    });
    const arbMeta = fc.option(
      fc.dictionary(
        fc.string().filter((s) => !/\p{Surrogate}/u.test(s) && s !== '__proto__'),
        fc.string().filter((s) => !/\p{Surrogate}/u.test(s)),
      ),
      { nil: undefined },
    );
    fc.assert(
      fc.property(fc.uniqueArray(arbTensor, { selector: (t) => t.name, maxLength: 5 }), arbMeta, (specs, metadata) => {
        const tensors: TensorInput[] = specs.map((s) => {
          const n = product(s.shape);
          const words = new Uint32Array(s.f64 ? 2 * n : n).map((_, i) => s.bits[i % s.bits.length]! ^ i);
          return {
            name: s.name,
            shape: s.shape,
            data: s.f64 ? new Float64Array(words.buffer) : new Float32Array(words.buffer),
          };
        });
        const bytes = writeSafetensors(tensors, metadata);
        const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
        expect((8 + headerLength) % 8).toBe(0);
        const read = parseSafetensors(bytes);
        expect(read.metadata).toEqual(metadata ?? {});
        expect([...read.tensors.keys()]).toEqual(tensors.map((t) => t.name));
        for (const t of tensors) {
          const got = read.tensors.get(t.name)!;
          expect(got.shape).toEqual(t.shape);
          expect(Array.from(bytesOf(got.data))).toEqual(Array.from(bytesOf(t.data)));
        }
      }),
      { numRuns: runs(300) },
    );
  });
});

describe('file layout', () => {
  it('writes one F32 tensor "a" = [1, 2] exactly as computed by hand', () => {
    const bytes = writeSafetensors([{ name: 'a', shape: [2], data: new Float32Array([1, 2]) }]);
    // Header JSON is 54 bytes; padded with 2 spaces to N = 56 so that 8 + 56 = 64 is a multiple of 8.
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expect(json.length).toBe(54);
    const expected = [
      56, 0, 0, 0, 0, 0, 0, 0, // header length N = 56, u64 little-endian
      ...Array.from(json, (c) => c.charCodeAt(0)),
      0x20, 0x20, // padding
      0x00, 0x00, 0x80, 0x3f, // 1.0f little-endian
      0x00, 0x00, 0x00, 0x40, // 2.0f little-endian
    ];
    expect(expected.length).toBe(72);
    expect(Array.from(bytes)).toEqual(expected);
  });

  it('puts metadata first, tensors contiguously in the given order, and aligns the data section', () => {
    const bytes = writeSafetensors(
      [
        { name: 'x', shape: [1], data: new Float64Array([1]) },
        { name: 'y', shape: [3], data: new Float32Array([1, 2, 3]) },
        { name: 'z', shape: [2], data: new Float64Array([5, 6]) },
      ],
      { k: 'v' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText).toBe(
      '{"__metadata__":{"k":"v"},' +
        '"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},' +
        '"y":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},' +
        '"z":{"dtype":"F64","shape":[2],"data_offsets":[20,36]}}' +
        ' '.repeat(n - headerText.trimEnd().length),
    );
    expect(headerText.trimEnd().length).toBeGreaterThan(n - 8);
    expect(bytes.length).toBe(8 + n + 36);
    const data = new DataView(bytes.buffer, 8 + n);
    expect(data.getFloat64(0, true)).toBe(1);
    expect(data.getFloat32(8, true)).toBe(1);
    expect(data.getFloat32(16, true)).toBe(3);
    expect(data.getFloat64(28, true)).toBe(6);
  });

  it('reads every supported dtype, returning raw bytes for the non-float ones', () => {
    const header: Record<string, unknown> = {};
    let offset = 0;
    const dtypes = Object.keys(DTYPE_SIZES);
    for (const dtype of dtypes) {
      const size = 2 * DTYPE_SIZES[dtype]!;
      header[`t_${dtype}`] = { dtype, shape: [2], data_offsets: [offset, offset + size] };
      offset += size;
    }
    const data = Uint8Array.from({ length: offset }, (_, i) => i);
    const read = parseSafetensors(assemble(JSON.stringify(header), data));
    expect(read.tensors.size).toBe(dtypes.length);
    offset = 0;
    for (const dtype of dtypes) {
      const t = read.tensors.get(`t_${dtype}`)!;
      const size = 2 * DTYPE_SIZES[dtype]!;
      expect(t.dtype).toBe(dtype);
      expect(Array.from(bytesOf(t.data))).toEqual(Array.from(data.subarray(offset, offset + size)));
      offset += size;
    }
    const i16 = read.tensors.get('t_I16')!;
    expect(i16.data).toBeInstanceOf(Uint8Array);
  });
});

// ---------------------------------------------------------------------------------------------
// Reader errors
// ---------------------------------------------------------------------------------------------

describe('parseSafetensors rejects bad files', () => {
  const ok = (offsets: [number, number] = [0, 8]) => ({ dtype: 'F32', shape: [2], data_offsets: offsets });

  it('a file shorter than 8 bytes', () => {
    expectSafetensorsError(() => parseSafetensors(new Uint8Array(5), 'tiny.safetensors'), /^tiny\.safetensors: the file is 5 bytes, shorter than/);
    expectSafetensorsError(() => parseSafetensors(new Uint8Array(0)), /^the file is 0 bytes/);
  });

  it('a header length larger than the file', () => {
    const bytes = assemble('{}', new Uint8Array(1224), 999999n);
    expect(bytes.length).toBe(1234);
    expectSafetensorsError(
      () => parseSafetensors(bytes, 'checkpoint.safetensors'),
      /^checkpoint\.safetensors: header length 999999 is larger than the file \(1234 bytes\): the file is truncated or not a safetensors file$/,
    );
    expectSafetensorsError(() => parseSafetensors(assemble('{}', undefined, 2n ** 64n - 1n)), /header length 18446744073709551615 is larger than the file/);
    expectSafetensorsError(() => parseSafetensors(assemble('{}', undefined, 3n)), /header length 3 is larger than the file \(10 bytes\)/);
  });

  it('a header length above the 100 MB limit', () => {
    expect(MAX_HEADER_LENGTH).toBe(100_000_000);
    const bytes = new Uint8Array(8 + MAX_HEADER_LENGTH + 8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(MAX_HEADER_LENGTH + 1), true);
    expectSafetensorsError(() => parseSafetensors(bytes, 'big'), /^big: header length 100000001 is larger than the 100000000-byte limit/);
  });

  it('a header that is not UTF-8, not JSON, or not an object', () => {
    const notUtf8 = assemble('', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 4n);
    expectSafetensorsError(() => parseSafetensors(notUtf8, 'f'), /^f: the header is not valid UTF-8/);
    expectSafetensorsError(() => parseSafetensors(assemble('{"a":')), /the header is not valid JSON/);
    expectSafetensorsError(() => parseSafetensors(assemble('')), /the header is not valid JSON/);
    expectSafetensorsError(() => parseSafetensors(assemble('\ufeff{}')), /the header is not valid JSON/);
    expectSafetensorsError(() => parseSafetensors(assemble('[1,2]')), /the header must be a JSON object, got an array of length 2/);
    expectSafetensorsError(() => parseSafetensors(assemble('null')), /the header must be a JSON object, got null/);
    expectSafetensorsError(() => parseSafetensors(assemble('"str"')), /the header must be a JSON object, got "str"/);
    // Deeply nested JSON must not overflow the stack anywhere (parsing or error reporting).
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expectSafetensorsError(() => parseSafetensors(assemble(deep)), /must be a JSON object, got an array of length 1/);
    expectSafetensorsError(() => parseSafetensors(assemble(`{"a":{"dtype":"F32","shape":${deep},"data_offsets":[0,0]}}`)), /shape\[0\] is an array/);
  });

  it('a tensor entry that is not an object or has unexpected fields', () => {
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: [1] })), /tensor "a": the header entry must be an object, got an array/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), extra: 1 } }, 8)), /tensor "a": unexpected field "extra"/);
  });

  it('an unknown or missing dtype', () => {
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), dtype: 'F8_E4M3' } }, 8), 'x'), /^x: tensor "a": unknown dtype "F8_E4M3" \(expected one of /);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), dtype: 'f32' } }, 8)), /unknown dtype "f32"/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { shape: [2], data_offsets: [0, 8] } }, 8)), /unknown dtype missing/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), dtype: 4 } }, 8)), /unknown dtype 4/);
  });

  it('a shape that is not an array of non-negative safe integers', () => {
    for (const [shape, pattern] of [
      [5, /shape must be an array of non-negative integers, got 5/],
      [null, /shape must be an array/],
      [[2, -1], /shape\[1\] is -1/],
      [[1.5], /shape\[0\] is 1.5/],
      [['2'], /shape\[0\] is "2"/],
      [[2 ** 53], /shape\[0\] is 9007199254740992/],
      [[null], /shape\[0\] is null/],
    ] as const) {
      expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), shape } }, 8)), pattern);
    }
  });

  it('data_offsets that are not two in-range safe integers', () => {
    for (const [offsets, pattern] of [
      [[0], /data_offsets must be an array of two integers/],
      [[0, 8, 8], /data_offsets must be an array of two integers/],
      ['0,8', /data_offsets must be an array of two integers/],
      [[0, 8.5], /data_offsets must be two integers, got \[0, 8.5\]/],
      [[0, '8'], /data_offsets must be two integers/],
      [[-1, 8], /data_offsets \[-1, 8\] are outside the 8-byte data section or reversed/],
      [[8, 0], /data_offsets \[8, 0\] are outside/],
      [[0, 16], /data_offsets \[0, 16\] are outside the 8-byte data section/],
      [[0, 2 ** 60], /data_offsets must be two integers/],
    ] as const) {
      expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), data_offsets: offsets } }, 8)), pattern);
    }
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { dtype: 'F32', shape: [2] } }, 8)), /data_offsets must be an array of two integers \[begin, end\], got missing/);
  });

  it('a byte span that does not match shape × dtype size', () => {
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), shape: [3] } }, 8)), /tensor "a": shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), dtype: 'F64' } }, 8)), /needs 16 bytes/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: { ...ok(), shape: [2 ** 40, 2 ** 40, 0, 2 ** 40] } }, 8)), /needs 0 bytes/);
    // Huge products must not lose precision into an accidental match.
    expectSafetensorsError(
      () => parseSafetensors(fileFrom({ a: { ...ok(), shape: [2 ** 52, 2 ** 52, 2 ** 52] } }, 8)),
      /needs more than 8 bytes but data_offsets \[0, 8\] span 8/,
    );
    expectSafetensorsError(
      () => parseSafetensors(fileFrom({ a: { ...ok(), shape: Array(20).fill(1) } }, 8)),
      /a 20-dimensional shape of F32 needs 4 bytes/,
    );
  });

  it('overlapping tensors', () => {
    const header = { a: ok([0, 8]), b: ok([4, 12]) };
    expectSafetensorsError(() => parseSafetensors(fileFrom(header, 12)), /tensors "a" \(bytes 0\.\.8\) and "b" \(bytes 4\.\.12\) overlap/);
    const same = { a: ok([0, 8]), b: ok([0, 8]) };
    expectSafetensorsError(() => parseSafetensors(fileFrom(same, 8)), /overlap/);
    const zeroInside = { a: ok([0, 8]), z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } };
    expectSafetensorsError(() => parseSafetensors(fileFrom(zeroInside, 8)), /overlap/);
  });

  it('holes and trailing bytes in the data section', () => {
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: ok([0, 8]), b: ok([12, 20]) }, 20)), /bytes 8\.\.12 of the data section belong to no tensor \(between tensors "a" and "b"\)/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: ok([4, 12]) }, 12)), /bytes 0\.\.4 of the data section belong to no tensor \(before tensor "a"\)/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ a: ok([0, 8]) }, 11)), /the data section has 3 trailing bytes \(8\.\.11\) that belong to no tensor/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({}, 1)), /1 trailing bytes/);
  });

  it('zero-sized tensors are fine at tensor boundaries', () => {
    const header = {
      a: ok([0, 8]),
      z: { dtype: 'F32', shape: [0, 5], data_offsets: [8, 8] },
      z0: { dtype: 'U8', shape: [0], data_offsets: [0, 0] },
      b: ok([8, 16]),
    };
    const read = parseSafetensors(fileFrom(header, 16));
    expect(read.tensors.get('z')!.data.length).toBe(0);
    expect([...read.tensors.keys()]).toEqual(['z0', 'a', 'z', 'b']);
  });

  it('keeps header order for empty tensors at the same offset, even with integer-like names', () => {
    const e = (name: string) => ({ name, shape: [0], data: new Float32Array(0) });
    const bytes = writeSafetensors([e('b'), e('10'), e('a'), e('2'), { name: '1', shape: [1], data: new Float32Array(1) }, e('0')]);
    expect([...parseSafetensors(bytes).tensors.keys()]).toEqual(['b', '10', 'a', '2', '1', '0']);
  });

  it('duplicated keys in the header', () => {
    const dup = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expectSafetensorsError(() => parseSafetensors(assemble(dup, new Uint8Array(8)), 'd'), /^d: the header lists tensor "a" twice$/);
    const dupMeta = '{"__metadata__":{},"__metadata__":{}}';
    expectSafetensorsError(() => parseSafetensors(assemble(dupMeta)), /the header lists "__metadata__" twice/);
    // Keys inside nested objects and string values that look like keys do not count.
    const nested = '{"__metadata__":{"a":"a","b":"{\\"a\\":1,"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    expect([...parseSafetensors(assemble(nested, new Uint8Array(1))).tensors.keys()]).toEqual(['a']);
  });

  it('escapes control characters of JSON syntax errors so messages stay on one line', () => {
    for (const header of ['{"a"\u000b:1}', '{\n\r\u2028 x}', '\u0001']) {
      expectSafetensorsError(() => parseSafetensors(assemble(header)), /the header is not valid JSON/);
      try {
        parseSafetensors(assemble(header));
      } catch (err) {
        expect((err as Error).message).not.toMatch(/[\u0000-\u001f\u2028\u2029]/);
      }
    }
  });

  it('a __metadata__ that is not an object of strings', () => {
    expectSafetensorsError(() => parseSafetensors(fileFrom({ __metadata__: { a: 1 } })), /"__metadata__" entry "a" must be a string, got 1/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ __metadata__: ['a'] })), /"__metadata__" must be an object of strings, got an array/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ __metadata__: null })), /"__metadata__" must be an object of strings, got null/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ __metadata__: 'x' })), /got "x"/);
    expectSafetensorsError(() => parseSafetensors(fileFrom({ __metadata__: { a: { b: 'c' } } })), /entry "a" must be a string, got an object/);
  });

  it('keeps messages short for huge hostile values', () => {
    const long = 'x'.repeat(10_000);
    let message = '';
    try {
      parseSafetensors(fileFrom({ [long]: { ...ok(), dtype: long } }, 8), 'f');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/unknown dtype/);
    expect(message.length).toBeLessThan(400);
  });
});

// ---------------------------------------------------------------------------------------------
// Writer errors
// ---------------------------------------------------------------------------------------------

describe('writeSafetensors rejects bad input', () => {
  const t = (name: string, shape: number[] = [1], data: Float32Array | Float64Array = new Float32Array(1)) => ({ name, shape, data });

  it('bad names', () => {
    expectSafetensorsError(() => writeSafetensors([t('a'), t('a')]), /tensor "a": the name is used twice/);
    expectSafetensorsError(() => writeSafetensors([t('')]), /tensor #0 needs a non-empty string name/);
    expectSafetensorsError(() => writeSafetensors([t('__metadata__')]), /reserved for metadata/);
    expectSafetensorsError(() => writeSafetensors([t('bad\ud800')]), /unpaired UTF-16 surrogate/);
  });

  it('shapes that do not match the data', () => {
    expectSafetensorsError(() => writeSafetensors([t('a', [2], new Float32Array(3))]), /tensor "a": shape \[2\] does not match the 3 elements of its data/);
    expectSafetensorsError(() => writeSafetensors([t('a', [], new Float32Array(0))]), /shape \[\] does not match the 0 elements/);
    expectSafetensorsError(() => writeSafetensors([t('a', [-1, -3], new Float32Array(3))]), /shape\[0\] is -1/);
    expectSafetensorsError(() => writeSafetensors([t('a', [1.5, 2], new Float32Array(3))]), /shape\[0\] is 1.5/);
  });

  it('data that is not a float array', () => {
    const bad = { name: 'a', shape: [1], data: new Int32Array(1) } as unknown as TensorInput;
    expectSafetensorsError(() => writeSafetensors([bad]), /data must be a Float32Array or a Float64Array/);
  });

  it('metadata values that are not strings', () => {
    expectSafetensorsError(() => writeSafetensors([], { a: 1 } as unknown as Record<string, string>), /metadata "a" must be a string, got 1/);
    expectSafetensorsError(() => writeSafetensors([], null as unknown as Record<string, string>), /metadata must be an object/);
  });

  it('accepts a zero in the shape together with huge dimensions', () => {
    const bytes = writeSafetensors([t('a', [2 ** 26, 2 ** 26, 2 ** 26, 0], new Float32Array(0))]);
    expect(parseSafetensors(bytes).tensors.get('a')!.shape).toEqual([2 ** 26, 2 ** 26, 2 ** 26, 0]);
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: corrupted files must fail cleanly
// ---------------------------------------------------------------------------------------------

/** Valid files written by writeSafetensors (F32/F64 only). */
const arbWrittenFile = fc
  .record({
    tensors: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom('a', 'b', 'w.0', 'bias', '0', '12', 'é'),
        shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
        f64: fc.boolean(),
        fill: fc.double(),
      }),
      { selector: (t) => t.name, maxLength: 4 },
    ),
    metadata: fc.option(fc.dictionary(fc.constantFrom('step', 'lr', 'x'), fc.string({ maxLength: 6 })), { nil: undefined }),
  })
  .map(({ tensors, metadata }) =>
    writeSafetensors(
      tensors.map((s) => {
        const n = product(s.shape);
        return { name: s.name, shape: s.shape, data: s.f64 ? new Float64Array(n).fill(s.fill) : new Float32Array(n).fill(s.fill) };
      }),
      metadata,
    ),
  );

/** Valid files with every dtype, built by hand (unpadded headers, random data bytes). */
const arbRawFile = fc
  .array(
    fc.record({
      dtype: fc.constantFrom(...Object.keys(DTYPE_SIZES)),
      shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
    }),
    { maxLength: 4 },
  )
  .chain((specs) => {
    let offset = 0;
    const header: Record<string, unknown> = {};
    specs.forEach((s, i) => {
      const size = product(s.shape) * DTYPE_SIZES[s.dtype]!;
      header[`t${i}`] = { dtype: s.dtype, shape: s.shape, data_offsets: [offset, offset + size] };
      offset += size;
    });
    return fc.uint8Array({ minLength: offset, maxLength: offset }).map((data) => assemble(JSON.stringify(header), data));
  });

const arbValidFile = fc.oneof(arbWrittenFile, arbRawFile);

/** JSON values that are plausible-but-wrong replacements for header fields. */
const arbWeird: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -20, max: 200 }),
  fc.constantFrom(-0, 0.5, 1e300, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), null, true, '8', '', 'F32', 'F64', 'U8', 'BOOL', 'F8_E5M2', [], {}),
  fc.array(fc.integer({ min: -4, max: 100 }), { maxLength: 4 }),
  fc.tuple(fc.integer({ min: -4, max: 100 }), fc.integer({ min: -4, max: 100 })),
  fc.array(fc.oneof(fc.integer(), fc.double(), fc.constant(null)), { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 2 }),
);

type Edit = { key: number; field: 'dtype' | 'shape' | 'data_offsets' | 'extra' | 'entry' | 'delete' | 'meta' | 'newTensor'; value: unknown };
const arbEdit: fc.Arbitrary<Edit> = fc.record({
  key: fc.nat(),
  field: fc.constantFrom('dtype', 'shape', 'data_offsets', 'extra', 'entry', 'delete', 'meta', 'newTensor'),
  value: arbWeird,
});

/** Applies JSON-level edits to the header of a valid file and reassembles it. */
function editHeader(file: Uint8Array, edits: Edit[], dataDelta: number, lengthDelta: number): Uint8Array {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, unknown>;
  let data = file.subarray(8 + n);
  for (const edit of edits) {
    // A fresh copy per edit: several edits may carry the same generated object, and writing one
    // into another (an 'entry' edit, then a 'shape' edit on it) would make the header cyclic.
    const value = structuredClone(edit.value);
    const keys = Object.keys(header);
    const key = keys.length > 0 ? keys[edit.key % keys.length]! : 'a';
    const entry = header[key];
    switch (edit.field) {
      case 'delete':
        delete header[key];
        break;
      case 'entry':
        header[key] = value;
        break;
      case 'meta':
        header['__metadata__'] = value;
        break;
      case 'newTensor':
        header[`new${edit.key % 3}`] = { dtype: 'U8', shape: [edit.key % 5], data_offsets: value };
        break;
      default:
        if (typeof entry === 'object' && entry !== null) (entry as Record<string, unknown>)[edit.field] = value;
    }
  }
  if (dataDelta < 0) data = data.subarray(0, Math.max(0, data.length + dataDelta));
  else if (dataDelta > 0) {
    const longer = new Uint8Array(data.length + dataDelta);
    longer.set(data);
    data = longer;
  }
  const text = JSON.stringify(header);
  const length = BigInt(Math.max(0, new TextEncoder().encode(text).length + lengthDelta));
  return assemble(text, data, length);
}

const arbCorruptFile: fc.Arbitrary<Uint8Array> = fc.oneof(
  // Flip random bytes anywhere.
  fc
    .tuple(arbValidFile, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }))
    .map(([file, flips]) => {
      const out = file.slice();
      for (const [pos, xor] of flips) out[pos % out.length] = out[pos % out.length]! ^ xor;
      return out;
    }),
  // Truncate at a random length.
  fc.tuple(arbValidFile, fc.nat()).map(([file, cut]) => file.slice(0, cut % (file.length + 1))),
  // Random header length values: arbitrary u64, or near the real one.
  fc
    .tuple(arbValidFile, fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.integer({ min: -40, max: 40 }).map((d) => BigInt(d))), fc.boolean())
    .map(([file, value, relative]) => {
      const out = file.slice();
      const view = new DataView(out.buffer);
      const current = view.getBigUint64(0, true);
      const next = relative && typeof value === 'bigint' && value >= -40n && value <= 40n ? current + value : value;
      view.setBigUint64(0, BigInt.asUintN(64, next), true);
      return out;
    }),
  // JSON-level edits of the header (offsets, dtypes, shapes, entries, metadata), maybe with wrong lengths.
  fc
    .tuple(
      arbValidFile,
      fc.array(arbEdit, { minLength: 1, maxLength: 3 }),
      fc.oneof(fc.constant(0), fc.integer({ min: -16, max: 16 })),
      fc.oneof(fc.constant(0), fc.integer({ min: -8, max: 8 })),
    )
    .map(([file, edits, dataDelta, lengthDelta]) => editHeader(file, edits, dataDelta, lengthDelta)),
  // A random JSON document as the header, with some data.
  fc.tuple(fc.json({ maxDepth: 3 }), fc.uint8Array({ maxLength: 32 })).map(([json, data]) => assemble(json, data)),
  // Random bytes, with or without a plausible length field.
  fc.uint8Array({ maxLength: 96 }),
  fc.tuple(fc.uint8Array({ maxLength: 96 }), fc.nat({ max: 96 })).map(([body, n]) => {
    const out = new Uint8Array(8 + body.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
    out.set(body, 8);
    return out;
  }),
);

describe('fuzzing parseSafetensors', () => {
  it('valid generated files parse', () => {
    fc.assert(
      fc.property(arbValidFile, (file) => checkParsed(parseSafetensors(file), file.length)),
      { numRuns: runs(500) },
    );
  });

  it('corrupted files either parse consistently or throw SafetensorsError, never anything else', () => {
    fc.assert(fc.property(arbCorruptFile, parseMustBeSafe), { numRuns: runs(3000) });
  });

  it('header edits alone (always well-formed JSON) never escape as other exceptions', () => {
    fc.assert(
      fc.property(arbValidFile, fc.array(arbEdit, { minLength: 1, maxLength: 4 }), (file, edits) => parseMustBeSafe(editHeader(file, edits, 0, 0))),
      { numRuns: runs(2000) },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Files on disk
// ---------------------------------------------------------------------------------------------

describe('files on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
  });
  afterEach(() => {
    vi.doUnmock('node:fs');
    vi.resetModules();
    rmSync(dir, { recursive: true, force: true });
  });

  const sample = () => writeSafetensors([{ name: 'w', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }], { step: '7' });

  it('readSafetensorsFile reads what writeFileAtomic wrote', () => {
    const path = join(dir, 'model.safetensors');
    writeFileAtomic(path, sample());
    const read = readSafetensorsFile(path);
    expect(Array.from(read.tensors.get('w')!.data)).toEqual([1, 2, 3, 4]);
    expect(read.metadata).toEqual({ step: '7' });
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });

  it('readSafetensorsFile gives clear errors', () => {
    const missing = join(dir, 'nope.safetensors');
    expectSafetensorsError(() => readSafetensorsFile(missing), new RegExp(`^${escape(missing)}: no such file$`));
    expectSafetensorsError(() => readSafetensorsFile(dir), new RegExp(`^${escape(dir)}: is a directory`));
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, 'hello, world!');
    expectSafetensorsError(() => readSafetensorsFile(bad), new RegExp(`^${escape(bad)}: header length \\d+ is larger than the file \\(13 bytes\\)`));
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked.safetensors');
      writeFileSync(locked, sample());
      chmodSync(locked, 0o000);
      expectSafetensorsError(() => readSafetensorsFile(locked), /: permission denied$/);
    }
  });

  it('writeFileAtomic replaces existing content and keeps its permissions', () => {
    const path = join(dir, 'out.bin');
    writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect(Array.from(readFileSync(path))).toEqual([1, 2, 3]);
    chmodSync(path, 0o640);
    writeFileAtomic(path, new Uint8Array([9, 8]));
    expect(Array.from(readFileSync(path))).toEqual([9, 8]);
    expect(statSync(path).mode & 0o777).toBe(0o640);
    writeFileAtomic(path, new Uint8Array(0));
    expect(readFileSync(path).length).toBe(0);
    expect(readdirSync(dir)).toEqual(['out.bin']);
  });

  it('writeFileAtomic fails clearly when the directory does not exist', () => {
    const path = join(dir, 'missing', 'out.bin');
    expect(() => writeFileAtomic(path, new Uint8Array([1]))).toThrow(
      new RegExp(`^cannot write ${escape(path)}: the directory ${escape(join(dir, 'missing'))} does not exist$`),
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writeFileAtomic refuses to replace a directory and leaves it untouched', () => {
    const target = join(dir, 'target');
    mkdirSync(target);
    writeFileSync(join(target, 'inside.txt'), 'keep');
    expect(() => writeFileAtomic(target, new Uint8Array([1]))).toThrow(new RegExp(`^cannot write ${escape(target)}: it is an existing directory$`));
    expect(readdirSync(dir)).toEqual(['target']);
    expect(readFileSync(join(target, 'inside.txt'), 'utf8')).toBe('keep');
    expect(() => writeFileAtomic(`${target}/`, new Uint8Array([1]))).toThrow(/not a file path/);
  });

  it('writeFileAtomic reports ENOSPC, removes its temp file and keeps the old content', async () => {
    const path = join(dir, 'ckpt.safetensors');
    writeFileSync(path, 'old content');
    const mocked = await safetensorsWithFailingFs('writeSync', 'ENOSPC', 'no space left on device', 'write');
    let thrown: unknown;
    try {
      mocked.writeFileAtomic(path, new Uint8Array(100));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toBe(`cannot write ${path}: no space left on device (ENOSPC)`);
    expect(((thrown as Error).cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(readdirSync(dir)).toEqual(['ckpt.safetensors']);
    expect(readFileSync(path, 'utf8')).toBe('old content');
  });

  it('writeFileAtomic removes its temp file when the rename fails', async () => {
    const path = join(dir, 'ckpt.safetensors');
    writeFileSync(path, 'old content');
    const mocked = await safetensorsWithFailingFs('renameSync', 'EXDEV', 'cross-device link not permitted', 'rename');
    expect(() => mocked.writeFileAtomic(path, new Uint8Array(10))).toThrow(new RegExp(`^cannot write ${escape(path)}: .*\\(EXDEV\\)$`));
    expect(readdirSync(dir)).toEqual(['ckpt.safetensors']);
    expect(readFileSync(path, 'utf8')).toBe('old content');
  });
});

/**
 * A fresh import of src/train/safetensors.ts whose node:fs `fn` always fails with the system error
 * `code` (as Node reports it: "CODE: message, syscall").
 */
async function safetensorsWithFailingFs(
  fn: 'writeSync' | 'renameSync', code: 'ENOSPC' | 'EXDEV', message: string, syscall: string,
): Promise<typeof import('../src/train/safetensors.js')> {
  vi.resetModules();
  vi.doMock('node:fs', async (importOriginal) => {
    const actual = await importOriginal<typeof import('node:fs')>();
    return {
      ...actual,
      [fn]: () => {
        const err = new Error(`${code}: ${message}, ${syscall}`) as NodeJS.ErrnoException;
        err.code = code;
        err.errno = -osConstants.errno[code];
        err.syscall = syscall;
        throw err;
      },
    };
  });
  return import('../src/train/safetensors.js');
}

/** Escapes a string for use inside a RegExp. */
function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
