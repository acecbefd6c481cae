// Seeded random numbers (xoshiro128**), cheap in 32-bit JS arithmetic and fully reproducible
// across machines: an epoch's order and every augmentation are a function of (seed, epoch, item).
import { splitmix32 } from './splitmix.js';

/** The complete generator state; `restore()` continues the stream exactly where `state()` left it. */
export type RngState = [number, number, number, number];

/** Folds a list of integers (seed, epoch, item id, ...) into one 32-bit value. */
function mixKeys(keys: readonly number[]): number {
  let h = 0x6a09e667;
  for (const k of keys) {
    if (!Number.isInteger(k)) throw new Error(`rng: seed components must be integers, got ${k}`);
    // Split values above 2^32 into two words so large seeds are not truncated.
    const lo = k >>> 0;
    const hi = Math.floor(k / 0x100000000) >>> 0;
    h = splitmix32(h ^ lo);
    h = splitmix32(h ^ hi);
  }
  return h;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** `new Rng(seed, epoch, id)`: one independent stream per combination of integer keys. */
  constructor(...keys: number[]) {
    let x = mixKeys(keys.length ? keys : [0]);
    const next = (): number => (x = splitmix32(x));
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next raw 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 bits of resolution. */
  float(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform float in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.float();
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) throw new Error(`rng.int: bad range ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  intIn(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** Bernoulli draw. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Standard normal (Box–Muller; one value per call keeps the state simple to snapshot). */
  normal(): number {
    let u = this.float();
    while (u === 0) u = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.float());
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i] as T;
      arr[i] = arr[j] as T;
      arr[j] = t;
    }
    return arr;
  }

  /** A shuffled [0, n). */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** Picks one element. */
  pick<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new Error('rng.pick: empty array');
    return arr[this.int(arr.length)] as T;
  }

  state(): RngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  restore(state: RngState): this {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new Error(`rng.restore: invalid state ${JSON.stringify(state)}`);
    }
    if (state.every((v) => v === 0)) throw new Error('rng.restore: all-zero state is invalid for xoshiro');
    [this.s0, this.s1, this.s2, this.s3] = state;
    return this;
  }

  static fromState(state: RngState): Rng {
    return new Rng(0).restore(state);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
