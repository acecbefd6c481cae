// gc of the ONNX export caches: graphs unused for --cache-days go, with their sizes reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, tempDir } from './helpers.js';
import { Store } from '../../engine/store/index.js';
import { gcCacheDir } from '../../engine/maintenance/gc.js';
import { ONNX_CACHE_FILE, ONNX_DEFAULT_CACHE_DIR, ONNX_STORE_CACHE } from '../../cli/maintenance.js';

const DAY = 24 * 3600_000;
const graph = (c: string): string => `${c.repeat(64)}.onnx`;

/** A file of `size` bytes last modified `mAgo` and last read `aAgo` ms ago. */
async function put(file: string, size: number, mAgo: number, aAgo = mAgo): Promise<void> {
  await writeFile(file, Buffer.alloc(size, 1));
  await utimes(file, new Date(Date.now() - aAgo), new Date(Date.now() - mAgo));
}

test('gcCacheDir: the later of mtime and atime decides; only cache-named files are touched', async (t) => {
  const dir = await tempDir(t);
  await put(join(dir, graph('1')), 100, 10 * DAY); // unused for 10 days
  await put(join(dir, graph('2')), 30, 1 * DAY); // hit yesterday (mtime renewed on hits)
  await put(join(dir, graph('3')), 7, 10 * DAY, 2 * DAY); // old mtime, but read two days ago
  await put(join(dir, `${graph('4')}.tmp-123-456`), 5, 9 * DAY); // a killed export's leftover
  await put(join(dir, 'notes.txt'), 1, 30 * DAY); // not ours
  await put(join(dir, `${'5'.repeat(63)}.onnx`), 1, 30 * DAY); // not a digest
  const opts = { maxIdleMs: 7 * DAY, names: ONNX_CACHE_FILE };
  const dry = await gcCacheDir(dir, opts);
  assert.equal(dry.dryRun, true);
  assert.deepEqual(
    dry.removed.map((r) => r.file),
    [join(dir, graph('1')), join(dir, `${graph('4')}.tmp-123-456`)],
  );
  assert.deepEqual(
    dry.removed.map((r) => r.bytes),
    [100, 5],
  );
  assert.equal(dry.bytes, 105);
  assert.equal(dry.keptFiles, 2);
  assert.equal(dry.keptBytes, 37);
  assert.ok(dry.removed[0].idleMs >= 10 * DAY && dry.removed[0].idleMs < 10 * DAY + 60_000);
  assert.equal((await readdir(dir)).length, 6, 'dry run removes nothing');
  const real = await gcCacheDir(dir, { ...opts, force: true });
  assert.equal(real.bytes, 105);
  assert.deepEqual((await readdir(dir)).sort(), [graph('2'), graph('3'), 'notes.txt', `${'5'.repeat(63)}.onnx`].sort());
  // With 0 days every graph counts as unused; a missing dir is just empty.
  assert.equal((await gcCacheDir(dir, { ...opts, maxIdleMs: 0 })).removed.length, 2);
  assert.deepEqual((await gcCacheDir(join(dir, 'nope'), opts)).removed, []);
});

test('ca-pipe gc collects the store-wide and default ONNX caches and leaves the shared scratch cache to that pass', async (t) => {
  const dir = await tempDir(t);
  const store = await Store.open(join(dir, 'runs', '.store'));
  const shared = join(store.root, 'scratch', ONNX_STORE_CACHE);
  const def = join(dir, ONNX_DEFAULT_CACHE_DIR);
  const extra = join(dir, 'my-cache');
  for (const d of [shared, def, extra]) await mkdir(d, { recursive: true });
  await put(join(shared, graph('a')), 1000, 8 * DAY);
  await put(join(shared, graph('b')), 10, 0);
  await put(join(def, graph('c')), 200, 3 * DAY);
  await put(join(extra, graph('d')), 50, 3 * DAY);

  const dry = await cli(['gc', '--json', '--onnx-cache', 'my-cache'], dir);
  assert.equal(dry.code, 0, dry.stderr);
  const rep = JSON.parse(dry.stdout) as {
    scratch: string[];
    onnxCache: Array<{ dir: string; removed: Array<{ file: string; bytes: number }> }>;
  };
  assert.ok(!rep.scratch.includes(ONNX_STORE_CACHE), 'the shared cache is not treated as a stale scratch dir');
  const removed = Object.fromEntries(rep.onnxCache.map((c) => [c.dir, c.removed.map((r) => [r.file, r.bytes])]));
  assert.deepEqual(removed, { [shared]: [[join(shared, graph('a')), 1000]], [def]: [], [extra]: [] });

  const text = await cli(['gc', '--cache-days', '2', '--onnx-cache', 'my-cache'], dir);
  assert.match(text.stdout, /would remove: .*3 ONNX graph\(s\) \(0\.0 MB\)/);
  assert.match(text.stdout, new RegExp(`onnx +${join(def, graph('c'))} \\(0\\.0 MB, unused 3\\.0 d\\)`));
  assert.match(text.stdout, /dry run: pass --force/);

  const real = await cli(['gc', '--force', '--cache-days', '2'], dir);
  assert.equal(real.code, 0, real.stderr);
  assert.deepEqual(await readdir(shared), [graph('b')]);
  assert.deepEqual(await readdir(def), []);
  assert.deepEqual(await readdir(extra), [graph('d')], 'a cache not named with --onnx-cache is left alone');
});
