// ResNet + CA heads against the reference fixture produced by the original PyTorch code.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setBackendLogger, tf } from '../../ml/backend/index.js';
import { backendUnderTest, initTestBackend } from '../support/backend.js';
import { readSafetensors, parseSafetensors, serializeSafetensors, TensorFileError, type TensorFile } from '../../ml/io/safetensors.js';
import { createModel, caHeadForward, WeightsError, TAPS, type TapName, type Taps } from '../../ml/models/index.js';
import { fixturesDir } from './fixtures.js';
import { assertAllClose } from '../assert-close.js';

const FIX = join(fixturesDir(), 'resnet-basic-1111');
let W: TensorFile;
let E: TensorFile;
let x: tf.Tensor4D;

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
  W = await readSafetensors(`${FIX}.weights.safetensors`);
  E = await readSafetensors(`${FIX}.expected.safetensors`);
  const inp = E.tensors.get('input')!;
  x = tf.keep(tf.transpose(tf.tensor4d(inp.data as Float32Array, inp.shape as [number, number, number, number]), [0, 2, 3, 1]));
});

const nchw = (t: tf.Tensor) => (t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t);

function assertClose(name: string, got: tf.Tensor, opts: { nhwc?: boolean } = {}) {
  const ref = E.tensors.get(name);
  assert.ok(ref, `fixture lacks ${name}`);
  const g = opts.nhwc ? nchw(got) : got;
  assert.deepEqual(g.shape, ref.shape, `${name}: shape`);
  assertAllClose(g.dataSync(), ref.data as Float32Array, { tol: 1e-4, what: name });
}

for (const heads of [1, 4]) {
  test(`fixture parity on wasm, ca-stream with ${heads} head(s): taps, dots, token, CA and GAP logits`, () => {
    const m = createModel({ arch: 'resnet-basic-1111', head: 'ca-stream', heads, numClasses: 10 });
    const rep = m.loadWeights(W.tensors, { file: 'weights.safetensors' });
    assert.equal(rep.loaded.length, W.tensors.size);
    tf.tidy(() => {
      const out = m.forward(x);
      for (const t of TAPS) assertClose(`tap.${t}`, out.taps[t], { nhwc: true });
      for (const t of TAPS) assertClose(`heads${heads}.attn.${t}`, out.dots[t]!);
      assertClose(`heads${heads}.cls.final`, out.token);
      assertClose(`heads${heads}.logits.ca`, out.logits);
      assertClose(`heads${heads}.logits.forward`, out.logits);
      assertClose('logits.gap', out.logitsGap);
      // unfolded BatchNorm (the training-capable path, in eval mode) gives the same numbers
      const unfolded = m.forward(x, { fold: false });
      assertClose(`heads${heads}.logits.ca`, unfolded.logits);
      assertClose('tap.layer4', unfolded.taps.layer4, { nhwc: true });
    });
    m.dispose();
  });
}

test('CA head alone on the cpu backend, fed the reference taps, reproduces dots, token and logits', async () => {
  const m = createModel({ arch: 'resnet-basic-1111', head: 'ca-stream', heads: 4, numClasses: 10 });
  m.loadWeights(W.tensors);
  const stateDict = m.stateDict();
  m.dispose();
  await tf.setBackend('cpu');
  try {
    const t = (k: string) => tf.tensor(stateDict.get(k)!.data, stateDict.get(k)!.shape);
    const taps: Taps = {};
    for (const tap of TAPS) {
      const r = E.tensors.get(`tap.${tap}`)!;
      taps[tap] = tf.transpose(tf.tensor4d(r.data as Float32Array, r.shape as [number, number, number, number]), [0, 2, 3, 1]);
    }
    const names = ['base', 'l1', 'l2', 'l3', 'l4'];
    const out = caHeadForward(
      {
        kind: 'ca-stream',
        heads: 4,
        token: t('cls_token'),
        blocks: TAPS.map((tap, i) => ({
          tap,
          name: names[i],
          weight: t(`${names[i]}.to_out.1.weight`) as tf.Tensor2D,
          bias: t(`${names[i]}.to_out.1.bias`) as tf.Tensor1D,
          dropout: 0,
        })),
        fcWeight: t('fc.weight') as tf.Tensor2D,
        fcBias: t('fc.bias') as tf.Tensor1D,
      },
      taps,
    );
    for (const tap of TAPS) assertClose(`heads4.attn.${tap}`, out.dots[tap]!);
    assertClose('heads4.cls.final', out.token);
    assertClose('heads4.logits.ca', out.logits);
  } finally {
    await tf.setBackend(backendUnderTest());
  }
});

