import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eigencam, topEigenJacobi, topEigenPower } from '../../ml/saliency/eigencam.js';
import { assertClose, refReluMinMax, testData } from './helpers.js';

const h = 3;
const w = 4;
const s = [0.2, 1.5, 0.7, 3.0, 0.1, 2.2, 0.9, 0.4, 1.1, 2.8, 0.0, 1.9]; // spatial pattern, 3×4

function rank1(u: number[]): Float32Array {
  const A = new Float32Array(u.length * s.length);
  u.forEach((uk, k) => s.forEach((sp, p) => (A[k * s.length + p] = uk * sp)));
  return A;
}

const mean = s.reduce((a, b) => a + b, 0) / s.length;

test('Eigen-CAM on a rank-1 A recovers the spatial pattern (both Gram sides, both solvers)', () => {
  // A_k(p) = u_k·s(p). Centred, M = (s − s̄)uᵀ, so the first component is ±(s − s̄)|u|; with
  // positive loadings the sign convention picks +, and ReLU + min-max leaves minmax(ReLU(s − s̄)).
  const expected = refReluMinMax(s.map((x) => x - mean));
  const few = [0.5, 1, 2, 0.25, 1.5]; // K = 5 < hw = 12: K×K Gram
  const many = Array.from(testData(20, 11, 0.1, 2)); // K = 20 ≥ hw: hw×hw Gram
  for (const u of [few, many]) {
    for (const solver of ['jacobi', 'power'] as const) {
      const r = eigencam(rank1(u), u.length, h, w, { solver });
      assertClose(r.map, expected, 1e-5, `K=${u.length} ${solver}`);
      assert.equal(r.degenerate, false);
    }
  }
});

test('Eigen-CAM sign convention: the map follows the channel-sum map, whatever the SVD sign', () => {
  // All loadings negative: Σ_k A_k = (Σu)·s is largest where s is smallest, so the map is
  // minmax(ReLU(s̄ − s)).
  const u = [-0.5, -1, -2];
  const r = eigencam(rank1(u), u.length, h, w);
  assertClose(r.map, refReluMinMax(s.map((x) => mean - x)), 1e-5);
});

test('Eigen-CAM without centring on a non-negative rank-1 A is minmax(s)', () => {
  const u = [0.5, 1, 2, 0.25];
  const r = eigencam(rank1(u), u.length, h, w, { centre: false });
  assertClose(r.map, refReluMinMax(s), 1e-5);
});

test('Jacobi and power iteration find the same top eigenpair', () => {
  // [[2,1],[1,2]]: λ = 3, v = ±(1,1)/√2.
  const S = new Float64Array([2, 1, 1, 2]);
  const j = topEigenJacobi(S, 2);
  assert.ok(Math.abs(j.value - 3) < 1e-12);
  assert.ok(Math.abs(Math.abs(j.vector[0]) - Math.SQRT1_2) < 1e-12);
  assert.ok(Math.abs(j.vector[0] - j.vector[1]) < 1e-12);

  // A random PSD matrix BᵀB (n = 6).
  const n = 6;
  const B = testData(n * n, 5, -1, 1);
  const P = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) for (let r = 0; r < n; r++) P[i * n + k] += B[r * n + i] * B[r * n + k];
  const a = topEigenJacobi(P, n);
  const b = topEigenPower(P, n, new Float64Array(n).fill(1));
  assert.ok(Math.abs(a.value - b.value) < 1e-8 * a.value);
  const dot = a.vector.reduce((acc, x, i) => acc + x * b.vector[i], 0);
  assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-8);
  // And it really is an eigenpair: ‖P v − λ v‖ small.
  for (let i = 0; i < n; i++) {
    let pv = 0;
    for (let k = 0; k < n; k++) pv += P[i * n + k] * a.vector[k];
    assert.ok(Math.abs(pv - a.value * a.vector[i]) < 1e-9);
  }
});

test('Eigen-CAM: all-equal activations are degenerate', () => {
  const r = eigencam(new Float32Array(3 * 4).fill(2), 3, 2, 2);
  assert.equal(r.degenerate, true);
  assert.deepEqual(Array.from(r.map), [0, 0, 0, 0]);
});
