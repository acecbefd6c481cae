// The export cache renews a graph's mtime on every hit, which is what `ca-pipe gc --cache-days`
// ages graphs by; and the CLI's idea of the cache's place and file names matches ml/onnx's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat, utimes } from 'node:fs/promises';
import { basename } from 'node:path';
import { getArch } from '../../ml/models/arch.js';
import { DEFAULT_CACHE_DIR, exportCached } from '../../ml/onnx/runtime.js';
import { expectedWeights, type WeightMap } from '../../ml/onnx/weights.js';
import { gcCacheDir } from '../../engine/maintenance/gc.js';
import { ONNX_CACHE_FILE, ONNX_DEFAULT_CACHE_DIR } from '../../cli/maintenance.js';
import { tempDir } from '../engine/helpers.js';

const DAY = 24 * 3600_000;
const mini = getArch('resnet-mini');

/** Deterministic weights of the expected names and shapes (values do not matter here). */
function weights(): WeightMap {
  const out: WeightMap = new Map();
  let i = 0;
  for (const [k, shape] of expectedWeights(mini, 'gap', 3)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out.set(k, { shape, data: Float32Array.from({ length: n }, () => (k.endsWith('running_var') ? 1 : ((i++ % 7) - 3) / 10)) });
  }
  return out;
}

test("a cache hit renews the graph's mtime, so gc keeps graphs in use however old", async (t) => {
  const dir = await tempDir(t);
  const w = weights();
  const first = await exportCached({ arch: mini, head: 'gap', numClasses: 3, weights: w, cacheDir: dir });
  assert.equal(first.hit, false);
  assert.match(basename(first.path), ONNX_CACHE_FILE, 'the CLI recognises the cache file names');
  const old = new Date(Date.now() - 30 * DAY);
  await utimes(first.path, old, old);
  assert.equal(
    (await gcCacheDir(dir, { maxIdleMs: 7 * DAY, names: ONNX_CACHE_FILE })).removed.length,
    1,
    'untouched for 30 days: removable',
  );
  const before = Date.now();
  const second = await exportCached({ arch: mini, head: 'gap', numClasses: 3, weights: w, cacheDir: dir });
  assert.equal(second.hit, true);
  assert.ok((await stat(second.path)).mtimeMs >= before - 1000, 'mtime renewed by the hit');
  assert.deepEqual((await gcCacheDir(dir, { maxIdleMs: 7 * DAY, names: ONNX_CACHE_FILE, force: true })).removed, []);
  assert.deepEqual(await readdir(dir), [basename(first.path)]);
});

test('the CLI collects the default cache directory ml/onnx uses', () => {
  assert.equal(ONNX_DEFAULT_CACHE_DIR, DEFAULT_CACHE_DIR);
});
