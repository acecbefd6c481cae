// The evaluate stage on a tiny synthetic index with masks and the fixture ResNet: output contract,
// protocol recorded, degenerate maps counted (never averaged), shard resume, protocol errors, and
// keying: a protocol knob changes the evaluate key only.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import { evaluateStage } from '../../stages/evaluate/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import type { EvaluateParams } from '../../stages/evaluate/schema.js';
import type { EvaluateSummary, SaliencyMeta } from '../../stages/artifacts.js';
import { fixtureModelDir, HAVE_FIXTURE, npyBytes, syntheticIndex, testCtx, tmp } from '../explain/helpers.js';
import { planKeys, SALIENCY_TEST_PARAMS } from '../explain/stage-helpers.js';

before(() => setBackendLogger(() => {}));

const SAL: SaliencyParams = { ...SALIENCY_TEST_PARAMS, methods: ['gradcam', 'random', 'center', 'ones'] };
const EV: EvaluateParams = {
  protocol: 'ca-stream',
  protocol_overrides: {},
  keep_constant: ['ones', 'center', 'random'],
  localisation: 'auto',
  bootstrap: { samples: 200, seed: 0, level: 0.95 },
  batch_size: 16,
};

let root = '';
let data = '';
let model = '';
let sal = '';
before(async () => {
  if (!HAVE_FIXTURE) throw new Error(`reference fixtures not found (test/fixtures/reference in the repository, or CA_PIPE_FIXTURES)`);
  root = tmp('ca-pipe-evaluate-');
  data = await syntheticIndex(root, { classes: 2, per_class: 3, size: 64 });
  model = fixtureModelDir(join(root, 'model'), 'gap', 1, 64);
  const ctx = testCtx(SAL, { model, data }, { outDir: join(root, 'sal', 'out'), scratchDir: join(root, 'scratch', 'sal'), baseDir: root });
  await saliencyStage.run(ctx);
  sal = ctx.outDir;
});

