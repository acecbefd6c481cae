// Strict weight checking and the export cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getArch } from '../../ml/models/arch.js';
import { readSafetensors, writeSafetensors } from '../../ml/io/safetensors.js';
import { exportModel, foldBatchNorm } from '../../ml/onnx/export.js';
import { decodeModel } from '../../ml/onnx/proto.js';
import { createSession, exportCached, exportDigest, runForward } from '../../ml/onnx/runtime.js';
import { WeightsError, checkWeights, expectedWeights, type WeightMap } from '../../ml/onnx/weights.js';

// A small arch keeps these tests fast; its weights are made from the expected-name table, the
// table itself being checked against torchvision's names below.
const mini = getArch('resnet-mini');
const bottleneck = getArch('resnet-mini-bottleneck');

function makeWeights(arch = mini, head: 'gap' | 'ca-stream' | 'none' = 'gap', numClasses = 5, seed = 1): WeightMap {
  let s = seed;
  const rand = () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5;
  const out: WeightMap = new Map();
  for (const [k, shape] of expectedWeights(arch, head, numClasses)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out.set(k, { shape, data: Float32Array.from({ length: n }, () => (k.endsWith('running_var') ? 1 + rand() : rand())) });
  }
  return out;
}

test('expected names follow torchvision (BasicBlock and Bottleneck, downsample only where needed)', () => {
  const basic = expectedWeights(getArch('resnet18'), 'gap', 1000);
  assert.deepEqual(basic.get('conv1.weight'), [64, 3, 7, 7]);
  assert.deepEqual(basic.get('layer1.1.conv2.weight'), [64, 64, 3, 3]);
  assert.ok(!basic.has('layer1.0.downsample.0.weight'));
  assert.deepEqual(basic.get('layer2.0.downsample.0.weight'), [128, 64, 1, 1]);
  assert.ok(!basic.has('layer2.1.downsample.0.weight'));
  assert.deepEqual(basic.get('fc.weight'), [1000, 512]);
  // 20 conv weights + 20 BNs × 4 + fc weight and bias = 102 tensors (torchvision, minus num_batches_tracked).
  assert.equal(basic.size, 102);
  const r50 = expectedWeights(getArch('resnet50'), 'ca-stream', 1000);
  assert.deepEqual(r50.get('layer1.0.downsample.0.weight'), [256, 64, 1, 1]);
  assert.deepEqual(r50.get('layer3.5.conv3.weight'), [1024, 256, 1, 1]);
  assert.deepEqual(r50.get('layer4.0.conv2.weight'), [512, 512, 3, 3]);
  assert.deepEqual(r50.get('cls_token'), [1, 1, 64]);
  assert.deepEqual(r50.get('base.to_out.1.weight'), [256, 64]);
  assert.deepEqual(r50.get('l4.to_out.1.weight'), [2048, 2048]);
  // ResNet-50: 53 convs, 53 BNs, fc → 53 + 212 + 2 = 267, plus token and 5×2 projection tensors.
  assert.equal(r50.size, 267 + 11);
});

