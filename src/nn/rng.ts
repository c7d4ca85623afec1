/**
 * A small seeded random number generator (mulberry32) whose whole state is one 32-bit integer,
 * so a training run can save it in a checkpoint and resume bit for bit.
 *
 * Used for parameter initialisation, dropout masks and sampling. Not cryptographic.
 */
export class Rng {
  /** The generator's state: any 32-bit unsigned integer. */
  state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
    // Mix the seed once so that nearby seeds (1, 2, 3...) start far apart.
    this.state = Math.imul((Math.trunc(seed) ^ 0x9e3779b9) >>> 0, 0x85ebca6b) >>> 0;
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  }

  /**
   * Advances the state as `n` calls of nextU32 would (n a whole number below 2⁵³): the state
   * is a counter, so draw number k of a sequence can be had without the k before it.
   */
  skip(n: number): void {
    // (n·increment mod 2³², from n mod 2³²; Math.imul keeps the low 32 bits of the product)
    this.state = (this.state + (Math.imul(n % 4294967296 >>> 0, 0x6d2b79f5) >>> 0)) >>> 0;
  }

  /** Uniform on [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform on [lo, hi). */
  uniformRange(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}
