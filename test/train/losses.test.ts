import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useCpu } from './tf-cpu.js';
import { crossEntropy, softTargetCrossEntropy, bceWithLogits, topkCorrect, argmaxRows } from '../../ml/train/losses.js';

before(useCpu);

const LOGITS = [
  [1, 2, 3, -1],
  [0, -1, 5, 2],
  [0.5, 0.5, 0.5, 0.5],
];
const LABELS = [2, 0, 3];

function logSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
  return row.map((x) => x - lse);
}

function handCE(targets: number[][]): number {
  return LOGITS.reduce((s, row, i) => s - logSoftmax(row).reduce((a, lp, k) => a + targets[i][k] * lp, 0), 0) / LOGITS.length;
}

const scalar = (t: tf.Scalar) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

test('cross-entropy with label smoothing = −Σ ((1−ε)·onehot + ε/K)·log p, averaged', () => {
  const K = 4;
  for (const eps of [0, 0.1, 0.11, 0.5]) {
    const targets = LABELS.map((y) => Array.from({ length: K }, (_, k) => (1 - eps) * (k === y ? 1 : 0) + eps / K));
    const got = scalar(crossEntropy(tf.tensor2d(LOGITS), LABELS, eps));
    assert.ok(Math.abs(got - handCE(targets)) < 1e-5, `ε=${eps}: ${got} vs ${handCE(targets)}`);
  }
  assert.throws(() => crossEntropy(tf.tensor2d(LOGITS), [2, 0, 4]), /label 4 at batch index 2 is outside \[0, 4\)/);
  assert.throws(() => crossEntropy(tf.tensor2d(LOGITS), [2, 0]), /2 labels for a batch of 3/);
});

test('soft-target cross-entropy matches the hand sum', () => {
  const targets = [
    [0.7, 0.3, 0, 0],
    [0, 0, 0.25, 0.75],
    [0.25, 0.25, 0.25, 0.25],
  ];
  const got = scalar(softTargetCrossEntropy(tf.tensor2d(LOGITS), tf.tensor2d(targets)));
  assert.ok(Math.abs(got - handCE(targets)) < 1e-5);
});

test('BCE with logits is finite and exact at |x| = 100, and matches the textbook form for moderate x', () => {
  // max(x,0) − x·y + log(1 + e^−|x|): at ±100 the log term is e^−100 ≈ 0.
  const x = [100, 100, -100, -100];
  const y = [1, 0, 1, 0];
  const got = scalar(bceWithLogits(tf.tensor1d(x), tf.tensor1d(y)));
  assert.ok(Number.isFinite(got));
  assert.ok(Math.abs(got - (0 + 100 + 100 + 0) / 4) < 1e-4, `${got}`);
  const xm = [0.5, -2, 3];
  const ym = [0.3, 1, 0];
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const want = xm.reduce((s, v, i) => s - (ym[i] * Math.log(sig(v)) + (1 - ym[i]) * Math.log(1 - sig(v))), 0) / 3;
  assert.ok(Math.abs(scalar(bceWithLogits(tf.tensor1d(xm), tf.tensor1d(ym))) - want) < 1e-6);
});

test('top-1 / top-5 counts; ties rank the lower class first', () => {
  // 6 classes. Row 0: label 1 is the max. Row 1: label 0 ranks 6th. Row 2: label 4 ranks 5th.
  const logits = new Float32Array([0, 9, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0]);
  assert.deepEqual(topkCorrect(logits, 6, [1, 0, 4], [1, 5]), [1, 2]);
  // All-equal logits: only label 0 counts as top-1.
  assert.deepEqual(topkCorrect(new Float32Array(8).fill(1), 4, [0, 3], [1]), [1]);
  assert.deepEqual(Array.from(argmaxRows([0.2, 0.8, 0.5, 0.5], 2)), [1, 0]);
});
