import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useCpu } from './tf-cpu.js';
import { Ema, emaDecayForRun } from '../../ml/train/ema.js';
import { clipGradNorm, globalNorm } from '../../ml/train/clip.js';
import { assertFinite, NonFiniteLossError } from '../../ml/train/guards.js';

before(useCpu);

test('EMA: e ← d·e + (1−d)·w, with warm-up d = min(decay, (1+n)/(10+n))', () => {
  const w = tf.variable(tf.tensor1d([1, -2]), true, 'ema_w');
  const plain = new Ema({ w }, { decay: 0.9 });
  const warm = new Ema({ w }, { decay: 0.9, warmup: true });
  const seq = [
    [3, 0],
    [5, 4],
  ];
  let e1 = [1, -2],
    e2 = [1, -2];
  seq.forEach((vals, n) => {
    w.assign(tf.tensor1d(vals));
    plain.update({ w });
    warm.update({ w });
    e1 = e1.map((e, i) => 0.9 * e + 0.1 * vals[i]);
    const d = Math.min(0.9, (1 + n) / (10 + n));
    e2 = e2.map((e, i) => d * e + (1 - d) * vals[i]);
  });
  const got1 = Array.from(plain.weights().w.dataSync());
  const got2 = Array.from(warm.weights().w.dataSync());
  got1.forEach((v, i) => assert.ok(Math.abs(v - e1[i]) < 1e-6));
  got2.forEach((v, i) => assert.ok(Math.abs(v - e2[i]) < 1e-6));
  const restored = new Ema({ w }, { decay: 0.9, warmup: true });
  restored.loadState(warm.state());
  assert.equal(restored.numUpdates, 2);
  assert.deepEqual(Array.from(restored.weights().w.dataSync()), got2);
  assert.throws(() => restored.loadState({ updates: new Float32Array([0, 1]) }), /lacks 'avg\/w'/);
  // torchvision's adjustment: α = (1 − 0.99998)·batch·every/epochs.
  assert.ok(Math.abs(emaDecayForRun(0.99998, 32, 32, 90) - (1 - (2e-5 * 32 * 32) / 90)) < 1e-12);
  assert.equal(emaDecayForRun(0.9, 1024, 32, 1), 0);
});

test('clip by global norm: ‖(3,4,12)‖ = 13; scaled by max/(13 + 1e-6) only when above', () => {
  const grads = { a: tf.tensor1d([3, 4]), b: tf.tensor2d([[12]]) };
  assert.ok(Math.abs(globalNorm(grads) - 13) < 1e-6);
  const c = clipGradNorm(grads, 6.5);
  assert.ok(Math.abs(c.norm - 13) < 1e-6);
  const coef = 6.5 / (13 + 1e-6);
  assert.ok(Math.abs(c.grads.a.dataSync()[1] - 4 * coef) < 1e-6);
  assert.ok(Math.abs(c.grads.b.dataSync()[0] - 12 * coef) < 1e-6);
  assert.ok(Math.abs(globalNorm(c.grads) - 6.5) < 1e-5);
  const u = clipGradNorm(grads, 100);
  assert.deepEqual(Array.from(u.grads.a.dataSync()), [3, 4]);
  const nan = clipGradNorm({ a: tf.tensor1d([NaN, 1]) }, 1);
  assert.ok(Number.isNaN(nan.norm));
});

test('non-finite loss guard names the iteration, the lr and a hint', () => {
  assert.equal(assertFinite(0.25, { iteration: 3 }), 0.25);
  assert.throws(
    () => assertFinite(NaN, { iteration: 1234, epoch: 3, batch: 17, lr: 0.1 }),
    (e: unknown) => {
      assert.ok(e instanceof NonFiniteLossError);
      assert.match(e.message, /loss is NaN at iteration 1234, epoch 3, batch 17, last lr 0\.1000: .*learning rate/);
      assert.equal(e.iteration, 1234);
      return true;
    },
  );
  assert.throws(
    () => assertFinite(Infinity, { iteration: 9, what: 'gradient norm' }),
    /gradient norm is Infinity at iteration 9: training diverged/,
  );
});
