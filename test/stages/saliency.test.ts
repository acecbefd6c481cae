// The saliency stage end to end on a tiny synthetic index and the fixture ResNet: outputs, every
// method's map shape, degenerate accounting, CA-only checks, shard resume and map import errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import type { SaliencyMeta } from '../../stages/artifacts.js';
import { npyBytes, testCtx } from '../explain/helpers.js';
import { fixtureWorld, SALIENCY_TEST_PARAMS } from '../explain/stage-helpers.js';

before(() => setBackendLogger(() => {}));

const BASE = SALIENCY_TEST_PARAMS;

let root = '';
let data = '';
let caModel = '';
let gapModel = '';
before(async () => {
  ({ root, data, caModel, gapModel } = await fixtureWorld('ca-pipe-saliency-', { classes: 2, per_class: 3 })); // 3 val images, layer4 grid 2×2
});

async function run(
  params: Partial<SaliencyParams>,
  model: string,
  tag: string,
  extra: { signal?: AbortSignal; onSet?: (d: number) => void; scratch?: string } = {},
) {
  const ctx = testCtx(
    { ...BASE, ...params },
    { model, data },
    { outDir: join(root, tag, 'out'), scratchDir: extra.scratch ?? join(root, 'scratch', tag), baseDir: root },
    extra.signal,
    extra.onSet,
  );
  await saliencyStage.run(ctx);
  return ctx;
}

const readMeta = (dir: string) => JSON.parse(readFileSync(join(dir, 'saliency.json'), 'utf8')) as SaliencyMeta;

test('every method runs on a CA model; maps at their resolution, in [0, 1], with overlays', async () => {
  const methods = [
    'ca-attention',
    'gradcam',
    'gradcampp',
    'scorecam',
    'xgradcam',
    'layercam',
    'eigencam',
    'ablationcam',
    'rise',
    'random',
    'center',
    'ones',
  ];
  const ctx = await run({ methods, overlays: 2, limit: 2, shard_size: 1 }, caModel, 'all');
  const meta = readMeta(ctx.outDir);
  assert.equal(meta.format, 'ca-pipe.saliency/1');
  assert.equal(meta.pooling, 'ca');
  assert.deepEqual([meta.h, meta.w], [2, 2]);
  assert.equal(meta.ids.length, 2);
  assert.equal(meta.targets.length, 2);
  assert.deepEqual(meta.shards, ['maps/shard-00000.safetensors', 'maps/shard-00001.safetensors']);
  assert.deepEqual(meta.sizes!.rise, { h: 64, w: 64 });
  assert.equal(meta.overlays.length, 2 * methods.length);
  for (const o of meta.overlays) assert.ok(existsSync(join(ctx.outDir, o.file)), o.file);
  let n = 0;
  for (const s of meta.shards) {
    const f = await readSafetensors(join(ctx.outDir, s));
    const ids = Array.from(f.tensors.get('ids')!.data as BigInt64Array, Number);
    assert.deepEqual(ids, meta.ids.slice(n, n + ids.length));
    for (const m of methods) {
      const t = f.tensors.get(`map.${m}`)!;
      const { h, w } = meta.sizes![m];
      assert.deepEqual(t.shape, [ids.length, h, w], m);
      for (const v of t.data as Float32Array) assert.ok(v >= 0 && v <= 1, `${m} value ${v}`);
    }
    n += ids.length;
  }
  // Ones is constant by design and never reported degenerate; the counts exist per method.
  assert.deepEqual(Object.keys(meta.degenerate).sort(), [...methods].sort());
  assert.deepEqual(meta.degenerate.ones, {});
});

test('ca-attention on a GAP model is a clear error', async () => {
  await assert.rejects(run({ methods: ['gradcam', 'ca-attention'] }, gapModel, 'gap-ca'), /ca-attention.*needs a CA-Stream model/);
});

test('an interrupted run reuses its finished shard; the result equals an uninterrupted run', async () => {
  const params = { methods: ['gradcam', 'random', 'ablationcam'] };
  const full = await run(params, gapModel, 'full');
  const ac = new AbortController();
  const scratch = join(root, 'scratch', 'resume');
  // Abort as soon as the first shard is done (progress.set is reported after each shard).
  await assert.rejects(
    run(params, gapModel, 'resume-1', { scratch, signal: ac.signal, onSet: (d) => d >= 2 && ac.abort(new Error('stop')) }),
    /stop/,
  );
  const first = join(scratch, 'saliency-shards', 'shard-00000.safetensors');
  assert.ok(existsSync(first));
  assert.ok(!existsSync(join(scratch, 'saliency-shards', 'shard-00001.safetensors')));
  const before = statSync(first).mtimeMs;
  const again = await run(params, gapModel, 'resume-2', { scratch });
  assert.match(again.logs.join('\n'), /reused 1 finished shard/);
  assert.equal(statSync(first).mtimeMs, before);
  for (const s of readMeta(full.outDir).shards)
    assert.ok(readFileSync(join(full.outDir, s)).equals(readFileSync(join(again.outDir, s))), s);
  assert.deepEqual(readMeta(full.outDir), readMeta(again.outDir));
});

