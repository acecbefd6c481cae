import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scorecam } from '../../ml/saliency/scorecam.js';
import { assertClose } from './helpers.js';

const mean = [0.5, 0.4, 0.3];
const std = [0.2, 0.25, 0.5];
const H = 3;
const W = 3;

function normalisedImage(pixels: number[][]): Float32Array {
  // pixels[c] is the H×W [0,1] image of channel c.
  const x = new Float32Array(3 * H * W);
  for (let c = 0; c < 3; c++) for (let i = 0; i < H * W; i++) x[c * H * W + i] = (pixels[c][i] - mean[c]) / std[c];
  return x;
}

// 2×2 activations, three channels, chosen so align_corners=True upsampling to 3×3 is easy by hand:
//   A0 = [0 1; 0 1] → rows [0, .5, 1]                         → minmax mean 0.5
//   A1 = [0 0; 0 2] → [0 0 0; 0 .5 1; 0 1 2] → /2            → mean 2.25/9 = 0.25
//   A2 = [3 3; 3 1] → [3 3 3; 3 2.5 2; 3 2 1] → (x − 1)/2    → mean 6.75/9 = 0.75
const A = new Float32Array([0, 1, 0, 1, /* */ 0, 0, 0, 2, /* */ 3, 3, 3, 1]);

test('Score-CAM: masks the de-normalised image, weights = target probability, batched', async () => {
  const ones = Array.from({ length: 9 }, () => 1);
  const image = normalisedImage([ones, ones, ones]);
  const calls: number[] = [];
  // Fake model: probability of class 1 = mean pixel value of the de-normalised masked image.
  const forwardProbs = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    calls.push(n);
    assert.equal(batch.length, n * 3 * H * W);
    const out = new Float32Array(n * 2);
    for (let b = 0; b < n; b++) {
      let sum = 0;
      for (let i = 0; i < H * W; i++) {
        const px = [0, 1, 2].map((c) => batch[(b * 3 + c) * H * W + i] * std[c] + mean[c]);
        // A white image masked by M is M in every channel: each channel was normalised with its own stats.
        assert.ok(Math.abs(px[0] - px[1]) < 1e-6 && Math.abs(px[0] - px[2]) < 1e-6);
        sum += px[0];
      }
      out[b * 2 + 1] = sum / (H * W);
      out[b * 2] = 1 - out[b * 2 + 1];
    }
    return out;
  };
  const r = await scorecam({ A, K: 3, h: 2, w: 2, image, H, W, mean, std, forwardProbs, target: 1, maxBatch: 2 });
  assertClose(r.weights, [0.5, 0.25, 0.75], 1e-6);
  // cam = 0.5·A0 + 0.25·A1 + 0.75·A2 = [2.25, 2.75, 2.25, 1.75] → (x − 1.75)/1
  assertClose(r.map, [0.5, 1, 0.5, 0], 1e-6);
  assert.deepEqual(calls, [2, 1]); // ceil(K / maxBatch) = 2 calls
  assert.equal(r.forwardCalls, 2);
  assert.equal(r.forwarded, 3);
});

test('Score-CAM: the masked batch is normalise(denormalise(x) · M_k) for a non-constant image', async () => {
  const pix = [
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
    [0.5, 0.5, 0.5, 1, 1, 1, 0, 0, 0],
  ];
  const image = normalisedImage(pix);
  const M0 = [0, 0.5, 1, 0, 0.5, 1, 0, 0.5, 1]; // channel A0's mask, derived above
  let seen: Float32Array | undefined;
  const forwardProbs = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    seen ??= batch.slice(0, 3 * H * W); // first item = channel 0
    return new Float32Array(n * 2).fill(0.5);
  };
  await scorecam({ A, K: 3, h: 2, w: 2, image, H, W, mean, std, forwardProbs, target: 0, maxBatch: 8 });
  const expected: number[] = [];
  for (let c = 0; c < 3; c++) for (let i = 0; i < 9; i++) expected.push((pix[c][i] * M0[i] - mean[c]) / std[c]);
  assertClose(seen!, expected, 1e-5);
});

test('Score-CAM: ceil(K/maxBatch) forward calls; all-zero channels are skipped, not forwarded', async () => {
  const K = 7;
  const acts = new Float32Array(K * 4);
  for (let k = 0; k < K; k++) acts.set([k + 1, 0, 0, 1], k * 4);
  let calls = 0;
  let items = 0;
  const forwardProbs = async (_b: Float32Array, n: number): Promise<Float32Array> => {
    calls++;
    items += n;
    return new Float32Array(n * 3).fill(1 / 3);
  };
  const image = new Float32Array(3 * 4 * 4);
  const r = await scorecam({ A: acts, K, h: 2, w: 2, image, H: 4, W: 4, mean, std, forwardProbs, target: 2, maxBatch: 3 });
  assert.equal(calls, Math.ceil(K / 3));
  assert.equal(items, K);
  assert.equal(r.forwardCalls, 3);

  acts.fill(0, 2 * 4, 3 * 4); // channel 2 dead
  calls = 0;
  items = 0;
  const s = await scorecam({ A: acts, K, h: 2, w: 2, image, H: 4, W: 4, mean, std, forwardProbs, target: 2, maxBatch: 3 });
  assert.equal(items, K - 1);
  assert.equal(calls, Math.ceil((K - 1) / 3));
  assert.equal(s.forwarded, K - 1);
  assert.equal(s.weights[2], 0);
});

test('Score-CAM: bad forward output and bad target are reported clearly', async () => {
  const image = new Float32Array(3 * H * W);
  const bad = async (_b: Float32Array, n: number): Promise<Float32Array> => new Float32Array(n * 2 + 1);
  await assert.rejects(
    scorecam({ A, K: 3, h: 2, w: 2, image, H, W, mean, std, forwardProbs: bad, target: 0, maxBatch: 4 }),
    /forwardProbs returned 7 values for a batch of 3/,
  );
  const two = async (_b: Float32Array, n: number): Promise<Float32Array> => new Float32Array(n * 2);
  await assert.rejects(
    scorecam({ A, K: 3, h: 2, w: 2, image, H, W, mean, std, forwardProbs: two, target: 5, maxBatch: 4 }),
    /target class 5 out of range \(2 classes\)/,
  );
});

test('Score-CAM: progress is reported per batch and an aborted signal stops the loop', async () => {
  const image = new Float32Array(3 * H * W);
  const progress: Array<[number, number]> = [];
  const ctl = new AbortController();
  let calls = 0;
  const forwardProbs = async (_b: Float32Array, n: number): Promise<Float32Array> => {
    calls++;
    if (calls === 2) ctl.abort(new Error('stop requested'));
    return new Float32Array(n * 2).fill(0.5);
  };
  await assert.rejects(
    scorecam({
      A,
      K: 3,
      h: 2,
      w: 2,
      image,
      H,
      W,
      mean,
      std,
      forwardProbs,
      target: 0,
      maxBatch: 1,
      signal: ctl.signal,
      onProgress: (d, t) => progress.push([d, t]),
    }),
    /stop requested/,
  );
  assert.equal(calls, 2);
  assert.deepEqual(progress, [
    [1, 3],
    [2, 3],
  ]);
});
