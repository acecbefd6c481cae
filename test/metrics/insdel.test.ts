import { test } from 'node:test';
import assert from 'node:assert/strict';
import { insertionDeletion, pixelOrder, trapezoidAuc } from '../../ml/metrics/insdel.js';
import { blurImage, gaussianBlurKernel } from '../../ml/metrics/blur.js';
import { resolveProtocol } from '../../ml/metrics/protocol.js';

// A 2-class model on 2×4×4 images: class-1 logit z = α·mean(ch0) + β·mean(ch1), class-0 logit 0,
// so P(class 1) = σ(z). Expected curves below come from the pixel sums of each state, derived by hand.
const ALPHA = 0.5;
const BETA = -1;
const sig = (z: number) => 1 / (1 + Math.exp(-z));
const prob1 = (sum0: number, sum1: number) => sig((ALPHA * sum0) / 16 + (BETA * sum1) / 16);

function model(calls?: number[]) {
  return async (b: Float32Array, n: number) => {
    calls?.push(n);
    assert.equal(b.length, n * 32);
    const out = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      let s0 = 0;
      let s1 = 0;
      for (let j = 0; j < 16; j++) {
        s0 += b[i * 32 + j];
        s1 += b[i * 32 + 16 + j];
      }
      out[2 * i + 1] = prob1(s0, s1);
      out[2 * i] = 1 - out[2 * i + 1];
    }
    return out;
  };
}

// Image: ch0 pixel p (raster) = p + 1 (sum 136), ch1 = 2 everywhere (sum 32).
function image(): Float32Array {
  const x = new Float32Array(32);
  for (let p = 0; p < 16; p++) {
    x[p] = p + 1;
    x[16 + p] = 2;
  }
  return x;
}

const auc4 = (s: number[]) => (s[0] / 2 + s[1] + s[2] + s[3] + s[4] / 2) / 4;

test('trapezoid AUC and stable descending pixel order', () => {
  assert.equal(trapezoidAuc([1, 0]), 0.5);
  assert.equal(trapezoidAuc([0, 1, 1]), 0.75);
  assert.deepEqual(Array.from(pixelOrder(new Float32Array([0.2, 0.9, 0.2, 0.5, 0.9]))), [1, 4, 3, 0, 2]);
  assert.deepEqual(Array.from(pixelOrder(new Float32Array([-1, 0, -0, 3, -2.5, 1e-30, -1e-30, 0]))), [3, 5, 1, 2, 7, 6, 0, 4]);
});

test('radix pixel order equals a comparator sort (value desc, index asc) on random maps with ties', () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const levels of [3, 50, 0]) {
    const m = new Float32Array(5000).map(() => (levels ? Math.floor(rnd() * levels) / levels : rnd() * 2 - 1));
    const ref = Array.from(m.keys()).sort((a, b) => m[b] - m[a] || a - b);
    assert.deepEqual(Array.from(pixelOrder(m)), ref);
    // offset/size views into a longer buffer
    const two = new Float32Array(10000);
    two.set(m, 5000);
    assert.deepEqual(Array.from(pixelOrder(two, 5000, 5000)), ref);
  }
});

