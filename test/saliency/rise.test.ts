import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rise, riseMaskGenerator } from '../../ml/saliency/rise.js';

const H = 16;
const W = 16;

test('RISE masks: values in [0,1], mean ≈ p1, reproducible from the seed', () => {
  const gen = riseMaskGenerator(H, W, 4, 0.3, 5);
  let sum = 0;
  const first = gen();
  for (let i = 0; i < 199; i++) {
    const m = i === 0 ? first : gen();
    for (const x of m) {
      assert.ok(x >= 0 && x <= 1);
      sum += x;
    }
  }
  assert.ok(Math.abs(sum / (199 * H * W) - 0.3) < 0.03, `mean mask ${sum / (199 * H * W)}`);
  assert.deepEqual(Array.from(riseMaskGenerator(H, W, 4, 0.3, 5)()), Array.from(first));
  assert.notDeepEqual(Array.from(riseMaskGenerator(H, W, 4, 0.3, 6)()), Array.from(first));
});

test('RISE: a model that looks only at one region concentrates saliency there', async () => {
  const image = new Float32Array(3 * H * W).fill(1); // masked image = the mask itself (normalised space)
  const inRegion = (i: number) => Math.floor(i / W) < 5 && i % W >= 10; // top-right 5×6 block
  let calls = 0;
  const forwardProbs = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    calls++;
    const out = new Float32Array(n * 2);
    for (let b = 0; b < n; b++) {
      let s = 0;
      let c = 0;
      for (let i = 0; i < H * W; i++) {
        if (!inRegion(i)) continue;
        s += batch[b * 3 * H * W + i];
        c++;
      }
      out[b * 2] = s / c;
      out[b * 2 + 1] = 1 - s / c;
    }
    return out;
  };
  const r = await rise({ image, H, W, forwardProbs, target: 0, numMasks: 400, cells: 4, p1: 0.5, seed: 1, maxBatch: 64 });
  assert.equal(calls, Math.ceil(400 / 64));
  let inside = 0;
  let outside = 0;
  let nIn = 0;
  let best = 0;
  for (let i = 0; i < H * W; i++) {
    if (inRegion(i)) {
      inside += r.map[i];
      nIn++;
    } else outside += r.map[i];
    if (r.map[i] > r.map[best]) best = i;
  }
  inside /= nIn;
  outside /= H * W - nIn;
  assert.ok(inRegion(best), `maximum at ${best} is outside the region`);
  assert.ok(inside > outside + 0.3, `inside ${inside} vs outside ${outside}`);
  assert.equal(r.h, H);
  assert.equal(r.degenerate, false);
});

test('RISE normalisation: with a constant score c the raw map is ≈ c (Σ M·c / (N·p1)); maxBatch does not matter', async () => {
  const image = new Float32Array(3 * H * W);
  const c = 0.4;
  const forwardProbs = async (_b: Float32Array, n: number) => new Float32Array(n * 2).fill(c);
  const a = await rise({ image, H, W, forwardProbs, target: 1, numMasks: 300, cells: 3, p1: 0.25, seed: 9, maxBatch: 7 });
  const b = await rise({ image, H, W, forwardProbs, target: 1, numMasks: 300, cells: 3, p1: 0.25, seed: 9, maxBatch: 300 });
  const meanRaw = a.raw.reduce((s, x) => s + x, 0) / (H * W);
  assert.ok(Math.abs(meanRaw - c) < 0.04, `mean raw ${meanRaw}`);
  assert.deepEqual(Array.from(a.raw), Array.from(b.raw));
});

test('RISE with mean/std masks the de-normalised image (black outside the mask)', async () => {
  const mean = [0.5, 0.5, 0.5];
  const std = [0.25, 0.25, 0.25];
  const image = new Float32Array(3 * H * W).fill(2); // pixel value 0.5·... = 2·0.25 + 0.5 = 1
  const mask = riseMaskGenerator(H, W, 2, 0.5, 3)();
  let first: Float32Array | undefined;
  const forwardProbs = async (batch: Float32Array, n: number) => {
    first ??= batch.slice(0, H * W);
    return new Float32Array(n).fill(1);
  };
  await rise({ image, H, W, forwardProbs, target: 0, numMasks: 1, cells: 2, p1: 0.5, seed: 3, maxBatch: 1, mean, std });
  for (let i = 0; i < H * W; i++) assert.ok(Math.abs(first![i] - (mask[i] * 1 - 0.5) / 0.25) < 1e-5);
});
