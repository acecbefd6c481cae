// The fused training-mode BatchNorm kernel (+ residual, + ReLU) against the plain tf-ops
// composition (values and autodiff gradients) and against float64 finite differences of an
// independent JS implementation of the formula.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, setBackendLogger, tf } from '../../ml/backend/index.js';
import { batchNormKernelAvailable } from '../../ml/backend/batchnorm-kernels.js';
import { batchNormTrain, batchNormTrainComposite, type BatchNormTrainOptions } from '../../ml/models/batchnorm.js';
import { Rng } from '../../ml/models/index.js';
import { assertAllClose } from '../assert-close.js';

before(async () => {
  setBackendLogger(() => {});
  await initBackend('wasm');
});

const rng = new Rng(7);
function randArray(n: number, scale = 1, offset = 0): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = offset + scale * rng.normal();
  return d;
}
const rand = (shape: number[], scale = 1, offset = 0) =>
  tf.tensor(
    randArray(
      shape.reduce((a, b) => a * b, 1),
      scale,
      offset,
    ),
    shape,
  );

function assertClose(actual: tf.Tensor, expected: tf.Tensor, rel: number, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const e = expected.dataSync();
  let scale = 0;
  for (let i = 0; i < e.length; i++) scale = Math.max(scale, Math.abs(e[i]));
  assertAllClose(actual.dataSync(), e, { tol: rel, scale: Math.max(scale, 1e-6), what });
}

type Case = { shape: number[]; relu: boolean; residual: boolean; offset: number };

/** Loss touching every output (y, mean, variance) with random weights, and its gradients. */
function lossAndGrads(
  fn: typeof batchNormTrain,
  c: Case,
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  r: tf.Tensor,
  wy: tf.Tensor,
  wm: tf.Tensor,
  wv: tf.Tensor,
) {
  const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor, rr: tf.Tensor) => {
    const opts: BatchNormTrainOptions = { epsilon: 1e-5, relu: c.relu, residual: c.residual ? rr : undefined };
    const o = fn(xx, g, b, opts);
    // without a residual, rr enters with weight 0 so tf.grads sees it (its gradient is then 0)
    const unused = c.residual ? tf.scalar(0) : tf.mul(tf.sum(rr), 0);
    return tf.addN([tf.sum(tf.mul(o.out, wy)), tf.sum(tf.mul(o.mean, wm)), tf.sum(tf.mul(o.variance, wv)), unused]) as tf.Scalar;
  };
  const out = fn(x, gamma, beta, { epsilon: 1e-5, relu: c.relu, residual: c.residual ? r : undefined });
  const grads = tf.grads(f)([x, gamma, beta, r]);
  return { out, grads };
}

test('fused BatchNorm kernel is active on wasm and cpu', async () => {
  assert.equal(tf.getBackend(), 'wasm');
  assert.ok(batchNormKernelAvailable());
  await tf.setBackend('cpu');
  try {
    assert.ok(batchNormKernelAvailable());
  } finally {
    await tf.setBackend('wasm');
  }
});

const CASES: Case[] = [
  { shape: [4, 5, 6, 3], relu: false, residual: false, offset: 0 },
  { shape: [4, 5, 6, 3], relu: true, residual: false, offset: 0.3 },
  { shape: [2, 7, 7, 16], relu: true, residual: true, offset: 0 },
  { shape: [3, 4, 4, 8], relu: false, residual: true, offset: 0 },
  // |mean| ≫ std: the variance must not suffer from cancellation
  { shape: [8, 3, 3, 5], relu: true, residual: false, offset: 50 },
  { shape: [16, 2, 2, 32], relu: true, residual: true, offset: -0.5 },
  { shape: [6, 10], relu: true, residual: false, offset: 0 },
];

for (const backend of ['wasm', 'cpu']) {
  test(`fused BatchNorm matches the tf-ops composition in values and gradients (${backend})`, async () => {
    await tf.setBackend(backend);
    try {
      for (const c of CASES) {
        const C = c.shape[c.shape.length - 1];
        tf.tidy(() => {
          const x = rand(c.shape, 2, c.offset);
          const gamma = rand([C], 0.5, 1);
          const beta = rand([C], 0.3);
          const r = rand(c.shape, 0.7);
          const wy = rand(c.shape);
          const wm = rand([C]);
          const wv = rand([C]);
          const fused = lossAndGrads(batchNormTrain, c, x, gamma, beta, r, wy, wm, wv);
          const ref = lossAndGrads(batchNormTrainComposite, c, x, gamma, beta, r, wy, wm, wv);
          const tag = `${backend} ${JSON.stringify(c)}`;
          assertClose(fused.out.out, ref.out.out, 1e-5, `${tag} out`);
          assertClose(fused.out.mean, ref.out.mean, 1e-5, `${tag} mean`);
          assertClose(fused.out.variance, ref.out.variance, 1e-5, `${tag} variance`);
          // float32 autodiff of the composition sums many terms in another order: a little slack
          ['dx', 'dgamma', 'dbeta', 'dresidual'].forEach((n, i) => assertClose(fused.grads[i], ref.grads[i], 2e-5, `${tag} ${n}`));
        });
      }
    } finally {
      await tf.setBackend('wasm');
    }
  });
}

