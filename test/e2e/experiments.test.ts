// The shipped experiment files are valid: `ca-pipe plan` accepts the paper's experiments with their
// data and weights paths pointed at small generated stand-ins (nothing is run), reports a missing
// environment variable with file and line, and shows the sweep's shared upstream stages once.
// Also checks experiments/tools/model-dir.mjs, the helper that wraps pretrained weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseSafetensors, writeSafetensors } from '../../ml/io/safetensors.js';
import { cli, EXPERIMENTS, type PlanJson } from './helpers.js';

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `ca-pipe-e2e-${prefix}-`));
}

/** A tiny safetensors file shaped like a torchvision state dict (conv + fc), not real weights. */
async function fakeWeights(file: string, classes: number, features: number): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const f32 = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k));
  await writeSafetensors(file, {
    'conv1.weight': { dtype: 'F32', shape: [4, 3, 1, 1], data: f32(12, 1) },
    'fc.weight': { dtype: 'F32', shape: [classes, features], data: f32(classes * features, 2) },
    'fc.bias': { dtype: 'F32', shape: [classes], data: f32(classes, 3) },
  });
}

function touch(file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, '');
}

function plan(file: string, store: string, env: NodeJS.ProcessEnv, extra: string[] = []) {
  return cli(['plan', join(EXPERIMENTS, file), '--json', '--store', join(store, 'store'), '--runs', join(store, 'runs'), ...extra], {
    env,
  });
}

function countByStage(p: PlanJson): Record<string, number> {
  const c: Record<string, number> = {};
  for (const i of p.instances) c[i.stage] = (c[i.stage] ?? 0) + 1;
  return c;
}

test('resnet50-imagenet.yaml plans against stand-in ImageNet folders, list and weights', async () => {
  const root = tmp('imagenet');
  const env = {
    IMAGENET_ROOT: join(root, 'imagenet'),
    IMAGENET_TRAIN_LIST: join(root, 'train.csv'),
    RESNET50_WEIGHTS: join(root, 'weights', 'resnet50.safetensors'),
  };
  const rows = ['n01440764/a.JPEG,0', 'n01443537/b.JPEG,1', 'n01484850/c d.JPEG,2'];
  for (const r of rows) touch(join(env.IMAGENET_ROOT, 'train', r.slice(0, r.lastIndexOf(','))));
  writeFileSync(env.IMAGENET_TRAIN_LIST, rows.join('\n') + '\n');
  mkdirSync(join(env.IMAGENET_ROOT, 'val'), { recursive: true });
  await fakeWeights(env.RESNET50_WEIGHTS, 1000, 8);

  const r = await plan('resnet50-imagenet.yaml', root, env);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout) as PlanJson;
  assert.equal(p.experiment, 'resnet50-imagenet');
  assert.equal(p.variants.length, 1);
  assert.deepEqual(Object.keys(countByStage(p)).sort(), [
    'ca',
    'evaluate_ca',
    'evaluate_gap',
    'report',
    'saliency_ca',
    'saliency_gap',
    'train_data',
    'val_data',
    'weights',
  ]);
  assert.ok(
    p.instances.every((i) => i.status !== 'cached'),
    'a fresh store has nothing cached',
  );

  // The same file without the environment: every missing variable is reported with its line.
  const bare = Object.fromEntries(Object.keys(env).map((k) => [k, undefined]));
  const r2 = await plan('resnet50-imagenet.yaml', root, bare as NodeJS.ProcessEnv);
  assert.equal(r2.code, 2, r2.stderr);
  for (const v of Object.keys(env))
    assert.match(r2.stderr, new RegExp(`resnet50-imagenet\\.yaml:\\d+:\\d+: .*environment variable ${v} is not set`));
});

