// Hand-computed cases for the pytorch-grad-cam methods that need only A and G: HiResCAM,
// Grad-CAM element-wise, EigenGradCAM, FEM and KPCA-CAM (issue #16).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradcam } from '../../ml/saliency/gradient-cams.js';
import { gradcamElementwise, hirescam } from '../../ml/saliency/elementwise-cams.js';
import { fem } from '../../ml/saliency/fem.js';
import { kpcacam, kpcaProjection } from '../../ml/saliency/kpcacam.js';
import { computeSaliency } from '../../ml/saliency/registry.js';
import { assertClose, testData } from './helpers.js';

// K = 2 channels on a 1×3 grid.
const A = new Float32Array([1, 2, 3, /* k=1 */ 2, 0, 1]);
const G = new Float32Array([1, -1, 0.5, /* k=1 */ -0.5, 1, 2]);
// G⊙A: k=0 [1, −2, 1.5], k=1 [−1, 0, 2].

test('HiResCAM: Σ_k G⊙A = [0, −2, 3.5] → ReLU → [0, 0, 1]', () => {
  const r = hirescam(A, G, 2, 1, 3);
  assertClose(r.map, [0, 0, 1], 1e-7);
  assert.equal(r.degenerate, false);
});

test('Grad-CAM element-wise: Σ_k ReLU(G⊙A) = [1, 0, 3.5] → [1/3.5, 0, 1]', () => {
  const r = gradcamElementwise(A, G, 2, 1, 3);
  assertClose(r.map, [1 / 3.5, 0, 1], 1e-7);
});

test('HiResCAM equals Grad-CAM when the gradient is constant per channel (GAP + Linear)', () => {
  const K = 4;
  const hw = 6;
  const Ar = testData(K * hw, 3, 0, 2);
  const Gc = new Float32Array(K * hw);
  [0.3, -0.7, 1.1, 0.05].forEach((g, k) => Gc.fill(g, k * hw, (k + 1) * hw));
  assertClose(hirescam(Ar, Gc, K, 2, 3).map, gradcam(Ar, Gc, K, 2, 3).map, 1e-6);
});

test('EigenGradCAM: with A_k = s and G_k = u_k, G⊙A = u_k·s is rank 1, so the map is minmax(ReLU(±(s − s̄)))', async () => {
  const s = [1, 4, 2, 5]; // s̄ = 3: s − s̄ = [−2, 1, −1, 2] → ReLU → [0, 1, 0, 2] → [0, .5, 0, 1]
  const mk = (u: number[]) => {
    const Ar = new Float32Array(u.length * 4);
    const Gr = new Float32Array(u.length * 4);
    u.forEach((uk, k) => s.forEach((sp, p) => ((Ar[k * 4 + p] = sp), (Gr[k * 4 + p] = uk))));
    return { A: Ar, G: Gr, K: u.length, h: 2, w: 2 };
  };
  const pos = await computeSaliency('eigengradcam', mk([0.5, 2, 1]));
  assertClose(pos.map, [0, 0.5, 0, 1], 1e-6);
  // Negative gradients: the sign follows Σ_k G⊙A (the HiResCAM map), now largest where s is smallest.
  const neg = await computeSaliency('eigengradcam', mk([-0.5, -2, -1]));
  assertClose(neg.map, [1, 0, 0.5, 0], 1e-6);
});

test('FEM: k-sigma thresholds on a 3×3 grid (population std), both k = 2 and k = 1', () => {
  // A0 = one 9 among zeros: mean 1, std √8 → τ(k=2) = 6.66, τ(k=1) = 3.83: one position above → 1/9.
  // A1 = three 3s among zeros: mean 1, std √2 → τ(k=2) = 3.83: none; τ(k=1) = 2.41: three → 1/3.
  const A0 = [0, 0, 0, 0, 0, 0, 0, 0, 9];
  const A1 = [3, 3, 3, 0, 0, 0, 0, 0, 0];
  const Ar = new Float32Array([...A0, ...A1]);
  const two = fem(Ar, 2, 3, 3);
  assertClose(two.weights!, [1 / 9, 0], 1e-12);
  assertClose(two.map, [0, 0, 0, 0, 0, 0, 0, 0, 1], 1e-7);
  const one = fem(Ar, 2, 3, 3, { k: 1 });
  assertClose(one.weights!, [1 / 9, 1 / 3], 1e-12);
  // cam = A0/9 + A1/3 = [1, 1, 1, 0, 0, 0, 0, 0, 1].
  assertClose(one.map, [1, 1, 1, 0, 0, 0, 0, 0, 1], 1e-7);
});

