// `ca-pipe plan` prints per saliency/evaluate stage the forwards it needs and an estimate from a
// rate (--rate, or one an earlier run measured), checked against hand counts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli, tempDir, writeExp } from './helpers.js';

const YAML = `name: costs
stages:
  data:
    kind: index
    params: { source: synthetic, synthetic: { classes: 2, per_class: 10, size: 32 }, split: { fraction: 0.5 } }
  model:
    kind: train
    needs: [data]
    params: { arch: resnet50, input_size: 224, batch_size: 4 }
  saliency:
    kind: saliency
    needs: { model: model, data: data }
    params: { methods: [scorecam, gradcam, rise, mystery], limit: 4, rise: { masks: 100 } }
  evaluate:
    kind: evaluate
    needs: { model: model, data: data, saliency: saliency }
    params: { methods: [scorecam, gradcam, rise] }
`;

test('plan: forward counts per stage and estimates at --rate', async (t) => {
  const dir = await tempDir(t, 'ca-pipe-plan-cost-');
  // "mystery" is not a method: the schema refuses it, so the plan fails before counting.
  const bad = await writeExp(dir, 'bad.yaml', YAML);
  assert.equal((await cli(['plan', bad], dir)).code, 2);

  const file = await writeExp(dir, 'costs.yaml', YAML.replace(', mystery', ''));
  const r = await cli(['plan', file, '--rate', '10', '--json'], dir);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { instances: Array<{ id: string; cost?: Record<string, any> }> };
  const cost = (id: string) => out.instances.find((i) => i.id === id)!.cost!;
  // 4 images (limit) × (1 taps forward + 2,048 Score-CAM masks (ResNet-50 layer4) + 100 RISE masks)
  // = 4 × 2,149; Grad-CAM adds one backward per image.
  assert.equal(cost('saliency').images, 4);
  assert.equal(cost('saliency').forwards, 8596);
  assert.equal(cost('saliency').backwards, 4);
  // 4 images × (1 clean + 3 methods × (57 insertion/deletion + 2 AD/AI/AG at 224)) = 4 × 178.
  assert.equal(cost('evaluate').forwards, 712);
  // At 10 forwards/s, a backward counted as two forwards: (8,596 + 8) / 10 s and 712 / 10 s.
  assert.equal(cost('saliency').estimate.seconds, 860.4);
  assert.equal(cost('evaluate').estimate.seconds, 71.2);
  assert.equal(cost('saliency').estimate.source, '--rate');
  assert.equal(cost('model'), undefined, 'train has no count');

  const text = await cli(['plan', file, '--rate', '10'], dir);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /saliency[^\n]*\n\s+cost: 4 img, 8,596 forwards \+ 4 backwards; ≈ 14\.3 min at 10\.0 forwards\/s/);
  assert.match(text.stdout, /evaluate[^\n]*\n\s+cost: 4 img, 712 forwards; ≈ 71 s/);
  assert.match(text.stdout, /59 forwards per map \(57 insertion\/deletion \+ 2 AD\/AI\/AG; protocol ca-stream at 224 px\)/);
  assert.match(text.stdout, /estimates at 10\.0 forwards\/s, --rate/);

  // Without a rate and no earlier run: counts, and how to get an estimate.
  const none = await cli(['plan', file], dir);
  assert.match(none.stdout, /no time estimates: .*--rate/);
  assert.equal((await cli(['plan', file, '--rate', 'fast'], dir)).code, 2);
});
