/**
 * The WebAssembly kernels in Node: the builds read from build/ next to dist/ (src/nn/wasm.ts has
 * the kernels themselves), relaxed SIMD turned on through V8's flag on Node 20.
 */
import { setFlagsFromString } from 'node:v8';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { WasmKernels, type WasmKernelsOptions, WasmLoader, type WasmVariant, wasmUrl } from './wasm.js';

function missingError(variant: WasmVariant, cause: unknown): Error {
  const path = fileURLToPath(wasmUrl(variant));
  return new Error(
    `WebAssembly kernels not found at ${path}: run \`npm run build\` (its build:wasm step compiles assembly/kernels.ts)`,
    { cause },
  );
}

const loader = new WasmLoader({
  async read(variant) {
    try {
      return new Uint8Array(await readFile(wasmUrl(variant)));
    } catch (e) {
      return missingError(variant, e);
    }
  },
  readSync(variant) {
    try {
      return new Uint8Array(readFileSync(wasmUrl(variant)));
    } catch (e) {
      return missingError(variant, e);
    }
  },
  enableRelaxedSimd() {
    try {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // An engine that does not know the flag: keep the plain SIMD build.
    }
  },
});

/** Loads (compiling once per process and variant) a fresh WasmKernels with its own memory. */
export function loadWasmKernels(options: WasmKernelsOptions = {}): Promise<WasmKernels> {
  return loader.load(options);
}

/** The synchronous twin of loadWasmKernels (fine in Node: the modules are small). */
export function loadWasmKernelsSync(options: WasmKernelsOptions = {}): WasmKernels {
  return loader.loadSync(options);
}

/** True when the SIMD kernels (or, with variant 'relaxed', the relaxed ones) can be loaded here. */
export function wasmAvailable(variant: WasmVariant = 'simd'): boolean {
  return loader.available(variant);
}
