// The features kind split over its shards (issue 15): part 1 of 2 computes train's shard only,
// part 2 val's, neither writes an output; the merge then reuses both and writes byte for byte what
// a single run writes.
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { featuresStage } from '../../stages/features/index.js';
import { initTestBackend } from '../support/backend.js';
import { fakeInit, sha256File, stageCtx, syntheticIndex, tmp } from './train-helpers.js';

const PARAMS = { arch: 'resnet-mini', input_size: 32, resize: 32, dtype: 'float16', workers: 0, taps: 'layer4', engine: 'onnx' };

function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true }))
    if (e.isFile()) out[relative(dir, join(e.parentPath, e.name))] = sha256File(join(e.parentPath, e.name));
  return out;
}

test('features: two parts then the merge give the single run\u2019s bytes; each part computes only its shards', async () => {
  await initTestBackend();
  const root = tmp('features-split');
  const data = await syntheticIndex(join(root, 'data'), 4, 32, 2);
  const init = await fakeInit(join(root, 'init'), 'resnet-mini', 2, 32);
  const single = stageCtx(PARAMS, { data, init }, join(root, 'single'));
  await featuresStage.run(single as never);

  const split = stageCtx(PARAMS, { data, init }, join(root, 'split'));
  const work = join(split.scratchDir, 'features');
  // 6 train + 2 val images, shards of 256: shard 0 is train's, shard 1 val's.
  await featuresStage.split!.runPart(split as never, { index: 0, count: 2 });
  assert.deepEqual(
    readdirSync(work).filter((n) => n.endsWith('.safetensors')),
    ['train-00000.safetensors'],
  );
  await featuresStage.split!.runPart(split as never, { index: 1, count: 2 });
  assert.deepEqual(
    readdirSync(work)
      .filter((n) => n.endsWith('.safetensors'))
      .sort(),
    ['train-00000.safetensors', 'val-00000.safetensors'],
  );
  assert.deepEqual(readdirSync(split.outDir), [], 'a part writes no output');
  const before = statSync(join(work, 'val-00000.safetensors')).mtimeMs;
  await featuresStage.run(split as never);
  assert.equal(statSync(join(work, 'val-00000.safetensors')).mtimeMs, before, 'the merge reused the shard');
  assert.deepEqual(files(split.outDir), files(single.outDir));
});
