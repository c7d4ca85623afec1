/**
 * The WebAssembly kernels in a browser (or any runtime with fetch): the builds fetched from the
 * URLs of src/nn/wasm.ts (`new URL('../../build/kernels.wasm', import.meta.url)`, which a bundler
 * copies into its output), relaxed SIMD where `WebAssembly.validate` accepts it.
 */
import { WasmKernels, type WasmKernelsOptions, WasmLoader, type WasmVariant, wasmUrl } from './wasm.js';

/** The little of fetch used here (the project compiles without the DOM lib). */
type Fetch = (url: string) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface BrowserWasmOptions extends WasmKernelsOptions {
  /**
   * Where the builds are, when not where the bundler put them (e.g. a page that serves
   * build/kernels.wasm itself): a URL per variant.
   */
  urls?: Partial<Record<WasmVariant, string | URL>>;
}

const loaders = new Map<string, WasmLoader>();

function loaderFor(urls: Partial<Record<WasmVariant, string | URL>> = {}): WasmLoader {
  const where = (v: WasmVariant) => String(urls[v] ?? wasmUrl(v));
  const key = `${where('simd')} ${where('relaxed')}`;
  let loader = loaders.get(key);
  if (!loader) {
    loader = new WasmLoader({
      async read(variant) {
        const url = where(variant);
        const fetch = (globalThis as unknown as { fetch?: Fetch }).fetch;
        if (!fetch) return new Error('this JavaScript runtime has no fetch to load the WebAssembly kernels with');
        try {
          const r = await fetch(url);
          if (!r.ok) return new Error(`WebAssembly kernels not found at ${url} (HTTP ${r.status}): serve grid-lstm's build/ folder with the page (a bundler copies it)`);
          return new Uint8Array(await r.arrayBuffer());
        } catch (e) {
          return new Error(`cannot fetch the WebAssembly kernels at ${url}: ${(e as Error)?.message ?? e}`, { cause: e });
        }
      },
    });
    loaders.set(key, loader);
  }
  return loader;
}

/**
 * Fetches, compiles (once per page or worker and variant) and instantiates the kernels: a fresh
 * WasmKernels with its own shared memory. The relaxed-SIMD build where the engine validates it
 * (Chromium 114 and later), else the SIMD one; `variant` to choose.
 */
export function loadWasmKernels(options: BrowserWasmOptions = {}): Promise<WasmKernels> {
  return loaderFor(options.urls).load(options);
}
