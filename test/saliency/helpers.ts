// Shared assertions for the saliency tests (not a test file itself).
import { assertAllClose } from '../assert-close.js';

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6, what = 'value'): void {
  assertAllClose(actual, expected, { tol, what });
}

/** Reference min-max after ReLU, written independently of ml/saliency/normalise.ts. */
export function refReluMinMax(v: number[]): number[] {
  const r = v.map((x) => Math.max(0, x));
  const lo = Math.min(...r);
  const hi = Math.max(...r);
  return r.map((x) => (x - lo) / (hi - lo + 2.220446049250313e-16));
}

/** Deterministic pseudo-random numbers in [lo, hi) for test data (LCG, independent of ml/). */
export function testData(n: number, seed: number, lo = 0, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) / 16777216) * (hi - lo);
  }
  return out;
}
