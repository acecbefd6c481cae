import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint, loadLatestCheckpoint, listCheckpoints, type CheckpointData } from '../../ml/train/checkpoint.js';

function sample(iteration: number, ema: boolean): CheckpointData {
  const f = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(iteration + i * k));
  return {
    weights: { 'l4.to_out.1.weight': { shape: [2, 3], data: f(6, 1) }, cls_token: { shape: [1, 1, 4], data: f(4, 2) } },
    optimizer: { 'exp_avg/cls_token': f(4, 3), 'step/cls_token': new Float32Array([0, iteration]) },
    ema: ema ? { 'avg/cls_token': f(4, 5), updates: new Float32Array([0, 3]) } : null,
    meta: {
      epoch: Math.floor(iteration / 10),
      batchInEpoch: iteration % 10,
      iteration,
      rng: { mixup: [1, 2, 3, iteration] },
      best: { metric: 'val/top1', value: 0.5, epoch: 1 },
      metrics: [{ epoch: 0, 'train/loss': 2.5 }],
    },
  };
}

test('save keeps the newest two; load returns the newest with everything restored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
  assert.equal(await loadLatestCheckpoint(dir), null);
  assert.equal(await loadLatestCheckpoint(join(dir, 'missing')), null);
  writeFileSync(join(dir, 'ckpt-000000000001.safetensors.tmp-999999'), 'stale temp from a crashed writer');
  for (const it of [10, 20, 35]) await saveCheckpoint(dir, sample(it, it !== 20));
  assert.deepEqual(readdirSync(dir).sort(), ['ckpt-000000000020.safetensors', 'ckpt-000000000035.safetensors']);
  const got = (await loadLatestCheckpoint(dir))!;
  const want = sample(35, true);
  assert.equal(got.path, join(dir, 'ckpt-000000000035.safetensors'));
  assert.deepEqual(got.meta, want.meta);
  assert.deepEqual(got.weights['l4.to_out.1.weight'].shape, [2, 3]);
  assert.deepEqual(Array.from(got.weights.cls_token.data), Array.from(want.weights.cls_token.data));
  assert.deepEqual(Array.from(got.optimizer['exp_avg/cls_token']), Array.from(want.optimizer['exp_avg/cls_token']));
  assert.deepEqual(Array.from(got.ema!['avg/cls_token']), Array.from(want.ema!['avg/cls_token']));
});

test('a truncated newest checkpoint is skipped with a warning and the previous one loads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
  await saveCheckpoint(dir, sample(20, false));
  const newest = await saveCheckpoint(dir, sample(30, true));
  truncateSync(newest, statSync(newest).size - 5);
  const warnings: string[] = [];
  const got = (await loadLatestCheckpoint(dir, { warn: (m) => warnings.push(m) }))!;
  assert.equal(got.meta.iteration, 20);
  assert.equal(got.ema, null);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /ckpt-000000000030\.safetensors.*truncated/);
});

test('a corrupt byte that still parses is caught by the checksum; all corrupt → null', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
  const older = await saveCheckpoint(dir, sample(20, true));
  const newest = await saveCheckpoint(dir, sample(30, true));
  const buf = readFileSync(newest);
  buf[buf.length - 3] ^= 0x10;
  writeFileSync(newest, buf);
  const warnings: string[] = [];
  assert.equal((await loadLatestCheckpoint(dir, { warn: (m) => warnings.push(m) }))!.meta.iteration, 20);
  assert.match(warnings[0], /SHA-256/);
  writeFileSync(older, 'garbage');
  assert.equal(await loadLatestCheckpoint(dir, { warn: () => undefined }), null);
  assert.deepEqual(
    (await listCheckpoints(dir)).map((p) => p.slice(-30)),
    [newest.slice(-30), older.slice(-30)],
  );
});
