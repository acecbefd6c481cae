import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adjustedDifference, meanWithCI, pairedDifference, quantileSorted, seededRandom } from '../../ml/metrics/stats.js';

function sample(n: number, seed: number, shift = 0): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => shift + r() * 10);
}

test('quantile uses linear interpolation between order statistics', () => {
  assert.equal(quantileSorted([1, 2, 3, 4], 0.25), 1.75);
  assert.equal(quantileSorted([1, 2, 3, 4], 1), 4);
  assert.equal(quantileSorted([5], 0.975), 5);
});

test('seeded RNG is deterministic and uniform-ish', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => b()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(m - 0.5) < 0.05);
});

test('bootstrap CI: contains the mean, deterministic per seed, degenerate cases', () => {
  const v = sample(200, 1);
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const ci = meanWithCI(v, { seed: 7 });
  assert.ok(Math.abs(ci.mean - mean) < 1e-12);
  assert.ok(ci.lo < mean && mean < ci.hi, `${ci.lo} < ${mean} < ${ci.hi}`);
  // normal-theory half-width for uniform(0,10): 1.96·(10/√12)/√200 ≈ 0.40; the bootstrap should be close
  const half = (ci.hi - ci.lo) / 2;
  assert.ok(half > 0.3 && half < 0.5, `half width ${half}`);
  assert.deepEqual(meanWithCI(v, { seed: 7 }), ci);
  assert.notDeepEqual(meanWithCI(v, { seed: 8 }), ci);
  assert.equal(ci.B, 1000);
  const c = meanWithCI([3, 3, 3, NaN]);
  assert.deepEqual([c.mean, c.lo, c.hi, c.n, c.dropped], [3, 3, 3, 3, 1]);
  assert.ok(Number.isNaN(meanWithCI([]).mean));
});

test('paired difference: sign and interval follow a − b', () => {
  const b = sample(100, 3);
  const noise = sample(100, 4).map((x) => (x - 5) / 10);
  const a = b.map((x, i) => x + 1 + noise[i]);
  const d = pairedDifference(a, b, { seed: 1 });
  assert.ok(d.mean > 0.9 && d.mean < 1.1);
  assert.ok(d.lo > 0, 'interval excludes 0');
  const r = pairedDifference(b, a, { seed: 1 });
  assert.ok(Math.abs(r.mean + d.mean) < 1e-12 && r.hi < 0);
  // pairing matters: an unpaired comparison of these two noisy sets would not exclude 0 this tightly
  assert.ok(d.hi - d.lo < 0.2);
  const withNaN = pairedDifference([1, NaN, 5], [0, 2, 1]);
  assert.deepEqual([withNaN.n, withNaN.dropped, withNaN.mean, withNaN.meanA, withNaN.meanB], [2, 1, 2.5, 3, 0.5]);
  assert.throws(() => pairedDifference([1], [1, 2]), /paired per image/);
});

test('baseline-adjusted difference: (a − b) − (a0 − b0) per image, hand-checked interval', () => {
  // Method CA − GAP per image: 5−4, 7−4, 9−4 = 1, 3, 5 (mean 3); baseline: 2−1, 2−0, 2−2 = 1, 2, 0
  // (mean 1). Adjusted: 0, 1, 5, mean 2. The fourth image lacks a baseline score and is dropped
  // from all four.
  const r = adjustedDifference([5, 7, 9, 100], [4, 4, 4, 0], [2, 2, 2, NaN], [1, 0, 2, 0], { B: 2000, seed: 5 });
  assert.deepEqual([r.mean, r.n, r.dropped, r.methodDiff, r.baselineDiff], [2, 3, 1, 3, 1]);
  // With 3 images each resample mean is one of (i+j+k)/3 over {0, 1, 5}; the extremes 0 and 5 each
  // come up with probability 1/27 ≈ 3.7 % > 2.5 %, so the 95 % percentile interval is exactly [0, 5].
  assert.deepEqual([r.lo, r.hi], [0, 5]);
  // A baseline that moves exactly as the method leaves nothing: the interval collapses on 0.
  const same = adjustedDifference([3, 5, 8], [1, 1, 1], [2, 4, 7], [0, 0, 0]);
  assert.deepEqual([same.mean, same.lo, same.hi], [0, 0, 0]);
  assert.throws(() => adjustedDifference([1, 2], [1, 2], [1], [1, 2]), /paired per image/);
});

test('summarise: mean and interval over usable maps only, exclusions reported', async () => {
  const { summarise } = await import('../../ml/metrics/stats.js');
  const s = summarise([2, 4, 100, 6, NaN], ['ok', 'ok', 'constant', 'nan', 'ok'], { seed: 3 });
  assert.equal(s.mean, 3);
  assert.equal(s.n, 2);
  assert.equal(s.dropped, 3);
  assert.deepEqual(s.excluded, { constant: 1, nan: 1, nonFinite: 1 });
  assert.ok(s.lo >= 2 && s.hi <= 4 && s.lo <= 3 && s.hi >= 3);
  assert.equal(summarise([2, 4, 100], ['ok', 'ok', 'constant'], { includeConstant: true }).mean, 106 / 3);
});
