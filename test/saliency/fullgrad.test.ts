// FullGrad: a hand-computed combination of the input and bias terms, and the whole-model gradients
// it reads (input gradient, gradient at every biased conv / BN output) against finite differences
// on small random-weight models of each family.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setBackendLogger, tf } from '../../ml/backend/index.js';
import { FullModel } from '../../ml/explain/full-model.js';
import type { LoadedModel } from '../../ml/explain/model-dir.js';
import { getBackbone } from '../../ml/models/backbones.js';
import { createModel } from '../../ml/models/model.js';
import { fullgrad } from '../../ml/saliency/fullgrad.js';
import { initTestBackend } from '../support/backend.js';
import { assertClose, testData } from './helpers.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

test('FullGrad by hand: per-plane scaling, one resize per layer (half-pixel bilinear), sum, min-max', () => {
  const H = 4;
  const W = 4;
  const image = new Float32Array(16).fill(1);
  const inputGrad = new Float32Array(16);
  inputGrad.set([0, 1, -2, 3]); // |x·g| on the first row: [0, 1, 2, 3] → /(1e-7 + 3)
  const r = fullgrad(image, 1, H, W, {
    inputGrad,
    layers: [
      // 2×2 layer: |2·[1,0,0,0]| → [1,0,0,0]·2/(2 + 1e-7); |−1·[0,0,0,3]| → [0,0,0,1]·3/(3 + 1e-7).
      { layer: 'l', bias: Float32Array.from([2, -1]), grad: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 3]), h: 2, w: 2 },
      // A 1×1 output (squeeze-excitation) scales to 0 and adds nothing.
      { layer: 'se', bias: Float32Array.from([5]), grad: Float32Array.from([7]), h: 1, w: 1 },
    ],
  });
  // 2 → 4 with half-pixel centres and clamped edges: output row i mixes rows (0, 1) with weights
  // [1, 0], [.75, .25], [.25, .75], [0, 1] (source coordinates −.25→0, .25, .75, 1.25→1).
  const wgt = [
    [1, 0],
    [0.75, 0.25],
    [0.25, 0.75],
    [0, 1],
  ];
  const a = 2 / (2 + 1e-7);
  const b = 3 / (3 + 1e-7);
  const total: number[] = [];
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 4; j++)
      total.push((i === 0 ? [0, 1, 2, 3][j] / (3 + 1e-7) : 0) + a * wgt[i][0] * wgt[j][0] + b * wgt[i][1] * wgt[j][1]);
  const lo = Math.min(...total);
  const hi = Math.max(...total);
  assertClose(
    r.map,
    total.map((v) => (v - lo) / (hi - lo)),
    1e-6,
  );
  assert.equal(r.h, 4);
  assert.throws(
    () => fullgrad(image, 1, H, W, { inputGrad: new Float32Array(3), layers: [] }),
    /FullGrad input gradient has 3 values, expected 16/,
  );
});

for (const [arch, head] of [
  ['resnet-basic-1111', 'ca-stream'],
  ['convnext-mini', 'gap'],
  ['efficientnet-mini', 'gap'],
] as const) {
  test(`${arch} ${head}: FullGrad's gradients match finite differences (input, and Σ_p ∂y/∂out_c = ∂y/∂bias_c)`, () => {
    const C = 5;
    const m = createModel({ arch, head, numClasses: C, seed: 2 });
    const weights = new Map([...m.stateDict()].map(([k, v]) => [k, { shape: v.shape, data: v.data }] as const));
    m.dispose();
    const size = 32;
    const loaded = {
      card: { head, heads: 1, num_classes: C, input_size: size },
      arch: getBackbone(arch),
      weights,
      weightsFile: 'random',
    } as unknown as LoadedModel;
    const full = new FullModel(loaded);
    try {
      const n = 2;
      const images = testData(n * 3 * size * size, 5, -1, 1);
      const targets = [1, 4];
      const res = full.fullGradInputs(images, n, size, size, targets);
      const score = () =>
        tf.tidy(() => {
          const x = tf.transpose(tf.tensor4d(images, [n, 3, size, size]), [0, 2, 3, 1]) as tf.Tensor4D;
          const L = full.model.forward(x).logits.dataSync();
          return L[targets[0]] + L[C + targets[1]];
        });
      // Input gradient along a random direction.
      const d = testData(images.length, 8, -1, 1);
      const base = Float32Array.from(images);
      // Small steps: ReLU and max-pool kinks make the score non-smooth at the 1e-2 scale.
      const eps = 1e-3;
      images.set(base.map((v, i) => v + eps * d[i]));
      const up = score();
      images.set(base.map((v, i) => v - eps * d[i]));
      const down = score();
      images.set(base);
      let dot = 0;
      const per = 3 * size * size;
      for (let b = 0; b < n; b++) for (let i = 0; i < per; i++) dot += res[b].inputGrad[i] * d[b * per + i];
      const fd = (up - down) / (2 * eps);
      assert.ok(Math.abs(dot - fd) <= 5e-2 * Math.abs(fd) + 2e-4, `input: ${dot} vs ${fd}`);
      // A few biased layers: nudging the bias parameter of channel 0 (BN: β, whose effective bias moves 1:1).
      const layers = res[0].layers;
      assert.ok(layers.length > 3, `${layers.length} biased layers found`);
      for (const li of [0, Math.floor(layers.length / 2), layers.length - 1]) {
        const l = layers[li];
        const hw = l.h * l.w;
        let analytic = 0;
        for (let b = 0; b < n; b++) for (let p = 0; p < hw; p++) analytic += res[b].layers[li].grad[p];
        const param = full.model.param(`${l.layer}.bias`);
        const orig = param.dataSync().slice();
        const at = (delta: number) => {
          const v = orig.slice();
          v[0] += delta;
          param.assign(tf.tensor(v, param.shape));
          full.model.invalidateFolded();
          return score();
        };
        const e = 1e-3;
        const g = (at(e) - at(-e)) / (2 * e);
        at(0);
        assert.ok(Math.abs(analytic - g) <= 5e-2 * Math.abs(g) + 2e-4, `${l.layer}: ${analytic} vs ${g}`);
      }
      // FullGrad's own names are the modules' (BN for ResNet and EfficientNet, convolutions for ConvNeXt).
      assert.ok(layers.every((l) => l.bias.length > 0 && l.grad.length === l.bias.length * l.h * l.w));
    } finally {
      full.dispose();
    }
  });
}
