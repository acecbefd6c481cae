// Bad configurations are rejected before the first step, with messages naming what is wrong;
// a diverging run stops at the first non-finite loss with the iteration, the lr and a hint.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { trainStage } from '../../stages/train/index.js';
import { fakeInit, stageCtx, syntheticIndex, tmp } from './train-helpers.js';

let data = '';
let init6 = '';
const base = {
  arch: 'resnet-mini',
  head: 'ca-stream',
  mode: 'frozen',
  epochs: 1,
  batch_size: 4,
  input_size: 32,
  resize: 32,
  augment: false,
  workers: 0,
} as const;

before(async () => {
  setBackendLogger(() => undefined);
  await initTestBackend();
  const root = tmp('guards');
  data = await syntheticIndex(join(root, 'data'), 4, 32);
  init6 = await fakeInit(join(root, 'init6'), 'resnet-mini', 6, 32);
});

async function rejects(params: Record<string, unknown>, inputs: Record<string, string>, ...patterns: RegExp[]): Promise<string> {
  const ctx = stageCtx(params, inputs, tmp('guard-run'));
  try {
    await trainStage.run(ctx as never);
  } catch (e) {
    const msg = (e as Error).message;
    for (const re of patterns) assert.match(msg, re);
    assert.ok(!existsSync(join(ctx.outDir, 'final.safetensors')));
    return msg;
  }
  throw new Error('expected the stage to fail');
}

test('fewer training images than one batch', async () => {
  // 4 per class × 6 classes, a quarter held out: 18 training images.
  await rejects({ ...base, batch_size: 64 }, { data, init: init6 }, /batch_size 64/, /18 training images/);
});

test('labels beyond the classes of the init classifier', async () => {
  const init4 = await fakeInit(join(tmp('init4'), 'm'), 'resnet-mini', 4, 32);
  await rejects({ ...base }, { data, init: init4 }, /index\.jsonl/, /label [45]/, /4 classes/);
});

test('init weights of another architecture', async () => {
  const other = await fakeInit(join(tmp('init-r'), 'm'), 'resnet-mini-bottleneck', 6, 32);
  await rejects({ ...base }, { data, init: other }, /model\.json/, /resnet-mini-bottleneck/, /resnet-mini\b/);
  // A card that lies about the architecture: the weights themselves are checked too.
  const card = JSON.parse(readFileSync(join(other, 'model.json'), 'utf8'));
  writeFileSync(join(other, 'model.json'), JSON.stringify({ ...card, arch: 'resnet-mini' }));
  await rejects({ ...base }, { data, init: other }, /final\.safetensors/, /does not hold resnet-mini weights/, /shape/);
});

test('frozen needs init; mixup cannot apply to cached features', async () => {
  await rejects({ ...base }, { data }, /frozen/, /init/);
  await rejects({ ...base, mixup: 0.2 }, { data, init: init6 }, /mixup/, /augment: true/);
});

test('a diverging run stops at the first non-finite loss with iteration, lr and a hint', async () => {
  const msg = await rejects(
    { ...base, mode: 'scratch', head: 'gap', optimizer: 'sgd', lr: 1e38, momentum: 0, weight_decay: 0, schedule: 'constant', epochs: 3 },
    { data },
    /loss is (NaN|-?Infinity)/,
    /iteration \d+/,
    /last lr 1\.000e\+38/,
    /learning rate/,
  );
  assert.doesNotMatch(msg, /iteration 0\b/, 'the first step cannot have diverged yet');
});
