// Shared assertions for the saliency tests (not a test file itself).
import assert from 'node:assert/strict';

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6, what = 'value'): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} ≠ ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${i}] = ${a}, expected ${e} (tol ${tol})`);
  }
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
