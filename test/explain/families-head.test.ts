// The saliency head on the new families, against the original code's tensors: from the fixture's
// own taps, the tfjs head reproduces the CA logits, and the Ablation-CAM scorer (ConvNeXt: through
// the LayerNorm classifier, not a folded Linear) gives each image's target logit on its
// unmodified last feature map.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initBackend, setBackendLogger } from '../../ml/backend/index.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { PoolingHeadRunner } from '../../ml/explain/head.js';
import type { FloatTensor } from '../../ml/explain/model-dir.js';
import { fixturesDir } from '../ml/fixtures.js';

before(async () => {
  setBackendLogger(() => {});
  await initBackend('wasm');
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
      for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(g.logits[i] - ref[i]) <= 1e-4 * Math.max(1, Math.abs(ref[i])), `logit ${i}: ${g.logits[i]} vs ${ref[i]}`);
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
