// On the synthetic benchmark, maps that come from a model which really localises objects must beat
// the random and centre baselines on the energy-based pointing game. The model is hand-constructed
// (test/explain/smooth-model.ts): its layer4 measures "large uniformly coloured region" from the
// pixels; the object masks are read only by the evaluation. This exercises the whole path — ONNX
// taps, the tfjs gradient through GAP or the CA l4 block, the CA attention map, storage, upsampling
// and the localisation metrics — where a transposed, shifted or misassigned map would lose the margin.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import { evaluateStage } from '../../stages/evaluate/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import type { EvaluateParams } from '../../stages/evaluate/schema.js';
import type { EvaluateSummary } from '../../stages/artifacts.js';
import { syntheticIndex, testCtx, tmp } from '../explain/helpers.js';
import { smoothnessModelDir } from '../explain/smooth-model.js';

before(() => setBackendLogger(() => {}));

const MARGIN = 0.1;

for (const head of ['gap', 'ca-stream'] as const) {
  test(`${head}: model-derived maps beat random and centre on the energy pointing game by ${MARGIN}`, async () => {
    const root = tmp('ca-pipe-pointing-');
    const data = await syntheticIndex(root, { classes: 3, per_class: 6, size: 128, seed: 1 });
    const model = smoothnessModelDir(join(root, 'model'), head, 3, 128);
    const methods = head === 'gap' ? ['gradcam', 'random', 'center'] : ['ca-attention', 'gradcam', 'random', 'center'];
    const sp: SaliencyParams = {
      methods,
      target: 'gt',
      split: 'val',
      batch_size: 16,
      method_batch: 32,
      shard_size: 16,
      dtype: 'float32',
      overlays: 0,
      seed: 0,
      rise: { masks: 16, cells: 2, p1: 0.5 },
    };
    const sctx = testCtx(sp, { model, data }, { outDir: join(root, 'sal'), scratchDir: join(root, 'scratch', 'sal') });
    await saliencyStage.run(sctx);
    const ep: EvaluateParams = {
      protocol: 'ca-stream',
      protocol_overrides: {},
      keep_constant: ['ones', 'center', 'random'],
      localisation: 'auto',
      bootstrap: { samples: 200, seed: 0, level: 0.95 },
      batch_size: 32,
    };
    const ectx = testCtx(ep, { model, data, saliency: sctx.outDir }, { outDir: join(root, 'ev'), scratchDir: join(root, 'scratch', 'ev') });
    await evaluateStage.run(ectx);
    const s = JSON.parse(readFileSync(join(ectx.outDir, 'evaluation.json'), 'utf8')) as EvaluateSummary;
    const energy = Object.fromEntries(methods.map((m) => [m, s.methods[m].energy!.mean]));
    const n = Object.fromEntries(methods.map((m) => [m, s.methods[m].energy!.n]));
    console.log(`# ${head} energy pointing game: ${JSON.stringify(energy)} n=${JSON.stringify(n)}`);
    const baseline = Math.max(energy.random, energy.center);
    for (const m of methods.filter((m) => m !== 'random' && m !== 'center')) {
      assert.ok(n[m] >= 6, `${m}: only ${n[m]} usable maps`);
      assert.ok(energy[m] >= baseline + MARGIN, `${m}: energy ${energy[m].toFixed(3)} vs best baseline ${baseline.toFixed(3)}`);
    }
  });
}
