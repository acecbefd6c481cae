// Grad-CAM and Grad-CAM++ through the whole saliency path (ONNX taps → tfjs head gradient → maps)
// on the reference fixture, against maps computed here by the direct formulas from the fixture's
// own tap.layer4 and a central finite-difference gradient of the target logit through this file's
// own head maths (GAP + fc, or the CA stream written out in float64).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { readModelDir } from '../../ml/explain/model-dir.js';
import { ModelRunner } from '../../ml/explain/runner.js';
import { computeBatchMaps } from '../../ml/explain/saliency-batch.js';
import { assertClose, fixture, fixtureModelDir, tmp } from './helpers.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

const EPS = 2.220446049250313e-16;

type Arr = { shape: number[]; data: Float32Array };

/** One CA block in float64: dots = Fᵀq/√C per head group, softmax over positions, z = F a. */
function attend(F: ArrayLike<number>, C: number, N: number, q: ArrayLike<number>, heads: number): Float64Array {
  const d = C / heads;
  const z = new Float64Array(C);
  for (let g = 0; g < heads; g++) {
    const s = new Float64Array(N);
    for (let k = g * d; k < (g + 1) * d; k++) for (let p = 0; p < N; p++) s[p] += (F[k * N + p] * q[k]) / Math.sqrt(C);
    const m = Math.max(...s);
    let tot = 0;
    for (let p = 0; p < N; p++) tot += s[p] = Math.exp(s[p] - m);
    for (let k = g * d; k < (g + 1) * d; k++) for (let p = 0; p < N; p++) z[k] += (F[k * N + p] * s[p]) / tot;
  }
  return z;
}

function affine(W: Arr, b: Arr, x: ArrayLike<number>): Float64Array {
  const [o, i] = W.shape;
  const y = new Float64Array(o);
  for (let r = 0; r < o; r++) {
    let s = b.data[r];
    for (let c = 0; c < i; c++) s += W.data[r * i + c] * x[c];
    y[r] = s;
  }
  return y;
}

/** A function A(layer4 of image b, C×N) → target logit, built from this file's own maths. */
function logitFn(
  head: 'gap' | 'ca-stream',
  heads: number,
  b: number,
  t: number,
): { f: (A: Float64Array) => number; all: (A: Float64Array) => Float64Array } {
  const ex = fixture('expected');
  const wt = fixture('weights');
  const fcW = wt('fc.weight');
  const fcB = wt('fc.bias');
  const [, K] = fcW.shape;
  const N = ex('tap.layer4').shape[2] * ex('tap.layer4').shape[3];
  if (head === 'gap') {
    const all = (A: Float64Array) => {
      const m = new Float64Array(K);
      for (let k = 0; k < K; k++) for (let p = 0; p < N; p++) m[k] += A[k * N + p] / N;
      return affine(fcW, fcB, m);
    };
    const f = (A: Float64Array) => {
      let y = fcB.data[t];
      for (let k = 0; k < K; k++) for (let p = 0; p < N; p++) y += (fcW.data[t * K + k] * A[k * N + p]) / N;
      return y;
    };
    return { f, all };
  }
  // Token entering l4, from the earlier taps of image b.
  let q: ArrayLike<number> = wt('cls_token').data;
  const blocks = [
    ['tap.stem', 'base'],
    ['tap.layer1', 'l1'],
    ['tap.layer2', 'l2'],
    ['tap.layer3', 'l3'],
  ];
  for (const [tap, name] of blocks) {
    const T = ex(tap);
    const C = T.shape[1];
    const n = T.shape[2] * T.shape[3];
    const F = T.data.subarray(b * C * n, (b + 1) * C * n);
    q = affine(wt(`${name}.to_out.1.weight`), wt(`${name}.to_out.1.bias`), attend(F, C, n, q, heads));
  }
  const W4 = wt('l4.to_out.1.weight');
  const b4 = wt('l4.to_out.1.bias');
  const all = (A: Float64Array) => affine(fcW, fcB, affine(W4, b4, attend(A, K, N, q, heads)));
  // fc_t(W4 z + b4) + fcb_t = (W4ᵀ fc_t)·z + const: the same logit, cheap enough for differences.
  const u = new Float64Array(K);
  let c = fcB.data[t];
  for (let i = 0; i < K; i++) {
    c += fcW.data[t * K + i] * b4.data[i];
    for (let k = 0; k < K; k++) u[k] += fcW.data[t * K + i] * W4.data[i * K + k];
  }
  const f = (A: Float64Array) => {
    const z = attend(A, K, N, q, heads);
    let y = c;
    for (let k = 0; k < K; k++) y += u[k] * z[k];
    return y;
  };
  return { f, all };
}

