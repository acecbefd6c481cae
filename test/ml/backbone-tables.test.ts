// The parameter tables against torchvision's published parameter counts (BatchNorm buffers not
// counted, 1000 classes) and the CA-Stream sizes of the original code (research notes §1.6); and
// tfjs against ONNX Runtime for the ResNet relatives, which have no reference fixture.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackendLogger, tf } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { createModel, getBackbone, paramSpecs, type ResNetArch } from '../../ml/models/index.js';
import { makeDivisible } from '../../ml/models/efficientnet.js';
import { createSession } from '../../ml/onnx/runtime.js';
import { Rng } from '../../ml/data/rng.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

function counts(arch: string): { torchvision: number; stream: number } {
  const specs = paramSpecs(getBackbone(arch), { head: 'ca-stream', numClasses: 1000 });
  const size = (s: { fileShape: number[] }) => s.fileShape.reduce((a, b) => a * b, 1);
  const torchvision = specs.filter((s) => s.group !== 'ca' && s.role !== 'bn-mean' && s.role !== 'bn-var').reduce((a, s) => a + size(s), 0);
  const stream = specs.filter((s) => s.group === 'ca').reduce((a, s) => a + size(s), 0);
  return { torchvision, stream };
}

test('parameter counts equal torchvision’s for every family', () => {
  const torchvision: Record<string, number> = {
    resnet50: 25_557_032,
    resnext50_32x4d: 25_028_904,
    resnext101_32x8d: 88_791_336,
    wide_resnet50_2: 68_883_240,
    wide_resnet101_2: 126_886_696,
    convnext_tiny: 28_589_128,
    convnext_small: 50_223_688,
    convnext_base: 88_591_464,
    convnext_large: 197_767_336,
    efficientnet_b0: 5_288_548,
    efficientnet_b1: 7_794_184,
    efficientnet_b4: 19_341_616,
    efficientnet_b7: 66_347_960,
  };
  for (const [arch, n] of Object.entries(torchvision)) assert.equal(counts(arch).torchvision, n, arch);
});

test('CA-Stream sizes equal the original code’s', () => {
  assert.equal(counts('resnet18').stream, 439_808);
  assert.equal(counts('convnext_tiny').stream, 979_104);
  assert.equal(counts('convnext_base').stream, 1_739_648);
  assert.equal(counts('efficientnet_b0').stream, 2_148_336);
});

test('EfficientNet-B0 readings at 224 (width, side) and _make_divisible', () => {
  const b0 = getBackbone('efficientnet_b0');
  const sizes = b0.readingSizes(224);
  assert.deepEqual(
    b0.readings().map((r) => [r.tap, r.channels, sizes[r.tap]]),
    [
      ['features.0', 32, 112],
      ['features.1', 16, 112],
      ['features.2', 24, 56],
      ['features.3', 40, 28],
      ['features.4', 80, 14],
      ['features.5', 112, 14],
      ['features.6', 192, 7],
      ['features.7', 320, 7],
      ['features.8', 1280, 7],
    ],
  );
  // Nearest multiple of 8, but never more than 10 % below the value (11 → 16, not 8).
  assert.deepEqual(
    [12, 20, 8, 35.2, 3, 11].map((v) => makeDivisible(v)),
    [16, 24, 8, 32, 8, 16],
  );
});

test('unknown architectures are named with the known ones', () => {
  assert.throws(() => getBackbone('convnext_huge'), /unknown architecture "convnext_huge".*convnext_base.*efficientnet_b0/);
});

// Small relatives (grouped / widened 3×3 convs), tfjs vs ONNX Runtime with randomised BatchNorm.
const relatives: ResNetArch[] = [
  {
    name: 'resnext-mini',
    block: 'bottleneck',
    layers: [1, 1, 1, 1],
    stemWidth: 16,
    widths: [16, 32, 64, 128],
    groups: 4,
    widthPerGroup: 16,
  },
  { name: 'wide-mini', block: 'bottleneck', layers: [1, 1, 1, 1], stemWidth: 16, widths: [8, 16, 32, 64], widthPerGroup: 128 },
];