async function evaluate(
  params: Partial<EvaluateParams>,
  tag: string,
  extra: { saliency?: string; scratch?: string; signal?: AbortSignal; onSet?: (d: number) => void } = {},
) {
  const ctx = testCtx(
    { ...EV, ...params },
    { model, data, saliency: extra.saliency ?? sal },
    { outDir: join(root, tag, 'out'), scratchDir: extra.scratch ?? join(root, 'scratch', tag), baseDir: root },
    extra.signal,
    extra.onSet,
  );
  await evaluateStage.run(ctx);
  const summary = JSON.parse(readFileSync(join(ctx.outDir, 'evaluation.json'), 'utf8')) as EvaluateSummary & Record<string, any>;
  const rows = readFileSync(join(ctx.outDir, 'per_image.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const curves = JSON.parse(readFileSync(join(ctx.outDir, 'curves.json'), 'utf8'));
  return { ctx, summary, rows, curves };
}

test('outputs: protocol recorded, accuracy, per-image rows, intervals, localisation, mean curves', async () => {
  const { summary, rows, curves } = await evaluate({}, 'basic');
  assert.equal(summary.format, 'ca-pipe.evaluate/1');
  assert.equal(summary.protocol.name, 'ca-stream');
  assert.deepEqual((summary.protocol as any).insdel.step, { unit: 'rows', count: 8 });
  assert.equal(summary.pooling, 'gap');
  assert.equal(summary.accuracy.n, 3);
  assert.ok(summary.accuracy.top1 <= summary.accuracy.top5);
  assert.equal(rows.length, 3 * 4);
  for (const m of SAL.methods) {
    const s = summary.methods[m];
    for (const k of ['AD', 'AI', 'AG', 'insertion', 'deletion', 'pointing', 'energy'] as const) {
      const iv = s[k]!;
      assert.ok(iv.lo <= iv.mean + 1e-12 && iv.mean <= iv.hi + 1e-12, `${m} ${k}: ${JSON.stringify(iv)}`);
    }
    // 8·W rows per step at 64 px: 8 steps, 9 points.
    assert.equal(curves[m].insertion.length, 9);
    assert.equal(curves[m].deletion.length, 9);
  }
  // The all-ones map leaves the image untouched: no drop, no increase, no gain, for every image.
  for (const r of rows.filter((r) => r.method === 'ones')) assert.deepEqual([r.AD, r.AI, r.AG], [0, 0, 0]);
  // Its energy share is the object's share of the image: strictly between 0 and 1.
  assert.ok(summary.methods.ones.energy!.mean > 0 && summary.methods.ones.energy!.mean < 1);
  // Per-image AD mean equals the summary mean (same images).
  const ad = rows.filter((r) => r.method === 'gradcam' && r.status === 'ok').map((r) => r.AD);
  assert.ok(Math.abs(ad.reduce((a, b) => a + b, 0) / ad.length - summary.methods.gradcam.AD!.mean) < 1e-9);
  // Mean curve endpoints: insertion ends on the clean image, deletion starts on it (mean of p).
  const p = rows.filter((r) => r.method === 'random').map((r) => r.p);
  const mp = p.reduce((a, b) => a + b, 0) / p.length;
  assert.ok(Math.abs(curves.random.insertion[8] - mp) < 1e-6 && Math.abs(curves.random.deletion[0] - mp) < 1e-6);
});

test('degenerate maps (constant, NaN) are counted per method and left out of the means', async () => {
  const meta = JSON.parse(readFileSync(join(sal, 'saliency.json'), 'utf8')) as SaliencyMeta;
  const dir = join(root, 'npy');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${meta.ids[0]}.npy`), npyBytes([2, 2], Float32Array.from([0, 0.2, 1, 0.5])));
  writeFileSync(join(dir, `${meta.ids[1]}.npy`), npyBytes([2, 2], new Float32Array(4).fill(0.7)));
  writeFileSync(join(dir, `${meta.ids[2]}.npy`), npyBytes([2, 2], Float32Array.from([0, NaN, 1, 0])));
  const imp = testCtx(
    { ...SAL, methods: ['gradcam'], import: { npy_dir: 'npy' } },
    { model, data },
    { outDir: join(root, 'imp', 'out'), scratchDir: join(root, 'scratch', 'imp'), baseDir: root },
  );
  await saliencyStage.run(imp);
  const { summary, rows, ctx } = await evaluate({}, 'degenerate', { saliency: imp.outDir });
  const g = summary.methods.gradcam;
  assert.deepEqual(g.excluded, { constant: 1, 'non-finite': 1 });
  for (const k of ['AD', 'AI', 'AG', 'insertion', 'deletion'] as const) assert.equal(g[k]!.n, 1, k);
  const ok = rows.find((r) => r.id === meta.ids[0])!;
  assert.equal(g.AD!.mean, ok.AD);
  assert.deepEqual(
    rows.map((r) => r.status),
    ['ok', 'constant', 'nan'],
  );
  assert.match(ctx.logs.join('\n'), /gradcam: left out of the means: 1 constant map\(s\), 1 non-finite map\(s\)/);
  assert.deepEqual(summary.saliency_degenerate.gradcam, { constant: 1, 'non-finite': 1 });
});

test('an interrupted evaluation reuses its finished shard and ends with the same outputs', async () => {
  const full = await evaluate({}, 'ev-full');
  const scratch = join(root, 'scratch', 'ev-resume');
  const ac = new AbortController();
  await assert.rejects(
    evaluate({}, 'ev-resume-1', { scratch, signal: ac.signal, onSet: (d) => d >= 2 && ac.abort(new Error('stop')) }),
    /stop/,
  );
  const first = join(scratch, 'evaluate-shards', 'shard-00000.json');
  assert.ok(existsSync(first) && !existsSync(join(scratch, 'evaluate-shards', 'shard-00001.json')));
  const t0 = statSync(first).mtimeMs;
  const again = await evaluate({}, 'ev-resume-2', { scratch });
  assert.match(again.ctx.logs.join('\n'), /reused 1 finished shard/);
  assert.equal(statSync(first).mtimeMs, t0);
  for (const f of ['evaluation.json', 'per_image.jsonl', 'curves.json'])
    assert.ok(readFileSync(join(full.ctx.outDir, f)).equals(readFileSync(join(again.ctx.outDir, f))), f);
  // A different protocol does not reuse the scratch results of another one.
  const other = await evaluate({ protocol_overrides: { insdel: { step: { count: 16 } } } }, 'ev-resume-3', { scratch });
  assert.doesNotMatch(other.ctx.logs.join('\n'), /reused/);
  assert.equal(other.curves.gradcam.insertion.length, 5);
  assert.equal((other.summary.protocol as any).insdel.step.count, 16);
});

test('an unknown or invalid protocol override names the field', async () => {
  await assert.rejects(
    evaluate({ protocol_overrides: { insdel: { stepz: 3 } } }, 'bad1'),
    /protocol_overrides.*unknown protocol field "insdel\.stepz"/,
  );
  await assert.rejects(
    evaluate({ protocol_overrides: { insdel: { blur: { size: 4 } } } }, 'bad2'),
    /"insdel\.blur\.size": expected an odd positive integer/,
  );
});

test('a protocol knob changes the evaluate key only', async () => {
  const plan = (overrides: string, batch = 16) =>
    planKeys({ sal: '{ methods: [gradcam, ones] }', ev: `{ protocol_overrides: ${overrides}, batch_size: ${batch} }` });
  const a = await plan('{}');
  const b = await plan('{ insdel: { step: { count: 4 } } }');
  const c = await plan('{}', 64);
  for (const s of ['data', 'train', 'sal']) assert.equal(a[s].key, b[s].key, s);
  assert.notEqual(a.ev.key, b.ev.key);
  assert.deepEqual(b.ev.params.protocol_overrides, { insdel: { step: { count: 4 } } });
  // batch_size only changes speed: not part of the key.
  assert.equal(a.ev.key, c.ev.key);
});

test('without masks the boxes define the object: every energy share is at least the mask-based one', async () => {
  const { cpSync } = await import('node:fs');
  const boxData = join(root, 'index-boxes');
  cpSync(data, boxData, { recursive: true });
  const recs = readFileSync(join(boxData, 'index.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  writeFileSync(join(boxData, 'index.jsonl'), recs.map(({ mask: _m, ...r }) => JSON.stringify(r)).join('\n') + '\n');
  const ds = JSON.parse(readFileSync(join(boxData, 'dataset.json'), 'utf8'));
  writeFileSync(join(boxData, 'dataset.json'), JSON.stringify({ ...ds, masks: false }));
  const withMasks = await evaluate({}, 'loc-mask');
  const ctx = testCtx(
    { ...EV },
    { model, data: boxData, saliency: sal },
    { outDir: join(root, 'loc-box', 'out'), scratchDir: join(root, 'scratch', 'loc-box'), baseDir: root },
  );
  await evaluateStage.run(ctx);
  const boxRows = readFileSync(join(ctx.outDir, 'per_image.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  let strictly = 0;
  for (const r of withMasks.rows) {
    const b = boxRows.find((x) => x.id === r.id && x.method === r.method)!;
    if (r.energy === null) continue;
    assert.ok(b.energy >= r.energy - 1e-9, `${r.method} image ${r.id}: box ${b.energy} < mask ${r.energy}`);
    if (b.energy > r.energy + 1e-6) strictly++;
  }
  assert.ok(strictly > 0, 'boxes (a superset of the masks) give a larger share somewhere');
});
