// Spearman and SSIM of the sanity check against values worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { averageRanks, spearman, ssim } from '../../ml/metrics/similarity.js';

test('Spearman: 1 − 6Σd²/(n(n²−1)) without ties, average ranks with ties, NaN for a constant map', () => {
  // Ranks 1,2,3,4 vs 1,3,2,4: Σd² = 2, ρ = 1 − 12/60 = 0.8.
  assert.ok(Math.abs(spearman([0.1, 0.2, 0.3, 0.4], [1, 5, 2, 9]) - 0.8) < 1e-12);
  assert.ok(Math.abs(spearman([1, 2, 3], [3, 2, 1]) + 1) < 1e-12);
  assert.deepEqual(Array.from(averageRanks([5, 1, 5, 2])), [3.5, 1, 3.5, 2]);
  // Ties: ranks a = 1, 2.5, 2.5, 4 (mean 2.5; deviations −1.5, 0, 0, 1.5), b = 1, 2, 3, 4
  // (−1.5, −0.5, 0.5, 1.5): Σ = 4.5, Σa² = 4.5, Σb² = 5, ρ = 4.5/√22.5 = 0.9487 (SciPy: 0.9486833).
  assert.ok(Math.abs(spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 4.5 / Math.sqrt(22.5)) < 1e-12);
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
  assert.throws(() => spearman([1, 2], [1]), /2 vs 1/);
});

test('SSIM: one 7×7 window worked out by hand; identical maps give 1', () => {
  const a = Array.from({ length: 49 }, (_, i) => (i % 7) / 6);
  assert.ok(Math.abs(ssim(a, a, 7, 7) - 1) < 1e-12);
  // b = a/2: μb = μa/2, σb² = σa²/4, σab = σa²/2. With μa = 0.5 and σa² (sample, N−1 = 48) =
  // Σ over the 7 column values (k/6 − 0.5)², 7 rows each, /48 = 7·(28/36)/48 = 0.11343:
  // SSIM = (2·0.5·0.25 + C1)(σa² + C2) / ((0.25 + 0.0625 + C1)(1.25·σa² + C2)).
  const b = a.map((v) => v / 2);
  const va = (7 * (28 / 36)) / 48;
  const c1 = 0.0001;
  const c2 = 0.0009;
  const expected = ((0.25 + c1) * (va + c2)) / ((0.3125 + c1) * (1.25 * va + c2));
  assert.ok(Math.abs(ssim(a, b, 7, 7) - expected) < 1e-12, `${ssim(a, b, 7, 7)} vs ${expected}`);
  // An 8×8 plane has 4 windows: the mean of their SSIMs.
  const c = Array.from({ length: 64 }, (_, i) => ((i * 37) % 11) / 10);
  assert.ok(Math.abs(ssim(c, c, 8, 8) - 1) < 1e-12);
  assert.throws(() => ssim(a, a, 7, 7, { win: 9 }), /must be odd and fit/);
});
