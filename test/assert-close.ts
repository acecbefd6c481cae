// The tests' one "values are close" assertion: element-wise |actual − expected| ≤ tol · scale,
// where scale is max(1, |expected|) unless the caller fixes it (e.g. the tensor's largest value).
// A failure names the worst element, which says more than the first.
import assert from 'node:assert/strict';

export interface CloseOptions {
  /** Relative tolerance (absolute below |expected| = 1); default 1e-6. */
  tol?: number;
  /** A fixed scale instead of max(1, |expected|) per element. */
  scale?: number;
  what?: string;
}

export function assertAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions = {}): void {
  const { tol = 1e-6, what = 'value' } = opts;
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} ≠ ${expected.length}`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const excess = Math.abs(actual[i]! - e) / (opts.scale ?? Math.max(1, Math.abs(e)));
    // NaN compares false: a NaN on either side is always the worst.
    if (!(excess <= worst)) {
      worst = excess;
      at = i;
      if (Number.isNaN(excess)) break;
    }
  }
  assert.ok(
    !(worst > tol) && !Number.isNaN(worst),
    `${what}[${at}] = ${actual[at]}, expected ${expected[at]} (|Δ|/scale = ${worst.toExponential(2)} > tol ${tol})`,
  );
}
