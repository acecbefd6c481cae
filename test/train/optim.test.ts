import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useCpu, maxRelErr } from './tf-cpu.js';
import { Sgd, Adam, AdamW, createOptimizer, type Optimizer } from '../../ml/train/optim.js';

before(useCpu);

// Quadratic f(p) = ½ Σ a_i (p_i − c_i)², gradient a ⊙ (p − c).
const A = [1, 2, 0.5, 4];
const C = [0.5, -1, 2, 0];
const P0 = [1, 1, -1, 0.25];
const grad = (p: number[]) => p.map((x, i) => A[i] * (x - C[i]));

function runTf(make: (vars: Record<string, tf.Variable>) => Optimizer, steps: number): Float32Array {
  const p = tf.variable(tf.tensor1d(P0), true, `p${Math.random()}`);
  const opt = make({ p });
  const a = tf.tensor1d(A);
  const c = tf.tensor1d(C);
  for (let s = 0; s < steps; s++) {
    // ∇ of ½ Σ a (p − c)², written out (tfjs-core's Node bundle registers no autodiff gradients).
    const g = tf.tidy(() => tf.mul(a, tf.sub(p, c)));
    opt.step({ p: g });
    g.dispose();
  }
  const out = p.dataSync() as Float32Array;
  opt.dispose();
  p.dispose();
  a.dispose();
  c.dispose();
  return Float32Array.from(out);
}

test('SGD with momentum and weight decay follows torch.optim.SGD', () => {
  const lr = 0.1,
    mu = 0.9,
    wd = 0.01;
  let p = [...P0];
  let buf: number[] | null = null;
  for (let s = 0; s < 6; s++) {
    const g = grad(p).map((x, i) => x + wd * p[i]);
    buf = buf === null ? g : buf.map((b, i) => mu * b + g[i]);
    p = p.map((x, i) => x - lr * buf![i]);
  }
  const got = runTf((v) => new Sgd(v, { lr, momentum: mu, weightDecay: wd }), 6);
  assert.ok(maxRelErr(got, p) < 1e-6, `got ${Array.from(got)} want ${p}`);
});

test('SGD nesterov follows torch (g + μ·buf)', () => {
  const lr = 0.05,
    mu = 0.8,
    wd = 0.1;
  let p = [...P0];
  let buf: number[] | null = null;
  for (let s = 0; s < 5; s++) {
    const g = grad(p).map((x, i) => x + wd * p[i]);
    buf = buf === null ? g : buf.map((b, i) => mu * b + g[i]);
    const d = g.map((x, i) => x + mu * buf![i]);
    p = p.map((x, i) => x - lr * d[i]);
  }
  const got = runTf((v) => new Sgd(v, { lr, momentum: mu, nesterov: true, weightDecay: wd }), 5);
  assert.ok(maxRelErr(got, p) < 1e-6, `got ${Array.from(got)} want ${p}`);
});

test('plain SGD one step is p − lr·a(p − c)', () => {
  const got = runTf((v) => new Sgd(v, { lr: 0.25 }), 1);
  const want = P0.map((x, i) => x - 0.25 * A[i] * (x - C[i]));
  assert.ok(maxRelErr(got, want) < 1e-7);
});

function adamRef(steps: number, lr: number, wd: number, decoupled: boolean, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  let p = [...P0];
  let m = p.map(() => 0);
  let v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    let g = grad(p);
    if (decoupled) p = p.map((x) => x * (1 - lr * wd));
    else g = g.map((x, i) => x + wd * p[i]);
    m = m.map((x, i) => b1 * x + (1 - b1) * g[i]);
    v = v.map((x, i) => b2 * x + (1 - b2) * g[i] * g[i]);
    const mh = m.map((x) => x / (1 - b1 ** t));
    const vh = v.map((x) => x / (1 - b2 ** t));
    p = p.map((x, i) => x - (lr * mh[i]) / (Math.sqrt(vh[i]) + eps));
  }
  return p;
}

test('Adam first step closed form: p − lr·sign(g) (|g| ≫ ε), L2 decay in the gradient', () => {
  const lr = 0.01,
    wd = 0.1;
  const got = runTf((v) => new Adam(v, { lr, weightDecay: wd }), 1);
  const want = P0.map((x, i) => {
    const g = A[i] * (x - C[i]) + wd * x;
    return x - (lr * g) / (Math.abs(g) + 1e-8);
  });
  assert.ok(maxRelErr(got, want) < 1e-6, `got ${Array.from(got)} want ${want}`);
});

