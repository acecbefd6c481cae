// Kill-and-resume: a run interrupted at random batches (twice) and restarted from its scratch
// directory ends with the same final and best weights, bit for bit, as an uninterrupted run.
// The settings exercise every piece of state: BN running statistics (scratch mode), AdamW moments,
// warm-up + cosine position, EMA, mixup/cutmix draws, label smoothing and augmentation.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { trainStage } from '../../stages/train/index.js';
import { fakeInit, sha256File, stageCtx, syntheticIndex, tmp } from './train-helpers.js';

let data = '';
const params = {
  arch: 'resnet-mini',
  head: 'gap',
  mode: 'scratch',
  epochs: 3,
  batch_size: 6,
  input_size: 32,
  resize: 32,
  recipe: 'vit',
  lr: 0.003,
  warmup_epochs: 1,
  ema_every: 2,
  augment: true,
  crop_scale: [0.5, 1],
  checkpoint_every_iters: 2,
  workers: 0,
  log_every: 1,
} as const;

before(async () => {
  setBackendLogger(() => undefined);
  await initTestBackend();
  data = await syntheticIndex(join(tmp('resume-data'), 'idx'), 8, 32);
});

async function runUntil(
  root: string,
  stopAfterBatches: number | null,
  p: Record<string, unknown> = params,
  inputs: Record<string, string> = { data },
): Promise<'done' | 'aborted'> {
  const ac = new AbortController();
  const ctx = stageCtx({ ...p }, inputs, root, ac.signal);
  let ticks = 0;
  let unit: string | undefined;
  ctx.progress.total = (_n, u) => void (unit = u);
  // Batches only: frozen mode first ticks through its feature extraction in images.
  ctx.progress.tick = (n = 1) => {
    if (unit !== 'batch') return;
    ticks += n;
    if (stopAfterBatches !== null && ticks === stopAfterBatches) ac.abort(new Error('killed by the test'));
  };
  try {
    await trainStage.run(ctx as never);
    return 'done';
  } catch (e) {
    if ((e as Error).message === 'killed by the test') return 'aborted';
    throw e;
  }
}

test('interrupted twice at random batches, resumed: final and best weights identical to an uninterrupted run', async () => {
  const straight = tmp('resume-straight');
  assert.equal(await runUntil(straight, null), 'done');
  const total = 3 * Math.floor(36 / 6);

  const resumed = tmp('resume-killed');
  // Fresh batches counted per process: the first kill lands in epoch 1 or 2, the second later on.
  const first = 1 + Math.floor(Math.random() * (total / 2));
  const second = 1 + Math.floor(Math.random() * 4);
  const where = `kills after batch ${first}, then ${second} more`;
  assert.equal(await runUntil(resumed, first), 'aborted', where);
  assert.ok(!existsSync(join(resumed, 'out', 'final.safetensors')), 'an interrupted run writes no final weights');
  assert.ok(readdirSync(join(resumed, 'scratch', 'checkpoints')).length > 0 || first < 2, `checkpoints written (${where})`);
  assert.equal(await runUntil(resumed, second), 'aborted', where);
  assert.equal(await runUntil(resumed, null), 'done', where);

  assert.equal(sha256File(join(resumed, 'out', 'final.safetensors')), sha256File(join(straight, 'out', 'final.safetensors')), where);
  assert.equal(sha256File(join(resumed, 'out', 'best.safetensors')), sha256File(join(straight, 'out', 'best.safetensors')), where);
});

test('a different seed gives different weights (the digest comparison can fail)', async () => {
  const a = tmp('resume-seed');
  const ctx = stageCtx({ ...params, epochs: 1, warmup_epochs: 0, seed: 1 }, { data }, a);
  await trainStage.run(ctx as never);
  const b = tmp('resume-seed0');
  const ctx0 = stageCtx({ ...params, epochs: 1, warmup_epochs: 0 }, { data }, b);
  await trainStage.run(ctx0 as never);
  assert.notEqual(sha256File(join(ctx.outDir, 'final.safetensors')), sha256File(join(ctx0.outDir, 'final.safetensors')));
});

test('frozen mode with augmentation and mixup (ONNX backbone per step): resumed run gives identical weights', async () => {
  const init = await fakeInit(join(tmp('resume-init'), 'm'), 'resnet-mini', 6, 32);
  const p = {
    arch: 'resnet-mini',
    head: 'ca-stream',
    mode: 'frozen',
    epochs: 2,
    batch_size: 6,
    input_size: 32,
    resize: 32,
    augment: true,
    crop_scale: [0.5, 1],
    optimizer: 'sgd',
    lr: 0.05,
    momentum: 0.9,
    nesterov: true,
    schedule: 'step',
    step_size: 1,
    gamma: 0.5,
    mixup: 0.4,
    cutmix: 1.0,
    dropout: 0.1,
    checkpoint_every_iters: 1,
    workers: 0,
    log_every: 1,
  };
  const inputs = { data, init };
  const straight = tmp('resume-frozen-straight');
  assert.equal(await runUntil(straight, null, p, inputs), 'done');
  const resumed = tmp('resume-frozen-killed');
  const kill = 2 + Math.floor(Math.random() * 8);
  assert.equal(await runUntil(resumed, kill, p, inputs), 'aborted');
  assert.equal(await runUntil(resumed, null, p, inputs), 'done');
  assert.equal(
    sha256File(join(resumed, 'out', 'final.safetensors')),
    sha256File(join(straight, 'out', 'final.safetensors')),
    `killed after batch ${kill}`,
  );
});
