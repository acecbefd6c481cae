// convention: ca-stream | pytorch-grad-cam for Grad-CAM++ and Score-CAM (issue #16 item 4), on
// hand-computed cases: the ε of Grad-CAM++'s α, and Score-CAM's masking space and channel softmax.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradcampp } from '../../ml/saliency/gradient-cams.js';
import { scorecam } from '../../ml/saliency/scorecam.js';
import { computeSaliency, SALIENCY_METHODS } from '../../ml/saliency/registry.js';
import { assertClose } from './helpers.js';

test('Grad-CAM++: the conventions differ only in ε, which dominates α when gradients are tiny (GAP-like)', () => {
  // Channel 0: A = [3000, 0, 0], g = [1e-4, 0, 0]; channel 1: A = [0, 1, 2], g = [1, 1, 1]; Σ A = 3000 and 3.
  // α₀ = g²/(2g² + 3000·g³ + ε) = 1e-8/(2e-8 + 3e-9 + ε);  α₁ = 1/(2 + 3 + ε) ≈ 0.2 at all three positions.
  // w₀ = α₀·1e-4, w₁ = 3·0.2 = 0.6; cam = [3000·w₀, 0.6, 1.2] → [0, (0.6 − c₀)/(1.2 − c₀), 1].
  const A = new Float32Array([3000, 0, 0, 0, 1, 2]);
  const G = new Float32Array([1e-4, 0, 0, 1, 1, 1]);
  const expected = (eps: number) => {
    const g = 1e-4;
    const c0 = 3000 * g * ((g * g) / (2 * g * g + 3000 * g ** 3 + eps));
    return [0, (0.6 - c0) / (1.2 - c0), 1];
  };
  const ca = gradcampp(A, G, 2, 1, 3);
  const pgc = gradcampp(A, G, 2, 1, 3, { convention: 'pytorch-grad-cam' });
  assertClose(ca.map, expected(2.220446049250313e-16), 1e-5, 'ca-stream');
  assertClose(pgc.map, expected(1e-6), 1e-5, 'pytorch-grad-cam');
  // 0.439 vs 0.499: the difference the issue measured (max |Δ| 0.07 through GAP).
  assert.ok(Math.abs(ca.map[1] - pgc.map[1]) > 0.05);
  assert.throws(() => gradcampp(A, G, 2, 1, 3, { convention: 'torchcam' as never }), /gradcampp convention must be/);
});

// The Score-CAM fixture of scorecam.test.ts: 2×2 activations, upsampled (align_corners) to 3×3.
//   A0 = [0 1; 0 1] → mask mean 0.5;  A1 = [0 0; 0 2] → 0.25;  A2 = [3 3; 3 1] → 0.75.
const A = new Float32Array([0, 1, 0, 1, /* */ 0, 0, 0, 2, /* */ 3, 3, 3, 1]);
const M0 = [0, 0.5, 1, 0, 0.5, 1, 0, 0.5, 1];
const mean = [0.5, 0.4, 0.3];
const std = [0.2, 0.25, 0.5];

