// Issue #16's methods through the saliency stage end to end, on a tiny random-weight model of each
// backbone family, pooled with GAP and with the CA stream: every map is stored at the feature grid,
// in [0, 1], and the conventions chosen are recorded in saliency.json and in the shards.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import type { SaliencyMeta } from '../../stages/artifacts.js';
import { randomModelDir, syntheticIndex, testCtx, tmp } from '../explain/helpers.js';
import { planKeys, SALIENCY_TEST_PARAMS } from '../explain/stage-helpers.js';
import { initTestBackend } from '../support/backend.js';

/** The methods issue #16 adds (each must run through both heads on every family). */
export const NEW_METHODS = [
  'hirescam',
  'gradcam-elementwise',
  'eigengradcam',
  'fem',
  'kpcacam',
  'shapleycam',
  'finercam',
  'fullgrad',
  'opticam',
];

const FAMILIES = ['resnet-basic-1111', 'convnext-mini', 'efficientnet-mini'];
const SIZE = 64;
const CLASSES = 3;

let root = '';
let data = '';
before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
  root = tmp('ca-pipe-sal-families-');
  data = await syntheticIndex(root, { classes: CLASSES, per_class: 2, size: SIZE });
});

function modelDir(arch: string, head: 'gap' | 'ca-stream' | 'ca-final'): Promise<string> {
  return randomModelDir(join(root, `${arch}-${head}`), arch, head, CLASSES, SIZE);
}

async function run(params: Partial<SaliencyParams>, model: string, tag: string) {
  const ctx = testCtx(
    { ...SALIENCY_TEST_PARAMS, ...params },
    { model, data },
    { outDir: join(root, tag, 'out'), scratchDir: join(root, tag, 'scratch'), baseDir: root },
  );
  await saliencyStage.run(ctx);
  return { ctx, meta: JSON.parse(readFileSync(join(ctx.outDir, 'saliency.json'), 'utf8')) as SaliencyMeta };
}

const CASES = [
  ...FAMILIES.flatMap((arch) => (['gap', 'ca-stream'] as const).map((head) => [arch, head] as const)),
  ['convnext-mini', 'ca-final'] as const, // the original's CLS_KV block
];
for (const [arch, head] of CASES) {
  test(`${arch} ${head}: the new methods run through the saliency stage`, async () => {
    // Opti-CAM with 5 steps keeps this fast; its defaults are tested in opticam.test.ts.
    const { ctx, meta } = await run(
      { methods: NEW_METHODS, limit: 2, opticam: { steps: 5 }, target: 'pred' },
      await modelDir(arch, head),
      `${arch}-${head}`,
    );
    assert.equal(meta.pooling, head === 'gap' ? 'gap' : 'ca');
    assert.equal(meta.conventions, undefined, 'none of these methods offers a convention');
    const f = await readSafetensors(join(ctx.outDir, meta.shards[0]));
    for (const m of NEW_METHODS) {
      const t = f.tensors.get(`map.${m}`)!;
      assert.deepEqual(t.shape.slice(1), m === 'fullgrad' || m === 'opticam' ? [SIZE, SIZE] : [meta.h, meta.w], m);
      for (const v of t.data as Float32Array) assert.ok(v >= 0 && v <= 1, `${m} value ${v}`);
      // Some image carries a ranking, except where none can: FEM on a 2×2 grid (no position is 2σ
      // above the mean of 4), and KPCA-CAM on the random EfficientNet, whose last features are
      // ~1e-12: tanh(γ⟨x, y⟩ + 1) is tanh 1 in float64, the centred kernel is 0 (as in scikit-learn).
      const bad = Object.values(meta.degenerate[m]).reduce((a, b) => a + b, 0);
      const none = m === 'fem' || (m === 'kpcacam' && arch.startsWith('efficientnet'));
      if (none) assert.equal(bad, meta.ids.length, m);
      else assert.ok(bad < meta.ids.length, `${m}: ${bad} degenerate maps of ${meta.ids.length} (${JSON.stringify(meta.degenerate)})`);
    }
  });
}

test('conventions are recorded in saliency.json and the shards; unset means ca-stream; a stray one is an error', async () => {
  const model = await modelDir('resnet-basic-1111', 'gap');
  const methods = ['gradcampp', 'scorecam', 'gradcam'];
  const def = await run({ methods, limit: 1 }, model, 'conv-default');
  assert.deepEqual(def.meta.conventions, { gradcampp: 'ca-stream', scorecam: 'ca-stream' });
  const pgc = await run(
    { methods, limit: 1, convention: { gradcampp: 'pytorch-grad-cam', scorecam: 'pytorch-grad-cam' } },
    model,
    'conv-pgc',
  );
  assert.deepEqual(pgc.meta.conventions, { gradcampp: 'pytorch-grad-cam', scorecam: 'pytorch-grad-cam' });
  const shard = await readSafetensors(join(pgc.ctx.outDir, pgc.meta.shards[0]));
  assert.deepEqual(JSON.parse(shard.metadata.conventions), { gradcampp: 'pytorch-grad-cam', scorecam: 'pytorch-grad-cam' });
  // Grad-CAM does not depend on the convention; Score-CAM's weights do.
  const a = await readSafetensors(join(def.ctx.outDir, def.meta.shards[0]));
  assert.deepEqual(
    Array.from(a.tensors.get('map.gradcam')!.data as Float32Array),
    Array.from(shard.tensors.get('map.gradcam')!.data as Float32Array),
  );
  await assert.rejects(
    run({ methods: ['gradcam'], convention: { scorecam: 'pytorch-grad-cam' } }, model, 'conv-stray'),
    /convention\.scorecam is set but "scorecam" is not among the methods/,
  );
});

test('an unset convention leaves the cache key as before; setting one changes it', async () => {
  const plain = await planKeys({ sal: '{}' });
  const pgc = await planKeys({ sal: '{ methods: [scorecam], convention: { scorecam: pytorch-grad-cam } }' });
  const same = await planKeys({ sal: '{ methods: [scorecam] }' });
  assert.equal('convention' in plain.sal.params, false, 'no default is filled in');
  assert.notEqual(pgc.sal.key, same.sal.key);
});

test('a method’s maps do not depend on which other methods are listed (Grad-CAM with and without ShapleyCAM)', async () => {
  const model = await modelDir('resnet-basic-1111', 'ca-stream');
  const alone = await run({ methods: ['gradcam'], limit: 2 }, model, 'indep-1');
  const both = await run({ methods: ['shapleycam', 'gradcam'], limit: 2 }, model, 'indep-2');
  const map = async (r: typeof alone) =>
    Array.from((await readSafetensors(join(r.ctx.outDir, r.meta.shards[0]))).tensors.get('map.gradcam')!.data as Float32Array);
  assert.deepEqual(await map(both), await map(alone));
  await assert.rejects(
    run({ methods: ['gradcam'], opticam: { steps: 3 } }, model, 'opti-stray'),
    /opticam settings are given but "opticam" is not among/,
  );
});