test('insertion and deletion on 4×4 images with a known model (hand-derived curves, batches crossing images)', async () => {
  const images = new Float32Array(64);
  images.set(image(), 0);
  images.set(image(), 32);
  // image A: saliency = pixel value → removes 16,15,14,13 first; image B: constant map → raster order
  // (stable tie-break) → removes 1,2,3,4 first.
  const sal = new Float32Array(32);
  for (let p = 0; p < 16; p++) {
    sal[p] = p + 1;
    sal[16 + p] = 0.5;
  }
  const protocol = resolveProtocol('ca-stream', { insdel: { step: { unit: 'rows', count: 1 }, insertionStart: 'zeros' } });
  const calls: number[] = [];
  const r = await insertionDeletion({
    images,
    dims: { c: 2, h: 4, w: 4 },
    saliency: sal,
    targets: [1, 1],
    protocol,
    score: model(calls),
    maxBatch: 3,
  });
  assert.equal(r.step, 4);
  assert.equal(r.steps, 4);
  assert.deepEqual(r.statuses, ['ok', 'constant']);
  // 9 evaluations per image (5 deletion + 4 insertion; insertion's last point is the clean image)
  assert.deepEqual(calls, [3, 3, 3, 3, 3, 3]);
  // Deletion A: ch0 sums 136, 78, 36, 10, 0; ch1 sums 32, 24, 16, 8, 0
  const delA = [prob1(136, 32), prob1(78, 24), prob1(36, 16), prob1(10, 8), prob1(0, 0)];
  // Deletion B: removes 1..4, 5..8, …: ch0 sums 136, 126, 100, 58, 0
  const delB = [prob1(136, 32), prob1(126, 24), prob1(100, 16), prob1(58, 8), prob1(0, 0)];
  // Insertion A from zeros: 0, 58, 100, 126, 136; insertion B: 0, 10, 36, 78, 136
  const insA = [prob1(0, 0), prob1(58, 8), prob1(100, 16), prob1(126, 24), prob1(136, 32)];
  const insB = [prob1(0, 0), prob1(10, 8), prob1(36, 16), prob1(78, 24), prob1(136, 32)];
  const check = (got: Float64Array, row: number, exp: number[]) =>
    exp.forEach((e, t) => assert.ok(Math.abs(got[row * 5 + t] - e) < 1e-6, `row ${row} t ${t}: ${got[row * 5 + t]} vs ${e}`));
  check(r.deletion.curves, 0, delA);
  check(r.deletion.curves, 1, delB);
  check(r.insertion.curves, 0, insA);
  check(r.insertion.curves, 1, insB);
  assert.ok(Math.abs(r.deletion.auc[0] - auc4(delA)) < 1e-6);
  assert.ok(Math.abs(r.deletion.auc[1] - auc4(delB)) < 1e-6);
  assert.ok(Math.abs(r.insertion.auc[0] - auc4(insA)) < 1e-6);
  assert.ok(Math.abs(r.insertion.auc[1] - auc4(insB)) < 1e-6);
  assert.ok(r.deletion.auc[0] < r.deletion.auc[1], 'removing the bright pixels first lowers the class-1 score faster');
  assert.ok(Math.abs(r.p[0] - prob1(136, 32)) < 1e-6);
});

test('partial last step: step 3 on 16 pixels → n = 6', async () => {
  const sal = new Float32Array(16);
  for (let p = 0; p < 16; p++) sal[p] = p + 1;
  const protocol = resolveProtocol('ca-stream', { insdel: { step: { unit: 'pixels', count: 3 } } });
  const r = await insertionDeletion({
    images: image(),
    dims: { c: 2, h: 4, w: 4 },
    saliency: sal,
    targets: [0],
    protocol,
    score: model(),
    maxBatch: 64,
  });
  assert.equal(r.steps, 6);
  // removes {16,15,14} {13,12,11} {10,9,8} {7,6,5} {4,3,2} {1}; ch1 loses 6 per full step; class 0 scored
  const s0 = [136, 91, 55, 28, 10, 1, 0];
  const s1 = [32, 26, 20, 14, 8, 2, 0];
  const exp = s0.map((v, t) => 1 - prob1(v, s1[t]));
  exp.forEach((e, t) => assert.ok(Math.abs(r.deletion.curves[t] - e) < 1e-6, `t ${t}`));
  const auc = (exp[0] / 2 + exp[1] + exp[2] + exp[3] + exp[4] + exp[5] + exp[6] / 2) / 6;
  assert.ok(Math.abs(r.deletion.auc[0] - auc) < 1e-6);
});

