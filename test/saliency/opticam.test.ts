// Opti-CAM on a hand-computable case: three pixels (h×w = H×W = 1×3, so upsampling is the
// identity), two channels, a fake linear model f(x ⊙ S) = S₂. The map, the chain rule through the
// min-max and the softmax, Adam's first two steps and the per-image early stop are checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { opticam, type MaskedScores } from '../../ml/saliency/opticam.js';
import { assertClose } from './helpers.js';

// A0 = [4, 0, 2.5], A1 = [0, 2, 1]; with α = (a, 1 − a): U = [4a, 2 − 2a, 1 + 1.5a]. Near a = ½,
// U₀ is the max and U₁ the min, so S = [1, 0, S₂(a)] with S₂(a) = (3.5a − 1)/(6a − 2), and
// dS₂/da = −1/(6a − 2)². loss = f(x) − S₂, so dL/dw₀ = −dL/dw₁ = a(1 − a)/(6a − 2)².
const A = new Float32Array([4, 0, 2.5, 0, 2, 1]);
const S2 = (a: number) => (3.5 * a - 1) / (6 * a - 2);
const grad = (a: number) => (a * (1 - a)) / (6 * a - 2) ** 2;
const alpha0 = (w0: number, w1: number) => 1 / (1 + Math.exp(w1 - w0));

function fakeModel(log: number[][]): MaskedScores {
  return async (masks, idx) => {
    log.push([...idx]);
    const scores = new Float32Array(idx.length);
    const grads = new Float32Array(idx.length * 3);
    idx.forEach((_, j) => {
      scores[j] = masks[j * 3 + 2];
      grads[j * 3 + 2] = 1;
    });
    return { scores, grads };
  };
}

test('Opti-CAM: Adam steps on the softmax weights, through min-max, by hand (1 and 2 steps)', async () => {
  const log: number[][] = [];
  const [one] = await opticam({ A, B: 1, K: 2, h: 1, w: 3, H: 1, W: 3, maskedScores: fakeModel(log), steps: 1 });
  // First Adam step: w −= lr·g/(|g| + ε) with g = ±grad(½) = ±0.25.
  const g1 = grad(0.5);
  const w1 = [0.5 - (0.1 * g1) / (g1 + 1e-8), 0.5 + (0.1 * g1) / (g1 + 1e-8)];
  const a1 = alpha0(w1[0], w1[1]);
  assertClose(one.map, [1, 0, S2(a1)], 1e-6);
  assertClose(one.weights, [a1, 1 - a1], 1e-12);
  assert.deepEqual(log, [[0], [0]], 'one forward on x for f(x), one per step');
  // Second step with bias-corrected moments.
  const [two] = await opticam({ A, B: 1, K: 2, h: 1, w: 3, H: 1, W: 3, maskedScores: fakeModel([]), steps: 2 });
  const g2 = grad(a1);
  const m = 0.9 * 0.1 * g1 + 0.1 * g2;
  const v = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2;
  const step = (0.1 * (m / (1 - 0.81))) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8);
  const a2 = alpha0(w1[0] - step, w1[1] + step);
  assertClose(two.map, [1, 0, S2(a2)], 1e-6);
});

