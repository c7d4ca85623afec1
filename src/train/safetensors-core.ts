/**
 * A strict reader and writer for the safetensors file format, in memory (no platform API: it
 * runs in a browser too; src/train/safetensors.ts adds the files and an atomic file write).
 *
 * Layout of a safetensors file:
 *
 * ```text
 * [8 bytes]  N, the header length, unsigned 64-bit little-endian
 * [N bytes]  UTF-8 JSON header (the writer pads it with spaces so that 8 + N is a multiple of 8)
 * [rest]     data section: every tensor's elements, row-major, little-endian
 * ```
 *
 * The header is a JSON object. Every key except `"__metadata__"` names a tensor and maps to
 * `{"dtype": ..., "shape": [...], "data_offsets": [begin, end]}`, with offsets counted from the
 * start of the data section. `"__metadata__"` (optional) maps string keys to string values.
 *
 * The reader treats its input as untrusted: every claim in the header is checked against the
 * actual byte count before anything is allocated or read, and every problem is reported as a
 * {@link SafetensorsError} with a one-line message that says what is wrong.
 */

/** Any problem with a safetensors file or with the tensors given to the writer. */
export class SafetensorsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SafetensorsError';
  }
}

/** One tensor read from a safetensors file. */
export interface TensorEntry {
  /** The tensor's name (its key in the header). */
  name: string;
  /** The dtype as written in the header, e.g. "F32". */
  dtype: string;
  /** Dimensions, outermost first; the empty array is a scalar. */
  shape: number[];
  /**
   * The elements: a fresh Float32Array for F32, a fresh Float64Array for F64, and for every other
   * dtype a fresh copy of the raw little-endian bytes.
   */
  data: Float32Array | Float64Array | Uint8Array;
}

/** One tensor to write: F32 when `data` is a Float32Array, F64 when it is a Float64Array. */
export interface TensorInput {
  name: string;
  shape: number[];
  data: Float32Array | Float64Array;
}

/** Everything in a safetensors file. */
export interface SafetensorsContents {
  /** Tensors by name, in the order of their data in the file (ties, i.e. empty tensors, in header order). */
  tensors: Map<string, TensorEntry>;
  /** The `__metadata__` table (empty when the file has none). */
  metadata: Record<string, string>;
}

/** Largest header the reader accepts, in bytes (the same bound as the reference implementation). */
export const MAX_HEADER_LENGTH = 100_000_000;

/** Bytes per element of every dtype the reader understands. */
const DTYPE_SIZES: ReadonlyMap<string, number> = new Map([
  ['F64', 8],
  ['F32', 4],
  ['F16', 2],
  ['BF16', 2],
  ['I64', 8],
  ['I32', 4],
  ['I16', 2],
  ['I8', 1],
  ['U64', 8],
  ['U32', 4],
  ['U16', 2],
  ['U8', 1],
  ['BOOL', 1],
]);

/** The key of the metadata table in the header. */
const METADATA_KEY = '__metadata__';

/** The fields a tensor's header entry must have (and the only ones it may have). */
const TENSOR_FIELDS = ['dtype', 'shape', 'data_offsets'];

/** True when typed arrays on this platform store their elements little-endian (checked once). */
const PLATFORM_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Matches a lone (unpaired) UTF-16 surrogate, which has no UTF-8 encoding. */
const LONE_SURROGATE = /\p{Surrogate}/u;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/**
 * A short one-line description of a JSON value for error messages. Never recurses, so deeply
 * nested or huge values from a hostile header cannot blow the stack or the message length.
 */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return 'an object';
}

