// The CLI loads stages/index on every invocation (a fully cached rerun included), so stage
// modules must load tfjs, onnxruntime and sharp lazily inside run(), never at top level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

test('importing the stage registry loads no tfjs / onnxruntime / sharp', async () => {
  const req = createRequire(import.meta.url);
  const heavy = (): string[] => Object.keys(req.cache).filter((p) => /node_modules[\\/](@tensorflow|onnxruntime-node|onnxruntime-common|sharp)[\\/]/.test(p));
  assert.deepEqual(heavy(), [], 'nothing heavy before the import');
  const { STAGE_KINDS } = await import('../../stages/index.js');
  assert.ok(STAGE_KINDS.some((k) => k.kind === 'command'));
  const loaded = heavy();
  assert.deepEqual(loaded.slice(0, 3), [], `stages/index.ts pulled in heavy modules at import time (first: ${loaded[0]})`);
});