function finiteDiff(f: (A: Float64Array) => number, A0: Float64Array, h = 1e-3): Float64Array {
  const g = new Float64Array(A0.length);
  const A = Float64Array.from(A0);
  for (let i = 0; i < A.length; i++) {
    A[i] = A0[i] + h;
    const up = f(A);
    A[i] = A0[i] - h;
    const dn = f(A);
    A[i] = A0[i];
    g[i] = (up - dn) / (2 * h);
  }
  return g;
}

function minmaxRelu(cam: number[]): number[] {
  const r = cam.map((x) => Math.max(0, x));
  const lo = Math.min(...r);
  const hi = Math.max(...r);
  return r.map((x) => (x - lo) / (hi - lo + EPS));
}

function gradcamRef(A: Float64Array, G: Float64Array, K: number, N: number): number[] {
  const cam = new Array(N).fill(0);
  for (let k = 0; k < K; k++) {
    let wk = 0;
    for (let p = 0; p < N; p++) wk += G[k * N + p] / N;
    for (let p = 0; p < N; p++) cam[p] += wk * A[k * N + p];
  }
  return minmaxRelu(cam);
}

function gradcamppRef(A: Float64Array, G: Float64Array, K: number, N: number): number[] {
  const cam = new Array(N).fill(0);
  for (let k = 0; k < K; k++) {
    let sumA = 0;
    for (let p = 0; p < N; p++) sumA += A[k * N + p];
    let wk = 0;
    for (let p = 0; p < N; p++) {
      const g = G[k * N + p];
      const alpha = g === 0 ? 0 : (g * g) / (2 * g * g + sumA * g * g * g + EPS);
      wk += alpha * Math.max(0, g);
    }
    for (let p = 0; p < N; p++) cam[p] += wk * A[k * N + p];
  }
  return minmaxRelu(cam);
}

for (const [head, heads] of [
  ['gap', 1],
  ['ca-stream', 1],
  ['ca-stream', 4],
] as const) {
  test(`fixture ${head} heads ${heads}: Grad-CAM / Grad-CAM++ match finite-difference maps`, async () => {
    const ex = fixture('expected');
    const tap = ex('tap.layer4');
    const [B, K, h, w] = tap.shape;
    const N = h * w;
    const input = ex('input').data;
    // Targets: the fixture model's top class for image 0, a different class for image 1.
    const refLogits = head === 'gap' ? ex('logits.gap').data : ex(`heads${heads}.logits.ca`).data;
    const top0 = [...refLogits.subarray(0, 10)].indexOf(Math.max(...refLogits.subarray(0, 10)));
    const targets = [top0, (top0 + 3) % 10];

    const dir = tmp();
    const model = await readModelDir(fixtureModelDir(join(dir, 'model'), head, heads));
    const runner = new ModelRunner(model, { cacheDir: join(dir, 'onnx') });
    try {
      const res = await computeBatchMaps(runner, input, [0, 1], targets, 'gt', ['gradcam', 'gradcampp'], {
        maxBatch: 8,
        rise: { numMasks: 8, cells: 4, p1: 0.5 },
        seed: 0,
      });
      assert.deepEqual([...res.targets], targets);
      for (let b = 0; b < B; b++) {
        const A = Float64Array.from(tap.data.subarray(b * K * N, (b + 1) * K * N));
        const { f, all } = logitFn(head, heads, b, targets[b]);
        // The reference head maths reproduces the fixture's own logits.
        assertClose(all(A), refLogits.subarray(b * 10, (b + 1) * 10), 1e-3, `reference logits image ${b}`);
        const G = finiteDiff(f, A);
        let gnorm = 0;
        for (const g of G) gnorm += g * g;
        assert.ok(gnorm > 0, 'the finite-difference gradient is not identically zero');
        assertClose(res.maps.gradcam.data.subarray(b * N, (b + 1) * N), gradcamRef(A, G, K, N), 2e-3, `Grad-CAM image ${b}`);
        assertClose(res.maps.gradcampp.data.subarray(b * N, (b + 1) * N), gradcamppRef(A, G, K, N), 2e-3, `Grad-CAM++ image ${b}`);
      }
      // The tfjs head gradient itself agrees with the finite differences (image 0).
      const feats = await runner.features(input, B);
      const direct = runner
        .head()
        .layer4Gradients(feats.taps, targets)
        .grad.subarray(0, K * N);
      const G0 = finiteDiff(logitFn(head, heads, 0, targets[0]).f, Float64Array.from(tap.data.subarray(0, K * N)));
      let scale = 0;
      for (const g of G0) scale = Math.max(scale, Math.abs(g));
      for (let i = 0; i < G0.length; i++)
        assert.ok(Math.abs(direct[i] - G0[i]) <= 1e-3 * scale + 1e-6, `gradient[${i}] ${direct[i]} vs ${G0[i]}`);
    } finally {
      await runner.release();
    }
  });
}
