import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ablationcam } from '../../ml/saliency/ablationcam.js';
import { assertClose, refReluMinMax, testData } from './helpers.js';

// Head from the target layer: y = Σ_k v_k·mean(A_k) + b (a GAP + linear classifier's target logit).
const K = 4;
const hw = 6;
const v = [2, -1, 0.5, 1];
const b = 0.3;
function head(calls: number[]) {
  return async (batch: Float32Array, n: number): Promise<Float32Array> => {
    calls.push(n);
    assert.equal(batch.length, n * K * hw);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let y = b;
      for (let k = 0; k < K; k++) {
        let m = 0;
        for (let p = 0; p < hw; p++) m += batch[i * K * hw + k * hw + p];
        y += (v[k] * m) / hw;
      }
      out[i] = y;
    }
    return out;
  };
}

test('Ablation-CAM: w_k = (y − y_k)/y; with a GAP-linear head y − y_k = v_k·mean(A_k)', async () => {
  const A = testData(K * hw, 21, 0.1, 1);
  const means = v.map((_, k) => A.subarray(k * hw, (k + 1) * hw).reduce((s, x) => s + x, 0) / hw);
  const y = b + v.reduce((s, vk, k) => s + vk * means[k], 0);
  const calls: number[] = [];
  const r = await ablationcam({ A, K, h: 2, w: 3, forwardFromLayer: head(calls), maxBatch: 2 });
  assert.ok(Math.abs(r.score - y) < 1e-5);
  assertClose(
    r.weights,
    v.map((vk, k) => (vk * means[k]) / y),
    1e-4,
  );
  const cam = Array.from({ length: hw }, (_, p) => v.reduce((s, vk, k) => s + ((vk * means[k]) / y) * A[k * hw + p], 0));
  assertClose(r.map, refReluMinMax(cam), 1e-4);
  // K ablations + the intact forward = 5 items in batches of 2.
  assert.deepEqual(calls, [2, 2, 1]);
});

test('Ablation-CAM: a given score saves the intact forward; no-op ablations are skipped; y = 0 is degenerate', async () => {
  const A = testData(K * hw, 22, 0.1, 1);
  A.fill(0, hw, 2 * hw); // channel 1 already zero: ablating it changes nothing
  const calls: number[] = [];
  const r = await ablationcam({ A, K, h: 2, w: 3, forwardFromLayer: head(calls), score: 1.7, maxBatch: 8 });
  assert.deepEqual(calls, [3]);
  assert.equal(r.forwarded, 3);
  assert.equal(r.weights[1], 0);

  const z = await ablationcam({ A, K, h: 2, w: 3, forwardFromLayer: head([]), score: 0, maxBatch: 8 });
  assert.equal(z.degenerate, true);
  assert.equal(z.reason, 'zero-score');
});