/** Independent float64 forward of the loss, for finite differences. */
function lossF64(
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
  r: Float64Array,
  wy: Float32Array,
  wm: Float32Array,
  wv: Float32Array,
  C: number,
  relu: boolean,
): number {
  const N = x.length / C;
  let loss = 0;
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let i = 0; i < N; i++) m += x[i * C + c];
    m /= N;
    let v = 0;
    for (let i = 0; i < N; i++) v += (x[i * C + c] - m) ** 2;
    v /= N;
    loss += wm[c] * m + wv[c] * v;
    for (let i = 0; i < N; i++) {
      const z = (gamma[c] * (x[i * C + c] - m)) / Math.sqrt(v + 1e-5) + beta[c] + r[i * C + c];
      loss += wy[i * C + c] * (relu ? Math.max(0, z) : z);
    }
  }
  return loss;
}

test('fused BatchNorm gradients match float64 finite differences (tiny case)', () => {
  const shape = [3, 2, 2, 2];
  const C = 2;
  const n = 24;
  const xs = randArray(n, 1.5, 0.2);
  const gs = randArray(C, 0.5, 1);
  const bs = randArray(C, 0.3);
  const rs = randArray(n, 0.5);
  const wy = randArray(n);
  const wm = randArray(C);
  const wv = randArray(C);
  const grads = tf.tidy(() =>
    tf
      .grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, r: tf.Tensor) => {
        const o = batchNormTrain(x, g, b, { epsilon: 1e-5, relu: true, residual: r });
        return tf.addN([
          tf.sum(tf.mul(o.out, tf.tensor(wy, shape))),
          tf.sum(tf.mul(o.mean, tf.tensor(wm))),
          tf.sum(tf.mul(o.variance, tf.tensor(wv))),
        ]) as tf.Scalar;
      })([tf.tensor(xs, shape), tf.tensor(gs), tf.tensor(bs), tf.tensor(rs, shape)])
      .map((t) => Array.from(t.dataSync())),
  );
  const base = [xs, gs, bs, rs].map((a) => Float64Array.from(a));
  const h = 1e-6;
  base.forEach((arr, which) => {
    for (let i = 0; i < arr.length; i++) {
      const at = (d: number) => {
        const p = base.map((b) => Float64Array.from(b));
        p[which][i] += d;
        return lossF64(p[0], p[1], p[2], p[3], wy, wm, wv, C, true);
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      const got = grads[which][i];
      assert.ok(Math.abs(got - fd) <= 1e-3 * Math.max(1, Math.abs(fd)), `input ${which} [${i}]: kernel ${got} vs finite difference ${fd}`);
    }
  });
});

test('fused BatchNorm rejects gamma of the wrong width, naming the shapes', () => {
  assert.throws(
    () => tf.tidy(() => batchNormTrain(tf.zeros([2, 2, 2, 3]), tf.ones([4]), tf.zeros([4]), { epsilon: 1e-5 }).out),
    /gamma \[4\].*3 elements/,
  );
});

test('a scratch training step of resnet-mini: fused and composed BatchNorm give the same loss, gradients and running statistics', async () => {
  const { createModel } = await import('../../ml/models/index.js');
  const { setBatchNormFusion } = await import('../../ml/models/batchnorm.js');
  const x = rand([4, 32, 32, 3]) as tf.Tensor4D;
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
  const run = (fused: boolean) => {
    setBatchNormFusion(fused);
    try {
      const model = createModel({ arch: 'resnet-mini', head: 'gap', numClasses: 3, seed: 5 });
      const vars = model.trainableVariables('scratch');
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(labels, model.forward(x, { training: true }).logits) as tf.Scalar,
        [...vars.values()],
      );
      const stats = new Map([...model.variables()].filter(([n]) => n.includes('running_')).map(([n, v]) => [n, tf.clone(v)]));
      const named = new Map([...vars].map(([n, v]) => [n, grads[v.name]]));
      model.dispose();
      return { value, named, stats };
    } finally {
      setBatchNormFusion(true);
    }
  };
  const a = run(true);
  const b = run(false);
  assertClose(a.value, b.value, 1e-5, 'loss');
  assert.equal(a.named.size, b.named.size);
  for (const [n, g] of b.named) assertClose(a.named.get(n)!, g, 1e-4, `grad ${n}`);
  for (const [n, s] of b.stats) assertClose(a.stats.get(n)!, s, 1e-5, n);
});
