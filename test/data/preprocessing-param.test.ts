// The preprocessing convention as a stage param: how an unset param resolves, what enters the
// keys (and what does not, so existing keys such as the quickstart's stay), where it is recorded,
// and the warning when a stage reads a model trained under another convention.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { loadExperiment } from '../../engine/config/index.js';
import { buildPlan } from '../../engine/plan/index.js';
import { createRegistry } from '../../engine/registry.js';
import { initBackend, setBackendLogger } from '../../ml/backend/index.js';
import { conventionMismatch, preprocessingForModel, resolvePreprocessing, unrecordedNote } from '../../ml/data/preprocessing.js';
import { checkCard } from '../../ml/explain/model-dir.js';
import type { SaliencyMeta } from '../../stages/artifacts.js';
import { evaluateStage } from '../../stages/evaluate/index.js';
import { featuresStage } from '../../stages/features/index.js';
import { indexStage } from '../../stages/index/index.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import { trainStage } from '../../stages/train/index.js';
import { testCtx, tmp } from '../explain/helpers.js';
import { fixtureWorld, planKeys, SALIENCY_TEST_PARAMS } from '../explain/stage-helpers.js';
import { fakeInit, stageCtx, syntheticIndex, tmp as trainTmp } from '../stages/train-helpers.js';

before(() => setBackendLogger(() => {}));

test("unset, a stage takes the index's convention, else torchvision at 224 and fast at other sizes", () => {
  assert.equal(resolvePreprocessing(undefined, undefined, 224), 'torchvision');
  assert.equal(resolvePreprocessing(undefined, undefined, 64), 'fast');
  assert.equal(resolvePreprocessing(undefined, 'torchvision', 64), 'torchvision');
  assert.equal(resolvePreprocessing(undefined, 'fast', 224), 'fast');
  assert.equal(resolvePreprocessing('fast', 'torchvision', 224), 'fast');
});

test('a stage reading a model follows its card, else the index, else fast (the pixels of cards older than the conventions)', () => {
  assert.equal(preprocessingForModel(undefined, { preprocessing: 'fast' }, 'torchvision'), 'fast');
  assert.equal(preprocessingForModel(undefined, { preprocessing: 'torchvision' }, undefined), 'torchvision');
  assert.equal(preprocessingForModel(undefined, {}, undefined), 'fast');
  assert.equal(preprocessingForModel(undefined, {}, 'torchvision'), 'torchvision');
  assert.equal(preprocessingForModel('fast', { preprocessing: 'torchvision' }, undefined), 'fast');
  assert.match(
    unrecordedNote('evaluate', undefined, { input_size: 224 }, undefined)!,
    /records no preprocessing convention.*using 'fast'.*set preprocessing: torchvision/,
  );
  assert.equal(unrecordedNote('evaluate', undefined, { input_size: 224 }, 'torchvision'), null);
  assert.equal(
    unrecordedNote('evaluate', undefined, { input_size: 64 }, undefined),
    null,
    'only 224 px, where torchvision-trained weights are likely',
  );
  assert.equal(unrecordedNote('evaluate', undefined, { preprocessing: 'fast', input_size: 224 }, undefined), null);
  assert.equal(conventionMismatch('saliency', 'fast', { preprocessing: 'fast' }), null);
  assert.equal(conventionMismatch('saliency', 'fast', {}), null, 'a card that records nothing cannot be contradicted');
  assert.match(
    conventionMismatch('saliency', 'fast', { preprocessing: 'torchvision' })!,
    /'fast' convention but the model was trained with 'torchvision'/,
  );
});

test('model cards: preprocessing is optional, and must name a convention when present', () => {
  const card = {
    format: 'ca-pipe.model/1',
    arch: 'resnet-mini',
    head: 'gap',
    heads: 1,
    num_classes: 2,
    input_size: 64,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    classes: ['a', 'b'],
    weights: 'final.safetensors',
  };
  assert.equal(checkCard(card, 'm.json').preprocessing, undefined);
  assert.equal(checkCard({ ...card, preprocessing: 'torchvision' }, 'm.json').preprocessing, 'torchvision');
  assert.throws(
    () => checkCard({ ...card, preprocessing: 'pil' }, 'm.json'),
    /m\.json: field "preprocessing" must be torchvision or fast, got "pil"/,
  );
});

async function planTrain(
  trainParams: string,
  indexParams = '{ source: synthetic }',
): Promise<Record<string, { key: string | undefined; params: Record<string, unknown>; external: Record<string, string> }>> {
  const registry = createRegistry([indexStage, trainStage, featuresStage]);
  const file = join(tmp('ca-pipe-prep-keys-'), 'exp.yaml');
  writeFileSync(
    file,
    `stages:\n  data: { kind: index, params: ${indexParams} }\n  train: { kind: train, needs: [data], params: ${trainParams} }\n`,
  );
  const plan = await buildPlan(await loadExperiment(file, { registry, env: {} }), registry);
  return Object.fromEntries(
    plan.instances.map((i) => [
      i.stage,
      { key: i.planKey, params: i.material.params as Record<string, unknown>, external: i.material.external },
    ]),
  );
}

