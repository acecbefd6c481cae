// ShapleyCAM and Finer-CAM: hand-computed weights and class choice, and the head's second-order
// term and Finer gradient against central finite differences on small random-weight models.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setBackendLogger } from '../../ml/backend/index.js';
import { PoolingHeadRunner, type TapSet } from '../../ml/explain/head.js';
import { createModel } from '../../ml/models/model.js';
import { gradcam } from '../../ml/saliency/gradient-cams.js';
import { finerComparisons, finerScore } from '../../ml/saliency/finercam.js';
import { shapleycam } from '../../ml/saliency/shapleycam.js';
import { initTestBackend } from '../support/backend.js';
import { assertClose, testData } from './helpers.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

test('ShapleyCAM: w_k = mean(G − ½·hvp), by hand on a 1×3 grid', () => {
  const A = new Float32Array([1, 2, 0, /* k=1 */ 3, 0, 1]);
  const G = new Float32Array([0.5, 0.5, 0.5, /* */ 1, -1, 0]);
  const hvp = new Float32Array([1, -1, 0, /* */ 2, 2, -8]);
  // w0 = (0 + 1 + 0.5)/3 = 0.5; w1 = (0 − 2 + 4)/3 = 2/3; cam = [2.5, 1, 2/3] → [1, (1 − 2/3)/(2.5 − 2/3), 0].
  const r = shapleycam(A, G, hvp, 2, 1, 3);
  assertClose(r.weights!, [0.5, 2 / 3], 1e-12);
  assertClose(r.map, [1, (1 - 2 / 3) / (2.5 - 2 / 3), 0], 1e-7);
  // hvp = 0 is Grad-CAM.
  assertClose(shapleycam(A, G, new Float32Array(6), 2, 1, 3).map, gradcam(A, G, 2, 1, 3).map, 0);
});

test('Finer-CAM: comparisons are the classes nearest to the target logit (ties to the lower index), and its score by hand', () => {
  const logits = [2, 5, 4.5, 7, 5.5, 1]; // target 1: |Δ| = 3, ·, 0.5, 2, 0.5, 4
  assert.deepEqual(finerComparisons(logits, 1), [2, 4, 3]);
  assert.deepEqual(finerComparisons(logits, 1, [1]), [2]);
  assert.deepEqual(finerComparisons([0, 1], 0), [1], 'fewer than 4 classes: the ones available');
  assert.throws(() => finerComparisons([1], 0), /at least two classes/);
  const e = logits.map(Math.exp);
  const z = e.reduce((a, b) => a + b, 0);
  const p = (j: number) => e[j] / z;
  const want = (p(2) * (5 - 4.5) + p(4) * (5 - 5.5) + p(3) * (5 - 7)) / (p(2) + p(4) + p(3) + 1e-9);
  assertClose([finerScore(logits, 1, [2, 4, 3])], [want], 1e-12);
});

/** A random-weight model's taps (NCHW) on a random batch, and the saliency head over its weights. */
async function headAndTaps(arch: string, head: 'gap' | 'ca-stream', seed: number) {
  const { tf } = await import('../../ml/backend/index.js');
  const m = createModel({ arch, head, numClasses: 5, seed });
  try {
    const weights = new Map([...m.stateDict()].map(([k, v]) => [k, { shape: v.shape, data: v.data }] as const));
    const x = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', seed) as never;
    const out = m.forward(x);
    const runner = new PoolingHeadRunner(head, 1, arch, weights, 'random');
    const taps: TapSet = {};
    for (const t of runner.tapsNeeded()) {
      const v = out.taps[t];
      taps[t] = { shape: [v.shape[0], v.shape[3], v.shape[1], v.shape[2]], data: tf.transpose(v, [0, 3, 1, 2]).dataSync() as Float32Array };
    }
    return { runner, taps };
  } finally {
    m.dispose();
  }
}

function withLast(runner: PoolingHeadRunner, taps: TapSet, data: Float32Array): TapSet {
  return { ...taps, [runner.lastTap]: { shape: taps[runner.lastTap]!.shape, data } };
}

for (const [arch, head] of [
  ['resnet-basic-1111', 'ca-stream'],
  ['convnext-mini', 'gap'], // LayerNorm before the classifier: the GAP logit is not linear in A
  ['efficientnet-mini', 'ca-stream'],
  ['resnet-basic-1111', 'gap'], // Linear on GAP: H = 0 exactly
] as const) {
  test(`${arch} ${head}: the Hessian-vector product (∂g/∂A)·A matches central differences of g along A`, async () => {
    const { runner, taps } = await headAndTaps(arch, head, 4);
    try {
      const targets = [1, 3];
      const A = taps[runner.lastTap]!.data;
      const { grad, hvp } = runner.layer4Hvp(taps, targets);
      assertClose(grad, runner.layer4Gradients(taps, targets).grad, 1e-5, 'g from the second-order pass');
      const eps = 1e-2;
      const gAt = (s: number) =>
        runner.layer4Gradients(
          withLast(
            runner,
            taps,
            A.map((v) => v * (1 + s)),
          ),
          targets,
        ).grad;
      const plus = gAt(eps);
      const minus = gAt(-eps);
      const fd = plus.map((v, i) => (v - minus[i]) / (2 * eps));
      const scale = Math.max(...Array.from(fd, Math.abs), 1e-6);
      let worst = 0;
      for (let i = 0; i < fd.length; i++) worst = Math.max(worst, Math.abs(fd[i] - hvp[i]));
      assert.ok(worst <= 1e-3 * scale + 1e-7, `max |hvp − fd| ${worst} vs scale ${scale}`);
      if (head === 'gap' && arch.startsWith('resnet')) assert.ok(hvp.every((v) => v === 0));
      // (efficientnet-mini's random CA head is nearly linear at this input: its term is ~1e-5.)
      if (!arch.startsWith('efficientnet') && head !== 'gap') assert.ok(scale > 1e-4, 'a non-zero second-order term is being tested');
      if (arch.startsWith('convnext')) assert.ok(scale > 1e-4, 'the LayerNorm classifier makes the GAP logit non-linear in A');
    } finally {
      runner.dispose();
    }
  });
}

test('Finer-CAM: the head gradient of the weighted target matches central differences (softmax weights not detached)', async () => {
  const { runner, taps } = await headAndTaps('resnet-basic-1111', 'ca-stream', 6);
  try {
    const targets = [0, 2];
    const logits = runner.logits(taps);
    const comps = targets.map((t, b) => finerComparisons(logits.subarray(b * 5, (b + 1) * 5), t));
    const g = runner.layer4FinerGradients(taps, targets, comps, 1);
    const A = taps[runner.lastTap]!.data;
    const d = testData(A.length, 17, -1, 1);
    const score = (s: number) => {
      const L = runner.logits(
        withLast(
          runner,
          taps,
          A.map((v, i) => v + s * d[i]),
        ),
      );
      return targets.reduce((acc, t, b) => acc + finerScore(L.subarray(b * 5, (b + 1) * 5), t, comps[b]), 0);
    };
    const eps = 1e-2;
    const fd = (score(eps) - score(-eps)) / (2 * eps);
    let dot = 0;
    for (let i = 0; i < A.length; i++) dot += g[i] * d[i];
    assert.ok(Math.abs(fd - dot) <= 1e-2 * Math.max(1e-3, Math.abs(fd)), `directional derivative ${dot} vs fd ${fd}`);
  } finally {
    runner.dispose();
  }
});