test('import from .npy: validated per file; wrong size or a missing image names the file', async () => {
  const meta = readMeta((await run({ methods: ['center'] }, gapModel, 'ids')).outDir);
  const dir = join(root, 'npy');
  mkdirSync(dir, { recursive: true });
  meta.ids.forEach((id, i) => writeFileSync(join(dir, `${id}.npy`), npyBytes([2, 2], Float32Array.from([0, 0.5, 1, i === 1 ? 0 : 0.25]))));
  // A constant map (all 0.3) and a NaN map are imported and counted.
  writeFileSync(join(dir, `${meta.ids[1]}.npy`), npyBytes([2, 2], new Float32Array(4).fill(0.3)));
  writeFileSync(join(dir, `${meta.ids[2]}.npy`), npyBytes([2, 2], Float32Array.from([0, NaN, 1, 0])));
  const ok = await run({ methods: ['gradcam'], import: { npy_dir: 'npy' } }, gapModel, 'imp');
  const m = readMeta(ok.outDir);
  assert.equal(m.imported, true);
  assert.deepEqual(m.degenerate.gradcam, { constant: 1, 'non-finite': 1 });
  const f = await readSafetensors(join(ok.outDir, m.shards[0]));
  assert.deepEqual(Array.from(f.tensors.get('map.gradcam')!.data as Float32Array).slice(0, 4), [0, 0.5, 1, 0.25]);

  writeFileSync(join(dir, `${meta.ids[1]}.npy`), npyBytes([3, 3], new Float32Array(9)));
  await assert.rejects(
    run({ methods: ['gradcam'], import: { npy_dir: 'npy' } }, gapModel, 'imp-size'),
    (e: Error) => e.message.includes(join(dir, `${meta.ids[1]}.npy`)) && /feature grid is 2×2/.test(e.message),
  );
  writeFileSync(join(dir, `${meta.ids[1]}.npy`), npyBytes([2, 2], new Float32Array(4)));
  const { unlinkSync } = await import('node:fs');
  unlinkSync(join(dir, `${meta.ids[2]}.npy`));
  await assert.rejects(
    run({ methods: ['gradcam'], import: { npy_dir: 'npy' } }, gapModel, 'imp-miss'),
    (e: Error) => e.message.includes(join(dir, `${meta.ids[2]}.npy`)) && /missing/.test(e.message),
  );
});

test('import from safetensors (our shard layout) and float16 storage; a missing id names the file', async () => {
  const { writeMapShard } = await import('../../ml/explain/shards.js');
  const meta = readMeta((await run({ methods: ['center'] }, gapModel, 'ids-st')).outDir);
  const file = join(root, 'maps.safetensors');
  // Rows in a different order than the split: matched by id. 0.1 is not representable in float16.
  const ids = [...meta.ids].reverse();
  const data = Float32Array.from(ids.flatMap((id) => [0.1, 0.5, 1, id / 100]));
  await writeMapShard(file, { ids, targets: [], maps: { scorecam: { h: 2, w: 2, data } }, degenerate: {} }, 'float32');
  const ok = await run({ methods: ['scorecam'], import: { safetensors: 'maps.safetensors' }, dtype: 'float16' }, gapModel, 'imp-st');
  const m = readMeta(ok.outDir);
  const f = await readSafetensors(join(ok.outDir, m.shards[0]));
  const t = f.tensors.get('map.scorecam')!;
  assert.equal(t.dtype, 'F16');
  const got = Array.from(t.data as Float32Array);
  const want = m.ids.slice(0, 2).flatMap((id) => [0.1, 0.5, 1, id / 100]);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-3, `${i}: ${got[i]} vs ${want[i]}`);
  // float16 rounding really happened: 0.1 comes back as 0.0999755859375, not float32's 0.10000000149.
  assert.equal(got[0], 0.0999755859375);
  await writeMapShard(
    file,
    { ids: ids.slice(1), targets: [], maps: { scorecam: { h: 2, w: 2, data: data.slice(4) } }, degenerate: {} },
    'float32',
  );
  await assert.rejects(
    run({ methods: ['scorecam'], import: { safetensors: 'maps.safetensors' } }, gapModel, 'imp-st-miss'),
    (e: Error) => e.message.includes(file) && new RegExp(`no map for image ${ids[0]}`).test(e.message),
  );
  await writeMapShard(file, { ids, targets: [], maps: { scorecam: { h: 1, w: 4, data } }, degenerate: {} }, 'float32');
  await assert.rejects(
    run({ methods: ['scorecam'], import: { safetensors: 'maps.safetensors' } }, gapModel, 'imp-st-size'),
    (e: Error) => e.message.includes(file) && /1×4.*feature grid is 2×2/.test(e.message),
  );
});