test('Score-CAM pytorch-grad-cam: the normalised tensor times the mask, weights = softmax over channels of the target logits', async () => {
  const image = new Float32Array(27).fill(1); // normalised values of 1 everywhere: x ⊙ M_k = M_k
  const seen: Float32Array[] = [];
  // Fake model: logit of class 1 = mean of the masked (normalised) input; class 0 = 0.
  const forwardLogits = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    const out = new Float32Array(n * 2);
    for (let b = 0; b < n; b++) {
      seen.push(batch.slice(b * 27, (b + 1) * 27));
      let s = 0;
      for (let i = 0; i < 9; i++) s += batch[b * 27 + i];
      out[b * 2 + 1] = s / 9;
    }
    return out;
  };
  const forwardProbs = async (): Promise<Float32Array> => {
    throw new Error('the pytorch-grad-cam convention weights by logits, not probabilities');
  };
  const r = await scorecam({
    A,
    K: 3,
    h: 2,
    w: 2,
    image,
    H: 3,
    W: 3,
    mean,
    std,
    forwardProbs,
    forwardLogits,
    target: 1,
    maxBatch: 2,
    convention: 'pytorch-grad-cam',
  });
  // s = [0.5, 0.25, 0.75] → w = exp(s)/Σ exp(s).
  const e = [0.5, 0.25, 0.75].map(Math.exp);
  const z = e[0] + e[1] + e[2];
  const wts = e.map((x) => x / z);
  assertClose(r.weights, wts, 1e-6);
  const cam = [0, 1, 2, 3].map((p) => wts[0] * A[p] + wts[1] * A[4 + p] + wts[2] * A[8 + p]);
  const lo = Math.min(...cam);
  const hi = Math.max(...cam);
  assertClose(
    r.map,
    cam.map((v) => (v - lo) / (hi - lo)),
    1e-6,
  );
  // Every colour channel of the first masked input is M0 itself (mean colour where M0 = 0).
  for (let c = 0; c < 3; c++) assertClose(seen[0].subarray(c * 9, (c + 1) * 9), M0, 1e-6, `channel ${c}`);
});

test('Score-CAM conventions on the same case: probability weights on a black-masked image vs logit softmax', async () => {
  const pix = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
  const image = new Float32Array(27);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 9; i++) image[c * 9 + i] = (pix[i] - mean[c]) / std[c];
  const firsts: Record<string, Float32Array> = {};
  const model = (tag: string) => async (batch: Float32Array, n: number) => {
    firsts[tag] ??= batch.slice(0, 27);
    return new Float32Array(n * 2).fill(0.5);
  };
  const base = { A, K: 3, h: 2, w: 2, image, H: 3, W: 3, mean, std, target: 0, maxBatch: 8 };
  await scorecam({ ...base, forwardProbs: model('ca') });
  await scorecam({ ...base, forwardProbs: model('unused'), forwardLogits: model('pgc'), convention: 'pytorch-grad-cam' });
  assert.equal(firsts.unused, undefined);
  for (let c = 0; c < 3; c++) {
    // ca-stream: normalise(pixels·M0), black (−mean/std) where M0 = 0; pytorch-grad-cam: x·M0, 0 there.
    assertClose(
      firsts.ca.subarray(c * 9, (c + 1) * 9),
      pix.map((p, i) => (p * M0[i] - mean[c]) / std[c]),
      1e-5,
      `ca ${c}`,
    );
    assertClose(
      firsts.pgc.subarray(c * 9, (c + 1) * 9),
      pix.map((p, i) => ((p - mean[c]) / std[c]) * M0[i]),
      1e-5,
      `pgc ${c}`,
    );
  }
});

test('registry: Grad-CAM++ and Score-CAM offer both conventions, ca-stream first; Score-CAM asks for logits by name', async () => {
  assert.deepEqual(SALIENCY_METHODS.gradcampp.conventions, ['ca-stream', 'pytorch-grad-cam']);
  assert.deepEqual(SALIENCY_METHODS.scorecam.conventions, ['ca-stream', 'pytorch-grad-cam']);
  const fp = async (_b: Float32Array, n: number) => new Float32Array(n * 2).fill(0.5);
  const inp = {
    A,
    K: 3,
    h: 2,
    w: 2,
    image: new Float32Array(12 * 12 * 3),
    H: 12,
    W: 12,
    mean,
    std,
    forwardProbs: fp,
    target: 0,
    maxBatch: 4,
  };
  await assert.rejects(computeSaliency('scorecam', { ...inp, convention: 'pytorch-grad-cam' }), /scorecam' needs input 'forwardLogits'/);
  const r = await computeSaliency('scorecam', { ...inp, convention: 'pytorch-grad-cam', forwardLogits: fp });
  assert.equal(r.map.length, 4);
});
