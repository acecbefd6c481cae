// The saliency stage's image selection end to end: `limit` and `overlays` take a seeded,
// class-balanced subset (not the first, one-class entries of the split), the same for a GAP and a
// CA model; the seed is in the key; and evaluate pairs maps with images by id, whatever order the
// saliency shards store them in.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { readIndex } from '../../ml/data/index-file.js';
import { readMapShard, writeMapShard } from '../../ml/explain/shards.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import { evaluateStage } from '../../stages/evaluate/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import type { EvaluateParams } from '../../stages/evaluate/schema.js';
import type { SaliencyMeta } from '../../stages/artifacts.js';
import { testCtx } from '../explain/helpers.js';
import { fixtureWorld, planKeys, SALIENCY_TEST_PARAMS } from '../explain/stage-helpers.js';

before(() => setBackendLogger(() => {}));

const BASE: SaliencyParams = { ...SALIENCY_TEST_PARAMS, batch_size: 8 };

let root = '';
let data = '';
let gapModel = '';
let caModel = '';
let labelOf: (id: number) => number = () => -1;
let val: number[] = [];
before(async () => {
  ({ root, data, gapModel, caModel } = await fixtureWorld('ca-pipe-subset-', { classes: 3, per_class: 4 }));
  const index = await readIndex(data);
  const labels = new Map(index.records.map((r) => [r.id, r.label]));
  labelOf = (id) => labels.get(id)!;
  val = index.splits.val;
});

let runs = 0;
async function saliency(params: Partial<SaliencyParams>, model = gapModel): Promise<{ dir: string; meta: SaliencyMeta }> {
  const tag = `run-${runs++}`;
  const ctx = testCtx(
    { ...BASE, ...params },
    { model, data },
    { outDir: join(root, tag, 'out'), scratchDir: join(root, tag, 'scratch'), baseDir: root },
  );
  await saliencyStage.run(ctx);
  return { dir: ctx.outDir, meta: JSON.parse(readFileSync(join(ctx.outDir, 'saliency.json'), 'utf8')) as SaliencyMeta };
}

const classesOf = (ids: number[]) => new Set(ids.map((id) => labelOf(id)));

test('the split is class-ordered, so this is a real test: its first images are one class', () => {
  const valClasses = classesOf(val);
  assert.equal(valClasses.size, 3, `val split ${JSON.stringify(val)} should hold all 3 classes`);
  const firstClassCount = val.filter((id) => labelOf(id) === labelOf(val[0])).length;
  assert.ok(firstClassCount >= 2, 'the first two images of the split share a class');
  assert.equal(labelOf(val[0]), labelOf(val[1]));
});

test('limit and overlays take a class-balanced subset; overlays are the first explained images, classes interleaved', async () => {
  const { dir, meta } = await saliency({ limit: 3, overlays: 2 });
  assert.equal(meta.ids.length, 3);
  for (const id of meta.ids) assert.ok(val.includes(id), `id ${id} is in the val split`);
  assert.equal(classesOf(meta.ids).size, 3, `ids ${meta.ids} cover every class`);
  const shown = [...new Set(meta.overlays.map((o) => o.id))];
  assert.deepEqual(shown, meta.ids.slice(0, 2), 'overlays ⊆ explained, in selection order');
  assert.equal(classesOf(shown).size, 2, 'two overlay images, two classes');
  for (const o of meta.overlays) assert.ok(existsSync(join(dir, o.file)), o.file);
  // The stored shards hold exactly the explained ids, in the same order.
  const stored: number[] = [];
  for (const s of meta.shards) stored.push(...(await readMapShard(join(dir, s))).ids);
  assert.deepEqual(stored, meta.ids);
  // Without a limit every val image is explained, and the order still interleaves classes.
  const all = (await saliency({})).meta.ids;
  assert.deepEqual(
    [...all].sort((a, b) => a - b),
    [...val].sort((a, b) => a - b),
  );
  assert.equal(classesOf(all.slice(0, 3)).size, 3);
  assert.deepEqual(all.slice(0, 3), meta.ids, 'a limit is a prefix of the unlimited order');
});