test('resnet50-mit67.yaml plans against a stand-in Images folder holding the listed files', async () => {
  const root = tmp('mit67');
  const images = join(root, 'Images');
  // The index stats every listed file at plan time: create them all (empty) from the repo's lists.
  for (const list of ['MIT_train.csv', 'MIT_val.csv']) {
    for (const line of readFileSync(join(EXPERIMENTS, 'data', list), 'utf8').split('\n')) {
      if (line.trim()) touch(join(images, line.slice(0, line.lastIndexOf(','))));
    }
  }
  const env = { MIT67_ROOT: images, RESNET50_WEIGHTS: join(root, 'resnet50.safetensors') };
  await fakeWeights(env.RESNET50_WEIGHTS, 1000, 8);
  const r = await plan('resnet50-mit67.yaml', root, env);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout) as PlanJson;
  assert.deepEqual(Object.keys(countByStage(p)).sort(), [
    'ca',
    'evaluate_ca',
    'evaluate_gap',
    'gap',
    'report',
    'saliency_ca',
    'saliency_gap',
    'train_data',
    'val_data',
    'weights',
  ]);

  // A listed image that is missing is named with the list file and its line.
  const first = readFileSync(join(EXPERIMENTS, 'data', 'MIT_train.csv'), 'utf8').split('\n')[0]!;
  mkdirSync(join(root, 'elsewhere'));
  const r2 = await plan('resnet50-mit67.yaml', root, { ...env, MIT67_ROOT: join(root, 'elsewhere') });
  assert.notEqual(r2.code, 0);
  assert.ok(r2.stderr.includes('MIT_train.csv:1') && r2.stderr.includes(first.slice(0, first.lastIndexOf(','))), r2.stderr);
});

test('sweep-heads.yaml: 6 variants share one data, pretrain, taps and GAP branch', async () => {
  const root = tmp('sweep');
  const r = await plan('sweep-heads.yaml', root, {});
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout) as PlanJson;
  assert.equal(p.variants.length, 6);
  const values = p.variants.map((v) => `${v.values['ca.heads']}/${v.values['ca.lr']}`).sort();
  assert.deepEqual(values, ['1/0.003', '1/0.01', '2/0.003', '2/0.01', '4/0.003', '4/0.01']);
  assert.deepEqual(countByStage(p), {
    data: 1,
    pretrain: 1,
    taps: 1,
    saliency_gap: 1,
    evaluate_gap: 1,
    report: 1,
    ca: 6,
    saliency_ca: 6,
    evaluate_ca: 6,
  });
  // One CA instance per variant, each labelled with its values; the shared stages carry no label.
  const ca = p.instances.filter((i) => i.stage === 'ca');
  assert.deepEqual(ca.map((i) => i.alias).sort(), p.variants.map((v) => v.alias).sort());
  assert.ok(p.instances.filter((i) => i.stage === 'pretrain' || i.stage === 'taps').every((i) => i.alias === ''));
  // (That the quickstart's cached instances are reused by the sweep is checked in quickstart.test.ts.)
});

