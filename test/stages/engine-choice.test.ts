// Every frozen job runs on either engine and records which one and why: saliency and evaluate on
// the fixture ResNet, frozen training and the features stage on a small backbone. The two engines'
// outputs agree (they differ only by float rounding), and the `engine` param is part of the key
// only when given, so experiments written before it keep their keys.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { setProviderLogger } from '../../ml/onnx/provider.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import { evaluateStage } from '../../stages/evaluate/index.js';
import { trainStage } from '../../stages/train/index.js';
import { featuresStage } from '../../stages/features/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import { EVALUATE_FILES } from '../../stages/artifacts.js';
import { testCtx } from '../explain/helpers.js';
import { fixtureWorld, planKeys, SALIENCY_TEST_PARAMS } from '../explain/stage-helpers.js';
import { fakeInit, stageCtx, syntheticIndex, tmp } from './train-helpers.js';
import { initTestBackend } from '../support/backend.js';

let root = '';
let data = '';
let caModel = '';
let backend = '';

before(async () => {
  setBackendLogger(() => {});
  setProviderLogger(() => {});
  backend = (await initTestBackend()).name;
  ({ root, data, caModel } = await fixtureWorld('ca-pipe-engine-', { classes: 2, per_class: 3 }));
  process.env.CA_PIPE_CALIBRATION_DIR = join(root, 'calibration');
});

const EVAL = {
  protocol: 'ca-stream',
  protocol_overrides: {},
  keep_constant: [],
  localisation: 'off',
  bootstrap: { samples: 20, seed: 0, level: 0.95 },
  batch_size: 8,
};

async function saliency(engine: 'onnx' | 'tfjs' | undefined, tag: string) {
  const params: SaliencyParams = { ...SALIENCY_TEST_PARAMS, methods: ['gradcam', 'scorecam'], ...(engine && { engine }) };
  const ctx = testCtx(
    params,
    { model: caModel, data },
    { outDir: join(root, tag, 'out'), scratchDir: join(root, 'scratch', tag), baseDir: root },
  );
  await saliencyStage.run(ctx);
  return ctx;
}

