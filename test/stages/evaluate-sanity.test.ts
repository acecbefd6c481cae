// The evaluate stage with the model-randomisation sanity check: the cascade recorded top down,
// maps recomputed on every randomised model, and similarities that behave as they must (a
// model-independent map is unchanged by any randomisation; a gradient map is not).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import { evaluateStage } from '../../stages/evaluate/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import type { EvaluateParams } from '../../stages/evaluate/schema.js';
import { fixtureModelDir, HAVE_FIXTURE, syntheticIndex, testCtx, tmp } from '../explain/helpers.js';

before(() => setBackendLogger(() => {}));

const SANITY = { seed: 1, saliency_seed: 0, rise: { masks: 8, cells: 2, p1: 0.5 } };
const EV: EvaluateParams = {
  protocol: 'ca-stream',
  protocol_overrides: {},
  keep_constant: ['ones', 'center', 'random'],
  localisation: 'off',
  bootstrap: { samples: 200, seed: 0, level: 0.95 },
  batch_size: 16,
  sanity: SANITY,
};

async function run(head: 'gap' | 'ca-stream', methods: string[], sanity: EvaluateParams['sanity']) {
  if (!HAVE_FIXTURE) throw new Error('reference fixtures not found (test/fixtures/reference in the repository, or CA_PIPE_FIXTURES)');
  const root = tmp(`ca-pipe-evaluate-sanity-${head}-`);
  const data = await syntheticIndex(root, { classes: 2, per_class: 2, size: 64 });
  const model = fixtureModelDir(join(root, 'model'), head, 1, 64);
  const sal: SaliencyParams = { ...(await import('../explain/stage-helpers.js')).SALIENCY_TEST_PARAMS, methods };
  const sctx = testCtx(sal, { model, data }, { outDir: join(root, 'sal', 'out'), scratchDir: join(root, 'scratch', 'sal'), baseDir: root });
  await saliencyStage.run(sctx);
  const ctx = testCtx(
    { ...EV, sanity },
    { model, data, saliency: sctx.outDir },
    { outDir: join(root, 'ev', 'out'), scratchDir: join(root, 'scratch', 'ev'), baseDir: root },
  );
  await evaluateStage.run(ctx);
  const summary = JSON.parse(readFileSync(join(ctx.outDir, 'evaluation.json'), 'utf8'));
  const rows = readFileSync(join(ctx.outDir, 'per_image.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return { summary, rows };
}

test('sanity check (GAP): cascade top down, the random baseline unchanged, Grad-CAM changed', async () => {
  const { summary, rows } = await run('gap', ['gradcam', 'random'], SANITY);
  const steps = ['classifier', 'layer4', 'layer3', 'layer2', 'layer1', 'stem'];
  assert.deepEqual(summary.sanity.protocol.steps, steps);
  assert.equal(summary.sanity.protocol.seed, 1);
  // Both sides on tfjs (the stage's engine is not onnx), so no graph is exported per randomised model.
  assert.equal(summary.sanity.protocol.engine, 'tfjs');
  for (const m of ['gradcam', 'random'])
    assert.deepEqual(
      summary.sanity.methods[m].map((s: any) => s.step),
      steps,
    );
  // The random map is seeded by (seed, image id) only: identical on every model, ρ = SSIM = 1.
  for (const s of summary.sanity.methods.random) {
    assert.ok(Math.abs(s.spearman.mean - 1) < 1e-12 && Math.abs(s.ssim.mean - 1) < 1e-9, `random at ${s.step}: ${JSON.stringify(s)}`);
    assert.equal(s.spearman.n, summary.accuracy.n);
  }
  // Grad-CAM through GAP weighs layer4 channels by the classifier's row: a random classifier
  // changes the map (ρ < 1 on average) already at the first step.
  const g = summary.sanity.methods.gradcam;
  assert.ok(g[0].spearman.mean < 0.999 || g[0].spearman.n < summary.accuracy.n, `gradcam after the classifier: ${JSON.stringify(g[0])}`);
  assert.ok(g.at(-1).ssim.mean < 0.999, `gradcam fully randomised: ${JSON.stringify(g.at(-1))}`);
  // Per image, sanity_rank / sanity_ssim are the fully randomised step's values.
  for (const r of rows.filter((x) => x.method === 'random'))
    assert.deepEqual(
      [r.sanity_rank, r.sanity_ssim].map((v) => Math.round(v * 1e9) / 1e9),
      [1, 1],
    );
  assert.ok(Math.abs(summary.methods.gradcam.sanity_ssim.mean - g.at(-1).ssim.mean) < 1e-9);
});

test('sanity check (CA): the head follows the classifier; named steps only; an unknown step is named', async () => {
  const { summary } = await run('ca-stream', ['ca-attention'], { ...SANITY, steps: ['classifier', 'head'] });
  assert.deepEqual(summary.sanity.protocol.steps, ['classifier', 'head']);
  // ca-attention reads only the head's attention: a random classifier leaves it unchanged, a
  // random head does not.
  const [cls, head] = summary.sanity.methods['ca-attention'];
  assert.ok(Math.abs(cls.spearman.mean - 1) < 1e-9 && Math.abs(cls.ssim.mean - 1) < 1e-9, `after the classifier: ${JSON.stringify(cls)}`);
  assert.ok(head.ssim.mean < 0.999, `after the head: ${JSON.stringify(head)}`);
  await assert.rejects(run('gap', ['random'], { ...SANITY, steps: ['head'] }), /params\.sanity\.steps: no cascade step "head"/);
});
