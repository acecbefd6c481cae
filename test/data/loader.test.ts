import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { createLoader, createLoaderPool, epochOrder, type Batch, type LoaderItem, type LoaderOptions } from '../../ml/data/loader.js';
import { loadImageTensor } from '../../ml/data/image-tensor.js';
import { withTmp } from './helpers.js';

async function makeImages(dir: string, n: number): Promise<LoaderItem[]> {
  const items: LoaderItem[] = [];
  for (let i = 0; i < n; i++) {
    const w = 30 + (i % 4) * 7;
    const h = 24 + (i % 3) * 9;
    const raw = Buffer.alloc(w * h * 3);
    for (let p = 0; p < w * h; p++) raw.set([(p * 7 + i * 31) % 256, (p * 3 + i * 17) % 256, (i * 40) % 256], p * 3);
    const path = join(dir, `img${i}.${i % 2 ? 'png' : 'jpg'}`);
    const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
    await (i % 2 ? img.png() : img.jpeg({ quality: 95 })).toFile(path);
    items.push({ id: 100 + i, path, label: i % 3 });
  }
  return items;
}

async function collect(opts: LoaderOptions): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of createLoader(opts)) out.push(b);
  return out;
}

test('epoch order: a seeded permutation, reproducible per (seed, epoch), different across epochs', () => {
  const a = epochOrder(50, 3, 1, true);
  assert.deepEqual(epochOrder(50, 3, 1, true), a);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assert.notDeepEqual(epochOrder(50, 3, 2, true), a);
  assert.notDeepEqual(epochOrder(50, 4, 1, true), a);
  assert.deepEqual(epochOrder(5, 3, 1, false), [0, 1, 2, 3, 4]);
});

test('eval batches: in order, correct shapes and labels, each slot equal to the single-image transform', async () => {
  await withTmp(async (tmp) => {
    const items = await makeImages(tmp, 7);
    const batches = await collect({ items, batchSize: 3, transform: 'eval', size: 16, workers: 0 });
    assert.deepEqual(
      batches.map((b) => b.n),
      [3, 3, 1],
    );
    assert.deepEqual(
      batches.flatMap((b) => b.ids),
      items.map((i) => i.id),
    );
    assert.deepEqual([...batches[0]!.labels], [0, 1, 2]);
    assert.equal(batches[0]!.x.length, 3 * 3 * 16 * 16);
    const single = await loadImageTensor(items[4]!.path, { transform: 'eval', size: 16 });
    assert.deepEqual(batches[1]!.x.subarray(3 * 256, 6 * 256), single.data);
    const dropped = await collect({ items, batchSize: 3, transform: 'eval', size: 16, workers: 0, dropLast: true });
    assert.equal(dropped.length, 2);
    const resumed = await collect({ items, batchSize: 3, transform: 'eval', size: 16, workers: 0, startBatch: 2 });
    assert.deepEqual(
      resumed.map((b) => b.ids),
      [[106]],
    );
  });
});

test('train epochs: worker pool and in-process give identical batches; (seed, epoch) reproduces them', async () => {
  await withTmp(async (tmp) => {
    const items = await makeImages(tmp, 10);
    const base: LoaderOptions = { items, batchSize: 4, transform: 'train', size: 20, seed: 5, epoch: 3, layout: 'NHWC' };
    const inProcess = await collect({ ...base, workers: 0 });
    const pooled = await collect({ ...base, workers: 2, prefetch: 3 });
    assert.equal(pooled.length, 3);
    assert.deepEqual(
      pooled.map((b) => b.ids),
      inProcess.map((b) => b.ids),
    );
    for (let i = 0; i < pooled.length; i++) {
      assert.ok(pooled[i]!.x instanceof Float32Array && pooled[i]!.labels instanceof Int32Array);
      assert.deepEqual(pooled[i]!.x, inProcess[i]!.x);
      assert.deepEqual(pooled[i]!.labels, inProcess[i]!.labels);
    }
    const order = inProcess.flatMap((b) => b.ids);
    assert.notDeepEqual(
      order,
      items.map((i) => i.id),
    ); // shuffled by default for training
    const nextEpoch = await collect({ ...base, epoch: 4, workers: 0 });
    assert.notDeepEqual(
      nextEpoch.flatMap((b) => b.ids),
      order,
    );
    // One pool serving two epochs in turn gives the same batches as fresh loaders.
    const pool = await createLoaderPool(2);
    try {
      const e3 = await collect({ ...base, pool });
      const e4 = await collect({ ...base, epoch: 4, pool });
      assert.deepEqual(
        e3.map((b) => b.x),
        inProcess.map((b) => b.x),
      );
      assert.deepEqual(
        e4.map((b) => b.ids),
        nextEpoch.map((b) => b.ids),
      );
      assert.deepEqual(
        e4.map((b) => b.x),
        nextEpoch.map((b) => b.x),
      );
    } finally {
      await pool.close();
    }
  });
});

test('corrupt images: on_error skip drops and lists them, fail stops naming the file', async () => {
  await withTmp(async (tmp) => {
    const items = await makeImages(tmp, 5);
    const bad = join(tmp, 'broken.jpg');
    await writeFile(bad, Buffer.from('\xff\xd8\xff garbage'));
    items.splice(2, 0, { id: 999, path: bad, label: 1 });
    for (const workers of [0, 2]) {
      const loader = createLoader({ items, batchSize: 4, transform: 'eval', size: 12, workers, onError: 'skip' });
      const batches: Batch[] = [];
      for await (const b of loader) batches.push(b);
      assert.deepEqual(
        batches.map((b) => b.n),
        [3, 2],
      );
      assert.ok(!batches.flatMap((b) => b.ids).includes(999));
      assert.equal(batches[0]!.x.length, 3 * 3 * 144);
      assert.equal(loader.skipped.length, 1);
      assert.equal(loader.skipped[0]!.id, 999);
      assert.equal(loader.skipped[0]!.path, bad);
      await assert.rejects(
        collect({ items, batchSize: 4, transform: 'eval', size: 12, workers, onError: 'fail' }),
        (e: Error) => e.message.includes(bad) && e.message.includes('item 999'),
      );
    }
  });
});

test('a missing file is an error naming it; bad loader options are rejected', async () => {
  await withTmp(async (tmp) => {
    const gone = join(tmp, 'gone.png');
    await assert.rejects(
      collect({ items: [{ id: 0, path: gone, label: 0 }], batchSize: 1, transform: 'eval', size: 8, workers: 0 }),
      (e: Error) => e.message.includes(gone),
    );
    assert.throws(() => createLoader({ items: [], batchSize: 0, transform: 'eval', size: 8 }), /batchSize must be a positive integer/);
  });
});