test('missing, unexpected and wrong-shape weights: one error naming the file and every key', () => {
  const w = makeWeights();
  w.delete('layer2.0.bn1.running_var');
  w.set('layer3.0.conv1.weight', { shape: [64, 32, 1, 3], data: new Float32Array(64 * 32 * 3) });
  w.set('layer9.0.conv1.weight', { shape: [1], data: new Float32Array(1) });
  assert.throws(
    () => exportModel({ arch: mini, head: 'gap', weights: w, weightsFile: 'ckpt/model.safetensors' }),
    (e: unknown) => {
      assert.ok(e instanceof WeightsError);
      assert.match(e.message, /^ckpt\/model\.safetensors: 3 weight problem/);
      assert.match(e.message, /\[layer2\.0\.bn1\.running_var\] missing \(expected shape \[32\]/);
      assert.match(e.message, /\[layer3\.0\.conv1\.weight\] wrong shape \[64, 32, 1, 3\], expected \[64, 32, 3, 3\]/);
      assert.match(e.message, /\[layer9\.0\.conv1\.weight\] unexpected key/);
      return true;
    },
  );
});

test('a classifier is required unless the graph is backbone-only; fc.weight gives the class count', () => {
  const w = makeWeights(mini, 'gap', 7);
  const noFc = new Map(w);
  noFc.delete('fc.weight');
  noFc.delete('fc.bias');
  assert.throws(
    () => exportModel({ arch: mini, head: 'gap', weights: noFc, weightsFile: 'x.safetensors' }),
    /x\.safetensors: .*\[fc\.weight\] missing/s,
  );
  const m = decodeModel(exportModel({ arch: mini, head: 'none', weights: noFc }));
  assert.deepEqual(
    m.graph.output.map((o) => o.name),
    ['tap.stem', 'tap.layer1', 'tap.layer2', 'tap.layer3', 'tap.layer4'],
  );
  const g = decodeModel(exportModel({ arch: mini, head: 'gap', weights: w, outputs: ['logits', 'probs'] }));
  const dims = (g.graph.output[0].type.tensorType.shape.dim as Array<{ dimValue?: number; dimParam?: string }>).map(
    (d) => d.dimValue ?? d.dimParam,
  );
  assert.deepEqual(dims, ['batch', 7]);
});

test('`module.` prefixes are stripped; known keys of other heads and num_batches_tracked are tolerated', () => {
  const w = makeWeights(mini, 'ca-stream');
  const prefixed = new Map([...w].map(([k, v]) => [`module.${k}`, v] as const));
  prefixed.set('module.bn1.num_batches_tracked', { shape: [], data: new Float32Array(1) });
  const checked = checkWeights(prefixed, mini, 'gap', 5, 'p.safetensors');
  assert.ok(checked.has('conv1.weight') && !checked.has('cls_token') && !checked.has('module.conv1.weight'));
  // The digest depends only on what the graph uses, so prefixes and unused CA keys do not change it.
  assert.equal(
    exportDigest({ arch: mini, head: 'gap', weights: prefixed }),
    exportDigest({ arch: mini, head: 'gap', weights: makeWeights() }),
  );
});

test('non-float weights are rejected by key', () => {
  const w = makeWeights() as Map<string, { shape: number[]; data: Float32Array | Int32Array }>;
  w.set('fc.bias', { shape: [5], data: new Int32Array(5) });
  assert.throws(() => checkWeights(w, mini, 'gap', 5, 'f.safetensors'), /f\.safetensors: .*\[fc\.bias\] not floating point/s);
});

test('BatchNorm folding: conv(x)·γ/√(σ²+ε) + β − μγ/√(σ²+ε)', () => {
  // Two output channels, one weight each.
  const { weight, bias } = foldBatchNorm(new Float32Array([2, -1]), 2, {
    weight: new Float32Array([3, 0.5]),
    bias: new Float32Array([1, 0]),
    mean: new Float32Array([0.5, -2]),
    var: new Float32Array([4 - 1e-5, 0.25 - 1e-5]),
  });
  assert.deepEqual(Array.from(weight), [3, -1].map(Math.fround)); // 2·3/2, −1·0.5/0.5
  assert.deepEqual(Array.from(bias), [1 - 0.75, 2].map(Math.fround)); // 1 − 0.5·1.5, 0 + 2·1
});

test('export cache: the same weights hit the cache, different weights or heads miss', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'onnx-cache-'));
  try {
    const w = makeWeights(bottleneck, 'ca-stream');
    const first = await exportCached({ arch: bottleneck, head: 'ca-stream', heads: 2, weights: w, cacheDir: dir });
    assert.equal(first.hit, false);
    // A fresh copy of the same bytes is still a hit: the key is the content, not object identity.
    const copy: WeightMap = new Map([...w].map(([k, v]) => [k, { shape: [...v.shape], data: v.data.slice() }]));
    const second = await exportCached({ arch: bottleneck, head: 'ca-stream', heads: 2, weights: copy, cacheDir: dir });
    assert.deepEqual(second, { ...first, hit: true });
    const changed: WeightMap = new Map(copy);
    const fc = copy.get('fc.bias')!;
    const bumped = fc.data.slice();
    bumped[0] += 1e-3;
    changed.set('fc.bias', { shape: fc.shape, data: bumped });
    const third = await exportCached({ arch: bottleneck, head: 'ca-stream', heads: 2, weights: changed, cacheDir: dir });
    assert.equal(third.hit, false);
    assert.notEqual(third.digest, first.digest);
    const fourth = await exportCached({ arch: bottleneck, head: 'ca-stream', heads: 1, weights: w, cacheDir: dir });
    assert.equal(fourth.hit, false);
    assert.deepEqual((await readdir(dir)).sort(), [first.digest, third.digest, fourth.digest].map((d) => `${d}.onnx`).sort());
    // A hit really skips the export: a damaged cached file is returned as is (no re-export) …
    await writeFile(first.path, 'not onnx');
    assert.equal((await exportCached({ arch: bottleneck, head: 'ca-stream', heads: 2, weights: w, cacheDir: dir })).hit, true);
    // … but a session on it rebuilds the file instead of failing.
    const model = await createSession({
      arch: bottleneck,
      head: 'ca-stream',
      heads: 2,
      weights: w,
      cacheDir: dir,
      sessionOptions: { intraOpNumThreads: 1 },
    });
    assert.equal(model.exported.hit, false);
    assert.equal(model.exported.digest, first.digest);
    const r = await model.run(new Float32Array(3 * 32 * 32), 1, 32, 32);
    assert.deepEqual(r.logits.dims, [1, 5]);
    await model.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('runForward: bad weights file names the file and the key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'onnx-rf-'));
  try {
    const w = makeWeights();
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [k, v] of w) if (k !== 'layer1.0.conv2.weight') tensors[k] = v;
    const weightsFile = join(dir, 'broken.safetensors');
    await writeSafetensors(weightsFile, tensors);
    const inputFile = join(dir, 'in.safetensors');
    await writeSafetensors(inputFile, { input: { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) } });
    await assert.rejects(
      runForward({ arch: 'resnet-mini', head: 'gap', weightsFile, inputFile, outFile: join(dir, 'o.safetensors'), cacheDir: dir }),
      (e: Error) => e.message.startsWith(weightsFile) && e.message.includes('[layer1.0.conv2.weight] missing'),
    );
    // And with the weights intact it runs, on a non-224 input size.
    tensors['layer1.0.conv2.weight'] = w.get('layer1.0.conv2.weight')!;
    await writeSafetensors(weightsFile, tensors);
    const out = join(dir, 'o.safetensors');
    await runForward({ arch: 'resnet-mini', head: 'none', weightsFile, inputFile, outFile: out, cacheDir: dir });
    const res = (await readSafetensors(out)).tensors;
    assert.deepEqual(res.get('tap.layer4')!.shape, [1, 128, 1, 1]);
    assert.deepEqual(res.get('tap.stem')!.shape, [1, 16, 8, 8]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
