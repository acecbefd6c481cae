// Hand-written gradient of the CA attention-pooling block vs plain autodiff and finite differences.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setBackendLogger, tf } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { caHeadForward, attentionPool, attentionPoolNaive, Rng, type CaHeadParams, type Taps } from '../../ml/models/index.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

const rng = new Rng(42);
function rand(shape: number[], scale = 1, offset = 0): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = offset + scale * rng.normal();
  return tf.tensor(d, shape);
}

/** A small ca-stream head: taps of 8, 8, 16, 16, 16 channels at 5×5, 5×5, 3×3, 2×2, 2×2. */
function smallHead(heads: number, dropout = 0): { params: CaHeadParams; taps: Taps } {
  const ch = [8, 8, 16, 16, 16];
  const sizes = [5, 5, 3, 2, 2];
  const taps: Taps = {};
  const names = ['stem', 'layer1', 'layer2', 'layer3', 'layer4'] as const;
  names.forEach((t, i) => (taps[t] = rand([2, sizes[i], sizes[i], ch[i]], 0.7) as tf.Tensor4D));
  const blocks = names.map((t, i) => {
    const out = i < 4 ? ch[i + 1] : ch[4];
    return {
      tap: t,
      name: ['base', 'l1', 'l2', 'l3', 'l4'][i],
      weight: rand([out, ch[i]], 0.4) as tf.Tensor2D,
      bias: rand([out], 0.1) as tf.Tensor1D,
      dropout: i < 4 ? dropout : 0,
    };
  });
  return {
    params: {
      kind: 'ca-stream',
      heads,
      token: rand([1, 1, 8], 1, 1),
      blocks,
      fcWeight: rand([3, 16], 0.5) as tf.Tensor2D,
      fcBias: rand([3], 0.1) as tf.Tensor1D,
    },
    taps,
  };
}

type Inputs = { token: tf.Tensor; w0: tf.Tensor; b2: tf.Tensor; w4: tf.Tensor; stem: tf.Tensor; l4: tf.Tensor };

function lossFn(params: CaHeadParams, taps: Taps, R: tf.Tensor, S: tf.Tensor, naive: boolean, training = false) {
  return (token: tf.Tensor, w0: tf.Tensor, b2: tf.Tensor, w4: tf.Tensor, stem: tf.Tensor, l4: tf.Tensor) => {
    const p: CaHeadParams = {
      ...params,
      token,
      blocks: params.blocks.map((b, i) => ({
        ...b,
        weight: i === 0 ? (w0 as tf.Tensor2D) : i === 4 ? (w4 as tf.Tensor2D) : b.weight,
        bias: i === 2 ? (b2 as tf.Tensor1D) : b.bias,
      })),
    };
    const out = caHeadForward(p, { ...taps, stem: stem as tf.Tensor4D, layer4: l4 as tf.Tensor4D }, { naive, training, seed: 7 });
    // Include a term on the layer4 scores so gradients flowing into `dots` are exercised too.
    return tf.add(tf.sum(tf.mul(out.logits, R)), tf.sum(tf.mul(out.dots.layer4!, S))) as tf.Scalar;
  };
}

function inputsOf(params: CaHeadParams, taps: Taps): Inputs {
  return {
    token: params.token,
    w0: params.blocks[0].weight!,
    b2: params.blocks[2].bias!,
    w4: params.blocks[4].weight!,
    stem: taps.stem!,
    l4: taps.layer4!,
  };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / Math.max(scale, 1e-6);
}

for (const heads of [1, 2, 4]) {
  test(`CA head, ${heads} head(s): hand-written gradient equals autodiff of the naive block`, () => {
    const { params, taps } = smallHead(heads);
    const R = rand([2, 3]);
    const S = rand([2, heads, 2, 2]);
    const inp = inputsOf(params, taps);
    const args = [inp.token, inp.w0, inp.b2, inp.w4, inp.stem, inp.l4];
    const fast = tf.grads(lossFn(params, taps, R, S, false))(args);
    const slow = tf.grads(lossFn(params, taps, R, S, true))(args);
    const names = Object.keys(inp);
    fast.forEach((g, i) => {
      const d = maxRelDiff(g.dataSync() as Float32Array, slow[i].dataSync() as Float32Array);
      assert.ok(d < 1e-4, `${names[i]}: relative difference ${d}`);
    });
  });
}

