// The native TensorFlow backend's padding shim (ml/backend/tensorflow-kernels.ts) against tfjs's
// cpu backend, which pads as PyTorch does: forward values and the gradients training needs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, setBackendLogger, tf } from '../../ml/backend/index.js';
import { Rng } from '../../ml/models/rng.js';
import { tensorflowAvailable } from '../support/backend.js';

let skip: string | undefined;
before(async () => {
  setBackendLogger(() => {});
  const tfAvail = await tensorflowAvailable();
  if (!tfAvail.ok) {
    skip = tfAvail.reason;
    return;
  }
  const c = await initBackend('tensorflow');
  assert.equal(c.name, 'tensorflow', c.reason);
});

function rand(shape: number[], seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal());
}

/** Runs `f` on both backends with the same inputs; returns [tensorflow, cpu] flattened outputs. */
async function onBoth(f: (...xs: tf.Tensor[]) => tf.Tensor[], inputs: [number[], number][]): Promise<[Float32Array[], Float32Array[]]> {
  const out: Float32Array[][] = [];
  for (const b of ['tensorflow', 'cpu']) {
    await tf.setBackend(b);
    const res = tf.tidy(() => f(...inputs.map(([shape, seed]) => tf.tensor(rand(shape, seed), shape))));
    out.push(res.map((t) => t.dataSync() as Float32Array));
    tf.dispose(res);
  }
  await tf.setBackend('tensorflow');
  return [out[0]!, out[1]!];
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  // fp32 sums over up to 7·7·C·N·H·W products in another order: relative to the output's scale.
  const scale = Math.max(1, ...Array.from(b, Math.abs));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / scale);
  assert.ok(worst <= 1e-5, `${what}: worst difference ${worst} of the output's scale ${scale}`);
}

const cases: { name: string; x: number[]; w: number[]; stride: number; pad: number; depthwise?: boolean }[] = [
  { name: '3×3 stride 1 pad 1', x: [2, 9, 9, 4], w: [3, 3, 4, 5], stride: 1, pad: 1 },
  { name: '3×3 stride 2 pad 1 (odd input)', x: [2, 9, 9, 4], w: [3, 3, 4, 5], stride: 2, pad: 1 },
  { name: '7×7 stride 2 pad 3 (the ResNet stem)', x: [1, 16, 16, 3], w: [7, 7, 3, 4], stride: 2, pad: 3 },
  { name: 'depthwise 7×7 pad 3 (ConvNeXt)', x: [2, 8, 8, 3], w: [7, 7, 3, 1], stride: 1, pad: 3, depthwise: true },
  { name: '3×3 stride 2 pad 1 (even input)', x: [2, 8, 8, 4], w: [3, 3, 4, 5], stride: 2, pad: 1 },
  { name: '1×1 stride 2 pad 0 (a downsample)', x: [2, 8, 8, 4], w: [1, 1, 4, 6], stride: 2, pad: 0 },
  { name: 'depthwise 3×3 stride 1 pad 1', x: [2, 6, 6, 3], w: [3, 3, 3, 2], stride: 1, pad: 1, depthwise: true },
  { name: 'depthwise 3×3 stride 2 pad 1 (EfficientNet)', x: [2, 9, 9, 3], w: [3, 3, 3, 1], stride: 2, pad: 1, depthwise: true },
];

for (const c of cases) {
  test(`tensorflow ${c.name}: forward, input and filter gradients equal the cpu backend's`, async (t) => {
    if (skip) return t.skip(skip);
    const conv = (x: tf.Tensor, w: tf.Tensor): tf.Tensor =>
      c.depthwise
        ? tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad)
        : tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad);
    const [tfOut, cpuOut] = await onBoth(
      (x, w) => {
        const y = conv(x!, w!);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), conv(a, b))))([x!, w!]);
        return [y, ...g];
      },
      [
        [c.x, 1],
        [c.w, 2],
      ],
    );
    assertClose(tfOut[0]!, cpuOut[0]!, 'forward');
    assertClose(tfOut[1]!, cpuOut[1]!, 'd/dx');
    assertClose(tfOut[2]!, cpuOut[2]!, 'd/dw');
  });
}

test('tensorflow fused conv (bias + relu) with numeric padding equals the cpu backend', async (t) => {
  if (skip) return t.skip(skip);
  const [a, b] = await onBoth(
    (x, w, bias) => [tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 1, bias, activation: 'relu' })],
    [
      [[2, 10, 10, 3], 3],
      [[3, 3, 3, 6], 4],
      [[6], 5],
    ],
  );
  assertClose(a[0]!, b[0]!, 'fused forward');
});

test('tensorflow max pool 3×3/2 pad 1 (the ResNet stem): padded cells never win; gradient to the first maximum', async (t) => {
  if (skip) return t.skip(skip);
  // Negative inputs make a zero-padded pool wrong at the border: the shim must pad with −∞.
  const [a, b] = await onBoth(
    (x) => {
      const neg = tf.sub(tf.abs(x!), 10);
      const y = tf.maxPool(neg as tf.Tensor4D, 3, 2, 1);
      const g = tf.grad((v: tf.Tensor) =>
        tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 3, 2, 1), tf.reshape(tf.range(1, 1 + y.size), y.shape))),
      )(neg);
      return [y, g];
    },
    [[[2, 9, 9, 3], 6]],
  );
  assertClose(a[0]!, b[0]!, 'max pool forward');
  assert.ok(
    a[0]!.every((v) => v < -5),
    'every pooled value comes from the input, none from the padding',
  );
  assertClose(a[1]!, b[1]!, 'max pool gradient');
});