test('ca-final head: one block on layer4, checked against a direct computation from the reference tap', () => {
  const m = createModel({ arch: 'resnet-basic-1111', head: 'ca-final', numClasses: 10, seed: 3 });
  // backbone and fc from the fixture, the token stays at its N(1, 1) initialisation
  const sub = new Map([...W.tensors].filter(([k]) => !/^(cls_token|base|l\d)\b/.test(k)));
  const rep = m.loadWeights(sub, { strict: false });
  assert.deepEqual(rep.missing, ['cls_token']);
  const q = m.param('cls_token').dataSync();
  assert.equal(q.length, 512);
  const l4 = E.tensors.get('tap.layer4')!; // [2, 512, 3, 3]
  const fw = W.tensors.get('fc.weight')!.data as Float32Array;
  const fb = W.tensors.get('fc.bias')!.data as Float32Array;
  const F = l4.data as Float32Array;
  const out = tf.tidy(() => {
    const o = m.forward(x);
    return { logits: o.logits.dataSync(), dots: o.dots.layer4!.dataSync(), shape: o.dots.layer4!.shape };
  });
  assert.deepEqual(out.shape, [2, 1, 3, 3]);
  for (let b = 0; b < 2; b++) {
    const s = Array.from({ length: 9 }, (_, n) => {
      let acc = 0;
      for (let c = 0; c < 512; c++) acc += F[(b * 512 + c) * 9 + n] * q[c];
      return acc / Math.sqrt(512);
    });
    const mx = Math.max(...s);
    const e = s.map((v) => Math.exp(v - mx));
    const Z = e.reduce((p, v) => p + v, 0);
    const a = e.map((v) => v / Z);
    const z = Array.from({ length: 512 }, (_, c) => a.reduce((acc, an, n) => acc + an * F[(b * 512 + c) * 9 + n], 0));
    for (let n = 0; n < 9; n++) assert.ok(Math.abs(out.dots[b * 9 + n] - s[n]) <= 1e-4 * Math.max(1, Math.abs(s[n])));
    for (let k = 0; k < 10; k++) {
      const want = fb[k] + z.reduce((acc, v, c) => acc + v * fw[k * 512 + c], 0);
      assert.ok(
        Math.abs(out.logits[b * 10 + k] - want) <= 1e-4 * Math.max(1, Math.abs(want)),
        `logit ${b},${k}: ${out.logits[b * 10 + k]} vs ${want}`,
      );
    }
  }
  m.dispose();
});

test('gap head: strict loading rejects the CA keys; non-strict loading reproduces torchvision logits', () => {
  const m = createModel({ arch: 'resnet-basic-1111', head: 'gap', numClasses: 10 });
  assert.throws(
    () => m.loadWeights(W.tensors, { file: 'w.safetensors' }),
    (e: Error) =>
      e instanceof WeightsError && /^w\.safetensors: .*unexpected keys: .*cls_token/.test(e.message) && !/missing keys/.test(e.message),
  );
  const rep = m.loadWeights(W.tensors, { strict: false });
  assert.equal(rep.unexpected.length, 11);
  tf.tidy(() => {
    const out = m.forward(x);
    assertClose('logits.gap', out.logits);
    assert.deepEqual(out.dots, {});
  });
  m.dispose();
});

function rewrite(mutate: (t: Map<string, { dtype?: string; shape: number[]; data: any }>) => void): Buffer {
  const copy = new Map([...W.tensors].map(([k, v]) => [k, { dtype: v.dtype as string, shape: [...v.shape], data: v.data }]));
  mutate(copy);
  return serializeSafetensors(Object.fromEntries([...copy].map(([k, v]) => [k, { dtype: v.dtype as any, shape: v.shape, data: v.data }])));
}

