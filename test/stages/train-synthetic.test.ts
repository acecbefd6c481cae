// The quickstart's training path end to end on the synthetic benchmark (64×64, 6 classes):
// scratch pretraining of resnet-mini must reach ≥ 90 % validation accuracy, then frozen CA-Stream
// training on that backbone must land within 2 points of the backbone's own GAP accuracy.
// This takes minutes of CPU, more than the per-file budget of the default suite, so it runs only
// with CA_PIPE_SLOW_TESTS=1 (the default suite covers the same code on tiny data).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend, setBackendLogger } from '../../ml/backend/index.js';
import { trainStage } from '../../stages/train/index.js';
import { featuresStage } from '../../stages/features/index.js';
import { stageCtx, syntheticIndex, tmp } from './train-helpers.js';

const slow = process.env.CA_PIPE_SLOW_TESTS === '1';
const PER_CLASS = Number(process.env.CA_PIPE_SYNTH_PER_CLASS ?? 1000);

export const PRETRAIN = {
  arch: 'resnet-mini', head: 'gap', mode: 'scratch', input_size: 64, resize: 64, augment: true, crop_scale: [0.35, 1],
  epochs: 30, batch_size: 32, optimizer: 'adamw', lr: 0.003, weight_decay: 5e-4, schedule: 'cosine', schedule_per: 'iter', log_every: 0,
} as const;

export const CA_FROZEN = {
  arch: 'resnet-mini', head: 'ca-stream', mode: 'frozen', input_size: 64, resize: 64, augment: false,
  epochs: 3, batch_size: 64, optimizer: 'adamw', lr: 0.01, weight_decay: 1e-4, schedule: 'cosine', schedule_per: 'iter', log_every: 0,
} as const;

test('synthetic: scratch pretraining ≥ 90 % val accuracy, frozen CA-Stream within 2 points of GAP', { skip: slow ? false : 'opt-in (CA_PIPE_SLOW_TESTS=1, ~20 min of CPU); the 90 % target is NOT met yet (best seen 87.7 %), see issue 5' }, async () => {
  setBackendLogger(() => undefined);
  await initBackend();
  const root = tmp('synthetic-e2e');
  const data = await syntheticIndex(join(root, 'data'), PER_CLASS, 64);
  const t0 = performance.now();
  const pre = stageCtx({ ...PRETRAIN }, { data }, join(root, 'pretrain'));
  await trainStage.run(pre as never);
  const tPre = (performance.now() - t0) / 1000;
  const preSummary = JSON.parse(readFileSync(join(pre.outDir, 'summary.json'), 'utf8'));
  assert.ok(preSummary.final_val_acc >= 0.9, `scratch pretraining reached ${(100 * preSummary.final_val_acc).toFixed(2)} % in ${tPre.toFixed(0)} s`);

  const feats = stageCtx({ arch: 'resnet-mini', input_size: 64, resize: 64 }, { data, init: pre.outDir }, join(root, 'features'));
  await featuresStage.run(feats as never);
  const ca = stageCtx({ ...CA_FROZEN }, { data, init: pre.outDir, features: feats.outDir }, join(root, 'ca'));
  await trainStage.run(ca as never);
  const s = JSON.parse(readFileSync(join(ca.outDir, 'summary.json'), 'utf8'));
  assert.ok(s.final_val_acc >= s.gap_val_acc - 0.02, `CA ${(100 * s.final_val_acc).toFixed(2)} % vs GAP ${(100 * s.gap_val_acc).toFixed(2)} %`);
  // The GAP accuracy the frozen stage measured (ONNX) is the pretraining's own (tfjs) result.
  assert.ok(Math.abs(s.gap_val_acc - preSummary.final_val_acc) <= 1 / s.val_images + 1e-9);
});
