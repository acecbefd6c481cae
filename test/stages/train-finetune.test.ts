// finetune: every parameter is optimized, in two groups. With backbone_lr_mult 0 the backbone's
// convolution and BN affine weights must stay put while the classifier moves, and BN running
// statistics still change (BatchNorm runs in training mode when the backbone trains).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { trainStage } from '../../stages/train/index.js';
import { fakeInit, stageCtx, syntheticIndex, tmp } from './train-helpers.js';

let data = '';
let init = '';

before(async () => {
  setBackendLogger(() => undefined);
  await initTestBackend();
  const root = tmp('finetune');
  data = await syntheticIndex(join(root, 'data'), 4, 32);
  init = await fakeInit(join(root, 'init'), 'resnet-mini', 6, 32);
});

test('finetune with backbone_lr_mult 0: classifier moves, backbone weights do not, BN statistics do', async () => {
  const ctx = stageCtx(
    {
      arch: 'resnet-mini',
      head: 'gap',
      mode: 'finetune',
      epochs: 1,
      batch_size: 6,
      input_size: 32,
      resize: 32,
      augment: false,
      optimizer: 'sgd',
      lr: 0.05,
      momentum: 0.9,
      weight_decay: 1e-4,
      schedule: 'constant',
      backbone_lr_mult: 0,
      workers: 0,
    },
    { data, init },
    tmp('finetune-run'),
  );
  await trainStage.run(ctx as never);
  const summary = JSON.parse(readFileSync(join(ctx.outDir, 'summary.json'), 'utf8'));
  assert.ok(summary.trainable_parameters.includes('conv1.weight') && summary.trainable_parameters.includes('fc.weight'));
  assert.ok(!summary.trainable_parameters.some((n: string) => n.includes('running_')), 'BN buffers are not optimizer parameters');
  const a = (await readSafetensors(join(init, 'final.safetensors'))).tensors;
  const b = (await readSafetensors(join(ctx.outDir, 'final.safetensors'))).tensors;
  const same = (k: string) =>
    Buffer.from((a.get(k)!.data as Float32Array).buffer).equals(Buffer.from((b.get(k)!.data as Float32Array).buffer));
  for (const k of ['conv1.weight', 'bn1.weight', 'bn1.bias', 'layer3.0.conv2.weight', 'layer4.0.downsample.0.weight'])
    assert.ok(same(k), `${k} unchanged`);
  for (const k of ['fc.weight', 'fc.bias', 'bn1.running_mean', 'layer2.0.bn1.running_var']) assert.ok(!same(k), `${k} changed`);
});