test('Adam and AdamW over 7 steps match the written-out torch equations', () => {
  for (const [decoupled, Ctor] of [
    [false, Adam],
    [true, AdamW],
  ] as const) {
    const want = adamRef(7, 0.05, 0.3, decoupled);
    const got = runTf((v) => new Ctor(v, { lr: 0.05, weightDecay: 0.3 }), 7);
    assert.ok(maxRelErr(got, want) < 1e-5, `${decoupled ? 'AdamW' : 'Adam'}: got ${Array.from(got)} want ${want}`);
  }
});

test('AdamW first step: decoupled decay p(1 − lr·wd) − lr·sign(g)', () => {
  const lr = 0.1,
    wd = 0.3;
  const got = runTf((v) => new AdamW(v, { lr, weightDecay: wd }), 1);
  const want = P0.map((x, i) => {
    const g = A[i] * (x - C[i]);
    return x * (1 - lr * wd) - (lr * g) / (Math.abs(g) + 1e-8);
  });
  assert.ok(maxRelErr(got, want) < 1e-6);
});

test('param groups scale lr and override weight decay per group', () => {
  const a = tf.variable(tf.tensor1d([1, 2]), true, 'grp_a');
  const b = tf.variable(tf.tensor1d([3]), true, 'grp_b');
  const opt = new Sgd({ a, b }, { lr: 0.1, weightDecay: 0.5, groups: [{ names: ['a'], lrMult: 10, weightDecay: 0 }, { names: ['b'] }] });
  opt.step({ a: tf.tensor1d([1, 1]), b: tf.tensor1d([1]) });
  assert.deepEqual(Array.from(a.dataSync()), [1 - 1 * 1, 2 - 1 * 1]);
  assert.ok(Math.abs(b.dataSync()[0] - (3 - 0.1 * (1 + 0.5 * 3))) < 1e-6);
  assert.throws(() => new Sgd({ a, b }, { lr: 0.1, groups: [{ names: ['a'] }] }), /in no param group: b/);
  assert.throws(() => opt.step({ zz: tf.tensor1d([1]) }), /unknown variable 'zz'/);
  // Keys may also be the tf.Variable names, as tf.variableGrads returns them.
  const before = b.dataSync()[0];
  opt.step({ grp_b: tf.tensor1d([0]) });
  assert.ok(Math.abs(b.dataSync()[0] - before * (1 - 0.1 * 0.5)) < 1e-6);
  assert.throws(() => opt.step({ a: tf.tensor1d([1]) }), /shape \[1\] but the variable has \[2\]/);
  opt.dispose();
  a.dispose();
  b.dispose();
});

test('variables without a gradient are left alone (no decay, no step count)', () => {
  const a = tf.variable(tf.tensor1d([1]), true, 'skip_a');
  const b = tf.variable(tf.tensor1d([2]), true, 'skip_b');
  const opt = createOptimizer({ a, b }, { kind: 'adamw', lr: 0.1, weightDecay: 0.5 });
  opt.step({ a: tf.tensor1d([1]) });
  assert.equal(b.dataSync()[0], 2);
  assert.deepEqual(Object.keys(opt.state()).sort(), ['exp_avg/a', 'exp_avg_sq/a', 'step/a']);
  opt.dispose();
});

test('optimizer state round-trips and rejects mismatched state', () => {
  const a = tf.variable(tf.tensor1d([1, 2, 3]), true, 'st_a');
  const opt = new Sgd({ a }, { lr: 0.1, momentum: 0.9 });
  opt.step({ a: tf.tensor1d([0.5, -1, 2]) });
  const st = opt.state();
  assert.deepEqual(Array.from(st['momentum_buffer/a']), [0.5, -1, 2]);
  const opt2 = new Sgd({ a }, { lr: 0.1, momentum: 0.9 });
  opt2.loadState(st);
  assert.deepEqual(opt2.state(), st);
  assert.throws(() => opt2.loadState({ 'momentum_buffer/a': new Float32Array(2) }), /has 2 values but 'a' has 3/);
  assert.throws(() => opt2.loadState({ 'exp_avg/a': new Float32Array(3) }), /has no slot 'exp_avg'/);
  assert.throws(() => opt2.loadState({ 'momentum_buffer/q': new Float32Array(3) }), /names no optimized variable/);
  assert.throws(() => opt2.loadState({ 'momentum_buffer/a': new Float32Array(3) }), /no 'step\/a' counter/);
  opt.dispose();
  opt2.dispose();
});