test('tools/model-dir.mjs wraps weights as a model directory, replacing the classifier on request', async () => {
  const root = tmp('model-dir');
  const weights = join(root, 'w.safetensors');
  await fakeWeights(weights, 5, 4);
  writeFileSync(join(root, 'classes.json'), JSON.stringify(['a', 'b<c']));
  const tool = join(EXPERIMENTS, 'tools', 'model-dir.mjs');
  const run = (out: string, extra: string[]) => {
    mkdirSync(out, { recursive: true });
    return spawnSync(process.execPath, [tool, '--weights', weights, '--arch', 'resnet50', '--out', out, ...extra], { encoding: 'utf8' });
  };

  const same = join(root, 'same');
  const r1 = run(same, ['--classes', join(root, 'classes.json')]);
  assert.equal(r1.status, 0, r1.stderr);
  assert.ok(readFileSync(join(same, 'final.safetensors')).equals(readFileSync(weights)), 'unchanged classifier: a byte-identical copy');
  const card = JSON.parse(readFileSync(join(same, 'model.json'), 'utf8'));
  assert.equal(card.format, 'ca-pipe.model/1');
  assert.equal(card.head, 'gap');
  assert.equal(card.num_classes, 5);
  assert.equal(card.resize, 256);
  assert.equal(card.preprocessing, 'torchvision', 'pretrained torchvision weights: torchvision pixels by default');
  assert.deepEqual(card.classes, ['a', 'b<c', 'class_2', 'class_3', 'class_4']);

  const fresh = join(root, 'fresh');
  const r2 = run(fresh, ['--num-classes', '3', '--input-size', '64', '--seed', '7']);
  assert.equal(r2.status, 0, r2.stderr);
  const before = parseSafetensors(readFileSync(weights)).tensors;
  const after = parseSafetensors(readFileSync(join(fresh, 'final.safetensors'))).tensors;
  assert.deepEqual(after.get('fc.weight')!.shape, [3, 4]);
  assert.deepEqual(after.get('fc.bias')!.shape, [3]);
  const bound = 1 / Math.sqrt(4);
  const w = after.get('fc.weight')!.data as Float32Array;
  assert.ok(w.every((x) => Math.abs(x) <= bound) && new Set(w).size > 1, 'fresh fc ~ U(-1/√in, 1/√in)');
  assert.deepEqual([...(after.get('conv1.weight')!.data as Float32Array)], [...(before.get('conv1.weight')!.data as Float32Array)]);
  const card2 = JSON.parse(readFileSync(join(fresh, 'model.json'), 'utf8'));
  assert.equal(card2.num_classes, 3);
  assert.equal(card2.input_size, 64);
  assert.equal(card2.resize, Math.floor(64 / 0.875));

  // Same seed, same classifier: the stage's output is reproducible.
  const again = join(root, 'again');
  assert.equal(run(again, ['--num-classes', '3', '--input-size', '64', '--seed', '7']).status, 0);
  assert.ok(readFileSync(join(again, 'final.safetensors')).equals(readFileSync(join(fresh, 'final.safetensors'))));

  const bad = run(join(root, 'bad'), ['--num-classes', 'x']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--num-classes must be a positive integer/);
});

test('convnext-base-imagenet.yaml plans against stand-in ImageNet folders, list and weights', async () => {
  const root = tmp('convnext');
  const env = {
    IMAGENET_ROOT: join(root, 'imagenet'),
    IMAGENET_TRAIN_LIST: join(root, 'train.csv'),
    CONVNEXT_BASE_WEIGHTS: join(root, 'weights', 'convnext-base.safetensors'),
  };
  const rows = ['n01440764/a.JPEG,0', 'n01443537/b.JPEG,1'];
  for (const r of rows) touch(join(env.IMAGENET_ROOT, 'train', r.slice(0, r.lastIndexOf(','))));
  writeFileSync(env.IMAGENET_TRAIN_LIST, rows.join('\n') + '\n');
  mkdirSync(join(env.IMAGENET_ROOT, 'val'), { recursive: true });
  mkdirSync(dirname(env.CONVNEXT_BASE_WEIGHTS), { recursive: true });
  const f32 = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(i));
  await writeSafetensors(env.CONVNEXT_BASE_WEIGHTS, {
    'features.0.0.weight': { dtype: 'F32', shape: [4, 3, 1, 1], data: f32(12) },
    'classifier.2.weight': { dtype: 'F32', shape: [1000, 8], data: f32(8000) },
    'classifier.2.bias': { dtype: 'F32', shape: [1000], data: f32(1000) },
  });
  const r = await plan('convnext-base-imagenet.yaml', root, env);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout) as PlanJson;
  assert.equal(p.experiment, 'convnext-base-imagenet');
  assert.deepEqual(Object.keys(countByStage(p)).sort(), [
    'ca',
    'evaluate_ca',
    'evaluate_gap',
    'report',
    'saliency_ca',
    'saliency_gap',
    'train_data',
    'val_data',
    'weights',
  ]);
  // The header carries the paper's ConvNeXt-B numbers.
  const text = readFileSync(join(EXPERIMENTS, 'convnext-base-imagenet.yaml'), 'utf8');
  for (const n of ['83.72', '83.51', '33.72', '19.45', '2.43', '13.96', '15.25', '32.89', '52.85', '86.38', '29.57', '45.29'])
    assert.ok(text.includes(n), n);
  const bare = Object.fromEntries(Object.keys(env).map((k) => [k, undefined]));
  const r2 = await plan('convnext-base-imagenet.yaml', root, bare as NodeJS.ProcessEnv);
  assert.equal(r2.code, 2, r2.stderr);
  assert.match(r2.stderr, /convnext-base-imagenet\.yaml:\d+:\d+: .*environment variable CONVNEXT_BASE_WEIGHTS is not set/);
});

