// Identity and same-dtype Cast share the buffer on wasm (reference-counted) instead of copying;
// other casts still convert.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, setBackendLogger, tf } from '../../ml/backend/index.js';

before(async () => {
  setBackendLogger(() => {});
  await initBackend('wasm');
});

test('clone and same-dtype cast share memory, and outlive the original', () => {
  const x = tf.tensor([1.5, -2, 3, 4], [2, 2]);
  const before = tf.memory().numDataBuffers;
  const c = tf.clone(x);
  const k = tf.cast(x, 'float32');
  assert.equal(tf.memory().numDataBuffers, before, 'no new buffer for clone / same-dtype cast');
  x.dispose();
  assert.deepEqual(Array.from(c.dataSync()), [1.5, -2, 3, 4]);
  c.dispose();
  assert.deepEqual(Array.from(k.dataSync()), [1.5, -2, 3, 4]);
  assert.deepEqual(k.shape, [2, 2]);
  k.dispose();
  assert.equal(tf.memory().numDataBuffers, before - 1, 'the buffer is freed with its last user');
});

test('casts between dtypes still convert', () => {
  tf.tidy(() => {
    const b = tf.greater(tf.tensor([1, -1, 0, 2]), 0);
    assert.deepEqual(Array.from(tf.cast(b, 'float32').dataSync()), [1, 0, 0, 1]);
    const i = tf.cast(tf.tensor([1.7, -2.2, 3]), 'int32');
    assert.equal(i.dtype, 'int32');
    assert.deepEqual(Array.from(i.dataSync()), [1, -2, 3]);
  });
});

test('saved-for-backward clones keep gradients correct after the forward tensors are disposed', () => {
  // d/dx Σ (x·x) = 2x: the multiply saves both inputs (clones) for the backward pass
  const x = tf.tensor([0.5, -1, 2]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(t, t)))(x);
  assert.deepEqual(Array.from(g.dataSync()), [1, -2, 4]);
  tf.dispose([x, g]);
});
