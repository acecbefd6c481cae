import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confidenceEval, confidenceMetrics, maskImage } from '../../ml/metrics/confidence.js';
import { resolveProtocol } from '../../ml/metrics/protocol.js';

const near = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

test('AD / AI / AG on two images (hand-computed)', () => {
  // image 1: p .8 → o .6: drop .2/.8 = 25 %, no increase, no gain
  // image 2: p .3 → o .5: no drop, increase, gain .2/.7 = 28.571… %
  const r = confidenceMetrics([0.8, 0.3], [0.6, 0.5]);
  near(r.drop[0], 25, 1e-9);
  near(r.drop[1], 0);
  assert.deepEqual(Array.from(r.increase), [0, 100]);
  near(r.gain[0], 0);
  near(r.gain[1], 200 / 7, 1e-9);
  near(r.AD, 12.5, 1e-9);
  near(r.AI, 50);
  near(r.AG, 100 / 7, 1e-9);
});

test('AI: ties count 0; p = 1 and p = 0 stay finite thanks to ε', () => {
  const r = confidenceMetrics([0.4, 1, 0], [0.4, 1, 0.5]);
  assert.deepEqual(Array.from(r.increase), [0, 0, 100]);
  near(r.drop[0], 0);
  near(r.gain[2], 50, 1e-9);
  assert.ok(Number.isFinite(r.AG) && Number.isFinite(r.AD));
});

test('maskImage: normalise(denormalise(x)·S) in pixel space, x·S in normalised space', () => {
  // 1 image, 2 channels, 2 pixels. ch0 mean .5 std .25: x=2 → pixel 1; x=−2 → pixel 0.
  // ch1 mean .4 std .2: x=3 → pixel 1.
  const x = new Float32Array([2, -2, 3, 3]);
  const s = new Float32Array([0.5, 1]);
  const m = maskImage(x, s, [0.5, 0.4], [0.25, 0.2]);
  // ch0 px0: (1·.5 − .5)/.25 = 0; px1: (0·1 − .5)/.25 = −2; ch1 px0: (1·.5 − .4)/.2 = .5; px1: 3
  const exp = [0, -2, 0.5, 3];
  exp.forEach((e, i) => near(m[i], e, 1e-6));
  const black = maskImage(x, new Float32Array([0, 0]), [0.5, 0.4], [0.25, 0.2]);
  [-2, -2, -2, -2].forEach((e, i) => near(black[i], e, 1e-6));
  const n = maskImage(x, s, [0.5, 0.4], [0.25, 0.2], { space: 'normalised' });
  [1, -2, 1.5, 3].forEach((e, i) => near(n[i], e, 1e-6));
  // two images of one pixel each
  const two = maskImage(new Float32Array([2, 2]), new Float32Array([1, 0]), [0.5], [0.25], { images: 2 });
  [2, -2].forEach((e, i) => near(two[i], e, 1e-6));
  assert.throws(() => maskImage(x, new Float32Array(3), [0.5, 0.4], [0.25, 0.2]), /do not match/);
});

test('confidenceEval: batches, gt and pred targets', async () => {
  // 1 channel, 1×2 images; model: class-1 logit = sum of pixels, class-0 logit = 0.
  const prob1 = (z: number) => 1 / (1 + Math.exp(-z));
  const score = async (b: Float32Array, n: number) => {
    const out = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      const q = prob1(b[2 * i] + b[2 * i + 1]);
      out[2 * i] = 1 - q;
      out[2 * i + 1] = q;
    }
    return out;
  };
  const images = new Float32Array([1, 1, -1, -2, 2, 0]);
  const sal = new Float32Array([1, 0, 0.5, 0.5, 1, 1]);
  const mean = [0];
  const std = [1];
  const calls: number[] = [];
  const spy = async (b: Float32Array, n: number) => (calls.push(n), score(b, n));
  const r = await confidenceEval({
    images,
    dims: { c: 1, h: 1, w: 2 },
    saliency: sal,
    targets: [1, 1, 0],
    protocol: resolveProtocol('ca-stream'),
    mean,
    std,
    score: spy,
    maxBatch: 2,
  });
  assert.deepEqual(calls, [2, 1, 2, 1]);
  // mean 0 std 1 → masking is x·S: sums 1, −1.5, 2 (clean: 2, −3, 2)
  near(r.p[0], prob1(2), 1e-6);
  near(r.o[0], prob1(1), 1e-6);
  near(r.p[1], prob1(-3), 1e-6);
  near(r.o[1], prob1(-1.5), 1e-6);
  near(r.p[2], 1 - prob1(2), 1e-6);
  near(r.o[2], 1 - prob1(2), 1e-6);
  assert.deepEqual(r.statuses, ['ok', 'constant', 'constant']);
  const pred = await confidenceEval({
    images,
    dims: { c: 1, h: 1, w: 2 },
    saliency: sal,
    protocol: resolveProtocol('rise'),
    mean,
    std,
    score,
  });
  assert.deepEqual(Array.from(pred.targets), [1, 0, 1]);
  await assert.rejects(
    confidenceEval({ images, dims: { c: 1, h: 1, w: 2 }, saliency: sal, protocol: resolveProtocol('ca-stream'), mean, std, score }),
    /scores the ground truth, so 3 targets are needed/,
  );
});

test('softmaxRows: stable row-wise softmax', async () => {
  const { softmaxRows } = await import('../../ml/metrics/score.js');
  const out = softmaxRows(new Float32Array([0, Math.log(3), 1000, 1000]), 2);
  [0.25, 0.75, 0.5, 0.5].forEach((e, i) => near(out[i], e, 1e-7));
  assert.throws(() => softmaxRows(new Float32Array(3), 2), /3 values for 2 images/);
});

test('confidenceEval upsamples feature-resolution maps by the protocol rule', async () => {
  // 1×1 map upsampled to 1×2 is constant: masked image = clean image · 0.5 (mean 0, std 1)
  const seen: number[][] = [];
  const score = async (b: Float32Array, n: number) => {
    seen.push(Array.from(b));
    return new Float32Array(n).fill(1);
  };
  await confidenceEval({
    images: new Float32Array([4, 6]),
    dims: { c: 1, h: 1, w: 2 },
    saliency: new Float32Array([0.5]),
    saliencySize: { h: 1, w: 1 },
    targets: [0],
    protocol: resolveProtocol('ca-stream'),
    mean: [0],
    std: [1],
    score,
  });
  assert.deepEqual(seen, [
    [4, 6],
    [2, 3],
  ]);
});
