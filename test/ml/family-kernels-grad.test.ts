// Gradients of the ConvNeXt / EfficientNet building blocks (depthwise convolution, LayerNorm,
// exact GELU, SiLU, squeeze-excitation) against central finite differences, in float64 on the
// JS side: the wasm depthwise backprop kernels (ml/backend/family-kernels.ts) and tfjs's
// own gradients of the composite ops. Finetune and scratch training of these families need them.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setBackendLogger, tf } from '../../ml/backend/index.js';
import { backendUnderTest, initTestBackend } from '../support/backend.js';
import { gelu, layerNorm } from '../../ml/models/layers.js';
import { Rng } from '../../ml/models/index.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

const rng = new Rng(11);
const randn = (shape: number[], scale = 1) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * rng.normal()),
    shape,
  );

/**
 * Checks d/dinput_k of sum(f(inputs) ⊙ R) for a fixed random R against central differences at a
 * few sampled coordinates of each input.
 */
function checkGrad(
  name: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  opts: { eps?: number; tol?: number; samples?: number } = {},
): void {
  const eps = opts.eps ?? 1e-2;
  const tol = opts.tol ?? 2e-2;
  const outShape = tf.tidy(() => f(...inputs).shape);
  const R = randn(outShape);
  const loss = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), R));
  const grads = tf.grads(loss)(inputs);
  inputs.forEach((x, k) => {
    const g = grads[k].dataSync();
    const base = x.dataSync().slice() as Float32Array;
    const n = base.length;
    for (let s = 0; s < (opts.samples ?? 12); s++) {
      const idx = Math.floor(rng.next() * n);
      const at = (delta: number) => {
        const xv = base.slice();
        xv[idx] += delta;
        return tf.tidy(() => loss(...inputs.map((t, j) => (j === k ? tf.tensor(xv, x.shape) : t))).dataSync()[0]);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      const err = Math.abs(fd - g[idx]) / Math.max(1, Math.abs(fd));
      assert.ok(err < tol, `${name}: ∂/∂input${k}[${idx}] analytic ${g[idx]} vs finite difference ${fd}`);
    }
  });
  tf.dispose([R, ...grads]);
}

test('the backend under test has the depthwise backprop kernels (ca-pipe adds them to wasm)', () => {
  for (const k of ['DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'])
    assert.ok(tf.getKernel(k, backendUnderTest()), k);
});

for (const [label, geo] of [
  ['7×7 pad 3 stride 1 (ConvNeXt)', { k: 7, s: 1, pad: 3, H: 9 }],
  ['5×5 pad 2 stride 2 (EfficientNet)', { k: 5, s: 2, pad: 2, H: 11 }],
  ['3×3 pad 1 stride 2, even side', { k: 3, s: 2, pad: 1, H: 8 }],
] as const) {
  test(`depthwise convolution gradients, ${label}`, () => {
    const x = randn([2, geo.H, geo.H, 3]);
    const w = randn([geo.k, geo.k, 3, 1], 0.3);
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0],
      [geo.pad, geo.pad],
      [geo.pad, geo.pad],
      [0, 0],
    ];
    checkGrad(`dwconv ${label}`, (a, b) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, geo.s, pad), [x, w]);
  });
}

test('depthwise backprop on the backend under test equals the cpu backend’s, channel multiplier 2', async () => {
  const x = randn([2, 7, 7, 3]);
  const w = randn([3, 3, 3, 2], 0.3);
  const dy = randn([2, 4, 4, 6]);
  const grads = () =>
    tf.tidy(() =>
      tf
        .grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 1), dy)))([x, w])
        .map((t) => t.dataSync()),
    );
  const onWasm = grads();
  await tf.setBackend('cpu');
  const onCpu = grads();
  await tf.setBackend(backendUnderTest());
  for (let k = 0; k < 2; k++) {
    let worst = 0;
    for (let i = 0; i < onCpu[k].length; i++) worst = Math.max(worst, Math.abs(onWasm[k][i] - onCpu[k][i]));
    assert.ok(worst < 1e-4, `input ${k}: ${worst}`);
  }
});

test('LayerNorm (channels-last, ε 1e-6) gradients with respect to input, weight and bias', () => {
  const x = randn([3, 4, 8], 2);
  checkGrad('layerNorm', (a, w, b) => layerNorm(a, w, b, 1e-6), [x, randn([8]), randn([8])]);
});

test('exact GELU: value and gradient', () => {
  // Φ-based GELU at a few points (not the tanh approximation: 0.8413447 at 1 vs 0.8411920).
  const v = tf.tidy(() => gelu(tf.tensor1d([-2, -0.5, 0, 1, 3])).dataSync());
  const ref = [-0.04550026, -0.15426877, 0, 0.84134475, 2.99595031];
  ref.forEach((r, i) => assert.ok(Math.abs(v[i] - r) < 1e-6, `gelu: ${v[i]} vs ${r}`));
  checkGrad('gelu', (a) => gelu(a), [randn([50], 2)]);
});

test('SiLU and squeeze-excitation gradients', () => {
  const silu = (t: tf.Tensor) => tf.mul(t, tf.sigmoid(t));
  checkGrad('silu', (a) => silu(a), [randn([40], 2)]);
  const se = (x: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => {
    const p = tf.mean(x, [1, 2], true) as tf.Tensor4D;
    const z = silu(tf.add(tf.conv2d(p, w1 as tf.Tensor4D, 1, 'valid'), b1));
    return tf.mul(x, tf.sigmoid(tf.add(tf.conv2d(z as tf.Tensor4D, w2 as tf.Tensor4D, 1, 'valid'), b2)));
  };
  checkGrad('squeeze-excitation', se, [
    randn([2, 4, 4, 6]),
    randn([1, 1, 6, 2], 0.5),
    randn([2], 0.1),
    randn([1, 1, 2, 6], 0.5),
    randn([6], 0.1),
  ]);
});
