// A model that outputs NaN must not look perfect: every comparison with NaN is false, so a naive
// rank count puts the label first. scoreBatch counts such images and never scores them correct.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scoreBatch } from '../../ml/explain/evaluate-batch.js';
import { resolveProtocol } from '../../ml/metrics/protocol.js';

const SIZE = 16;
const CLASSES = 3;

/** Image 0 gets NaN scores, image 1 honest ones with its label (1) on top. */
const score = async (_batch: Float32Array, n: number): Promise<Float32Array> => {
  const out = new Float32Array(n * CLASSES);
  for (let i = 0; i < n; i++) out.set(i % 2 === 0 ? [NaN, NaN, NaN] : [0.2, 0.7, 0.1], i * CLASSES);
  return out;
};

test('scoreBatch: an image with NaN scores is neither top-1 nor top-5 correct, and is counted', async () => {
  const n = 2;
  const map = new Float32Array(n * 4 * 4).map((_, i) => i % 7);
  const scored = await scoreBatch({
    images: new Float32Array(n * 3 * SIZE * SIZE).fill(0.1),
    size: SIZE,
    ids: [0, 1],
    labels: [0, 1],
    maps: { m: { h: 4, w: 4, data: map } },
    protocol: resolveProtocol('ca-stream'),
    mean: [0, 0, 0],
    std: [1, 1, 1],
    score,
    maxBatch: 64,
    keepConstant: [],
  });
  assert.deepEqual(scored.top1, [0, 1]);
  assert.deepEqual(scored.top5, [0, 1]);
  assert.deepEqual(scored.nonFinite, [1, 0]);
});