test('Opti-CAM: an image stops on its own rising loss, at a steps/10 checkpoint, with the map before that update', async () => {
  // Image 0 sees its score fall by 1 every call (its loss rises); image 1 is the linear model.
  let calls = 0;
  const lin = fakeModel([]);
  const seen: number[][] = [];
  const model: MaskedScores = async (masks, idx) => {
    seen.push([...idx]);
    const r = await lin(masks, idx);
    idx.forEach((b, j) => {
      if (b === 0) r.scores[j] = -calls;
    });
    calls++;
    return r;
  };
  const A2 = new Float32Array([...A, ...A]);
  const [stopped, ran] = await opticam({ A: A2, B: 2, K: 2, h: 1, w: 3, H: 1, W: 3, maskedScores: model, steps: 10 });
  // steps/10 = 1: every step is a checkpoint; image 0's loss at step 1 exceeds step 0's, so it
  // keeps the map computed at step 1 (weights after ONE update) and is not forwarded again.
  assert.equal(stopped.steps, 1);
  assertClose(stopped.map, [1, 0, S2(alpha0(0.4, 0.6))], 1e-6);
  assert.ok(ran.steps > 1);
  assert.deepEqual(seen.slice(0, 3), [
    [0, 1],
    [0, 1],
    [0, 1],
  ]);
  assert.deepEqual(seen[3], [1]);
  // Image 1's map does not depend on image 0 stopping (the official code's batch-summed test would).
  const [alone] = await opticam({ A, B: 1, K: 2, h: 1, w: 3, H: 1, W: 3, maskedScores: fakeModel([]), steps: 10 });
  assertClose(ran.map, alone.map, 0);
  assert.equal(ran.steps, alone.steps);
  await assert.rejects(opticam({ A: A2, B: 2, K: 2, h: 1, w: 3, H: 1, W: 3, maskedScores: model, lr: 0 }), /opticam lr must be > 0/);
});

test('Opti-CAM model side: logits of normalise(pixels ⊙ S) and ∂f/∂S match a direct forward and finite differences', async () => {
  const { setBackendLogger, tf } = await import('../../ml/backend/index.js');
  const { initTestBackend } = await import('../support/backend.js');
  const { FullModel } = await import('../../ml/explain/full-model.js');
  const { getBackbone } = await import('../../ml/models/backbones.js');
  const { createModel } = await import('../../ml/models/model.js');
  const { testData } = await import('./helpers.js');
  setBackendLogger(() => {});
  await initTestBackend();
  const C = 4;
  const size = 32;
  const m = createModel({ arch: 'resnet-basic-1111', head: 'ca-stream', numClasses: C, seed: 9 });
  const weights = new Map([...m.stateDict()].map(([k, v]) => [k, { shape: v.shape, data: v.data }] as const));
  m.dispose();
  const full = new FullModel({
    card: { head: 'ca-stream', heads: 1, num_classes: C, input_size: size },
    arch: getBackbone('resnet-basic-1111'),
    weights,
    weightsFile: 'random',
  } as never);
  try {
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const images = testData(2 * 3 * size * size, 3, -1.5, 1.5);
    const targets = [2, 0];
    const f = full.maskedScores(images, 2, size, size, mean, std, targets);
    const S = testData(size * size, 4, 0, 1);
    const { scores, grads } = await f(S, [1]); // image 1 only
    // Direct: normalise(denormalise(x₁)·S) through the model.
    const per = 3 * size * size;
    const x = new Float32Array(per);
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < size * size; i++)
        x[c * size * size + i] = ((images[per + c * size * size + i] * std[c] + mean[c]) * S[i] - mean[c]) / std[c];
    const logit = tf.tidy(
      () => full.model.forward(tf.transpose(tf.tensor4d(x, [1, 3, size, size]), [0, 2, 3, 1]) as never).logits.dataSync()[targets[1]],
    );
    assertClose(scores, [logit], 1e-4);
    const d = testData(size * size, 5, -1, 1);
    const e = 1e-3;
    const up = (
      await f(
        S.map((v, i) => v + e * d[i]),
        [1],
      )
    ).scores[0];
    const dn = (
      await f(
        S.map((v, i) => v - e * d[i]),
        [1],
      )
    ).scores[0];
    let dot = 0;
    for (let i = 0; i < d.length; i++) dot += grads[i] * d[i];
    const fd = (up - dn) / (2 * e);
    assert.ok(Math.abs(dot - fd) <= 5e-2 * Math.abs(fd) + 2e-4, `${dot} vs ${fd}`);
  } finally {
    full.dispose();
  }
});
