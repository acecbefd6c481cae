// Frozen-mode training: exactly the CA token and the five projections train; backbone, BatchNorm
// statistics and classifier come out bit-identical to the init; outputs parse (model card,
// TensorBoard, metrics); a features stage's cache gives the same result as the stage's own cache.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { readIndex } from '../../ml/data/index-file.js';
import { loadImageTensor } from '../../ml/data/image-tensor.js';
import { createModel } from '../../ml/models/model.js';
import { checkCard } from '../../ml/explain/model-dir.js';
import { readEventFile } from '../../ml/train/tensorboard.js';
import { readJsonl } from '../../ml/train/jsonl.js';
import { trainStage } from '../../stages/train/index.js';
import { featuresStage } from '../../stages/features/index.js';
import { fakeInit, sha256File, stageCtx, syntheticIndex, tmp } from './train-helpers.js';

const ARCH = 'resnet-mini';
const SIZE = 64;
let data = '';
let init = '';
let frozenOut = '';

const frozenParams = {
  arch: ARCH,
  head: 'ca-stream',
  mode: 'frozen',
  epochs: 2,
  batch_size: 8,
  input_size: SIZE,
  resize: SIZE,
  augment: false,
  optimizer: 'adamw',
  lr: 0.01,
  weight_decay: 0.01,
  schedule: 'constant',
  workers: 0,
  log_every: 1,
} as const;

before(async () => {
  setBackendLogger(() => undefined);
  await initTestBackend();
  const root = tmp('train-frozen');
  data = await syntheticIndex(join(root, 'data'), 8, SIZE);
  init = await fakeInit(join(root, 'init'), ARCH, 6, SIZE);
});

test('frozen CA-Stream: trains exactly cls_token + the five to_out.1 projections, nothing else moves', async () => {
  const root = tmp('frozen-run');
  const ctx = stageCtx({ ...frozenParams }, { data, init }, root);
  await trainStage.run(ctx as never);
  frozenOut = ctx.outDir;
  const summary = JSON.parse(readFileSync(join(ctx.outDir, 'summary.json'), 'utf8'));
  const expected = ['cls_token', ...['base', 'l1', 'l2', 'l3', 'l4'].flatMap((b) => [`${b}.to_out.1.bias`, `${b}.to_out.1.weight`])].sort();
  assert.deepEqual(summary.trainable_parameters, expected);

  const before = (await readSafetensors(join(init, 'final.safetensors'))).tensors;
  const after = (await readSafetensors(join(ctx.outDir, 'final.safetensors'))).tensors;
  const bnStats = [...before.keys()].filter((k) => /running_(mean|var)$/.test(k));
  assert.ok(bnStats.length >= 10, 'the init has BN statistics');
  for (const [k, t] of before) {
    const a = after.get(k);
    assert.ok(a, `final weights keep ${k}`);
    assert.deepEqual(
      Buffer.from((a.data as Float32Array).buffer),
      Buffer.from((t.data as Float32Array).buffer),
      `${k} unchanged by frozen training`,
    );
  }
  // The head did train: its token moved away from its initial value (same seed, fresh model).
  const fresh = createModel({ arch: ARCH, head: 'ca-stream', numClasses: 6, seed: 0 });
  const token0 = fresh.stateDict().get('cls_token')!.data;
  fresh.dispose();
  assert.notDeepEqual(Array.from(after.get('cls_token')!.data as Float32Array), Array.from(token0));
  assert.equal(after.size, before.size + expected.length);

  const card = checkCard(JSON.parse(readFileSync(join(ctx.outDir, 'model.json'), 'utf8')), 'model.json');
  assert.equal(card.head, 'ca-stream');
  assert.equal(card.num_classes, 6);

  // TensorBoard: one file, per-epoch scalars at steps 1..epochs, per-iteration losses.
  const tbFiles = readdirSync(join(ctx.outDir, 'tb'));
  assert.equal(tbFiles.length, 1);
  const { scalars } = readEventFile(join(ctx.outDir, 'tb', tbFiles[0]));
  for (const tag of ['epoch/train_loss', 'epoch/val_loss', 'epoch/val_acc', 'epoch/lr']) {
    assert.deepEqual(
      scalars.filter((s) => s.tag === tag).map((s) => s.step),
      [1, 2],
      tag,
    );
  }
  const metrics = readJsonl(join(ctx.outDir, 'metrics.jsonl'));
  const epochs = metrics.filter((r) => r.type === 'epoch');
  assert.equal(epochs.length, 2);
  const iters = metrics.filter((r) => r.type === 'iter');
  assert.equal(iters.length, summary.iterations);
  assert.equal(summary.iterations, 2 * Math.floor(summary.train_images / 8));
  const valAcc = scalars.filter((s) => s.tag === 'epoch/val_acc').map((s) => s.value);
  assert.ok(Math.abs(valAcc[1] - (epochs[1].val_acc as number)) < 1e-6);

  // GAP accuracy of the init, recomputed independently with the tfjs model (ONNX computed the stage's).
  const idx = await readIndex(data);
  const m = createModel({ arch: ARCH, head: 'gap', numClasses: 6 });
  m.loadWeights((await readSafetensors(join(init, 'final.safetensors'))).tensors as never);
  let hits = 0;
  for (const id of idx.splits.val) {
    const r = idx.records[id];
    const img = await loadImageTensor(idx.imagePath(r), { transform: 'eval', size: SIZE, resize: SIZE, layout: 'NHWC' });
    const pred = tf.tidy(() => tf.argMax(m.forward(tf.tensor4d(img.data, [1, SIZE, SIZE, 3])).logits, 1).dataSync()[0]);
    if (pred === r.label) hits++;
  }
  m.dispose();
  assert.ok(
    Math.abs(summary.gap_val_acc - hits / idx.splits.val.length) < 1e-9,
    `gap_val_acc ${summary.gap_val_acc} vs tfjs ${hits}/${idx.splits.val.length}`,
  );
});

