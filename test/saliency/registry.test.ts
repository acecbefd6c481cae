import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeSaliency, isSaliencyMethod, SALIENCY_METHODS, type SaliencyInputs } from '../../ml/saliency/registry.js';
import { gradcampp } from '../../ml/saliency/gradient-cams.js';
import { testData } from './helpers.js';

const NEEDS = new Set(['gradients', 'forward', 'activations', 'dots', 'none']);

test('registry: every method has a valid need, and dispatch works with exactly its declared inputs', async () => {
  const K = 3;
  const h = 2;
  const w = 2;
  const H = 4;
  const W = 4;
  const all: SaliencyInputs = {
    A: testData(K * h * w, 1, 0, 1),
    G: testData(K * h * w, 2, -1, 1),
    hvp: testData(K * h * w, 6, -1, 1),
    finerG: testData(K * h * w, 7, -1, 1),
    fullgrad: {
      inputGrad: testData(3 * 4 * 4, 8, -1, 1),
      layers: [{ layer: 'bn', bias: Float32Array.from([1, -2]), grad: testData(2 * 2 * 2, 9, -1, 1), h: 2, w: 2 }],
    },
    opticam: { map: new Float32Array(16).fill(0.5), h: 4, w: 4, degenerate: false },
    K,
    h,
    w,
    dots: testData(2 * h * w, 3, -1, 1),
    heads: 2,
    image: testData(3 * H * W, 4, -1, 1),
    H,
    W,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    forwardProbs: async (b, n) => {
      const out = new Float32Array(n * 2);
      for (let i = 0; i < n; i++) {
        out[i * 2] = 1 / (1 + Math.exp(-b[i * 3 * H * W]));
        out[i * 2 + 1] = 1 - out[i * 2];
      }
      return out;
    },
    forwardFromLayer: async (b, n) => {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) for (let j = 0; j < K * h * w; j++) out[i] += b[i * K * h * w + j];
      return out;
    },
    target: 0,
    maxBatch: 4,
    seed: 5,
    rise: { numMasks: 8, cells: 2, p1: 0.5 },
  };
  for (const [name, info] of Object.entries(SALIENCY_METHODS)) {
    assert.equal(info.name, name);
    assert.ok(NEEDS.has(info.needs), `${name}: need ${info.needs}`);
    const only: SaliencyInputs = {};
    for (const f of info.inputs) (only as Record<string, unknown>)[f] = all[f];
    const r = await computeSaliency(name, only);
    const [eh, ew] = info.resolution === 'input' ? [H, W] : [h, w];
    assert.equal(r.map.length, eh * ew, name);
    assert.ok(
      r.map.every((x) => x >= 0 && x <= 1),
      `${name} map within [0, 1]`,
    );
    // Removing any declared input must fail with a message naming it.
    for (const f of info.inputs) {
      const missing = { ...only, [f]: undefined };
      await assert.rejects(computeSaliency(name, missing), new RegExp(`method '${name}' needs input '${f}'`));
    }
  }
  // Dispatch really calls the method.
  const viaRegistry = await computeSaliency('gradcampp', all);
  assert.deepEqual(Array.from(viaRegistry.map), Array.from(gradcampp(all.A!, all.G!, K, h, w).map));
});

test('registry: unknown methods are rejected with the list of known ones', async () => {
  assert.equal(isSaliencyMethod('gradcam'), true);
  assert.equal(isSaliencyMethod('toString'), false);
  await assert.rejects(computeSaliency('grad-cam', {}), /unknown method 'grad-cam' \(known: ca-attention, gradcam, /);
});
