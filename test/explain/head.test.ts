// Parity of the model glue: the tfjs pooling head and the plain-TS layer4 scorer (Ablation-CAM)
// reproduce ONNX Runtime's logits from the same taps, for GAP, CA-Stream (heads 1 and 4) and
// CA-final (with and without projection); the tfjs gradient agrees with finite differences of the
// scorer; `target: pred` explains the ONNX argmax.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { getArch, tapChannels, tapSizes } from '../../ml/models/arch.js';
import { getBackbone } from '../../ml/models/backbones.js';
import { expectedWeights } from '../../ml/onnx/weights.js';
import { readModelDir, type LoadedModel } from '../../ml/explain/model-dir.js';
import { ModelRunner } from '../../ml/explain/runner.js';
import { computeBatchMaps } from '../../ml/explain/saliency-batch.js';
import { assertClose, fixture, fixtureModelDir, IMAGENET_MEAN, IMAGENET_STD, tmp } from './helpers.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) / 16777216;
}

/** Random resnet-mini weights for a ca-final head (BN near identity), in memory. */
function miniCaFinal(project: boolean, size: number): LoadedModel {
  const arch = getArch('resnet-mini');
  const r = lcg(7);
  const g = () => (r() + r() + r() - 1.5) * 2;
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const shapes = expectedWeights(arch, 'ca-final', 5);
  if (project) {
    shapes.set('cls_surrogate.to_out.1.weight', [128, 128]);
    shapes.set('cls_surrogate.to_out.1.bias', [128]);
  }
  for (const [k, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const fan = shape.length === 4 ? shape[1] * shape[2] * shape[3] : shape[shape.length - 1];
    const data = new Float32Array(n).map(() =>
      k.endsWith('running_var') || /(^bn1|\.bn\d|downsample\.1)\.weight$/.test(k)
        ? 1
        : k.endsWith('running_mean')
          ? 0
          : g() * Math.sqrt(2 / fan),
    );
    weights.set(k, { shape, data });
  }
  const f = tapSizes(size).layer4;
  return {
    dir: '<memory>',
    arch: getBackbone(arch),
    weightsFile: '<random>',
    weights,
    feature: { K: tapChannels(arch).layer4, h: f, w: f },
    card: {
      format: 'ca-pipe.model/1',
      arch: 'resnet-mini',
      head: 'ca-final',
      heads: 2,
      num_classes: 5,
      input_size: size,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
      classes: ['a', 'b', 'c', 'd', 'e'],
      weights: 'x',
    },
  };
}

async function checkParity(model: LoadedModel, input: Float32Array, B: number, cacheDir: string): Promise<void> {
  const runner = new ModelRunner(model, { cacheDir });
  try {
    const { K, h, w } = model.feature;
    const hw = h * w;
    const C = model.card.num_classes;
    const feats = await runner.features(input, B);
    const head = runner.head();
    const targets = Array.from({ length: B }, (_, b) => (b * 3 + 1) % C);
    const g = head.layer4Gradients(feats.taps, targets);
    assertClose(g.logits, feats.logits, 2e-3, 'tfjs head logits vs ONNX');
    const tokens = model.card.head === 'gap' ? undefined : head.l4Tokens(feats.taps, B);
    for (let b = 0; b < B; b++) {
      const A = feats.taps.layer4!.data.subarray(b * K * hw, (b + 1) * K * hw);
      const scorer = head.layer4Scorer(targets[b], tokens?.subarray(b * K, (b + 1) * K), K, h, w);
      const [y] = await scorer(Float32Array.from(A), 1);
      assertClose([y], [feats.logits[b * C + targets[b]]], 2e-3, `scorer logit image ${b}`);
      // Central differences of the scorer at a few positions of the most active channel.
      let kmax = 0;
      for (let k = 0; k < K; k++) if (A[k * hw] > A[kmax * hw]) kmax = k;
      for (const idx of [kmax * hw, kmax * hw + hw - 1, 3 * hw + 1]) {
        const up = Float32Array.from(A);
        const dn = Float32Array.from(A);
        const eps = 1e-2;
        up[idx] += eps;
        dn[idx] -= eps;
        const fd = ((await scorer(up, 1))[0] - (await scorer(dn, 1))[0]) / (2 * eps);
        const an = g.grad[b * K * hw + idx];
        assert.ok(
          Math.abs(fd - an) <= 2e-2 * Math.max(1e-3, Math.abs(fd)) + 1e-4,
          `∂/∂A[${idx}] image ${b}: tfjs ${an} vs differences ${fd}`,
        );
      }
    }
    // target: pred explains ONNX's argmax.
    const res = await computeBatchMaps(runner, input, [0, 1].slice(0, B), new Array(B).fill(0), 'pred', ['gradcam'], {
      maxBatch: 8,
      rise: { numMasks: 1, cells: 2, p1: 0.5 },
      seed: 0,
    });
    for (let b = 0; b < B; b++) {
      const row = feats.logits.subarray(b * C, (b + 1) * C);
      assert.equal(res.targets[b], row.indexOf(Math.max(...row)));
    }
  } finally {
    await runner.release();
  }
}

for (const [head, heads] of [
  ['gap', 1],
  ['ca-stream', 1],
  ['ca-stream', 4],
] as const) {
  test(`fixture ${head} heads ${heads}: tfjs head, layer4 scorer and ONNX agree`, async () => {
    const dir = tmp();
    const model = await readModelDir(fixtureModelDir(join(dir, 'm'), head, heads));
    await checkParity(model, fixture('expected')('input').data, 2, join(dir, 'onnx'));
  });
}

for (const project of [false, true]) {
  test(`random resnet-mini ca-final (projection ${project}): tfjs head, layer4 scorer and ONNX agree`, async () => {
    const size = 64;
    const r = lcg(3);
    const input = new Float32Array(2 * 3 * size * size).map(() => (r() - 0.5) * 3);
    await checkParity(miniCaFinal(project, size), input, 2, join(tmp(), 'onnx'));
  });
}