test('train keys: unset at 64 px adds nothing (old keys stay); unset at 224 keys the torchvision default; set, the param is keyed', async () => {
  const at64 = await planTrain('{ arch: resnet-mini, mode: scratch, input_size: 64 }');
  assert.ok(!('preprocessing' in at64.train!.params));
  assert.deepEqual(at64.train!.external, {});
  assert.ok(!('preprocessing' in at64.data!.params));
  const at224 = await planTrain('{ arch: resnet-mini, mode: scratch }');
  assert.deepEqual(at224.train!.external, { preprocessing_default: 'torchvision' });
  const explicit = await planTrain('{ arch: resnet-mini, mode: scratch, preprocessing: torchvision }');
  assert.equal(explicit.train!.params.preprocessing, 'torchvision');
  assert.deepEqual(explicit.train!.external, {});
  const fast = await planTrain('{ arch: resnet-mini, mode: scratch, preprocessing: fast }');
  assert.notEqual(fast.train!.key, explicit.train!.key);
  assert.notEqual(fast.train!.key, at224.train!.key);
  const indexed = await planTrain(
    '{ arch: resnet-mini, mode: scratch, input_size: 64 }',
    '{ source: synthetic, preprocessing: torchvision }',
  );
  assert.equal(indexed.data!.params.preprocessing, 'torchvision');
  assert.notEqual(indexed.data!.key, at64.data!.key);
});

test('saliency and evaluate keys: unset leaves the params as before; set, it is keyed', async () => {
  const unset = await planKeys({});
  assert.ok(!('preprocessing' in unset.sal!.params) && !('preprocessing' in unset.ev!.params));
  const set = await planKeys({ sal: '{ preprocessing: torchvision }', ev: '{ preprocessing: torchvision }' });
  assert.notEqual(set.sal!.key, unset.sal!.key);
  assert.notEqual(set.ev!.key, unset.ev!.key);
});

test('the index records its convention in dataset.json only when set', async () => {
  const root = tmp('ca-pipe-prep-index-');
  const params = {
    source: 'synthetic',
    synthetic: { classes: 2, per_class: 2, size: 16, seed: 0 },
    split: { fraction: 0.5, seed: 0 },
    verify: 'stat',
  };
  for (const preprocessing of [undefined, 'torchvision'] as const) {
    const out = join(root, String(preprocessing), 'out');
    const ctx = testCtx(
      { ...params, ...(preprocessing && { preprocessing }) } as never,
      {},
      { outDir: out, scratchDir: join(root, String(preprocessing), 'scratch') },
    );
    await indexStage.run(ctx as never);
    const meta = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
    assert.equal(meta.preprocessing, preprocessing);
  }
});

test("saliency follows the model card's convention, records it, and warns when told to use another; evaluate warns on maps of other pixels", async () => {
  const world = await fixtureWorld('ca-pipe-prep-saliency-', { classes: 2, per_class: 2 });
  const cardFile = join(world.gapModel, 'model.json');
  writeFileSync(cardFile, JSON.stringify({ ...JSON.parse(readFileSync(cardFile, 'utf8')), preprocessing: 'torchvision' }));
  const run = async (tag: string, params: object) => {
    const ctx = testCtx(
      { ...SALIENCY_TEST_PARAMS, ...params },
      { model: world.gapModel, data: world.data },
      { outDir: join(world.root, tag, 'out'), scratchDir: join(world.root, tag, 'scratch'), baseDir: world.root },
    );
    await saliencyStage.run(ctx);
    return { logs: ctx.logs, meta: JSON.parse(readFileSync(join(ctx.outDir, 'saliency.json'), 'utf8')) as SaliencyMeta };
  };
  const follow = await run('follow', {});
  assert.equal(follow.meta.preprocessing, 'torchvision');
  assert.ok(!follow.logs.some((l) => l.includes('convention')), follow.logs.join('\n'));
  const other = await run('other', { preprocessing: 'fast' });
  assert.equal(other.meta.preprocessing, 'fast');
  assert.ok(
    other.logs.some((l) => /'fast' convention but the model was trained with 'torchvision'/.test(l)),
    other.logs.join('\n'),
  );

  // Scoring those fast-pixel maps on the card's torchvision pixels: evaluate says so.
  const ev = testCtx(
    {
      protocol: 'ca-stream',
      protocol_overrides: {},
      keep_constant: ['ones', 'center', 'random'],
      localisation: 'auto',
      bootstrap: { samples: 20, seed: 0, level: 0.95 },
      batch_size: 16,
    },
    { model: world.gapModel, data: world.data, saliency: join(world.root, 'other', 'out') },
    { outDir: join(world.root, 'ev', 'out'), scratchDir: join(world.root, 'ev', 'scratch'), baseDir: world.root },
  );
  await evaluateStage.run(ev as never);
  assert.ok(
    ev.logs.some((l) => /maps were computed on 'fast' pixels but this stage scores 'torchvision' pixels/.test(l)),
    ev.logs.join('\n'),
  );
});

test('train records its convention in model.json and warns when its init was trained with another', async () => {
  await initBackend();
  const root = trainTmp('prep-train');
  const data = await syntheticIndex(join(root, 'data'), 4, 64);
  const init = await fakeInit(join(root, 'init'), 'resnet-mini', 6, 64);
  const initCard = join(init, 'model.json');
  writeFileSync(initCard, JSON.stringify({ ...JSON.parse(readFileSync(initCard, 'utf8')), preprocessing: 'torchvision' }));
  // Unset at 64 px: fast (the quickstart's case), which contradicts the init's card.
  const ctx = stageCtx(
    {
      arch: 'resnet-mini',
      head: 'ca-stream',
      mode: 'frozen',
      epochs: 1,
      batch_size: 8,
      input_size: 64,
      resize: 64,
      augment: false,
      optimizer: 'adamw',
      lr: 0.01,
      weight_decay: 0.01,
      schedule: 'constant',
      workers: 0,
      log_every: 1,
    },
    { data, init },
    join(root, 'run'),
  );
  await trainStage.run(ctx as never);
  assert.equal(JSON.parse(readFileSync(join(ctx.outDir, 'model.json'), 'utf8')).preprocessing, 'fast');
  assert.ok(
    ctx.logs.some((l) => l.startsWith('WARN') && /'fast' convention but the init model .* was trained with 'torchvision'/.test(l)),
    ctx.logs.join('\n'),
  );
});