test('FEM: the threshold is strict, so a constant channel gets weight 0 and an all-constant A is degenerate', () => {
  const r = fem(new Float32Array(8).fill(2), 2, 2, 2);
  assertClose(r.weights!, [0, 0], 0);
  assert.equal(r.degenerate, true);
  assert.throws(() => fem(new Float32Array(3), 2, 1, 2), /activations A has 3 values, expected 4/);
});

test('KPCA-CAM, two positions: Kc = (tanh 2 / 2)·[[1, −1], [−1, 1]], so the component is ±√(tanh 2 / 2)', () => {
  // A0 = [1, 3], A1 = [2, 0] → centred rows x1 = (−1, 1), x2 = (1, −1); γ = 1/K = 1/2.
  // k(x1,x1) = k(x2,x2) = tanh(2·½ + 1) = tanh 2, k(x1,x2) = tanh(−1 + 1) = 0. Centring a 2×2
  // [[a, b], [b, a]] leaves ((a − b)/2)·[[1, −1], [−1, 1]]: λ = a − b = tanh 2, v = (1, −1)/√2
  // (|v₀| = |v₁|: svd_flip takes the first, so v₀ > 0). Output v·√λ.
  const { proj, lambda } = kpcaProjection(new Float32Array([1, 3, 2, 0]), 2, 1, 2);
  const t = Math.tanh(2);
  assertClose([lambda], [t], 1e-12);
  assertClose(proj, [Math.sqrt(t / 2), -Math.sqrt(t / 2)], 1e-12);
  assertClose(kpcacam(new Float32Array([1, 3, 2, 0]), 2, 1, 2).map, [1, 0], 1e-7);
});

test('KPCA-CAM, three positions: the eigen equation, the largest eigenvalue and sklearn’s sign rule', () => {
  const K = 3;
  const Ar = new Float32Array([0.2, 1.4, 0.5, 2.0, 0.1, 0.9, 0.3, 0.8, 1.7]); // 3 channels × 3 positions
  const gamma = 0.7;
  const { proj, lambda } = kpcaProjection(Ar, K, 1, 3, { gamma, coef0: 0.5 });
  // Independent Kc: centre, kernel, double-centre.
  const X = [0, 1, 2].map((p) => [0, 1, 2].map((k) => Ar[k * 3 + p] - (Ar[k * 3] + Ar[k * 3 + 1] + Ar[k * 3 + 2]) / 3));
  const Km = X.map((xi) => X.map((xj) => Math.tanh(gamma * (xi[0] * xj[0] + xi[1] * xj[1] + xi[2] * xj[2]) + 0.5)));
  const r = Km.map((row) => (row[0] + row[1] + row[2]) / 3);
  const all = (r[0] + r[1] + r[2]) / 3;
  const Kc = Km.map((row, i) => row.map((v, j) => v - r[i] - r[j] + all));
  // proj = v√λ, so Kc·proj = λ·proj.
  const Kp = Kc.map((row) => row[0] * proj[0] + row[1] * proj[1] + row[2] * proj[2]);
  assertClose(
    Kp,
    Array.from(proj, (x) => lambda * x),
    1e-10,
  );
  assertClose([proj[0] ** 2 + proj[1] ** 2 + proj[2] ** 2], [lambda], 1e-10);
  // Kc·1 = 0, so the other two eigenvalues are 0 and trace − λ: λ must be the larger.
  assert.ok(lambda >= Kc[0][0] + Kc[1][1] + Kc[2][2] - lambda - 1e-12);
  const big = [0, 1, 2].reduce((b, i) => (Math.abs(proj[i]) > Math.abs(proj[b]) ? i : b), 0);
  assert.ok(proj[big] > 0, 'the largest |entry| is positive');
});

test('KPCA-CAM: the shifted power iteration (> 128 positions) satisfies the eigen equation', () => {
  const K = 5;
  const Ar = testData(K * 144, 9, 0, 1);
  const big = kpcaProjection(Ar, K, 12, 12);
  const n = 144;
  const X = new Float64Array(K * n);
  for (let k = 0; k < K; k++) {
    let m = 0;
    for (let p = 0; p < n; p++) m += Ar[k * n + p];
    for (let p = 0; p < n; p++) X[k * n + p] = Ar[k * n + p] - m / n;
  }
  const Km = (i: number, j: number) => {
    let d = 0;
    for (let k = 0; k < K; k++) d += X[k * n + i] * X[k * n + j];
    return Math.tanh(d / K + 1);
  };
  const rows = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => Km(i, j)));
  const rm = rows.map((r) => r.reduce((a, b) => a + b, 0) / n);
  const am = rm.reduce((a, b) => a + b, 0) / n;
  const Kp = rows.map((r, i) => r.reduce((s, v, j) => s + (v - rm[i] - rm[j] + am) * big.proj[j], 0));
  assertClose(
    Kp,
    Array.from(big.proj, (x) => big.lambda * x),
    1e-6 * Math.max(1, big.lambda),
  );
});