test('the same seed picks the same images for a GAP and a CA model; other seeds pick other orders', async () => {
  const gap = (await saliency({ limit: 4 })).meta.ids;
  assert.deepEqual((await saliency({ limit: 4 })).meta.ids, gap);
  assert.deepEqual((await saliency({ limit: 4 }, caModel)).meta.ids, gap);
  const others = [];
  for (const seed of [1, 2, 3]) others.push((await saliency({ limit: 4, seed })).meta.ids);
  assert.ok(
    others.some((ids) => JSON.stringify(ids) !== JSON.stringify(gap)),
    `seeds 1–3 all gave ${gap}`,
  );
  for (const ids of others) assert.equal(classesOf(ids.slice(0, 3)).size, 3);
});

test('changing the seed changes the saliency key (and what depends on it), nothing upstream', async () => {
  const plan = async (sal: string) => Object.fromEntries(Object.entries(await planKeys({ sal })).map(([k, v]) => [k, v.key]));
  const a = await plan('{ limit: 8 }');
  const b = await plan('{ limit: 8, seed: 1 }');
  const a2 = await plan('{ limit: 8, seed: 0 }');
  assert.equal(a.sal, a2.sal, 'seed defaults to 0');
  for (const s of ['data', 'train']) assert.equal(a[s], b[s], s);
  assert.notEqual(a.sal, b.sal);
  assert.notEqual(a.ev, b.ev);
});

test('evaluate pairs maps with images by id: shards stored in another order give the same per-image scores', async () => {
  const methods = ['gradcam', 'random'];
  const { dir, meta } = await saliency({ methods });
  // The same maps, stored in reversed order and re-cut into shards of 3.
  const maps: Record<number, Record<string, Float32Array>> = {};
  const target = new Map<number, number>();
  for (const s of meta.shards) {
    const shard = await readMapShard(join(dir, s), methods);
    shard.ids.forEach((id, i) => {
      target.set(id, shard.targets[i]);
      maps[id] = Object.fromEntries(methods.map((m) => [m, shard.maps[m].data.slice(i * meta.h * meta.w, (i + 1) * meta.h * meta.w)]));
    });
  }
  const moved = join(root, 'moved');
  cpSync(dir, moved, { recursive: true });
  rmSync(join(moved, 'maps'), { recursive: true });
  const ids = [...meta.ids].reverse();
  const shards: string[] = [];
  for (let s = 0; s * 3 < ids.length; s++) {
    const part = ids.slice(s * 3, s * 3 + 3);
    const name = `maps/shard-${String(s).padStart(5, '0')}.safetensors`;
    const hw = meta.h * meta.w;
    const shardMaps = Object.fromEntries(
      methods.map((m) => {
        const d = new Float32Array(part.length * hw);
        part.forEach((id, i) => d.set(maps[id][m], i * hw));
        return [m, { h: meta.h, w: meta.w, data: d }];
      }),
    );
    await writeMapShard(
      join(moved, name),
      { ids: part, targets: part.map((id) => target.get(id)!), maps: shardMaps, degenerate: {} },
      'float32',
    );
    shards.push(name);
  }
  writeFileSync(join(moved, 'saliency.json'), JSON.stringify({ ...meta, ids, targets: ids.map((id) => target.get(id)!), shards }));

  const ep: EvaluateParams = {
    protocol: 'ca-stream',
    protocol_overrides: {},
    keep_constant: ['random'],
    localisation: 'auto',
    bootstrap: { samples: 50, seed: 0, level: 0.95 },
    batch_size: 16,
  };
  const rowsOf = async (sal: string, tag: string) => {
    const ctx = testCtx(
      ep,
      { model: gapModel, data, saliency: sal },
      { outDir: join(root, tag, 'out'), scratchDir: join(root, tag, 'scratch'), baseDir: root },
    );
    await evaluateStage.run(ctx);
    const rows = readFileSync(join(ctx.outDir, 'per_image.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    return new Map(rows.map((r) => [`${r.id}:${r.method}`, r]));
  };
  const before = await rowsOf(dir, 'ev-orig');
  const after = await rowsOf(moved, 'ev-moved');
  assert.equal(before.size, meta.ids.length * methods.length);
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
  // The per-image scores differ between images, so a positional mix-up could not pass unnoticed.
  assert.ok(new Set([...before.values()].filter((r) => r.method === 'gradcam').map((r) => r.deletion.toFixed(6))).size > 1);
  for (const [k, r] of before) {
    const q = after.get(k)!;
    for (const f of ['AD', 'AG', 'AI', 'insertion', 'deletion', 'energy', 'pointing', 'p', 'o'])
      assert.ok(r[f] === q[f] || Math.abs(r[f] - q[f]) < 1e-5, `${k} ${f}: ${r[f]} vs ${q[f]}`);
  }
});
