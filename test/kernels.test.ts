/**
 * The TypeScript kernels (src/nn/kernels.ts) where the WebAssembly comparison (test/wasm.test.ts)
 * cannot speak for them: the checks of the token ids that gatherRows and scatterAddRows read
 * (a bad id is a clear error, never a silent read outside the table).
 */
import { describe, expect, it } from 'vitest';
import { TsKernels } from '../src/index.js';

describe("TsKernels' id checks", () => {
  const k = new TsKernels('float64');
  const rows = 4;
  const width = 2;
  const table = Float64Array.from({ length: rows * width }, (_, j) => j + 1);
  const calls = {
    gatherRows: (ids: Int32Array, M: number) => k.gatherRows(new Float64Array(M * width), table, ids, M, width, rows),
    scatterAddRows: (ids: Int32Array, M: number) => k.scatterAddRows(new Float64Array(rows * width), new Float64Array(M * width), ids, M, width, rows),
  };
  for (const [name, call] of Object.entries(calls)) {
    it(`${name}: ids must be an Int32Array of at least M ids in [0, rows); only the first M are read`, () => {
      expect(() => call([0, 1] as unknown as Int32Array, 2)).toThrow(new TypeError('ids must be an Int32Array'));
      expect(() => call(Float64Array.of(0, 1) as unknown as Int32Array, 2)).toThrow(TypeError);
      expect(() => call(Int32Array.of(0, 1), 3)).toThrow(new RangeError('ids has 2 elements, needs 3'));
      expect(() => call(Int32Array.of(0, 4, 1), 3)).toThrow(new RangeError('id 1 is 4, outside [0, 4)'));
      expect(() => call(Int32Array.of(0, 1, -1), 3)).toThrow(new RangeError('id 2 is -1, outside [0, 4)'));
      // Exactly M ids, the largest one rows − 1, and a bad id past the first M: accepted.
      expect(() => call(Int32Array.of(3, 0, 3), 3)).not.toThrow();
      expect(() => call(Int32Array.of(3, 0, 99), 2)).not.toThrow();
    });
  }

  it('gatherRows copies row ids[m] of the table; scatterAddRows adds row m back to row ids[m], repeats summed', () => {
    const ids = Int32Array.of(2, 0, 2);
    const out = new Float64Array(3 * width);
    k.gatherRows(out, table, ids, 3, width, rows);
    expect([...out]).toEqual([5, 6, 1, 2, 5, 6]);
    const dst = new Float64Array(rows * width);
    k.scatterAddRows(dst, Float64Array.of(1, 2, 3, 4, 5, 6), ids, 3, width, rows);
    expect([...dst]).toEqual([3, 4, 0, 0, 6, 8, 0, 0]);
  });
});
