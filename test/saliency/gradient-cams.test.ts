import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradcam, gradcampp, gradientCamBatch, layercam, xgradcam } from '../../ml/saliency/gradient-cams.js';
import { minMaxNormalise } from '../../ml/saliency/normalise.js';
import { assertClose, refReluMinMax, testData } from './helpers.js';

// K = 2 channels on a 2×2 grid, positions in row-major order.
const A = new Float32Array([1, 2, 3, 4, /* channel 1 */ 4, 3, 2, 1]);

test('Grad-CAM on a hand case: w = spatial mean of G, ReLU, min-max', () => {
  const G = new Float32Array([0.5, 0.5, 0.5, 0.5, /* */ -1, 0, 0, -1]);
  const r = gradcam(A, G, 2, 2, 2);
  // w0 = 0.5, w1 = −0.5; cam = 0.5·A0 − 0.5·A1 = [−1.5, −0.5, 0.5, 1.5] → ReLU [0, 0, 0.5, 1.5] → /1.5
  assertClose(r.weights!, [0.5, -0.5]);
  assertClose(r.map, [0, 0, 1 / 3, 1]);
  assert.equal(r.degenerate, false);
  assert.equal(r.h, 2);
  assert.equal(r.w, 2);
});

test('Grad-CAM++ on a hand case: closed-form α, α = 0 where g = 0, only positive gradients count', () => {
  const G = new Float32Array([1, 2, 0, -1, /* */ 0.5, 0, 0, 0]);
  const r = gradcampp(A, G, 2, 2, 2);
  // Channel 0, ΣA = 10: α(1) = 1/(2 + 10) = 1/12, α(2) = 4/(8 + 80) = 1/22; g = −1 has ReLU(g) = 0.
  // w0 = 1/12·1 + 1/22·2 = 23/132. Channel 1, ΣA = 10: α(0.5) = 0.25/(0.5 + 1.25) = 1/7; w1 = 1/14.
  const w0 = 23 / 132;
  const w1 = 1 / 14;
  assertClose(r.weights!, [w0, w1], 1e-7);
  const cam = [0, 1, 2, 3].map((p) => w0 * A[p] + w1 * A[4 + p]);
  assertClose(r.map, refReluMinMax(cam));
});

test('XGrad-CAM on a hand case: w = Σ g·A / Σ A', () => {
  const G = new Float32Array([1, 0, 0, 1, /* */ 0, 0, 0, -2]);
  const r = xgradcam(A, G, 2, 2, 2);
  // w0 = (1·1 + 1·4)/10 = 0.5, w1 = (−2·1)/10 = −0.2; cam = [−0.3, 0.4, 1.1, 1.8] → [0, 2/9, 11/18, 1]
  assertClose(r.weights!, [0.5, -0.2], 1e-6);
  assertClose(r.map, [0, 2 / 9, 11 / 18, 1], 1e-6);
});

test('Layer-CAM on a hand case: Σ_k ReLU(g)·A per position', () => {
  const G = new Float32Array([1, -1, 2, 0, /* */ 0, 3, -1, 1]);
  const r = layercam(A, G, 2, 2, 2);
  // cam = [1·1, 3·3, 2·3, 1·1] = [1, 9, 6, 1] → (x − 1)/8
  assertClose(r.map, [0, 1, 5 / 8, 0]);
  assert.equal(r.weights, undefined);
});

