// The saliency head on the new families, against the original code's tensors: from the fixture's
// own taps, the tfjs head reproduces the CA logits, and the Ablation-CAM scorer (ConvNeXt: through
// the LayerNorm classifier, not a folded Linear) gives each image's target logit on its
// unmodified last feature map.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { PoolingHeadRunner } from '../../ml/explain/head.js';
import type { FloatTensor } from '../../ml/explain/model-dir.js';
import { fixturesDir } from '../ml/fixtures.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

for (const arch of ['convnext-mini', 'efficientnet-mini']) {
  test(`${arch}: CA head logits and the Ablation-CAM scorer match the original's logits`, async () => {
    const dir = fixturesDir();
    const w = (await readSafetensors(join(dir, `${arch}.weights.safetensors`))).tensors as Map<string, FloatTensor>;
    const e = (await readSafetensors(join(dir, `${arch}.expected.safetensors`))).tensors as Map<string, FloatTensor>;
    const head = new PoolingHeadRunner('ca-stream', 1, arch, w, arch);
    try {
      const taps = Object.fromEntries(head.tapsNeeded().map((t) => [t, e.get(`tap.${t}`)!]));
      const ref = e.get('logits.ca')!.data;
      const K = 10;
      const targets = [3, 7];
      const g = head.layer4Gradients(taps, targets);
      for (let i = 0; i < ref.length; i++)
        assert.ok(Math.abs(g.logits[i] - ref[i]) <= 1e-4 * Math.max(1, Math.abs(ref[i])), `logit ${i}: ${g.logits[i]} vs ${ref[i]}`);
      const last = e.get(`tap.${head.lastTap}`)!;
      const [B, C, h, wd] = last.shape;
      const tokens = head.l4Tokens(taps, B);
      for (let b = 0; b < B; b++) {
        const score = head.layer4Scorer(targets[b], tokens.subarray(b * C, (b + 1) * C), C, h, wd);
        const [y] = await score(last.data.subarray(b * C * h * wd, (b + 1) * C * h * wd), 1);
        const r = ref[b * K + targets[b]];
        assert.ok(Math.abs(y - r) <= 1e-4 * Math.max(1, Math.abs(r)), `image ${b}: scorer ${y} vs logit ${r}`);
      }
    } finally {
      head.dispose();
    }
  });
}

test('convnext-mini ca-final (CLS_KV): the saliency head reproduces the model, and Ablation-CAM says it cannot fold it', async () => {
  const { tf } = await import('../../ml/backend/index.js');
  const { createModel } = await import('../../ml/models/model.js');
  const m = createModel({ arch: 'convnext-mini', head: 'ca-final', numClasses: 5, seed: 8 });
  try {
    const weights = new Map([...m.stateDict()].map(([k, v]) => [k, { shape: v.shape, data: v.data }] as const));
    const x = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 5) as any;
    const out = m.forward(x);
    const nchw = (t: any) => ({
      shape: [t.shape[0], t.shape[3], t.shape[1], t.shape[2]],
      data: tf.transpose(t, [0, 3, 1, 2]).dataSync() as Float32Array,
    });
    const head = new PoolingHeadRunner('ca-final', 1, 'convnext-mini', weights, 'random');
    try {
      const taps = { 'features.7': nchw(out.taps['features.7']) };
      const g = head.layer4Gradients(taps, [1, 4]);
      const ref = out.logits.dataSync();
      for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(g.logits[i] - ref[i]) <= 1e-4 * Math.max(1, Math.abs(ref[i])), `logit ${i}`);
      assert.ok(
        g.grad.some((v) => v !== 0),
        'a gradient reaches the last feature map',
      );
      assert.throws(
        () => head.layer4Scorer(1, head.l4Tokens(taps, 2).subarray(0, 128), 128, 2, 2),
        /Ablation-CAM is not available .*CLS_KV/,
      );
    } finally {
      head.dispose();
    }
  } finally {
    m.dispose();
  }
});