for (const arch of relatives) {
  test(`${arch.name}: tfjs and ONNX Runtime agree`, async () => {
    const rng = new Rng(5);
    const m = createModel({ arch, head: 'ca-stream', numClasses: 4, seed: 1 });
    const sd = m.stateDict();
    for (const [name, t] of sd) {
      if (name.endsWith('running_var')) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 + rng.float();
      else if (name.endsWith('running_mean')) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.2 * (rng.float() - 0.5);
    }
    m.loadWeights(sd as any);
    const size = 48;
    const x = new Float32Array(2 * 3 * size * size).map(() => rng.normal());
    const cacheDir = await mkdtemp(join(tmpdir(), 'relatives-'));
    try {
      const outputs = ['tap.layer4', 'attn.layer4', 'logits'];
      const s = await createSession({ arch, head: 'ca-stream', numClasses: 4, weights: sd as any, outputs, cacheDir });
      const ref = await s.run(x, 2, size, size);
      await s.release();
      const out = m.forward(tf.transpose(tf.tensor4d(x, [2, 3, size, size]), [0, 2, 3, 1]) as tf.Tensor4D);
      const got: Record<string, ArrayLike<number>> = {
        'tap.layer4': tf.transpose(out.taps.layer4, [0, 3, 1, 2]).dataSync(),
        'attn.layer4': out.dots.layer4!.dataSync(),
        logits: out.logits.dataSync(),
      };
      for (const o of outputs) {
        const r = ref[o].data;
        let w = 0;
        for (let i = 0; i < r.length; i++) w = Math.max(w, Math.abs(got[o][i] - r[i]) / Math.max(1, Math.abs(r[i])));
        assert.ok(w < 1e-4, `${arch.name} ${o}: ${w}`);
      }
    } finally {
      m.dispose();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
}

test('efficientnet-mini ca-final (with and without projection): tfjs and ONNX Runtime agree', async () => {
  for (const project of [false, true]) {
    const rng = new Rng(9);
    const m = createModel({ arch: 'efficientnet-mini', head: 'ca-final', numClasses: 4, seed: 2, project });
    const sd = m.stateDict();
    assert.deepEqual(sd.get('cls_token')!.shape, [1, 1, 640]);
    assert.equal(sd.has('ca_stream.to_out.1.weight'), project);
    const size = 64;
    const x = new Float32Array(2 * 3 * size * size).map(() => rng.normal());
    const cacheDir = await mkdtemp(join(tmpdir(), 'eff-final-'));
    try {
      const s = await createSession({
        arch: 'efficientnet-mini',
        head: 'ca-final',
        numClasses: 4,
        weights: sd as any,
        outputs: ['attn.features.8', 'cls.final', 'logits'],
        cacheDir,
      });
      const ref = await s.run(x, 2, size, size);
      await s.release();
      const out = m.forward(tf.transpose(tf.tensor4d(x, [2, 3, size, size]), [0, 2, 3, 1]) as tf.Tensor4D);
      const got: Record<string, ArrayLike<number>> = {
        'attn.features.8': out.dots['features.8']!.dataSync(),
        'cls.final': out.token.dataSync(),
        logits: out.logits.dataSync(),
      };
      for (const [o, r] of Object.entries(ref)) {
        let w = 0;
        for (let i = 0; i < r.data.length; i++) w = Math.max(w, Math.abs(got[o][i] - r.data[i]) / Math.max(1, Math.abs(r.data[i])));
        assert.ok(w < 1e-4, `project=${project} ${o}: ${w}`);
      }
    } finally {
      m.dispose();
      await rm(cacheDir, { recursive: true, force: true });
    }
  }
});

test('convnext-mini ca-final (the original CLS_KV block): parameter names, tfjs and ONNX Runtime agree', async () => {
  const rng = new Rng(4);
  const m = createModel({ arch: 'convnext-mini', head: 'ca-final', numClasses: 4, seed: 3 });
  const sd = m.stateDict();
  assert.deepEqual([...sd.keys()].filter((k) => k.startsWith('cls_')).sort(), [
    'cls_stream.to_k.1.bias',
    'cls_stream.to_k.1.weight',
    'cls_stream.to_out.bias',
    'cls_stream.to_out.weight',
    'cls_stream.to_v.1.bias',
    'cls_stream.to_v.1.weight',
    'cls_token',
  ]);
  // Non-trivial LayerNorm affines and layer scales, so every part of the path shows.
  for (const [name, t] of sd) {
    if (name.endsWith('layer_scale') || /to_out\.(weight|bias)$/.test(name))
      for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 + rng.float();
  }
  m.loadWeights(sd as any);
  assert.throws(() => createModel({ arch: 'convnext-mini', head: 'ca-final', numClasses: 4, project: true }), /without projection/);
  const size = 64;
  const x = new Float32Array(2 * 3 * size * size).map(() => rng.normal());
  const cacheDir = await mkdtemp(join(tmpdir(), 'cnx-final-'));
  try {
    const s = await createSession({
      arch: 'convnext-mini',
      head: 'ca-final',
      numClasses: 4,
      weights: sd as any,
      outputs: ['attn.features.7', 'cls.final', 'logits'],
      cacheDir,
    });
    const ref = await s.run(x, 2, size, size);
    await s.release();
    const out = m.forward(tf.transpose(tf.tensor4d(x, [2, 3, size, size]), [0, 2, 3, 1]) as tf.Tensor4D);
    const got: Record<string, ArrayLike<number>> = {
      'attn.features.7': out.dots['features.7']!.dataSync(),
      'cls.final': out.token.dataSync(),
      logits: out.logits.dataSync(),
    };
    for (const [o, r] of Object.entries(ref)) {
      let w = 0;
      for (let i = 0; i < r.data.length; i++) w = Math.max(w, Math.abs(got[o][i] - r.data[i]) / Math.max(1, Math.abs(r.data[i])));
      assert.ok(w < 1e-4, `${o}: ${w}`);
    }
  } finally {
    m.dispose();
    await rm(cacheDir, { recursive: true, force: true });
  }
});