/** True for a JSON object (not null, not an array). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets `obj[key] = value` as an own property even when `key` is "__proto__". */
function defineEntry(obj: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * The number of elements of `shape`, or -1 when it is larger than `limit`. All dimensions must
 * already be non-negative safe integers. The result is exact whenever it is returned, because
 * every intermediate product stays at most `limit` (a zero dimension anywhere makes it 0).
 */
function elementCount(shape: readonly number[], limit: number): number {
  if (shape.includes(0)) return 0;
  let count = 1;
  for (const dim of shape) {
    count *= dim;
    if (count > limit) return -1;
  }
  return count;
}

/** Index of the first entry of `shape` that is not a non-negative safe integer, or -1. */
function badDimension(shape: readonly unknown[]): number {
  return shape.findIndex((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0);
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/**
 * Serialises tensors (and optional string metadata) to the bytes of a safetensors file.
 *
 * Tensors are stored in the order given, contiguously from data offset 0, F32 for Float32Array
 * and F64 for Float64Array. The header lists `__metadata__` first (when given), then the tensors
 * in the same order, and is padded with spaces so that the data section starts at a multiple of
 * 8 bytes. The whole file is built in one preallocated buffer.
 *
 * @throws SafetensorsError when a name is empty, repeated, "__metadata__" or not valid Unicode;
 *   when a shape is not a list of non-negative integers or does not match the data length; or
 *   when a metadata value is not a string.
 */
export function writeSafetensors(tensors: readonly TensorInput[], metadata?: Record<string, string>): Uint8Array {
  if (!Array.isArray(tensors)) throw new SafetensorsError('writeSafetensors: tensors must be an array');

  const headerParts: string[] = [];
  if (metadata !== undefined) headerParts.push(`${JSON.stringify(METADATA_KEY)}:${metadataJson(metadata)}`);

  const seen = new Set<string>();
  let offset = 0;
  for (const [i, tensor] of tensors.entries()) {
    const { name, shape, data } = tensor ?? ({} as Partial<TensorInput>);
    if (typeof name !== 'string' || name === '') {
      throw new SafetensorsError(`writeSafetensors: tensor #${i} needs a non-empty string name, got ${show(name)}`);
    }
    const what = `writeSafetensors: tensor ${show(name)}`;
    if (name === METADATA_KEY) throw new SafetensorsError(`${what}: the name "${METADATA_KEY}" is reserved for metadata`);
    if (LONE_SURROGATE.test(name)) throw new SafetensorsError(`${what}: the name contains an unpaired UTF-16 surrogate`);
    if (seen.has(name)) throw new SafetensorsError(`${what}: the name is used twice`);
    seen.add(name);

    let dtype: 'F32' | 'F64';
    if (data instanceof Float32Array) dtype = 'F32';
    else if (data instanceof Float64Array) dtype = 'F64';
    else throw new SafetensorsError(`${what}: data must be a Float32Array or a Float64Array`);

    if (!Array.isArray(shape)) throw new SafetensorsError(`${what}: shape must be an array, got ${show(shape)}`);
    const bad = badDimension(shape);
    if (bad >= 0) {
      throw new SafetensorsError(`${what}: shape[${bad}] is ${show(shape[bad])}; dimensions must be non-negative integers`);
    }
    if (elementCount(shape, data.length) !== data.length) {
      throw new SafetensorsError(`${what}: shape [${shape.join(', ')}] does not match the ${data.length} elements of its data`);
    }

    const end = offset + data.byteLength;
    headerParts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape: [...shape], data_offsets: [offset, end] })}`);
    offset = end;
  }

  const headerBytes = new TextEncoder().encode(`{${headerParts.join(',')}}`);
  // Pad so that the data section (at 8 + N) starts on an 8-byte boundary.
  const headerLength = headerBytes.length + ((8 - (headerBytes.length % 8)) % 8);
  if (headerLength > MAX_HEADER_LENGTH) {
    throw new SafetensorsError(
      `writeSafetensors: the header would be ${headerLength} bytes, more than the ${MAX_HEADER_LENGTH} bytes readers accept`,
    );
  }

  const dataStart = 8 + headerLength;
  const out = new Uint8Array(dataStart + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(headerBytes, 8);
  out.fill(0x20, 8 + headerBytes.length, dataStart);

  let position = dataStart;
  for (const { data } of tensors) {
    copyToLittleEndian(data, out, position);
    position += data.byteLength;
  }
  return out;
}

/** Validates the metadata table and returns its JSON text (keys in the table's own order). */
function metadataJson(metadata: Record<string, string>): string {
  if (!isPlainObject(metadata)) throw new SafetensorsError(`writeSafetensors: metadata must be an object, got ${show(metadata)}`);
  const parts: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new SafetensorsError(`writeSafetensors: metadata ${show(key)} must be a string, got ${show(value)}`);
    }
    if (LONE_SURROGATE.test(key) || LONE_SURROGATE.test(value)) {
      throw new SafetensorsError(`writeSafetensors: metadata ${show(key)} contains an unpaired UTF-16 surrogate`);
    }
    parts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
  }
  return `{${parts.join(',')}}`;
}

/** Writes the elements of `data` into `out` at byte `position`, little-endian, bit for bit. */
function copyToLittleEndian(data: Float32Array | Float64Array, out: Uint8Array, position: number): void {
  if (PLATFORM_IS_LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position);
    return;
  }
  // Big-endian fallback: go through integer views so NaN payloads survive unchanged.
  const view = new DataView(out.buffer, out.byteOffset + position, data.byteLength);
  if (data instanceof Float32Array) {
    const words = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < words.length; i++) view.setUint32(4 * i, words[i]!, true);
  } else {
    const words = new BigUint64Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < words.length; i++) view.setBigUint64(8 * i, words[i]!, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/** A tensor's header entry after validation. */
export interface TensorSpec {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses and validates the bytes of a safetensors file.
 *
 * Checks, in order: the length field against the file size and {@link MAX_HEADER_LENGTH}; that
 * the header is UTF-8 JSON holding an object with no repeated keys; each tensor's entry (exactly
 * the fields dtype, shape and data_offsets; offsets in bounds and spanning exactly the bytes the
 * shape and dtype require); that `__metadata__` maps strings to
 * strings; and that the tensors tile the data section exactly (no overlaps, holes or trailing
 * bytes). Only then are the tensors copied out, so the total allocation never exceeds the input
 * size (plus the decoded header).
 *
 * @param bytes the whole file
 * @param label prefix for error messages, usually the file name
 * @throws SafetensorsError describing the first problem found
 */
export function parseSafetensors(bytes: Uint8Array, label?: string): SafetensorsContents {
  const fail = failWith(label);
  if (!(bytes instanceof Uint8Array)) fail('expected the file contents as a Uint8Array');
  const { metadata, specs, dataStart } = parseHeader(bytes, bytes.length, fail);
  const tensors = new Map<string, TensorEntry>();
  for (const spec of specs) {
    const data = copyTensorData(bytes.subarray(dataStart + spec.begin, dataStart + spec.end), spec.dtype);
    tensors.set(spec.name, { name: spec.name, dtype: spec.dtype, shape: spec.shape, data });
  }
  return { tensors, metadata };
}

/** A tensor as the header describes it, without its data. */
export interface TensorHeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
}

/** What {@link readSafetensorsHeader} returns: everything but the tensors' data. */
export interface SafetensorsHeader {
  /** Tensors by name, in the order of their data in the file (as {@link SafetensorsContents}). */
  tensors: Map<string, TensorHeaderEntry>;
  /** The `__metadata__` table (empty when the file has none). */
  metadata: Record<string, string>;
  /** The file's size in bytes. */
  size: number;
}

/** A `fail` that throws SafetensorsError prefixed with `label`. */
export function failWith(label: string | undefined): (message: string) => never {
  return (message: string): never => {
    throw new SafetensorsError(label ? `${label}: ${message}` : message);
  };
}

/**
 * Validates the header of a safetensors file of `fileSize` bytes whose first bytes are `head`
 * (at least the 8-byte length field and the header, when the file has them): every check of
 * {@link parseSafetensors}, none of which needs the data section itself.
 */
export function parseHeader(
  head: Uint8Array,
  fileSize: number,
  fail: (message: string) => never,
): { metadata: Record<string, string>; specs: TensorSpec[]; dataStart: number } {
  if (fileSize < 8) {
    fail(`the file is ${fileSize} bytes, shorter than the 8-byte header length field: it is truncated or not a safetensors file`);
  }
  const claimed = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (claimed > BigInt(fileSize - 8)) {
    fail(`header length ${claimed} is larger than the file (${fileSize} bytes): the file is truncated or not a safetensors file`);
  }
  const headerLength = Number(claimed);
  if (headerLength > MAX_HEADER_LENGTH) {
    fail(`header length ${headerLength} is larger than the ${MAX_HEADER_LENGTH}-byte limit`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;

  let headerText = '';
  try {
    headerText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(head.subarray(8, dataStart));
  } catch {
    fail('the header is not valid UTF-8: the file is corrupt or not a safetensors file');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    const why = oneLine(err instanceof Error ? err.message : String(err));
    fail(`the header is not valid JSON (${why}): the file is corrupt or not a safetensors file`);
  }
  if (!isPlainObject(header)) fail(`the header must be a JSON object, got ${show(header)}`);

  // Walk the keys in file order (JSON.parse would put integer-like keys first and silently
  // keep only the last of duplicated keys).
  const metadata: Record<string, string> = {};
  const specs: TensorSpec[] = [];
  const seen = new Set<string>();
  for (const name of topLevelKeys(headerText)) {
    if (seen.has(name)) fail(`the header lists ${name === METADATA_KEY ? `"${METADATA_KEY}"` : `tensor ${show(name)}`} twice`);
    seen.add(name);
    const entry = (header as Record<string, unknown>)[name];
    if (name === METADATA_KEY) readMetadata(entry, metadata, fail);
    else specs.push(readTensorSpec(name, entry, dataLength, fail));
  }

  // The tensors must tile the data section: sorted by position, each starts where the last ended.
  // The sort is stable, so zero-sized tensors at the same offset keep their header order.
  specs.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: TensorSpec | undefined;
  for (const spec of specs) {
    if (spec.begin < covered && previous) {
      fail(
        `tensors ${show(previous.name)} (bytes ${previous.begin}..${previous.end}) and ${show(spec.name)} ` +
          `(bytes ${spec.begin}..${spec.end}) overlap`,
      );
    }
    if (spec.begin > covered) {
      const where = previous ? `between tensors ${show(previous.name)} and ${show(spec.name)}` : `before tensor ${show(spec.name)}`;
      fail(`bytes ${covered}..${spec.begin} of the data section belong to no tensor (${where})`);
    }
    covered = spec.end;
    previous = spec;
  }
  if (covered !== dataLength) {
    fail(`the data section has ${dataLength - covered} trailing bytes (${covered}..${dataLength}) that belong to no tensor`);
  }
  return { metadata, specs, dataStart };
}

/**
 * The keys of the top-level object of `text`, in the order they appear, duplicates included.
 * `text` must already be known to be valid JSON whose value is an object; this is a linear scan
 * that only tracks nesting depth and string boundaries.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectingKey = false;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* backslash */ ? 2 : 1;
      if (depth === 1 && expectingKey) {
        keys.push(JSON.parse(text.slice(i, j + 1)) as string);
        expectingKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectingKey = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectingKey = true;
    }
    i++;
  }
  return keys;
}

/** Makes an engine message safe for a one-line error: control and line-break characters escaped. */
function oneLine(message: string): string {
  const escaped = message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > 200 ? `${escaped.slice(0, 200)}...` : escaped;
}

/** Validates the `__metadata__` entry and copies it into `out`. */
function readMetadata(entry: unknown, out: Record<string, string>, fail: (message: string) => never): void {
  if (!isPlainObject(entry)) fail(`"${METADATA_KEY}" must be an object of strings, got ${show(entry)}`);
  for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof value !== 'string') fail(`"${METADATA_KEY}" entry ${show(key)} must be a string, got ${show(value)}`);
    defineEntry(out, key, value as string);
  }
}

/** Validates one tensor's header entry against the data section length. */
function readTensorSpec(name: string, entry: unknown, dataLength: number, fail: (message: string) => never): TensorSpec {
  const what = `tensor ${show(name)}`;
  if (!isPlainObject(entry)) fail(`${what}: the header entry must be an object, got ${show(entry)}`);
  const info = entry as Record<string, unknown>;
  for (const key of Object.keys(info)) {
    if (!TENSOR_FIELDS.includes(key)) fail(`${what}: unexpected field ${show(key)} (expected only dtype, shape, data_offsets)`);
  }

  const { dtype, shape, data_offsets: offsets } = info;
  const size = typeof dtype === 'string' ? DTYPE_SIZES.get(dtype) : undefined;
  if (size === undefined) fail(`${what}: unknown dtype ${show(dtype)} (expected one of ${[...DTYPE_SIZES.keys()].join(', ')})`);

  if (!Array.isArray(shape)) fail(`${what}: shape must be an array of non-negative integers, got ${show(shape)}`);
  const dims = shape as unknown[];
  const bad = badDimension(dims);
  if (bad >= 0) fail(`${what}: shape[${bad}] is ${show(dims[bad])}; dimensions must be non-negative integers`);

  if (!Array.isArray(offsets) || offsets.length !== 2) {
    fail(`${what}: data_offsets must be an array of two integers [begin, end], got ${show(offsets)}`);
  }
  const [begin, end] = offsets as unknown[];
  if (typeof begin !== 'number' || !Number.isSafeInteger(begin) || typeof end !== 'number' || !Number.isSafeInteger(end)) {
    fail(`${what}: data_offsets must be two integers, got [${show(begin)}, ${show(end)}]`);
  }
  const b = begin as number;
  const e = end as number;
  if (!(b >= 0 && b <= e && e <= dataLength)) {
    fail(`${what}: data_offsets [${b}, ${e}] are outside the ${dataLength}-byte data section or reversed`);
  }

  const count = elementCount(dims as number[], dataLength);
  const expected = count < 0 ? -1 : count * size!;
  if (expected !== e - b) {
    const need = expected < 0 ? `more than ${dataLength}` : `${expected}`;
    const shown = dims.length > 8 ? `a ${dims.length}-dimensional shape` : `shape [${dims.join(', ')}]`;
    fail(`${what}: ${shown} of ${dtype} needs ${need} bytes but data_offsets [${b}, ${e}] span ${e - b}`);
  }
  return { name, dtype: dtype as string, shape: (dims as number[]).map((d) => d + 0), begin: b, end: e };
}

/** Copies a tensor's raw little-endian bytes into a fresh array of the right element type. */
function copyTensorData(raw: Uint8Array, dtype: string): Float32Array | Float64Array | Uint8Array {
  if (dtype === 'F32' || dtype === 'F64') {
    const elementSize = dtype === 'F32' ? 4 : 8;
    const out = dtype === 'F32' ? new Float32Array(raw.length / 4) : new Float64Array(raw.length / 8);
    if (PLATFORM_IS_LITTLE_ENDIAN) {
      new Uint8Array(out.buffer).set(raw);
    } else {
      // Big-endian fallback through integer views, so NaN payloads survive unchanged.
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      if (elementSize === 4) {
        const words = new Uint32Array(out.buffer);
        for (let i = 0; i < words.length; i++) words[i] = view.getUint32(4 * i, true);
      } else {
        const words = new BigUint64Array(out.buffer);
        for (let i = 0; i < words.length; i++) words[i] = view.getBigUint64(8 * i, true);
      }
    }
    return out;
  }
  return raw.slice();
}