test('bad weights files give errors naming the file and the keys', () => {
  const m = createModel({ arch: 'resnet-basic-1111', head: 'ca-stream', numClasses: 10 });
  const load = (buf: Buffer, file: string) => m.loadWeights(parseSafetensors(buf, file).tensors, { file });
  const good = rewrite(() => {});
  // truncated: the reader names the file and the tensor whose data runs past the end
  assert.throws(
    () => load(good.subarray(0, good.length - 100), 'trunc.safetensors'),
    (e: Error) => e instanceof TensorFileError && /trunc\.safetensors \[[\w.]+\]: truncated/.test(e.message),
  );
  assert.throws(() => load(good.subarray(0, 5), 'tiny.safetensors'), /tiny\.safetensors: truncated/);
  // wrong dtype
  const i64 = rewrite((t) => t.set('fc.bias', { dtype: 'I64', shape: [10], data: new BigInt64Array(10) }));
  assert.throws(() => load(i64, 'dtype.safetensors'), /dtype\.safetensors: .*wrong shape or dtype: fc\.bias: dtype I64/);
  // missing keys
  const missing = rewrite((t) => {
    t.delete('layer3.0.conv2.weight');
    t.delete('l2.to_out.1.bias');
  });
  assert.throws(
    () => load(missing, 'missing.safetensors'),
    /missing\.safetensors: .*missing keys: layer3\.0\.conv2\.weight, l2\.to_out\.1\.bias/,
  );
  // wrong shapes (e.g. a 1000-class classifier)
  const shape = rewrite((t) => t.set('fc.weight', { dtype: 'F32', shape: [1000, 512], data: new Float32Array(512000) }));
  assert.throws(() => load(shape, 'shape.safetensors'), /shape\.safetensors: .*fc\.weight: file \[1000, 512\] vs model \[10, 512\]/);
  // all problems at once
  const many = rewrite((t) => {
    t.delete('bn1.weight');
    t.set('extra.thing', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    t.set('l4.to_out.1.weight', { dtype: 'F32', shape: [512, 256], data: new Float32Array(512 * 256) });
  });
  assert.throws(
    () => load(many, 'many.safetensors'),
    (e: Error) => {
      const r = (e as WeightsError).report!;
      return (
        r.missing.join() === 'bn1.weight' &&
        r.unexpected.join() === 'extra.thing' &&
        r.mismatched.length === 1 &&
        /many\.safetensors/.test(e.message)
      );
    },
  );
  // DataParallel prefixes and num_batches_tracked are accepted
  const dp = rewrite((t) => {
    for (const [k, v] of [...t]) {
      t.delete(k);
      t.set(`module.${k}`, v);
    }
    t.set('module.bn1.num_batches_tracked', { dtype: 'I64', shape: [], data: new BigInt64Array([5n]) });
  });
  const rep = load(dp, 'dp.safetensors');
  assert.equal(rep.loaded.length, 73);
  assert.deepEqual(rep.ignored, ['module.bn1.num_batches_tracked']);
  m.dispose();
});

test('stateDict returns the loaded tensors in file layout (OIHW convolutions)', () => {
  const m = createModel({ arch: 'resnet-basic-1111', head: 'ca-stream', heads: 2, numClasses: 10 });
  m.loadWeights(W.tensors);
  const sd = m.stateDict();
  assert.equal(sd.size, W.tensors.size);
  for (const [k, v] of W.tensors) {
    const got = sd.get(k)!;
    assert.deepEqual(got.shape, v.shape, k);
    assert.deepEqual(got.data, v.data, k);
  }
  m.dispose();
});

test('trainable sets: frozen = token + five projections; finetune = everything but BN statistics', () => {
  const m = createModel({ arch: 'resnet-basic-1111', head: 'ca-stream', numClasses: 10 });
  const frozen = [...m.trainableVariables('frozen').keys()].sort();
  const want = ['cls_token', ...['base', 'l1', 'l2', 'l3', 'l4'].flatMap((b) => [`${b}.to_out.1.bias`, `${b}.to_out.1.weight`])].sort();
  assert.deepEqual(frozen, want);
  const ft = [...m.trainableVariables('finetune').keys()];
  assert.ok(ft.includes('conv1.weight') && ft.includes('bn1.weight') && ft.includes('fc.weight') && ft.includes('cls_token'));
  assert.ok(!ft.some((k) => k.includes('running_')));
  assert.equal(ft.length, W.tensors.size - 2 * 12); // 12 BatchNorms, two statistics each
  const cf = createModel({ arch: 'resnet-basic-1111', head: 'ca-final', project: true, numClasses: 10 });
  assert.deepEqual([...cf.trainableVariables('frozen').keys()].sort(), [
    'cls_surrogate.to_out.1.bias',
    'cls_surrogate.to_out.1.weight',
    'cls_token',
  ]);
  m.dispose();
  cf.dispose();
});

test('random initialisation follows the original: token N(1,1), xavier projections, kaiming convs, seeded', () => {
  const m = createModel({ arch: 'resnet-mini', head: 'ca-stream', numClasses: 5, seed: 11 });
  const sd = m.stateDict();
  const stats = (d: Float32Array) => {
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    return {
      mean,
      std: Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length),
      max: d.reduce((a, b) => Math.max(a, Math.abs(b)), 0),
    };
  };
  const w = sd.get('l3.to_out.1.weight')!; // [128, 64]
  assert.ok(stats(w.data).max <= Math.sqrt(6 / (128 + 64)));
  assert.ok(stats(w.data).max > 0.9 * Math.sqrt(6 / (128 + 64)));
  const conv = sd.get('layer3.0.conv2.weight')!; // [64, 64, 3, 3], std √(2 / (64·9))
  assert.ok(Math.abs(stats(conv.data).std / Math.sqrt(2 / (64 * 9)) - 1) < 0.05);
  assert.deepEqual(Array.from(sd.get('bn1.running_var')!.data), new Array(16).fill(1));
  const again = createModel({ arch: 'resnet-mini', head: 'ca-stream', numClasses: 5, seed: 11 }).stateDict();
  assert.deepEqual(again.get('cls_token')!.data, sd.get('cls_token')!.data);
  const other = createModel({ arch: 'resnet-mini', head: 'ca-stream', numClasses: 5, seed: 12 }).stateDict();
  assert.notDeepEqual(other.get('cls_token')!.data, sd.get('cls_token')!.data);
  // token ~ N(1, 1): check on a wide token
  const big = createModel({ arch: 'resnet-basic-1111', head: 'ca-final', numClasses: 2, seed: 1 });
  const tok = stats(big.param('cls_token').dataSync() as Float32Array); // 512 values: standard error ≈ 0.044
  assert.ok(Math.abs(tok.mean - 1) < 0.15 && Math.abs(tok.std - 1) < 0.15, JSON.stringify(tok));
  big.dispose();
  m.dispose();
});