test('tools/model-dir.mjs: every family, --head for CA-Stream checkpoints, unknown flags rejected', async () => {
  const root = tmp('model-dir-families');
  const tool = join(EXPERIMENTS, 'tools', 'model-dir.mjs');
  const { fixturesDir } = await import('../ml/fixtures.js');
  const { readModelDir } = await import('../../ml/explain/model-dir.js');
  const { checkWeights } = await import('../../ml/onnx/weights.js');
  const run = (out: string, args: string[]) => {
    mkdirSync(out, { recursive: true });
    return spawnSync(process.execPath, [tool, '--out', out, ...args], { encoding: 'utf8' });
  };
  for (const arch of ['convnext-mini', 'efficientnet-mini']) {
    const weights = join(fixturesDir(), `${arch}.weights.safetensors`);
    const out = join(root, arch);
    const r = run(out, ['--weights', weights, '--arch', arch, '--head', 'ca-stream', '--input-size', '64', '--resize', '64']);
    assert.equal(r.status, 0, r.stderr);
    const m = await readModelDir(out);
    assert.equal(m.card.head, 'ca-stream');
    assert.equal(m.card.num_classes, 10);
    assert.deepEqual([m.feature.K, m.feature.h], [arch === 'convnext-mini' ? 128 : 640, 2]);
    // A strict check against the family's table: the directory loads as a CA-Stream model.
    assert.ok(checkWeights(m.weights, m.arch, 'ca-stream', 10, out).has('cls_stream.0.to_out.1.weight'));
    // A fresh classifier replaces the family's last Linear only.
    const fresh = join(root, `${arch}-fresh`);
    assert.equal(run(fresh, ['--weights', weights, '--arch', arch, '--num-classes', '3']).status, 0);
    const lin = arch === 'convnext-mini' ? 'classifier.2' : 'classifier.1';
    const t = parseSafetensors(readFileSync(join(fresh, 'final.safetensors'))).tensors;
    assert.deepEqual(t.get(`${lin}.weight`)!.shape.slice(0, 1), [3]);
    if (arch === 'convnext-mini') assert.deepEqual(t.get('classifier.0.weight')!.shape, [128], 'the classifier LayerNorm is kept');
  }
  const plain = join(root, 'plain.safetensors');
  await fakeWeights(plain, 5, 4);
  const noCa = run(join(root, 'no-ca'), ['--weights', plain, '--arch', 'resnet50', '--head', 'ca-stream']);
  assert.equal(noCa.status, 2);
  assert.match(noCa.stderr, /needs a CA-Stream checkpoint, but there is no cls_token/);
  const unknown = run(join(root, 'unknown'), ['--weights', plain, '--arch', 'resnet50', '--num-clases', '3']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown flag "--num-clases" \(known: .*--num-classes/);
  const family = run(join(root, 'family'), ['--weights', plain, '--arch', 'vit_b_16']);
  assert.equal(family.status, 2);
  assert.match(family.stderr, /--arch "vit_b_16" is not a ResNet, ResNeXt, Wide ResNet, ConvNeXt or EfficientNet name/);
});