test('insertion starts from the blurred image by default; pred target; NaN maps are skipped', async () => {
  const images = new Float32Array(64);
  images.set(image(), 0);
  const second = image().map((v) => -v); // a class-0 image for the pred rule
  images.set(second, 32);
  const sal = new Float32Array(48);
  for (let p = 0; p < 16; p++) {
    sal[p] = (p * 7) % 16;
    sal[16 + p] = p;
  }
  sal[32 + 5] = NaN;
  const seen: Float32Array[] = [];
  const base = model();
  const score = async (b: Float32Array, n: number) => {
    for (let i = 0; i < n; i++) seen.push(b.slice(i * 32, (i + 1) * 32));
    return base(b, n);
  };
  const all = new Float32Array(96);
  all.set(images, 0);
  all.set(image(), 64);
  const protocol = resolveProtocol('ca-stream', {
    target: 'pred',
    insdel: { step: { unit: 'rows', count: 1 }, blur: { size: 3, sigma: 1 } },
  });
  const r = await insertionDeletion({ images: all, dims: { c: 2, h: 4, w: 4 }, saliency: sal, protocol, score, maxBatch: 4 });
  assert.deepEqual(Array.from(r.targets), [1, 0, -1]);
  assert.deepEqual(r.statuses, ['ok', 'ok', 'nan']);
  assert.equal(seen.length, 18);
  assert.ok(Number.isNaN(r.deletion.auc[2]) && Number.isNaN(r.insertion.auc[2]));
  // 6th evaluation of image 0 is insertion t = 0: the image blurred with the protocol kernel
  const blurred = blurImage(image(), { n: 1, c: 2, h: 4, w: 4 }, gaussianBlurKernel(3, 1), 'zero');
  assert.deepEqual(Array.from(seen[5]), Array.from(blurred));
  // image 1 is scored on class 0 (its prediction)
  assert.ok(Math.abs(r.p[1] - (1 - prob1(-136, -32))) < 1e-6);
  assert.ok(Math.abs(r.insertion.curves[5 + 4] - r.p[1]) < 1e-12);
});

test('meanCurve averages usable images; its AUC is the mean of per-image AUCs', async () => {
  const { meanCurve } = await import('../../ml/metrics/insdel.js');
  const c = { curves: new Float64Array([1, 0.5, 0, 0.6, 0.4, 0.2, 9, 9, 9]), auc: new Float64Array([0.5, 0.4, 9]) };
  const m = meanCurve(c, ['ok', 'ok', 'constant']);
  [0.8, 0.45, 0.1].forEach((e, i) => assert.ok(Math.abs(m[i] - e) < 1e-12));
  assert.ok(Math.abs(trapezoidAuc(m) - 0.45) < 1e-12);
});

test('a batch is never modified while its score promise is pending (double buffering), results identical to unbatched', async () => {
  const N = 3;
  const images = new Float32Array(N * 32);
  for (let i = 0; i < N; i++)
    images.set(
      image().map((v) => v * (i + 1) * 0.3 - 2),
      i * 32,
    );
  const sal = new Float32Array(N * 16).map((_, j) => (j * 37) % 11);
  const protocol = resolveProtocol('ca-stream', { insdel: { step: { unit: 'pixels', count: 5 } } });
  const base = model();
  let inFlight = 0;
  let maxInFlight = 0;
  const slow = async (b: Float32Array, n: number) => {
    const snap = b.slice();
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 2));
    assert.deepEqual(b, snap, 'batch mutated while being scored');
    inFlight--;
    return base(b, n);
  };
  const opts = { images, dims: { c: 2, h: 4, w: 4 }, saliency: sal, targets: [1, 0, 1], protocol };
  const a = await insertionDeletion({ ...opts, score: slow, maxBatch: 2 });
  const b = await insertionDeletion({ ...opts, score: base, maxBatch: 1000 });
  assert.equal(maxInFlight, 1);
  assert.deepEqual(a.deletion.curves, b.deletion.curves);
  assert.deepEqual(a.insertion.curves, b.insertion.curves);
  await assert.rejects(
    insertionDeletion({
      ...opts,
      score: async () => {
        throw new Error('model failed');
      },
    }),
    /model failed/,
  );
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(insertionDeletion({ ...opts, score: base, signal: ac.signal }), /abort/i);
});
