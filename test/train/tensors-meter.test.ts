import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useCpu } from './tf-cpu.js';
import { toArrays, assignArrays } from '../../ml/train/tensors.js';
import { MeanMeter } from '../../ml/train/meter.js';

before(useCpu);

test('weights round-trip through arrays; missing, extra and misshapen weights are named', () => {
  const vars = {
    a: tf.variable(
      tf.tensor2d([
        [1, 2],
        [3, 4],
      ]),
      true,
      'tm_a',
    ),
    b: tf.variable(tf.tensor1d([5]), true, 'tm_b'),
  };
  const arrays = toArrays(vars);
  assert.deepEqual(arrays.a.shape, [2, 2]);
  vars.a.assign(tf.zeros([2, 2]));
  assignArrays(vars, arrays, 'ckpt.safetensors');
  assert.deepEqual(Array.from(vars.a.dataSync()), [1, 2, 3, 4]);
  assert.throws(() => assignArrays(vars, { a: arrays.a }, 'ckpt.safetensors'), /ckpt\.safetensors: missing weights b/);
  assert.throws(() => assignArrays(vars, { ...arrays, c: arrays.b }, 'f'), /not in the model: c/);
  assert.throws(
    () => assignArrays(vars, { ...arrays, b: { shape: [1, 1], data: new Float32Array(1) } }, 'f'),
    /'b' has shape \[1,1\], the model expects \[1\]/,
  );
});

test('MeanMeter weights batch means by their sample counts', () => {
  const m = new MeanMeter();
  assert.ok(Number.isNaN(m.mean));
  m.add(1, 32);
  m.add(0, 8); // a short last batch
  assert.equal(m.mean, 32 / 40);
  const r = new MeanMeter();
  r.load(m.state());
  assert.equal(r.mean, m.mean);
  assert.equal(r.samples, 40);
});
