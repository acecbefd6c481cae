// CA attention map and baselines (bilinear resizing is tested in test/metrics/upsample.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { caAttention, caAttentionBatch } from '../../ml/saliency/ca-attention.js';
import { centerBaseline, onesBaseline, randomBaseline } from '../../ml/saliency/baselines.js';
import { assertClose } from './helpers.js';

test('caAttention = min-max of the head-mean of per-head softmax over positions', () => {
  // head 0 logits [0, ln2, 0] → softmax [.25, .5, .25]; head 1 [ln3, 0, 0] → [.6, .2, .2]
  // mean [.425, .35, .225] → (x − .225)/.2 = [1, .625, 0]
  const dots = new Float32Array([0, Math.LN2, 0, Math.log(3), 0, 0]);
  const r = caAttention(dots, 2, 1, 3);
  assertClose(r.map, [1, 0.625, 0], 1e-6);
  assert.equal(r.degenerate, false);
  // Softmax is shift-invariant per head: adding 100 to one head changes nothing (and no overflow).
  const shifted = new Float32Array([100, 100 + Math.LN2, 100, Math.log(3), 0, 0]);
  assertClose(caAttention(shifted, 2, 1, 3).map, [1, 0.625, 0], 1e-5);
  // Equal logits → uniform attention → degenerate.
  assert.equal(caAttention(new Float32Array(4).fill(7), 1, 2, 2).degenerate, true);
  const batch = caAttentionBatch(new Float32Array([...dots, ...shifted]), 2, 2, 1, 3);
  assert.equal(batch.length, 2);
  assertClose(batch[1].map, [1, 0.625, 0], 1e-5);
});

test('baselines: seeded random, centre Gaussian with σ = side/4, ones', () => {
  const a = randomBaseline(4, 5, 42);
  assert.deepEqual(Array.from(a.map), Array.from(randomBaseline(4, 5, 42).map));
  assert.notDeepEqual(Array.from(a.map), Array.from(randomBaseline(4, 5, 43).map));
  assert.ok(a.map.every((x) => x >= 0 && x < 1));

  const c = centerBaseline(9, 13); // centre (4, 6), σ_y = 2.25, σ_x = 3.25
  assert.equal(c.map[4 * 13 + 6], 1);
  // one σ_x to the right of centre is not on the grid; compare two grid points directly instead:
  const at = (y: number, x: number) => Math.exp(-((y - 4) ** 2) / (2 * 2.25 ** 2) - (x - 6) ** 2 / (2 * 3.25 ** 2));
  assertClose([c.map[0], c.map[2 * 13 + 9], c.map[8 * 13 + 12]], [at(0, 0), at(2, 9), at(8, 12)], 1e-6);
  // Even size: the centre falls between pixels; the four middle pixels share the peak value 1.
  const e = centerBaseline(4, 4);
  assertClose([e.map[5], e.map[6], e.map[9], e.map[10]], [1, 1, 1, 1]);

  const o = onesBaseline(2, 3);
  assert.deepEqual(Array.from(o.map), [1, 1, 1, 1, 1, 1]);
  assert.equal(o.degenerate, false);
});
