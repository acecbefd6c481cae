// The evaluate stage with the model-randomisation sanity check: the cascade recorded top down,
// maps recomputed on every randomised model, and similarities that behave as they must (a
// model-independent map is unchanged by any randomisation; a gradient map is not).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setBackendLogger } from '../../ml/backend/index.js';
import type { EvaluateParams } from '../../stages/evaluate/schema.js';
import { EVALUATE_TEST_PARAMS, SALIENCY_TEST_PARAMS, saliencyThenEvaluate } from '../explain/stage-helpers.js';
import { randomModelDir } from '../explain/helpers.js';
import { join } from 'node:path';

before(() => setBackendLogger(() => {}));

const SANITY = { seed: 1, saliency_seed: 0, rise: { masks: 8, cells: 2, p1: 0.5 } };
const EV: EvaluateParams = { ...EVALUATE_TEST_PARAMS, sanity: SANITY };

function run(head: 'gap' | 'ca-stream', methods: string[], sanity: EvaluateParams['sanity']) {
  return saliencyThenEvaluate({
    prefix: `ca-pipe-evaluate-sanity-${head}-`,
    head,
    index: { classes: 2, per_class: 2 },
    saliency: { ...SALIENCY_TEST_PARAMS, methods },
    evaluate: { ...EV, sanity },
  });
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

for (const arch of ['convnext-mini', 'efficientnet-mini']) {
  test(`${arch}: the cascade over features.N down to the stem, maps recomputed at each step`, async () => {
    const { summary } = await saliencyThenEvaluate({
      prefix: `ca-pipe-evaluate-sanity-${arch}-`,
      head: 'gap',
      index: { classes: 2, per_class: 2 },
      saliency: { ...SALIENCY_TEST_PARAMS, methods: ['gradcam', 'random'] },
      evaluate: EV,
      model: (root) => randomModelDir(join(root, 'model'), arch, 'gap', 2, 64),
    });
    const steps: string[] = summary.sanity.protocol.steps;
    assert.equal(steps[0], 'classifier');
    assert.equal(steps.at(-1), 'stem');
    // Every step in between is a features.N entry, from the last to features.1.
    const n = steps.slice(1, -1).map((s) => Number(/^features\.(\d+)$/.exec(s)?.[1]));
    assert.ok(n.length >= 4 && n.every((v, i) => Number.isInteger(v) && (i === 0 || v < n[i - 1]!)) && n.at(-1) === 1, steps.join(', '));
    assert.equal(summary.sanity.methods.gradcam.length, steps.length);
    for (const s of summary.sanity.methods.random) assert.ok(Math.abs(s.spearman.mean - 1) < 1e-9, `random at ${s.step}`);
  });
}