test('the shim leaves no tensors behind', async (t) => {
  if (skip) return t.skip(skip);
  const x = tf.tensor(rand([1, 8, 8, 2], 7), [1, 8, 8, 2]);
  const w = tf.tensor(rand([3, 3, 2, 2], 8), [3, 3, 2, 2]);
  const before = tf.memory().numTensors;
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.maxPool(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 1), 3, 2, 1)))([
    x,
    w,
  ]);
  tf.dispose(g);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, w]);
});

test("on tensorflow, training BatchNorm is TensorFlow's fused op: forward, statistics and gradients equal the tf-ops composition (with residual and ReLU)", async (t) => {
  if (skip) return t.skip(skip);
  const { batchNormKernelAvailable } = await import('../../ml/backend/batchnorm-kernels.js');
  const { batchNormTrain, batchNormTrainComposite } = await import('../../ml/models/batchnorm.js');
  assert.equal(tf.getBackend(), 'tensorflow');
  assert.equal(batchNormKernelAvailable(), true, 'the fused kernel is registered for tensorflow');
  for (const [residual, relu] of [
    [false, false],
    [true, true],
    [false, true],
    [true, false],
  ] as const) {
    const x = tf.add(tf.mul(tf.tensor(rand([4, 5, 5, 6], 11), [4, 5, 5, 6]), 3), 1);
    const gamma = tf.tensor(rand([6], 12), [6]);
    const beta = tf.tensor(rand([6], 13), [6]);
    const r = tf.tensor(rand([4, 5, 5, 6], 14), [4, 5, 5, 6]);
    const w = tf.tensor(rand([4, 5, 5, 6], 15), [4, 5, 5, 6]);
    const run = (f: typeof batchNormTrain) => {
      const loss = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor, rr: tf.Tensor) => {
        const o = f(a, g, b, { epsilon: 1e-5, relu, ...(residual && { residual: rr }) });
        return tf.add(tf.sum(tf.mul(o.out, w)), tf.sum(tf.mul(o.mean, 0)));
      };
      const o = f(x, gamma, beta, { epsilon: 1e-5, relu, ...(residual && { residual: r }) });
      const grads = residual
        ? tf.grads(loss)([x, gamma, beta, r])
        : tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => loss(a, g, b, r))([x, gamma, beta]);
      return [o.out, o.mean, o.variance, ...grads].map((v) => v.dataSync() as Float32Array);
    };
    const fused = run(batchNormTrain);
    const ref = run(batchNormTrainComposite);
    const names = ['y', 'mean', 'biased variance', 'dx', 'dgamma', 'dbeta', 'dresidual'];
    fused.forEach((v, i) => assertClose(v, ref[i]!, `residual ${residual} relu ${relu}: ${names[i]}`));
    tf.dispose([x, gamma, beta, r, w]);
  }
});

test("'same' stands in for PyTorch's padding only where it reads the same windows", async () => {
  const { sameMatches } = await import('../../ml/backend/tensorflow-kernels.js');
  const at = (stride: number, dilation = 1) => ({ strides: stride, dilations: dilation, dataFormat: 'NHWC' });
  // 3×3 stride 1 pad 1, 7×7 stride 1 pad 3 (ConvNeXt's depthwise), 5×5 dilation 2 pad 4: centred windows.
  assert.equal(sameMatches([1, 1, 1, 1], [8, 9, 9, 4], [3, 3], at(1)), 'same');
  assert.equal(sameMatches([3, 3, 3, 3], [8, 7, 7, 4], [7, 7], at(1)), 'same');
  assert.equal(sameMatches([4, 4, 4, 4], [1, 10, 10, 2], [5, 5], at(1, 2)), 'same');
  // stride 2 on an even input: TF pads only the bottom/right (windows start at 0, PyTorch's at −1).
  assert.equal(sameMatches([1, 1, 1, 1], [8, 64, 64, 3], [3, 3], at(2)), undefined);
  assert.equal(sameMatches([3, 3, 3, 3], [8, 64, 64, 3], [7, 7], at(2)), undefined);
  // stride 2 on an odd input: TF's total padding is 2, split 1/1 — the same windows as PyTorch's.
  assert.equal(sameMatches([1, 1, 1, 1], [8, 9, 9, 3], [3, 3], at(2)), 'same');
  // a padding that is not centred, or a rounding mode, keeps the padded path
  assert.equal(sameMatches([0, 2, 1, 1], [8, 9, 9, 3], [3, 3], at(1)), undefined);
  assert.equal(sameMatches([1, 1, 1, 1], [8, 9, 9, 3], [3, 3], { ...at(1), dimRoundingMode: 'floor' }), undefined);
  assert.equal(sameMatches([1, 1, 1, 1], [8, 9, 9, 3], [3, 3], { ...at(1), dataFormat: 'NCHW' }), undefined);
});
