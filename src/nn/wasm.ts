/**
 * WebAssembly SIMD kernels: a float32 implementation of the `Kernels` interface (src/nn/kernels.ts)
 * compiled from assembly/kernels.ts by AssemblyScript (`npm run build:wasm`) into
 *   build/kernels.wasm          SIMD (f32x4 mul + add)
 *   build/kernels-relaxed.wasm  relaxed SIMD (f32x4.relaxed_madd, a fused multiply-add where the
 *                               CPU has one; Node 20 needs --experimental-wasm-relaxed-simd)
 *
 * Memory: each WasmKernels owns one *shared* WebAssembly.Memory (its buffer is a
 * SharedArrayBuffer), so growing it never detaches the Float32Array views handed out earlier:
 * they keep pointing at the same bytes. `alloc(n)` is a bump allocator in that memory (16-byte
 * aligned, zero-filled because fresh wasm memory is zero and nothing is ever reused); nothing is
 * freed until the WasmKernels object itself is dropped.
 *
 * Every kernel checks (cheaply) that its Float32Array arguments are views into this memory and
 * long enough for the given shape, then passes their byte offsets to wasm. Target id arrays
 * (Int32Array) may live anywhere: ones outside wasm memory are copied into a scratch area first,
 * and every id is checked to be in [0, V) (wasm would otherwise read or write outside the row).
 *
 * Accuracy against the TypeScript reference (TsKernels('float32'), which computes in float64 and
 * rounds on store): the matmuls accumulate in float32 (see test/wasm.test.ts for the bound);
 * lstmBackward, the GRU's and the RNN's backward kernels and the optimiser updates are
 * bit-identical; exp/σ/tanh are float32 polynomial approximations with relative error below 1e-6.
 *
 * No platform API here: src/nn/wasm-node.ts loads the builds in Node (from the file), and
 * src/nn/wasm-browser.ts in a browser (fetch).
 */
import type { Float, Kernels } from './kernels.js';

// ---------------------------------------------------------------------------------------------
// The little of the WebAssembly JS API used here (the project compiles without the DOM lib).

/** A WebAssembly.Memory (shared: its buffer is a SharedArrayBuffer). */
export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(deltaPages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<object>;
}