test('Grad-CAM of a GAP-linear model: weights are v_k/(hw) (gradient by finite differences)', () => {
  const K = 5;
  const h = 3;
  const w = 4;
  const hw = h * w;
  const v = [1, -2, 0.5, 3, -1];
  const acts = Float64Array.from(testData(K * hw, 7, 0, 2));
  const score = (a: Float64Array): number => {
    let s = 0;
    for (let k = 0; k < K; k++) {
      let m = 0;
      for (let p = 0; p < hw; p++) m += a[k * hw + p];
      s += (v[k] * m) / hw;
    }
    return s;
  };
  // The "model" is only a function: differentiate it numerically, as a framework would analytically.
  const G = new Float64Array(K * hw);
  const d = 1e-4;
  for (let i = 0; i < G.length; i++) {
    const plus = Float64Array.from(acts);
    const minus = Float64Array.from(acts);
    plus[i] += d;
    minus[i] -= d;
    G[i] = (score(plus) - score(minus)) / (2 * d);
  }
  const r = gradcam(acts, G, K, h, w);
  assertClose(
    r.weights!,
    v.map((vk) => vk / hw),
    1e-7,
  );
  const cam: number[] = [];
  for (let p = 0; p < hw; p++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += (v[k] / hw) * acts[k * hw + p];
    cam.push(s);
  }
  assertClose(r.map, refReluMinMax(cam), 1e-6);
});

test('degenerate maps: all-negative CAM → zeros + flag; NaN → zeros + non-finite flag', () => {
  const G = new Float32Array([-1, -1, -1, -1, -1, -1, -1, -1]);
  const r = gradcam(A, G, 2, 2, 2);
  assert.equal(r.degenerate, true);
  assert.equal(r.reason, 'constant');
  assert.deepEqual(Array.from(r.map), [0, 0, 0, 0]);

  const Gn = new Float32Array([NaN, 0, 0, 0, 1, 1, 1, 1]);
  const n = gradcam(A, Gn, 2, 2, 2);
  assert.equal(n.degenerate, true);
  assert.equal(n.reason, 'non-finite');
  assert.deepEqual(Array.from(n.map), [0, 0, 0, 0]);

  // Constant but positive map: min-max gives 0/ε = 0.
  const c = minMaxNormalise(new Float64Array([3, 3, 3, 3]), 2, 2);
  assert.equal(c.degenerate, true);
  assert.deepEqual(Array.from(c.map), [0, 0, 0, 0]);
});

test('batch variant equals per-image calls; shape errors name the input', () => {
  const A2 = new Float32Array([...A, ...testData(8, 3)]);
  const G2 = new Float32Array([...testData(8, 4, -1, 1), ...testData(8, 5, -1, 1)]);
  for (const method of ['gradcam', 'gradcampp', 'xgradcam', 'layercam'] as const) {
    const batch = gradientCamBatch(method, A2, G2, 2, 2, 2, 2);
    assert.equal(batch.length, 2);
    const single = gradientCamBatch(method, A2.subarray(8), G2.subarray(8), 1, 2, 2, 2)[0];
    assert.deepEqual(Array.from(batch[1].map), Array.from(single.map));
  }
  assert.throws(() => gradcam(A, new Float32Array(7), 2, 2, 2), /gradients G has 7 values, expected 8/);
});

test('Grad-CAM++ from logit gradients equals eq. 19 evaluated on Y = exp(S) (exp(S) cancels)', () => {
  const K = 3;
  const hw = 6;
  const acts = testData(K * hw, 31, 0, 2);
  const G = testData(K * hw, 32, -0.5, 1);
  const S = 1.3; // the logit; any value — it must drop out
  const e = Math.exp(S);
  // Derivatives of Y = exp(S) for a piecewise-linear S: ∂Y = e·g, ∂²Y = e·g², ∂³Y = e·g³.
  const weights: number[] = [];
  for (let k = 0; k < K; k++) {
    let sumA = 0;
    for (let p = 0; p < hw; p++) sumA += acts[k * hw + p];
    let wk = 0;
    for (let p = 0; p < hw; p++) {
      const g = G[k * hw + p];
      if (g === 0) continue;
      const alpha = (e * g * g) / (2 * e * g * g + sumA * e * g * g * g);
      wk += alpha * Math.max(0, e * g);
    }
    weights.push(wk);
  }
  const cam = Array.from({ length: hw }, (_, p) => weights.reduce((s, wk, k) => s + wk * acts[k * hw + p], 0));
  const r = gradcampp(acts, G, K, 2, 3);
  assertClose(r.map, refReluMinMax(cam), 1e-6);
  assertClose(
    r.weights!,
    weights.map((x) => x / e),
    1e-6,
  );
});