test("a features stage feeds frozen training: same final weights as the stage's own feature cache", async () => {
  assert.ok(frozenOut, 'runs after the first test');
  const fRoot = tmp('features');
  const fctx = stageCtx({ arch: ARCH, input_size: SIZE, resize: SIZE, dtype: 'float16', workers: 0 }, { data, init }, fRoot);
  await featuresStage.run(fctx as never);
  const meta = JSON.parse(readFileSync(join(fctx.outDir, 'features.json'), 'utf8'));
  assert.deepEqual(meta.taps, ['stem', 'layer1', 'layer2', 'layer3', 'layer4']);
  // The cached taps (ONNX, NCHW → NHWC, float16) are the tfjs backbone's taps of the same image.
  const shard = (await readSafetensors(join(fctx.outDir, meta.splits.val.shards[0]))).tensors;
  const id = (shard.get('ids')!.data as Int32Array)[1];
  const idx = await readIndex(data);
  const img = await loadImageTensor(idx.imagePath(idx.records[id]), { transform: 'eval', size: SIZE, resize: SIZE, layout: 'NHWC' });
  const m = createModel({ arch: ARCH, head: 'gap', numClasses: 6 });
  m.loadWeights((await readSafetensors(join(init, 'final.safetensors'))).tensors as never);
  for (const tap of ['stem', 'layer2', 'layer4'] as const) {
    const ref = tf.tidy(() => m.backbone(tf.tensor4d(img.data, [1, SIZE, SIZE, 3]))[tap].dataSync() as Float32Array);
    const cached = shard.get(`tap.${tap}`)!;
    assert.deepEqual(cached.shape.slice(1), [...m.backbone(tf.zeros([1, SIZE, SIZE, 3]) as tf.Tensor4D)[tap].shape.slice(1)]);
    const per = ref.length;
    const got = (cached.data as Float32Array).subarray(per, 2 * per);
    let worst = 0;
    for (let i = 0; i < per; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
    assert.ok(worst < 4e-3, `tap ${tap}: max relative difference ${worst}`);
  }
  m.dispose();
  const root = tmp('frozen-feat');
  const ctx = stageCtx({ ...frozenParams }, { data, init, features: fctx.outDir }, root);
  await trainStage.run(ctx as never);
  assert.equal(sha256File(join(ctx.outDir, 'final.safetensors')), sha256File(join(frozenOut, 'final.safetensors')));
});

test('frozen with augmentation runs the backbone through ONNX Runtime on every batch', async () => {
  const root = tmp('frozen-aug');
  const ctx = stageCtx({ ...frozenParams, augment: true, epochs: 1, crop_scale: [0.5, 1] }, { data, init }, root);
  await trainStage.run(ctx as never);
  const summary = JSON.parse(readFileSync(join(ctx.outDir, 'summary.json'), 'utf8'));
  assert.equal(summary.feature_cache.train_from_cache, false);
  const after = (await readSafetensors(join(ctx.outDir, 'final.safetensors'))).tensors;
  const before = (await readSafetensors(join(init, 'final.safetensors'))).tensors;
  for (const k of ['bn1.running_mean', 'layer4.0.bn2.running_var', 'fc.weight']) {
    assert.deepEqual(Array.from(after.get(k)!.data as Float32Array), Array.from(before.get(k)!.data as Float32Array), k);
  }
});
