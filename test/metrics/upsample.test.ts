import { test } from 'node:test';
import assert from 'node:assert/strict';
import { minMaxNormalise, resizeBilinear } from '../../ml/metrics/upsample.js';

function close(a: ArrayLike<number>, b: number[], tol = 1e-6) {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < tol, `index ${i}: ${a[i]} vs ${b[i]}`);
}

// Input [[0,1],[2,3]] = X + 2Y, so the bilinear result is Xs[c] + 2·Ys[r] with the per-axis source positions.
test('bilinear 2×2 → 4×4, align_corners=false (half-pixel centres, negative source clamped to 0)', () => {
  // src = (d+0.5)/2 − 0.5 = −0.25→0, 0.25, 0.75, 1.25→clamped to the last pixel (weight on index 1 = 1)
  const out = resizeBilinear(new Float32Array([0, 1, 2, 3]), 2, 2, 4, 4);
  close(out, [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
});

test('bilinear 2×2 → 4×4, align_corners=true', () => {
  const t = 1 / 3;
  const out = resizeBilinear(new Float32Array([0, 1, 2, 3]), 2, 2, 4, 4, { alignCorners: true });
  const xs = [0, t, 2 * t, 1];
  const exp: number[] = [];
  for (const y of xs) for (const x of xs) exp.push(x + 2 * y);
  close(out, exp);
});

test('bilinear downsampling and several planes', () => {
  // 1×3 → 1×2: src = (d+0.5)·1.5 − 0.5 = 0.25, 1.75 → 0·0.75+10·0.25 = 2.5, 10·0.25+20·0.75 = 17.5
  close(resizeBilinear(new Float32Array([0, 10, 20]), 1, 3, 1, 2), [2.5, 17.5]);
  close(resizeBilinear(new Float32Array([0, 10, 20]), 1, 3, 1, 2, { alignCorners: true }), [0, 20]);
  close(resizeBilinear(new Float32Array([7, 9]), 1, 1, 2, 2, { planes: 2 }), [7, 7, 7, 7, 9, 9, 9, 9]);
  assert.throws(() => resizeBilinear(new Float32Array(3), 2, 2, 4, 4), /expected 1×2×2/);
});

test('min-max normalisation per map, constant map → zeros', () => {
  const out = minMaxNormalise(new Float32Array([2, 4, 6, 5, 5, 5]), 3);
  close(out, [0, 0.5, 1, 0, 0, 0]);
});
