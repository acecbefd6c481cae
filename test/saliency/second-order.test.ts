// withSecondOrderGradients: Hessian-vector products of the ops whose stock gradient reads the
// saved output match central differences of the gradient, and the stock gradients come back after.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setBackendLogger, tf } from '../../ml/backend/index.js';
import { withSecondOrderGradients } from '../../ml/backend/second-order.js';
import { initTestBackend } from '../support/backend.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

const FNS: Record<string, (a: tf.Tensor, c: tf.Tensor) => tf.Tensor> = {
  softmax: (a, c) => tf.mul(tf.softmax(a), c),
  exp: (a, c) => tf.mul(tf.exp(a), c),
  sqrt: (a, c) => tf.mul(tf.sqrt(tf.add(tf.square(a), 1)), c),
  rsqrt: (a, c) => tf.mul(tf.rsqrt(tf.add(tf.square(a), 1)), c),
  reciprocal: (a, c) => tf.mul(tf.reciprocal(tf.add(tf.square(a), 1)), c),
  tanh: (a, c) => tf.mul(tf.tanh(a), c),
  sigmoid: (a, c) => tf.mul(tf.sigmoid(a), c),
  pow: (a, c) => tf.mul(tf.pow(tf.add(tf.square(a), 1), tf.add(tf.mul(a, 0.1), 1.5)), c),
  'layer norm': (a, c) => {
    const m = tf.moments(a, 1, true);
    return tf.mul(tf.div(tf.sub(a, m.mean), tf.sqrt(tf.add(m.variance, 1e-5))), c);
  },
};

for (const [name, f] of Object.entries(FNS)) {
  test(`${name}: (∂g/∂x)·x equals central differences of g along x`, () => {
    withSecondOrderGradients(() =>
      tf.tidy(() => {
        const x = tf.randomNormal([2, 6], 0, 1, 'float32', 1);
        const c = tf.randomNormal([2, 6], 0, 1, 'float32', 2);
        const g = tf.grad((a: tf.Tensor) => tf.sum(f(a, c)) as tf.Scalar);
        const v = tf.tensor(x.dataSync(), x.shape); // x as a constant direction
        const hvp = tf
          .grad((a: tf.Tensor) => tf.sum(tf.mul(g(a), v)) as tf.Scalar)(x)
          .dataSync();
        const e = 1e-2;
        const gp = g(tf.mul(x, 1 + e)).dataSync();
        const gm = g(tf.mul(x, 1 - e)).dataSync();
        let worst = 0;
        let scale = 0;
        for (let i = 0; i < gp.length; i++) {
          const fd = (gp[i] - gm[i]) / (2 * e);
          worst = Math.max(worst, Math.abs(fd - hvp[i]));
          scale = Math.max(scale, Math.abs(fd));
        }
        assert.ok(scale > 1e-3);
        assert.ok(worst <= 1e-3 * scale, `${name}: max |hvp − fd| ${worst}, scale ${scale}`);
      }),
    );
  });
}

test('the previous gradients are restored afterwards, also when the body throws', () => {
  const before = tf.getGradient('Softmax');
  assert.throws(() =>
    withSecondOrderGradients(() => {
      assert.notEqual(tf.getGradient('Softmax'), before);
      throw new Error('boom');
    }),
  );
  assert.equal(tf.getGradient('Softmax'), before);
});
