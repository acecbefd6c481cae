import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blurImage, gaussianBlurKernel, gaussianFilteredDirac1d, scipyGaussianKernel1d } from '../../ml/metrics/blur.js';

// Independent reconstruction of scipy.ndimage.gaussian_filter on a 1-D Dirac in 'reflect' mode:
// the infinite extension of a signal is built explicitly as alternating tiles base, reversed(base), …
// (scipy's reflect = d c b a | a b c d | d c b a), then correlated with the sampled Gaussian.
function referenceFilteredDirac(size: number, sigma: number): number[] {
  const radius = Math.trunc(4.0 * sigma + 0.5); // scipy: int(truncate·σ + 0.5), truncate = 4
  const weights: number[] = [];
  for (let x = -radius; x <= radius; x++) weights.push(Math.exp(-(x * x) / (2 * sigma * sigma)));
  const z = weights.reduce((a, b) => a + b, 0);
  const base = Array.from({ length: size }, (_, i) => (i === Math.floor(size / 2) ? 1 : 0));
  const tiles = Math.ceil(radius / size) + 1;
  const ext: number[] = [];
  for (let k = -tiles; k <= tiles; k++) ext.push(...(k % 2 === 0 ? base : [...base].reverse()));
  const origin = tiles * size; // index of base[0] in ext
  return base.map((_, i) => {
    let acc = 0;
    for (let j = -radius; j <= radius; j++) acc += (weights[j + radius] / z) * ext[origin + i + j];
    return acc;
  });
}

test('scipy 1-D Gaussian kernel: radius int(4σ+0.5), normalised', () => {
  const w = scipyGaussianKernel1d(5);
  assert.equal(w.length, 41);
  assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(Math.abs(w[20] / w[21] - Math.exp(1 / 50)) < 1e-12);
  assert.equal(scipyGaussianKernel1d(0.7).length, 7); // int(2.8 + 0.5) = 3
});

test('5×5 σ 5 filtered Dirac matches an independent reflect-mode computation and the published profile', () => {
  const got = gaussianFilteredDirac1d(5, 5);
  const ref = referenceFilteredDirac(5, 5);
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(got[i] - ref[i]) < 1e-6, `tap ${i}: ${got[i]} vs ${ref[i]}`);
  // seed-spec §4.2, values printed to 6 decimals by the original
  const published = [0.200001, 0.199995, 0.200007, 0.199995, 0.200001];
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(got[i] - published[i]) < 1e-6, `tap ${i}: ${got[i]} vs ${published[i]}`);
  const ref11 = referenceFilteredDirac(11, 5);
  const got11 = gaussianFilteredDirac1d(11, 5);
  for (let i = 0; i < 11; i++) assert.ok(Math.abs(got11[i] - ref11[i]) < 1e-12);
});

test('2-D kernel = separable filtering of the 2-D Dirac (rows then columns), sums to 1', () => {
  const k = gaussianBlurKernel(5, 5);
  const p = referenceFilteredDirac(5, 5);
  // Filtering the 2-D Dirac along axis 0 turns its centre column into p; filtering that along axis 1
  // spreads every row r (value p[r] at the centre) into p[r]·p.
  let sum = 0;
  for (let r = 0; r < 5; r++)
    for (let c = 0; c < 5; c++) {
      assert.ok(Math.abs(k.data[r * 5 + c] - p[r] * p[c]) < 1e-6);
      assert.ok(Math.abs(k.data[r * 5 + c] - 0.04) < 3e-6); // ≈ box filter
      sum += k.data[r * 5 + c];
    }
  assert.ok(Math.abs(sum - 1) < 1e-12);
});

test('blurImage: per-channel correlation with zero padding (hand-computed)', () => {
  const box = { size: 3, data: new Float64Array(9).fill(1 / 9) };
  // two channels: 1..9 and 10·(1..9)
  const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
  const y = blurImage(x, { n: 1, c: 2, h: 3, w: 3 }, box);
  const expect0 = [12 / 9, 21 / 9, 16 / 9, 27 / 9, 45 / 9, 33 / 9, 24 / 9, 39 / 9, 28 / 9];
  for (let i = 0; i < 9; i++) {
    assert.ok(Math.abs(y[i] - expect0[i]) < 1e-5, `c0 ${i}`);
    assert.ok(Math.abs(y[9 + i] - 10 * expect0[i]) < 1e-4, `c1 ${i}`);
  }
  // correlation (not convolution): a kernel with its only tap right of centre reads x[y, x+1]
  const right = { size: 3, data: new Float64Array([0, 0, 0, 0, 0, 1, 0, 0, 0]) };
  const s = blurImage(x.subarray(0, 9), { n: 1, c: 1, h: 3, w: 3 }, right);
  assert.deepEqual(Array.from(s), [2, 3, 0, 5, 6, 0, 8, 9, 0]);
  const sr = blurImage(x.subarray(0, 9), { n: 1, c: 1, h: 3, w: 3 }, right, 'reflect');
  assert.deepEqual(Array.from(sr), [2, 3, 3, 5, 6, 6, 8, 9, 9]);
  assert.throws(() => blurImage(x, { n: 1, c: 1, h: 3, w: 3 }, box), /expected 1×1×3×3/);
});

test('separable blur path equals the direct 2-D correlation (zero and reflect padding, kernel wider than the image)', () => {
  const dims = { n: 2, c: 3, h: 7, w: 9 };
  let seed = 7;
  const x = new Float32Array(2 * 3 * 7 * 9).map(() => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1);
  for (const [size, sigma] of [
    [5, 5],
    [11, 5],
    [3, 0.8],
  ] as const)
    for (const padding of ['zero', 'reflect'] as const) {
      const k = gaussianBlurKernel(size, sigma);
      assert.ok(k.separable);
      const sep = blurImage(x, dims, k, padding);
      const direct = blurImage(x, dims, { size: k.size, data: k.data }, padding);
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(sep[i] - direct[i]) < 1e-6, `${size} ${padding} ${i}`);
    }
});