async function maps(dir: string, method: string): Promise<Float32Array> {
  const f = await readSafetensors(join(dir, 'maps', 'shard-00000.safetensors'));
  return f.tensors.get(`map.${method}`)!.data as Float32Array;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('saliency and evaluate with engine: tfjs and engine: onnx both run, record the engine, and agree', async () => {
  const onnx = await saliency('onnx', 'sal-onnx');
  const tfjs = await saliency('tfjs', 'sal-tfjs');
  for (const [ctx, engine] of [
    [onnx, 'onnx'],
    [tfjs, 'tfjs'],
  ] as const) {
    const c = ctx.provenance.engine_choice as { engine: string; setting: string; reason: string; ort_provider: string };
    assert.equal(c.engine, engine);
    assert.equal(c.setting, engine);
    assert.equal(c.reason, `engine: ${engine} in the stage params`);
    assert.equal(c.ort_provider, 'cpu');
    assert.equal(ctx.provenance.engine, engine === 'onnx' ? 'onnxruntime' : 'tfjs');
    assert.ok(
      ctx.logs.some((l) => l.includes(`saliency: engine ${engine} (`)),
      ctx.logs.join('\n'),
    );
  }
  // Score-CAM's masked forwards and Grad-CAM's taps both went through the engine under test.
  for (const m of ['gradcam', 'scorecam']) {
    const d = maxDiff(await maps(tfjs.outDir, m), await maps(onnx.outDir, m));
    assert.ok(d < 1e-3, `${m}: maps differ by ${d}`);
  }
  const summaries: Record<string, { accuracy: { top1: number }; methods: Record<string, { AD: { mean: number } }> }> = {};
  for (const engine of ['onnx', 'tfjs'] as const) {
    const ctx = testCtx(
      { ...EVAL, engine },
      { model: caModel, data, saliency: onnx.outDir },
      { outDir: join(root, `ev-${engine}`, 'out'), scratchDir: join(root, 'scratch', `ev-${engine}`) },
    );
    await evaluateStage.run(ctx as never);
    assert.equal((ctx.provenance.engine_choice as { engine: string }).engine, engine);
    summaries[engine] = JSON.parse(readFileSync(join(ctx.outDir, EVALUATE_FILES.summary), 'utf8'));
  }
  assert.equal(summaries.tfjs.accuracy.top1, summaries.onnx.accuracy.top1);
  const ad = (e: string) => summaries[e].methods.gradcam.AD.mean;
  assert.ok(Math.abs(ad('tfjs') - ad('onnx')) < 1e-3, `AD ${ad('tfjs')} vs ${ad('onnx')}`);
});

test('auto: chosen by the rule for the backend under test, with the same choice on a rerun', async () => {
  const a = await saliency(undefined, 'sal-auto-1');
  const b = await saliency(undefined, 'sal-auto-2');
  const ca = a.provenance.engine_choice as {
    engine: string;
    setting: string;
    reason: string;
    calibration?: { fresh: boolean; file: string };
  };
  const cb = b.provenance.engine_choice as typeof ca;
  assert.equal(ca.setting, 'auto');
  assert.equal(cb.engine, ca.engine);
  if (backend === 'tensorflow') {
    // native TensorFlow vs ONNX Runtime, both on the CPU: timed once, then read back
    assert.ok(ca.calibration, JSON.stringify(ca));
    assert.equal(cb.calibration!.file, ca.calibration.file);
    assert.equal(cb.calibration!.fresh, false);
    assert.match(ca.reason, /calibration: tfjs .* img\/s vs ONNX Runtime .* img\/s/);
  } else {
    assert.equal(ca.engine, 'onnx');
    assert.equal(ca.calibration, undefined);
    assert.match(ca.reason, new RegExp(`tfjs runs on ${backend}`));
  }
  // the two runs produced the same maps, byte for byte
  assert.deepEqual(Buffer.from((await maps(b.outDir, 'gradcam')).buffer), Buffer.from((await maps(a.outDir, 'gradcam')).buffer));
});

test('keys: absent engine leaves the params (and old keys) as they were; a given engine is in the key', async () => {
  const none = await planKeys({});
  assert.equal('engine' in none.sal.params, false);
  assert.equal('engine' in none.ev.params, false);
  const onnx = await planKeys({ sal: '{ engine: onnx }', ev: '{ engine: onnx }' });
  const tfjs = await planKeys({ sal: '{ engine: tfjs }' });
  assert.equal(onnx.sal.params.engine, 'onnx');
  assert.notEqual(onnx.sal.key, none.sal.key);
  assert.notEqual(tfjs.sal.key, onnx.sal.key);
  assert.notEqual(onnx.ev.key, none.ev.key);
});

test('frozen training and the features stage run their backbone on tfjs when asked, and record it', async () => {
  const troot = tmp('engine-frozen');
  const tdata = await syntheticIndex(join(troot, 'data'), 4, 64);
  const init = await fakeInit(join(troot, 'init'), 'resnet-mini', 6, 64);
  const params = {
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
  } as const;
  const results: Record<string, Record<string, { data: Float32Array }>> = {};
  for (const engine of ['onnx', 'tfjs'] as const) {
    const ctx = stageCtx({ ...params, engine }, { data: tdata, init }, join(troot, `train-${engine}`));
    await trainStage.run(ctx as never);
    const choice = ctx.provenance.engine_choice as { engine: string };
    assert.equal(choice.engine, engine);
    assert.equal('engine_choice' in (ctx.provenance.train as object), false);
    const w = (await readSafetensors(join(ctx.outDir, 'final.safetensors'))).tensors;
    results[engine] = Object.fromEntries([...w].map(([k, t]) => [k, { data: t.data as Float32Array }]));
  }
  // the head trained on either engine's taps ends up in the same place, up to rounding
  const d = maxDiff(results.tfjs.cls_token.data, results.onnx.cls_token.data);
  assert.ok(d < 1e-3, `cls_token differs by ${d}`);

  const fctx = stageCtx(
    { arch: 'resnet-mini', input_size: 64, resize: 64, dtype: 'float32', workers: 0, engine: 'tfjs' },
    { data: tdata, init },
    join(troot, 'features'),
  );
  await featuresStage.run(fctx as never);
  assert.equal((fctx.provenance.engine_choice as { engine: string }).engine, 'tfjs');

  const bad = stageCtx({ ...params, mode: 'scratch', engine: 'tfjs' }, { data: tdata }, join(troot, 'scratch-engine'));
  await assert.rejects(trainStage.run(bad as never), /"engine" chooses how a frozen backbone runs; mode "scratch"/);
});
