/**
 * WasmKernels.release: views of the released range must not keep passing the kernels' checks
 * (the kernels remember the views they accepted; release must forget them), or a stale view
 * writes into whatever is allocated there next.
 */
import { describe, expect, it } from 'vitest';
import { loadWasmKernelsSync } from '../src/nn/wasm-node.js';

describe('WasmKernels.release', () => {
  it('refuses a released Float32Array view that a kernel had accepted, and the next allocation stays zero', () => {
    const k = loadWasmKernelsSync({ variant: 'simd' });
    const live = k.alloc(8); // below the mark: stays usable
    live.fill(3);
    k.clip(live, 1);
    const mark = k.mark();
    const stale = k.alloc(8);
    stale.fill(5);
    k.clip(stale, 2); // accepted (and remembered)
    expect(Array.from(stale)).toEqual(new Array(8).fill(2));
    k.release(mark);
    expect(() => k.clip(stale, 1)).toThrow(/g lies in memory given back by release\(\)/);
    expect(() => k.softmaxScaled(stale, live, 8, 1)).toThrow(/lies in memory given back by release/);
    // A subarray of a released view is refused too, and the one-line message has no newline.
    expect(() => k.clip(stale.subarray(2), 1)).toThrow(/given back by release/);
    // The memory handed out next (the same bytes) is zero, not written through the stale view.
    const next = k.alloc(8);
    expect(next.byteOffset).toBe(stale.byteOffset);
    expect(Array.from(next)).toEqual(new Array(8).fill(0));
    // Views below the mark still work (checked again after release).
    k.clip(live, 0.5);
    expect(Array.from(live)).toEqual(new Array(8).fill(0.5));
    k.clip(next, 1);
  });

  it('refuses released target ids (Int32Array in wasm memory) that a kernel had accepted', () => {
    const k = loadWasmKernelsSync({ variant: 'simd' });
    const logits = k.alloc(2 * 3);
    const mark = k.mark();
    const targets = k.allocInt32(2);
    targets.set([1, 2]);
    expect(Number.isFinite(k.logSoftmaxNll(logits, targets, 2, 3))).toBe(true);
    k.release(mark);
    expect(() => k.logSoftmaxNll(logits, targets, 2, 3)).toThrow(/targets lies in memory given back by release/);
    // Ids outside wasm memory are still copied in and used.
    expect(k.logSoftmaxNll(logits, Int32Array.of(0, 1), 2, 3)).toBeCloseTo(2 * Math.log(3), 6); // the sum over 2 rows of ln 3
  });
});