test('training-mode BatchNorm normalises with batch statistics and updates running statistics (momentum 0.1, unbiased)', () => {
  const m = createModel({ arch: 'resnet-mini', head: 'gap', numClasses: 3, seed: 2 });
  const xin = tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
  // reference: the stem convolution computed directly
  const w = m.param('conv1.weight') as tf.Tensor as tf.Tensor4D;
  const y = tf.conv2d(xin, w, 2, [
    [0, 0],
    [3, 3],
    [3, 3],
    [0, 0],
  ]);
  const yd = y.dataSync();
  const C = 16;
  const n = yd.length / C;
  const mean = new Array(C).fill(0);
  const sq = new Array(C).fill(0);
  for (let i = 0; i < yd.length; i++) mean[i % C] += yd[i] / n;
  for (let i = 0; i < yd.length; i++) sq[i % C] += (yd[i] - mean[i % C]) ** 2;
  m.backbone(xin, { training: true });
  const rm = m.param('bn1.running_mean').dataSync();
  const rv = m.param('bn1.running_var').dataSync();
  for (let c = 0; c < C; c++) {
    assert.ok(Math.abs(rm[c] - 0.1 * mean[c]) < 1e-4, `running_mean[${c}]`);
    assert.ok(Math.abs(rv[c] - (0.9 + (0.1 * sq[c]) / (n - 1))) < 1e-3 * Math.max(1, rv[c]), `running_var[${c}]`);
  }
  // after the update, eval mode (folded) uses the new statistics: compare folded vs unfolded eval
  const a = m.forward(xin).logits.dataSync();
  const b = m.forward(xin, { fold: false }).logits.dataSync();
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-4 * Math.max(1, Math.abs(b[i])));
  m.dispose();
});

test('finetune gradients reach convolutions and BN parameters (wasm, unfolded training path)', () => {
  const m = createModel({ arch: 'resnet-mini-bottleneck', head: 'ca-stream', heads: 2, numClasses: 4, seed: 4 });
  const vars = m.trainableVariables('finetune');
  // 64 px so that layer4 has more than one position (with one, softmax is constant and q5 ignores the token)
  const xin = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 6) as tf.Tensor4D;
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(m.forward(xin, { training: true }).logits)) as tf.Scalar, [...vars.values()]);
  const byName = new Map([...vars].map(([k, v]) => [k, grads[v.name]]));
  for (const k of [
    'conv1.weight',
    'bn1.weight',
    'layer2.0.downsample.0.weight',
    'layer4.0.conv3.weight',
    'cls_token',
    'l1.to_out.1.weight',
    'fc.bias',
  ]) {
    const g = byName.get(k);
    assert.ok(g, `no gradient for ${k}`);
    assert.ok(Math.max(...Array.from(g.dataSync()).map(Math.abs)) > 0, `zero gradient for ${k}`);
  }
  m.dispose();
});

test('ResNet-50 with random weights builds and runs at 224×224 (batch 1)', () => {
  const m = createModel({ arch: 'resnet50', head: 'ca-stream', heads: 8, numClasses: 1000, seed: 0 });
  const sizes: Record<TapName, [number, number]> = {
    stem: [56, 64],
    layer1: [56, 256],
    layer2: [28, 512],
    layer3: [14, 1024],
    layer4: [7, 2048],
  };
  tf.tidy(() => {
    const out = m.forward(tf.randomNormal([1, 224, 224, 3], 0, 1, 'float32', 1) as tf.Tensor4D);
    for (const t of TAPS) {
      assert.deepEqual(out.taps[t].shape, [1, sizes[t][0], sizes[t][0], sizes[t][1]]);
      assert.deepEqual(out.dots[t]!.shape, [1, 8, sizes[t][0], sizes[t][0]]);
    }
    assert.deepEqual(out.logits.shape, [1, 1000]);
    assert.ok(Array.from(out.logits.dataSync()).every(Number.isFinite));
  });
  m.dispose();
});