function wasmApi(): WasmApi | undefined {
  return (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
}

/** The functions exported by assembly/kernels.ts (pointers are byte offsets). */
interface KernelExports {
  heapBase(): number;
  vmap(fn: number, a: number, n: number): void;
  matmulXWt(
    Y: number, X: number, W: number, b: number, M: number, N: number, K: number, accumulate: number, Wp: number, Wq: number,
  ): void;
  matmulXWt2(
    Y: number, X1: number, W1: number, X2: number, W2: number, b1: number, b2: number, M: number, N: number, K1: number, K2: number,
    Wq1: number, Wq2: number,
  ): void;
  matmulDyW(dX: number, dY: number, W: number, M: number, N: number, K: number, Wp: number): void;
  packXWt(dst: number, W: number, N: number, K: number): void;
  packDyW(dst: number, W: number, N: number, K: number): void;
  packMv(dst: number, W: number, N: number, K: number): void;
  packMvSize(N: number, K: number): number;
  matmulDyTX(dW: number, db: number, dY: number, X: number, M: number, N: number, K: number, Xpk: number): void;
  dytxPackFloats(M: number, N: number, K: number): number;
  lstmForward(gates: number, cPrev: number, c: number, tc: number, h: number, M: number, N: number): void;
  lstmBackward(
    gates: number, cPrev: number, tc: number, dh: number, dc: number, dGates: number, dcPrev: number, M: number, N: number,
  ): void;
  gruResetForward(zr: number, h: number, rh: number, M: number, N: number): void;
  gruForward(zr: number, n: number, hPrev: number, h: number, M: number, N: number): void;
  gruBackward(zr: number, n: number, hPrev: number, dh: number, dzr: number, dn: number, dhPrev: number, M: number, N: number): void;
  gruResetBackward(zr: number, hPrev: number, drh: number, dzr: number, dhPrev: number, M: number, N: number): void;
  rnnForward(a: number, h: number, count: number): void;
  rnnBackward(h: number, dh: number, da: number, count: number): void;
  gatherRows(out: number, table: number, ids: number, M: number, W: number): void;
  scatterAddRows(dst: number, src: number, ids: number, M: number, W: number): void;
  logSoftmaxNll(logits: number, targets: number, M: number, V: number): number;
  softmaxScaled(p: number, x: number, V: number, invT: number): number;
  logSoftmaxNllBackward(dLogits: number, logp: number, targets: number, M: number, V: number, scale: number): void;
  rmsprop(x: number, g: number, m: number, n: number, lr: number, alpha: number, eps: number): void;
  adam(
    x: number, g: number, m: number, v: number, n: number, lr: number, beta1: number, beta2: number, eps: number,
    stepSize: number,
  ): void;
  clip(g: number, n: number, c: number): void;
  addInPlace(dst: number, src: number, n: number): void;
  firstNonFinite(a: number, n: number): number;
  sumSquares2(a: number, b: number, n: number): number;
  sumSquaresSecond(): number;
  peakMulAdd(iters: number): number;
  setScratch(ptr: number): void;
  scratchBytes(): number;
  /** Rows below which matmulXWt / matmulDyW take their unpacked paths (a packed W is not used there). */
  XWT_SMALL_M: { value: number };
  /** Rows from which matmulXWt uses a packed W (Wp ≠ 0) when given one. */
  XWT_PACKED_M: { value: number };
  DYW_SMALL_M: { value: number };
}

// ---------------------------------------------------------------------------------------------
// Locating, validating and compiling the two builds

export type WasmVariant = 'simd' | 'relaxed';

/** The packed copies of a constant weight: for matmulXWt (many rows), matmulDyW, one-row products. */
type PackKind = 'xwt' | 'dyw' | 'mv';
/** The packed copies another thread can make for this one (sharePacked): the many-row kinds. */
export type SharedPackKind = 'xwt' | 'dyw';
/** A weight W [N, K] with copies packed elsewhere (sharePacked); null: that kind is not shared. */
export interface PackedCopies {
  W: Float32Array;
  N: number;
  K: number;
  xwt: Float32Array | null;
  dyw: Float32Array | null;
}
const PACK_KINDS: readonly PackKind[] = ['xwt', 'dyw', 'mv'];
interface ConstantWeight extends Record<PackKind, number> {
  ptr: number;
  N: number;
  K: number;
}

/** Where a checked view lives: its byte offset in wasm memory and its length in elements. */
interface ViewPlace {
  offset: number;
  length: number;
}

export interface WasmKernelsOptions {
  /**
   * Which build to use. 'auto' (default): the relaxed-SIMD build when this runtime validates it
   * (Node 20 only with --experimental-wasm-relaxed-simd), else the SIMD build.
   */
  variant?: 'auto' | WasmVariant;
  /** Initial memory in bytes (rounded up to 64 KiB pages, at least 1 MiB). Default 4 MiB; it grows on demand. */
  initialBytes?: number;
  /**
   * For a second thread (src/parallel/): run over `memory`, the memory of kernels another thread
   * owns, allocating only inside `arena` (byte offsets [start, end), an area that owner
   * allocated for this thread). The owner alone grows the memory and allocates everything else:
   * every instance of the module starts its allocator at the same place, so two allocators
   * would hand out the same bytes. The first scratchBytes of the arena become this instance's
   * scratch space (packed operands).
   */
  attach?: { memory: WasmMemory; arena: { start: number; end: number } };
}

const PAGE = 65536;
/** The minimum the modules declare (asconfig.json `initialMemory`): 1 MiB. */
const MIN_PAGES = 16;
/** The maximum the modules declare (asconfig.json `maximumMemory`): 4 GiB. */
const MAX_PAGES = 65536;
const DEFAULT_INITIAL_BYTES = 4 * 1024 * 1024;

/**
 * Where the two builds are: next to dist/ (or src/) in build/. One `new URL(literal,
 * import.meta.url)` per file, never a template string or a bare fetch: that is the form bundlers
 * (Vite, webpack, esbuild, Parcel) recognise and copy into a web build.
 */
export function wasmUrl(variant: WasmVariant): URL {
  return variant === 'relaxed'
    ? new URL('../../build/kernels-relaxed.wasm', import.meta.url)
    : new URL('../../build/kernels.wasm', import.meta.url);
}

/**
 * How a platform gets a build's bytes: Node reads the file (src/nn/wasm-node.ts), a browser
 * fetches it (src/nn/wasm-browser.ts). A failure is returned as an Error that says what to do.
 */
export interface WasmSource {
  read(variant: WasmVariant): Promise<Uint8Array | Error>;
  /** Node only: the synchronous read (loadWasmKernelsSync). */
  readSync?(variant: WasmVariant): Uint8Array | Error;
  /** Turns relaxed SIMD on where the engine has it behind a flag (Node 20); called at most once. */
  enableRelaxedSimd?(): void;
}

/**
 * Loading kernels from a WasmSource: the variant chosen as `WebAssembly.validate` allows (relaxed
 * SIMD where the engine runs it), each build read and compiled once per loader.
 */
export class WasmLoader {
  /** Per variant: the bytes of the build, or the error reading them. */
  private readonly bytesCache = new Map<WasmVariant, Uint8Array | Error>();
  private readonly moduleCache = new Map<WasmVariant, object>();
  private triedRelaxedFlag = false;

  constructor(private readonly source: WasmSource) {}

  private readSync(variant: WasmVariant): Uint8Array | Error {
    let b = this.bytesCache.get(variant);
    if (b === undefined) {
      if (!this.source.readSync) throw new Error('the WebAssembly kernels load asynchronously here: use `await loadWasmKernels()`');
      b = this.source.readSync(variant);
      this.bytesCache.set(variant, b);
    }
    return b;
  }

  private async read(variant: WasmVariant): Promise<Uint8Array | Error> {
    let b = this.bytesCache.get(variant);
    if (b === undefined) {
      b = await this.source.read(variant);
      this.bytesCache.set(variant, b);
    }
    return b;
  }

  /**
   * Relaxed SIMD ships enabled from Node 22 (V8 11.4+) and Chromium 114; Node 20 has it behind
   * --experimental-wasm-relaxed-simd, which the source may turn on as long as no relaxed module
   * has been validated yet, so 'auto' tries it once before falling back.
   */
  private enableRelaxedSimd(): void {
    if (this.triedRelaxedFlag) return;
    this.triedRelaxedFlag = true;
    this.source.enableRelaxedSimd?.();
  }

  private chooseVariant(requested: 'auto' | WasmVariant, bytes: (v: WasmVariant) => Uint8Array | Error): WasmVariant {
    if (requested === 'auto') {
      if (runnable(bytes('relaxed'))) return 'relaxed';
      this.enableRelaxedSimd();
      return runnable(bytes('relaxed')) ? 'relaxed' : 'simd';
    }
    if (requested === 'relaxed' && !runnable(bytes('relaxed'))) this.enableRelaxedSimd();
    return requested;
  }

  /** True when the SIMD kernels (or, with variant 'relaxed', the relaxed ones) can be loaded here (Node: synchronous). */
  available(variant: WasmVariant = 'simd'): boolean {
    if (variant === 'relaxed' && !runnable(this.readSync(variant))) this.enableRelaxedSimd();
    return runnable(this.readSync(variant));
  }

  /** Loads (compiling once per loader and variant) a fresh WasmKernels with its own memory. */
  async load(options: WasmKernelsOptions = {}): Promise<WasmKernels> {
    const requested = variantOf(options);
    if (requested === 'auto') {
      // The relaxed build first; the plain one only when the relaxed one cannot run.
      if (!runnable(await this.read('relaxed'))) {
        this.enableRelaxedSimd();
        if (!runnable(this.bytesCache.get('relaxed')!)) await this.read('simd');
      }
    } else await this.read(requested);
    const variant = this.chooseVariant(requested, (v) => this.bytesCache.get(v)!);
    let module = this.moduleCache.get(variant);
    if (!module) {
      const api = wasmApi();
      if (api === undefined) throw new Error('this JavaScript runtime has no WebAssembly');
      module = await api.compile(checkRunnable(variant, this.bytesCache.get(variant)!));
      this.moduleCache.set(variant, module);
    }
    return new WasmKernels(module, variant, options);
  }

  /** The synchronous twin of load (Node: the modules are small). */
  loadSync(options: WasmKernelsOptions = {}): WasmKernels {
    const variant = this.chooseVariant(variantOf(options), (v) => this.readSync(v));
    let module = this.moduleCache.get(variant);
    if (!module) {
      const bytes = checkRunnable(variant, this.readSync(variant));
      module = new (wasmApi()!.Module)(bytes);
      this.moduleCache.set(variant, module);
    }
    return new WasmKernels(module, variant, options);
  }
}

/** Whether this runtime can run a build (its bytes were read and it validates). */
function runnable(bytes: Uint8Array | Error): boolean {
  const api = wasmApi();
  return api !== undefined && !(bytes instanceof Error) && api.validate(bytes);
}

function checkRunnable(variant: WasmVariant, bytes: Uint8Array | Error): Uint8Array {
  const api = wasmApi();
  if (api === undefined) throw new Error('this JavaScript runtime has no WebAssembly');
  if (bytes instanceof Error) throw bytes;
  if (!api.validate(bytes)) {
    throw new Error(
      variant === 'relaxed'
        ? 'this runtime does not support WebAssembly relaxed SIMD (Node 20 needs --experimental-wasm-relaxed-simd); use variant "simd"'
        : 'this runtime does not support WebAssembly SIMD with shared memory (build/kernels.wasm does not validate)',
    );
  }
  return bytes;
}

function variantOf(options: WasmKernelsOptions): 'auto' | WasmVariant {
  const v = options.variant ?? 'auto';
  if (v !== 'auto' && v !== 'simd' && v !== 'relaxed') {
    throw new Error(`variant must be 'auto', 'simd' or 'relaxed', got ${JSON.stringify(v)}`);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// The kernels

export class WasmKernels implements Kernels {
  readonly dtype = 'float32' as const;
  readonly name: 'wasm-simd' | 'wasm-relaxed-simd';
  readonly variant: WasmVariant;
  /** The shared memory every buffer of these kernels lives in. */
  readonly memory: WasmMemory;

  /** The compiled module these kernels instantiated (another thread attaches with it). */
  readonly module: object;
  private readonly ex: KernelExports;
  /** memory.buffer as of the last growth; older SharedArrayBuffer objects are in `buffers`. */
  private buf: ArrayBufferLike;
  private readonly buffers = new Set<ArrayBufferLike>();
  /** First byte the allocator hands out. */
  private readonly base: number;
  /** Kernels attached to another thread's memory (options.attach): the end of their arena, else null. */
  private readonly arenaEnd: number | null = null;
  /** The lowest byte offset a view may start at (above the static data and the main scratch). */
  private readonly floor: number;
  /** Bump pointer (bytes): everything below is handed out, static data or scratch. */
  private top: number;
  /**
   * Views that p() has already accepted, with their byte offset and length. A view keeps both
   * for life, and reading them from a view of shared memory costs tens of ns in V8 (byteOffset
   * about 30, and checking .buffer about 45), while this lookup costs about 10: sampling makes
   * some 35 such calls per character.
   */
  private checked = new WeakMap<Float32Array | Float64Array, ViewPlace>();
  /** The same for id arrays (idsPtr): their byte offset in wasm memory, or −1 when they live elsewhere. */
  private idsPlace = new WeakMap<Int32Array, number>();
  /** Scratch area for target ids that do not live in wasm memory, and its byte offset. */
  private scratch: Int32Array | null = null;
  private scratchOffset = 0;
  /** The export XWT_PACKED_M (reading a WebAssembly.Global costs a call). */
  private readonly xwtPackedM: number;
  /** Where matmulDyTX packs X whole when that pays (dytxPackFloats), reused from call to call. */
  private xPack: Float32Array | null = null;
  /**
   * The weights declared constant by the open withConstantWeights scopes, innermost last, and
   * their packed copies (0: not packed yet): xwt for matmulXWt from XWT_PACKED_M rows on, dyw for
   * matmulDyW, mv for matmulXWt / matmulXWt2 at one row.
   */
  private constant: ConstantWeight[] = [];
  /** Where the packed copies go, by nesting depth and kind, reused from one scope to the next. */
  private packBuffers: Record<PackKind, Float32Array | null>[] = [];
  /** Copies packed by someone else (sharePacked), by byte offset of W; each kind 0 when not shared. */
  private shared: { ptr: number; N: number; K: number; xwt: number; dyw: number }[] = [];

  /** Use loadWasmKernels / loadWasmKernelsSync (src/nn/wasm-node.ts, wasm-browser.ts); `module` is a compiled build of `variant`. */
  constructor(module: object, variant: WasmVariant, options: WasmKernelsOptions = {}) {
    const api = wasmApi();
    if (!api) throw new Error('this JavaScript runtime has no WebAssembly');
    this.variant = variant;
    this.module = module;
    this.name = variant === 'relaxed' ? 'wasm-relaxed-simd' : 'wasm-simd';
    const initialBytes = options.initialBytes ?? DEFAULT_INITIAL_BYTES;
    if (!(initialBytes >= 0)) throw new Error(`initialBytes must be a non-negative number, got ${initialBytes}`);
    const initial = Math.min(MAX_PAGES, Math.max(MIN_PAGES, Math.ceil(initialBytes / PAGE)));
    const attach = options.attach;
    this.memory = attach?.memory ?? new api.Memory({ initial, maximum: MAX_PAGES, shared: true });
    // (Instantiating writes the module's static data again: constants, the same bytes.)
    const instance = new api.Instance(module, { env: { memory: this.memory } });
    this.ex = instance.exports as unknown as KernelExports;
    this.xwtPackedM = this.ex.XWT_PACKED_M.value;
    this.buf = this.memory.buffer;
    this.buffers.add(this.buf);
    // Below heapBase: static data and the kernels' scratch space.
    this.floor = align16(Math.max(16, this.ex.heapBase()));
    if (attach) {
      const { start, end } = attach.arena;
      const scratch = this.ex.scratchBytes();
      if (!(start % 16 === 0 && start >= this.floor && end >= start + scratch && end <= this.buf.byteLength)) {
        throw new RangeError(`WasmKernels: arena [${start}, ${end}) is not an allocated area of at least ${scratch} bytes in this memory`);
      }
      this.ex.setScratch(start);
      this.arenaEnd = end;
      this.base = align16(start + scratch);
    } else this.base = this.floor;
    this.top = this.base;
    this.ensure(this.top);
  }

  /** The bytes of the scratch space each thread's instance needs (the start of an attach arena). */
  scratchBytes(): number {
    return this.ex.scratchBytes();
  }

  /** Bytes handed out so far (including static data and alignment). */
  get bytesAllocated(): number {
    return this.top;
  }

  /** Grows the memory (by at least a quarter, to keep growths rare) so that `end` bytes fit. */
  private ensure(end: number): void {
    if (this.arenaEnd !== null) {
      // Attached: the arena was allocated by the owner; only its end bounds us.
      if (end > this.arenaEnd) {
        throw new RangeError(
          `WasmKernels: this thread's arena is full (${end - this.base} bytes needed, ` +
            `${this.arenaEnd - this.base} reserved); reserve a larger one`,
        );
      }
      this.syncMemory();
      return;
    }
    const have = this.buf.byteLength;
    if (end <= have) return;
    const havePages = have / PAGE;
    const needPages = Math.ceil(end / PAGE);
    if (needPages > MAX_PAGES) {
      throw new RangeError(`WasmKernels: out of memory: ${end} bytes needed, the maximum is ${MAX_PAGES * PAGE} (4 GiB)`);
    }
    const pages = Math.min(MAX_PAGES, Math.max(needPages, havePages + Math.ceil(havePages / 4)));
    this.memory.grow(pages - havePages);
    this.buf = this.memory.buffer;
    this.buffers.add(this.buf);
  }

  /** After the owner grew the shared memory: see its new length (views made earlier stay valid). */
  syncMemory(): void {
    if (this.memory.buffer.byteLength !== this.buf.byteLength) {
      this.buf = this.memory.buffer;
      this.buffers.add(this.buf);
    }
  }

  private bump(bytes: number): number {
    const start = this.top;
    const end = align16(start + bytes);
    this.ensure(end);
    this.top = end;
    return start;
  }

  alloc(n: number): Float32Array {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`alloc: n must be a non-negative integer, got ${n}`);
    const start = this.bump(n * 4);
    return new Float32Array(this.buf, start, n);
  }

  /** An Int32Array of n elements in wasm memory (zero-filled), e.g. for target ids. */
  allocInt32(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`allocInt32: n must be a non-negative integer, got ${n}`);
    const start = this.bump(n * 4);
    return new Int32Array(this.buf, start, n);
  }

  /**
   * Scoped allocation: `const mark = k.mark(); ...; k.release(mark)` gives back everything
   * allocated after `mark` (and zero-fills it, so that `alloc` keeps returning zeroed memory).
   * Views into the released range must not be used afterwards: until that memory is handed out
   * again, the kernels refuse them (release forgets every view they had accepted); after that,
   * they alias the new allocation.
   */
  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    if (!Number.isInteger(mark) || mark % 16 !== 0 || mark < this.base || mark > this.top) {
      throw new RangeError(`release: ${mark} is not a mark of these kernels (current top ${this.top})`);
    }
    new Uint8Array(this.memory.buffer, mark, this.top - mark).fill(0);
    if (this.scratch !== null && this.scratch.byteOffset >= mark) this.scratch = null;
    if (this.xPack !== null && this.xPack.byteOffset >= mark) this.xPack = null;
    for (const kind of PACK_KINDS) {
      for (const bufs of this.packBuffers) if ((bufs[kind]?.byteOffset ?? 0) >= mark) bufs[kind] = null;
      for (const c of this.constant) if (c[kind] >= mark) c[kind] = 0;
    }
    this.top = mark;
    // Forget the views accepted so far (a WeakMap cannot be walked): views of the released
    // range must be checked again, and are refused while they lie above the top.
    this.checked = new WeakMap();
    this.idsPlace = new WeakMap();
  }

  /** Whether `a` is a view into this kernels' memory. */
  owns(a: ArrayBufferView): boolean {
    return a.buffer === this.buf || this.buffers.has(a.buffer);
  }

  /** The byte offset of `a` after checking it is a long-enough Float32Array in this memory. */
  private p(a: Float, need: number, what: string): number {
    // A view that passed is remembered with its place (see `checked`); the model passes the same
    // views again and again.
    const v = this.checked.get(a) ?? this.check(a, what);
    if (v.length < need) throw new RangeError(`${this.name}: ${what} has ${v.length} elements, the shape needs ${need}`);
    return v.offset;
  }

  /** Throws unless `a` is a Float32Array view into this memory above the static area; remembers it. */
  private check(a: Float, what: string): ViewPlace {
    if (this.arenaEnd !== null && a instanceof Float32Array && !this.buffers.has(a.buffer)) this.syncMemory();
    if (!(a instanceof Float32Array) || !(a.buffer === this.buf || this.buffers.has(a.buffer))) {
      throw new TypeError(
        `${this.name}: ${what} must be a Float32Array allocated by these kernels (kernels.alloc) or a subarray of one`,
      );
    }
    if (a.byteOffset < this.floor) throw new RangeError(`${this.name}: ${what} overlaps the kernels' own static memory`);
    // (Attached kernels also work on the owner's buffers, anywhere above the static data.)
    if (this.arenaEnd === null && a.byteOffset + a.byteLength > this.top) {
      throw new RangeError(`${this.name}: ${what} lies in memory given back by release(); allocate it again`);
    }
    const v = { offset: a.byteOffset, length: a.length };
    this.checked.set(a, v);
    return v;
  }

  /** Byte offset of ids[0..M) in wasm memory (copied to scratch if needed), each checked in [0, V). */
  private idsPtr(t: Int32Array, M: number, V: number, what: string): number {
    if (!(t instanceof Int32Array)) throw new TypeError(`${this.name}: ${what} must be an Int32Array`);
    if (t.length < M) throw new RangeError(`${this.name}: ${what} has ${t.length} elements, needs ${M}`);
    let at = this.idsPlace.get(t);
    if (at === undefined) {
      at = this.owns(t) && t.byteOffset >= this.floor ? t.byteOffset : -1;
      if (at >= 0 && this.arenaEnd === null && t.byteOffset + t.byteLength > this.top) {
        throw new RangeError(`${this.name}: ${what} lies in memory given back by release(); allocate it again`);
      }
      this.idsPlace.set(t, at);
    }
    // Ids that live elsewhere are copied into the scratch area as they are checked.
    let copy: Int32Array | null = null;
    if (at < 0) {
      if (this.scratch === null || this.scratch.length < M) {
        this.scratch = this.allocInt32(Math.max(M, 2 * (this.scratch?.length ?? 0), 1024));
        this.scratchOffset = this.scratch.byteOffset;
      }
      copy = this.scratch;
      at = this.scratchOffset;
    }
    const one = what === 'targets' ? 'target' : 'id';
    // (A negative target means "not scored": the loss kernels skip it.)
    const low = what === 'targets' ? -2147483648 : 0;
    for (let m = 0; m < M; m++) {
      const id = t[m];
      if (!(id >= low && id < V)) {
        throw new RangeError(`${this.name}: ${one} ${m} is ${id}, ${low < 0 ? `not below ${V}` : `outside [0, ${V})`}`);
      }
      if (copy !== null) copy[m] = id;
    }
    return at;
  }

  /**
   * Runs `fn` with W[N,K] declared constant: matmulXWt, matmulXWt2 and matmulDyW with this W
   * (same view start and shape) inside `fn` use a copy of W packed once, at the first product
   * that needs it, instead of packing W on every call (or, at one row, instead of reading W row
   * by row). `fn` must not change W. Scopes nest and add up: inside two scopes, both weights are
   * constant.
   */
  withConstantWeights(W: Float, N: number, K: number, fn: () => void): void {
    dims(N, K, 0);
    this.constant.push({ ptr: this.p(W, N * K, 'W'), N, K, xwt: 0, dyw: 0, mv: 0 });
    try {
      fn();
    } finally {
      this.constant.pop();
    }
  }

  /** The packed copy of W for `kind`, if W was declared constant (packed now if needed); else 0. */
  private packed(kind: PackKind, W: number, N: number, K: number): number {
    // The outermost scope that declared W (a loop: findIndex would allocate a closure per call).
    const scopes = this.constant;
    let depth = 0;
    while (depth < scopes.length && !(scopes[depth].ptr === W && scopes[depth].N === N && scopes[depth].K === K)) depth++;
    if (depth === scopes.length) return 0;
    const c = this.constant[depth];
    if (c[kind] === 0 && kind !== 'mv') {
      for (const s of this.shared) if (s.ptr === W && s.N === N && s.K === K) c[kind] = s[kind];
    }
    if (c[kind] === 0) {
      const floats =
        kind === 'xwt' ? Math.ceil(N / 8) * 8 * K : kind === 'dyw' ? Math.ceil(K / 8) * 8 * N : this.ex.packMvSize(N, K);
      if (floats === 0) return 0; // mv with fewer than 6 rows: nothing to pack
      while (this.packBuffers.length <= depth) this.packBuffers.push({ xwt: null, dyw: null, mv: null });
      const bufs = this.packBuffers[depth];
      let buf = bufs[kind];
      if (buf === null || buf.length < floats) buf = bufs[kind] = this.alloc(floats);
      const dst = buf.byteOffset;
      if (kind === 'xwt') this.ex.packXWt(dst, W, N, K);
      else if (kind === 'dyw') this.ex.packDyW(dst, W, N, K);
      else this.ex.packMv(dst, W, N, K);
      c[kind] = dst;
    }
    return c[kind];
  }

  /** The floats of W [N, K] packed as `kind` (the size of packWeight's dst). */
  packedFloats(kind: SharedPackKind, N: number, K: number): number {
    dims(N, K, 0);
    return kind === 'xwt' ? Math.ceil(N / 8) * 8 * K : Math.ceil(K / 8) * 8 * N;
  }

  /** Packs W [N, K] into dst as `kind`: the copy a constant W gets for matmulXWt ('xwt') or matmulDyW ('dyw'). */
  packWeight(kind: SharedPackKind, dst: Float32Array, W: Float32Array, N: number, K: number): void {
    const d = this.p(dst, this.packedFloats(kind, N, K), 'dst');
    const w = this.p(W, N * K, 'W');
    if (kind === 'xwt') this.ex.packXWt(d, w, N, K);
    else this.ex.packDyW(d, w, N, K);
  }

  /**
   * Until called again (null: none), weights declared constant (withConstantWeights) whose copies
   * are listed here use those copies instead of packing their own: for threads that share one
   * copy of each weight, packed once per step (src/parallel/). The copies must hold W as it is
   * (packWeight of the current W); they are the same data, so the products give the same bits.
   */
  sharePacked(copies: readonly PackedCopies[] | null): void {
    this.shared = (copies ?? []).map((c) => ({
      ptr: this.p(c.W, c.N * c.K, 'W'),
      N: c.N,
      K: c.K,
      xwt: c.xwt === null ? 0 : this.p(c.xwt, this.packedFloats('xwt', c.N, c.K), 'xwt'),
      dyw: c.dyw === null ? 0 : this.p(c.dyw, this.packedFloats('dyw', c.N, c.K), 'dyw'),
    }));
  }

  matmulXWt(Y: Float, X: Float, W: Float, b: Float | null, M: number, N: number, K: number, accumulate: boolean): void {
    dims(M, N, K);
    const bp = b === null ? 0 : this.p(b, N, 'b');
    const w = this.p(W, N * K, 'W');
    const wp = M >= this.xwtPackedM ? this.packed('xwt', w, N, K) : 0;
    const wq = M === 1 && this.constant.length > 0 ? this.packed('mv', w, N, K) : 0;
    this.ex.matmulXWt(this.p(Y, M * N, 'Y'), this.p(X, M * K, 'X'), w, bp, M, N, K, accumulate ? 1 : 0, wp, wq);
  }

  matmulXWt2(
    Y: Float, X1: Float, W1: Float, X2: Float, W2: Float, b1: Float | null, b2: Float | null,
    M: number, N: number, K1: number, K2: number,
  ): void {
    dims(M, N, K1);
    dims(K2, 0, 0);
    const b1p = b1 === null ? 0 : this.p(b1, N, 'b1');
    const b2p = b2 === null ? 0 : this.p(b2, N, 'b2');
    const w1 = this.p(W1, N * K1, 'W1');
    const w2 = this.p(W2, N * K2, 'W2');
    const one = M === 1 && this.constant.length > 0;
    this.ex.matmulXWt2(
      this.p(Y, M * N, 'Y'), this.p(X1, M * K1, 'X1'), w1, this.p(X2, M * K2, 'X2'), w2, b1p, b2p, M, N, K1, K2,
      one && K1 > 0 ? this.packed('mv', w1, N, K1) : 0, one && K2 > 0 ? this.packed('mv', w2, N, K2) : 0,
    );
  }

  matmulDyW(dX: Float, dY: Float, W: Float, M: number, N: number, K: number): void {
    dims(M, N, K);
    const w = this.p(W, N * K, 'W');
    const wp = M > 0 ? this.packed('dyw', w, N, K) : 0; // a declared W: packed from 1 row on (DYW_SMALL_M)
    this.ex.matmulDyW(this.p(dX, M * K, 'dX'), this.p(dY, M * N, 'dY'), w, M, N, K, wp);
  }

  matmulDyTX(dW: Float, db: Float | null, dY: Float, X: Float, M: number, N: number, K: number): void {
    dims(M, N, K);
    const dbp = db === null ? 0 : this.p(db, N, 'db');
    const floats = this.ex.dytxPackFloats(M, N, K);
    // Grown by at least half when it grows again (allocations are never given back; see release).
    if (floats > 0 && (this.xPack === null || this.xPack.length < floats)) {
      this.xPack = this.alloc(this.xPack === null ? floats : Math.max(floats, Math.ceil(1.5 * this.xPack.length)));
    }
    const xpk = floats > 0 ? this.xPack!.byteOffset : 0;
    this.ex.matmulDyTX(this.p(dW, N * K, 'dW'), dbp, this.p(dY, M * N, 'dY'), this.p(X, M * K, 'X'), M, N, K, xpk);
  }

  lstmForward(gates: Float, cPrev: Float, c: Float, tc: Float, h: Float, M: number, N: number): void {
    dims(M, N, 0);
    const s = M * N;
    this.ex.lstmForward(
      this.p(gates, 4 * s, 'gates'), this.p(cPrev, s, 'cPrev'), this.p(c, s, 'c'), this.p(tc, s, 'tc'), this.p(h, s, 'h'), M, N,
    );
  }

  lstmBackward(
    gates: Float, cPrev: Float, tc: Float, dh: Float, dc: Float, dGates: Float, dcPrev: Float, M: number, N: number,
  ): void {
    dims(M, N, 0);
    const s = M * N;
    this.ex.lstmBackward(
      this.p(gates, 4 * s, 'gates'), this.p(cPrev, s, 'cPrev'), this.p(tc, s, 'tc'), this.p(dh, s, 'dh'), this.p(dc, s, 'dc'),
      this.p(dGates, 4 * s, 'dGates'), this.p(dcPrev, s, 'dcPrev'), M, N,
    );
  }

  gruResetForward(zr: Float, h: Float, rh: Float, M: number, N: number): void {
    dims(M, N, 0);
    const s = M * N;
    this.ex.gruResetForward(this.p(zr, 2 * s, 'zr'), this.p(h, s, 'h'), this.p(rh, s, 'rh'), M, N);
  }

  gruForward(zr: Float, n: Float, hPrev: Float, h: Float, M: number, N: number): void {
    dims(M, N, 0);
    const s = M * N;
    this.ex.gruForward(this.p(zr, 2 * s, 'zr'), this.p(n, s, 'n'), this.p(hPrev, s, 'hPrev'), this.p(h, s, 'h'), M, N);
  }

  gruBackward(zr: Float, n: Float, hPrev: Float, dh: Float, dzr: Float, dn: Float, dhPrev: Float, M: number, N: number): void {
    dims(M, N, 0);
    const s = M * N;
    this.ex.gruBackward(
      this.p(zr, 2 * s, 'zr'), this.p(n, s, 'n'), this.p(hPrev, s, 'hPrev'), this.p(dh, s, 'dh'), this.p(dzr, 2 * s, 'dzr'),
      this.p(dn, s, 'dn'), this.p(dhPrev, s, 'dhPrev'), M, N,
    );
  }

  gruResetBackward(zr: Float, hPrev: Float, drh: Float, dzr: Float, dhPrev: Float, M: number, N: number): void {
    dims(M, N, 0);
    const s = M * N;
    this.ex.gruResetBackward(
      this.p(zr, 2 * s, 'zr'), this.p(hPrev, s, 'hPrev'), this.p(drh, s, 'drh'), this.p(dzr, 2 * s, 'dzr'), this.p(dhPrev, s, 'dhPrev'), M, N,
    );
  }

  rnnForward(a: Float, h: Float, M: number, N: number): void {
    dims(M, N, 0);
    const s = M * N;
    this.ex.rnnForward(this.p(a, s, 'a'), this.p(h, s, 'h'), s);
  }

  rnnBackward(h: Float, dh: Float, da: Float, M: number, N: number): void {
    dims(M, N, 0);
    const s = M * N;
    this.ex.rnnBackward(this.p(h, s, 'h'), this.p(dh, s, 'dh'), this.p(da, s, 'da'), s);
  }

  gatherRows(out: Float, table: Float, ids: Int32Array, M: number, width: number, rows: number): void {
    dims(M, width, rows);
    if (M === 0 || width === 0) return;
    const ip = this.idsPtr(ids, M, rows, 'ids');
    this.ex.gatherRows(this.p(out, M * width, 'out'), this.p(table, rows * width, 'table'), ip, M, width);
  }

  scatterAddRows(dst: Float, src: Float, ids: Int32Array, M: number, width: number, rows: number): void {
    dims(M, width, rows);
    if (M === 0 || width === 0) return;
    const ip = this.idsPtr(ids, M, rows, 'ids');
    this.ex.scatterAddRows(this.p(dst, rows * width, 'dst'), this.p(src, M * width, 'src'), ip, M, width);
  }

  softmaxScaled(p: Float, x: Float, V: number, invTemperature: number): number {
    dims(V, 0, 0);
    // (invT is a float32 here: above its largest value, the limit, which that value already gives)
    return this.ex.softmaxScaled(this.p(p, V, 'p'), this.p(x, V, 'x'), V, Math.min(invTemperature, F32_MAX));
  }

  logSoftmaxNll(logits: Float, targets: Int32Array, M: number, V: number): number {
    dims(M, V, 0);
    const lp = this.p(logits, M * V, 'logits');
    if (M === 0) return 0;
    return this.ex.logSoftmaxNll(lp, this.idsPtr(targets, M, V, 'targets'), M, V);
  }

  logSoftmaxNllBackward(dLogits: Float, logp: Float, targets: Int32Array, M: number, V: number, scale: number): void {
    dims(M, V, 0);
    const dp = this.p(dLogits, M * V, 'dLogits');
    const lp = this.p(logp, M * V, 'logp');
    if (M === 0) return;
    this.ex.logSoftmaxNllBackward(dp, lp, this.idsPtr(targets, M, V, 'targets'), M, V, scale);
  }

  // --- Beyond the Kernels interface: element-wise updates over whole buffers (src/train/optim.ts).

  /** RMSprop, as Optimizer.step: m = α·m + (1−α)·g²;  x −= lr·g / (√m + ε). Bit-identical to it. */
  rmsprop(x: Float32Array, g: Float32Array, m: Float32Array, lr: number, alpha: number, eps: number): void {
    const n = x.length;
    this.ex.rmsprop(this.p(x, n, 'x'), this.p(g, n, 'g'), this.p(m, n, 'm'), n, lr, alpha, eps);
  }

  /**
   * Adam, as Optimizer.step: m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  x −= stepSize·m/(√v + ε)
   * with stepSize = lr·√(1−β2ᵗ)/(1−β1ᵗ) computed by the caller. Bit-identical to Optimizer.step.
   */
  adam(
    x: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array,
    lr: number, beta1: number, beta2: number, eps: number, stepSize: number,
  ): void {
    const n = x.length;
    this.ex.adam(this.p(x, n, 'x'), this.p(g, n, 'g'), this.p(m, n, 'm'), this.p(v, n, 'v'), n, lr, beta1, beta2, eps, stepSize);
  }

  /** clipGradients: g = clamp(g, −c, c); nothing when !(c > 0), as in src/train/optim.ts. */
  clip(g: Float32Array, c: number): void {
    if (!(c > 0)) return;
    this.ex.clip(this.p(g, g.length, 'g'), g.length, c);
  }

  firstNonFinite(a: Float): number {
    return this.ex.firstNonFinite(this.p(a, a.length, 'a'), a.length);
  }

  sumSquares2(a: Float, b: Float): [number, number] {
    const n = a.length;
    if (b.length !== n) throw new RangeError(`${this.name}: sumSquares2 of ${n} and ${b.length} elements`);
    const sa = this.ex.sumSquares2(this.p(a, n, 'a'), this.p(b, n, 'b'), n);
    return [sa, this.ex.sumSquaresSecond()];
  }

  /** dst += src element-wise (float32 additions, as a JS loop over Float32Arrays would do them); same lengths. */
  addInPlace(dst: Float32Array, src: Float32Array): void {
    const n = dst.length;
    if (src.length !== n) throw new RangeError(`${this.name}: addInPlace of ${src.length} elements into ${n}`);
    this.ex.addInPlace(this.p(dst, n, 'dst'), this.p(src, n, 'src'), n);
  }

  /** Benchmark only: runs `iters` iterations of 96 f32x4 multiply-add flops each (see assembly/kernels.ts). */
  peakMulAdd(iters: number): number {
    return this.ex.peakMulAdd(iters);
  }

  /** Applies the kernels' float32 exp, σ or tanh to `a` in place (for tests and diagnostics). */
  mapInPlace(fn: 'exp' | 'sigmoid' | 'tanh', a: Float32Array): void {
    const ptr = this.p(a, a.length, 'a');
    if (fn === 'exp') this.ex.vmap(0, ptr, a.length);
    else if (fn === 'sigmoid') this.ex.vmap(1, ptr, a.length);
    else if (fn === 'tanh') this.ex.vmap(2, ptr, a.length);
    else throw new Error(`unknown function ${JSON.stringify(fn)}`);
  }
}

function align16(n: number): number {
  return Math.ceil(n / 16) * 16;
}

/** The largest finite float32. */
const F32_MAX = 3.4028234663852886e38;

/** Shapes must be non-negative integers (wasm takes them as i32). */
function dims(a: number, b: number, c: number): void {
  if (!(isDim(a) && isDim(b) && isDim(c))) throw new RangeError(`matrix sizes must be non-negative integers, got ${a}, ${b}, ${c}`);
}

function isDim(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x < 2 ** 31;
}