test('CA head gradients match central finite differences (token, projections, stem and layer4 taps)', () => {
  const heads = 2;
  const { params, taps } = smallHead(heads);
  const R = rand([2, 3]);
  const S = rand([2, heads, 2, 2]);
  const inp = inputsOf(params, taps);
  const args = [inp.token, inp.w0, inp.b2, inp.w4, inp.stem, inp.l4];
  const f = lossFn(params, taps, R, S, false);
  const grads = tf
    .grads(f)(args)
    .map((g) => g.dataSync() as Float32Array);
  const h = 1e-2;
  const pick = new Rng(3);
  Object.keys(inp).forEach((name, k) => {
    const base = args[k].dataSync() as Float32Array;
    let gmax = 0;
    for (const v of grads[k]) gmax = Math.max(gmax, Math.abs(v));
    for (let trial = 0; trial < 6; trial++) {
      const i = Math.floor(pick.next() * base.length);
      const eval1 = (delta: number) => {
        const d = Float32Array.from(base);
        d[i] += delta;
        const a = args.slice();
        a[k] = tf.tensor(d, args[k].shape);
        return tf.tidy(() => f(...(a as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor])).dataSync()[0]);
      };
      const fd = (eval1(h) - eval1(-h)) / (2 * h);
      const err = Math.abs(fd - grads[k][i]);
      assert.ok(err <= 2e-3 * Math.max(gmax, 1) + 1e-2 * Math.abs(fd), `${name}[${i}]: analytic ${grads[k][i]} vs finite difference ${fd}`);
    }
  });
});

test('with dropout (training) the hand-written gradient still equals the naive one (same masks)', () => {
  const { params, taps } = smallHead(2, 0.3);
  const R = rand([2, 3]);
  const S = rand([2, 2, 2, 2]);
  const inp = inputsOf(params, taps);
  const args = [inp.token, inp.w0, inp.b2, inp.w4, inp.stem, inp.l4];
  const fast = tf.grads(lossFn(params, taps, R, S, false, true))(args);
  const slow = tf.grads(lossFn(params, taps, R, S, true, true))(args);
  fast.forEach((g, i) =>
    assert.ok(maxRelDiff(g.dataSync() as Float32Array, slow[i].dataSync() as Float32Array) < 1e-4, Object.keys(inp)[i]),
  );
  // and dropout changes the output in training but not at inference
  const eval0 = caHeadForward(params, taps).logits.dataSync();
  const train = caHeadForward(params, taps, { training: true, seed: 7 }).logits.dataSync();
  assert.ok(maxRelDiff(train as Float32Array, eval0 as Float32Array) > 1e-3);
});

test('attention pooling: forward values equal a direct per-position computation; tapGrad=false treats F as a constant', () => {
  // Hand-computed reference: B=1, N=3, C=4, h=2 with plain loops.
  const Fd = [1, 0, 2, -1, 0.5, 1, -1, 0, -2, 1, 0, 3];
  const qd = [0.3, -1, 2, 0.5];
  const F = tf.tensor3d(Fd, [1, 3, 4]);
  const q = tf.tensor2d(qd, [1, 4]);
  const r = attentionPool(F, q as tf.Tensor2D, 2);
  const z = r.z.dataSync();
  const dots = r.dots.dataSync();
  for (let g = 0; g < 2; g++) {
    const s = [0, 1, 2].map((n) => (Fd[n * 4 + 2 * g] * qd[2 * g] + Fd[n * 4 + 2 * g + 1] * qd[2 * g + 1]) / 2); // √C = 2
    s.forEach((v, n) => assert.ok(Math.abs(dots[g * 3 + n] - v) < 1e-6));
    const e = s.map(Math.exp);
    const a = e.map((v) => v / (e[0] + e[1] + e[2]));
    for (let j = 0; j < 2; j++) {
      const want = a.reduce((acc, an, n) => acc + an * Fd[n * 4 + 2 * g + j], 0);
      assert.ok(Math.abs(z[2 * g + j] - want) < 1e-6);
    }
  }
  const naive = attentionPoolNaive(F, q as tf.Tensor2D, 2);
  assert.ok(maxRelDiff(naive.z.dataSync() as Float32Array, z as Float32Array) < 1e-6);
  const gq = tf.grad((qq: tf.Tensor) => tf.sum(attentionPool(F, qq as tf.Tensor2D, 2, { tapGrad: false }).z))(q);
  const gqRef = tf.grad((qq: tf.Tensor) => tf.sum(attentionPoolNaive(F, qq as tf.Tensor2D, 2).z))(q);
  assert.ok(maxRelDiff(gq.dataSync() as Float32Array, gqRef.dataSync() as Float32Array) < 1e-5);
  assert.throws(() => tf.grad((FF: tf.Tensor) => tf.sum(attentionPool(FF, q as tf.Tensor2D, 2, { tapGrad: false }).z))(F));
  assert.throws(() => attentionPool(F, q as tf.Tensor2D, 3), /heads \(3\) must .* divid/);
});
