import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../ml/data/rng.js';
import { sampleBeta, sampleGamma } from '../../ml/train/sampling.js';
import { mixBatch, type MixConfig } from '../../ml/train/mixup.js';

const randOf = (seed: number) => {
  const r = new Rng(seed);
  return () => r.float();
};

function moments(xs: number[]): { mean: number; variance: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, variance: xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) };
}

test('Gamma (Marsaglia–Tsang) and Beta samples have the right mean and variance', () => {
  const rand = randOf(1);
  const n = 20000;
  for (const a of [0.2, 1, 3.5]) {
    const { mean, variance } = moments(Array.from({ length: n }, () => sampleGamma(a, rand)));
    // Gamma(a, 1): mean a, variance a; allow 5 standard errors.
    assert.ok(Math.abs(mean - a) < 5 * Math.sqrt(a / n), `gamma(${a}) mean ${mean}`);
    assert.ok(Math.abs(variance - a) < 0.1 * a, `gamma(${a}) variance ${variance}`);
  }
  for (const [a, b] of [
    [0.2, 0.2],
    [1, 1],
    [2, 5],
  ]) {
    const xs = Array.from({ length: n }, () => sampleBeta(a, b, rand));
    assert.ok(xs.every((x) => x >= 0 && x <= 1));
    const { mean, variance } = moments(xs);
    const m = a / (a + b);
    const v = (a * b) / ((a + b) ** 2 * (a + b + 1));
    assert.ok(Math.abs(mean - m) < 5 * Math.sqrt(v / n), `beta(${a},${b}) mean ${mean} vs ${m}`);
    assert.ok(Math.abs(variance - v) < 0.06 * v, `beta(${a},${b}) variance ${variance} vs ${v}`);
  }
});

const B = 4,
  H = 8,
  W = 6,
  C = 3,
  K = 5;
const LABELS = [0, 3, 1, 4];

function randomImages(seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: B * H * W * C }, () => r.float());
}

function rowSums(t: Float32Array): number[] {
  return Array.from({ length: t.length / K }, (_, i) => t.subarray(i * K, i * K + K).reduce((a, b) => a + b, 0));
}

test('mixup: x = λ·x_i + (1−λ)·x_mirror, targets mixed with the same λ and summing to 1', () => {
  const x = randomImages(7);
  const cfg: MixConfig = { mixup: 0.2, cutmix: 0, classes: K };
  const r = mixBatch(x, [B, H, W, C], LABELS, cfg, randOf(3));
  assert.equal(r.mode, 'mixup');
  const lam = r.lambda;
  assert.ok(lam > 0 && lam < 1);
  const per = H * W * C;
  for (let i = 0; i < B; i++) {
    for (let e = 0; e < per; e += 17) {
      const want = lam * x[i * per + e] + (1 - lam) * x[(B - 1 - i) * per + e];
      assert.ok(Math.abs(r.images[i * per + e] - want) < 1e-6);
    }
    assert.ok(Math.abs(r.targets[i * K + LABELS[i]] - lam) < 1e-6);
    assert.ok(Math.abs(r.targets[i * K + LABELS[B - 1 - i]] - (1 - lam)) < 1e-6);
  }
  for (const s of rowSums(r.targets)) assert.ok(Math.abs(s - 1) < 1e-6);
  assert.deepEqual(Array.from(x), Array.from(randomImages(7)), 'input untouched');
});

test('cutmix: λ equals the share of each image that is still its own pixels (clipped boxes included)', () => {
  // Image i is the constant i + 1, so every pixel tells which image it came from.
  const x = new Float32Array(B * H * W * C);
  for (let i = 0; i < B; i++) x.fill(i + 1, i * H * W * C, (i + 1) * H * W * C);
  const cfg: MixConfig = { mixup: 0, cutmix: 1, classes: K, labelSmoothing: 0.1 };
  const rand = randOf(11);
  let clipped = 0;
  for (let trial = 0; trial < 40; trial++) {
    const r = mixBatch(x, [B, H, W, C], LABELS, cfg, rand);
    assert.equal(r.mode, 'cutmix');
    const box = r.box!;
    if (box.y0 === 0 || box.x0 === 0 || box.y1 === H || box.x1 === W) clipped++;
    for (let i = 0; i < B; i++) {
      let own = 0;
      for (let p = 0; p < H * W; p++) {
        const v = r.images[(i * H * W + p) * C];
        assert.ok(v === i + 1 || v === B - i, 'pixels come from the image or its mirror');
        if (v === i + 1) own++;
      }
      assert.ok(Math.abs(r.lambda - own / (H * W)) < 1e-12, `λ ${r.lambda} vs own share ${own / (H * W)}`);
      // With smoothing ε: own label gets λ(1 − ε + ε/K) + (1−λ)ε/K.
      const eps = 0.1;
      const wantOwn = r.lambda * (1 - eps + eps / K) + (1 - r.lambda) * (eps / K);
      assert.ok(Math.abs(r.targets[i * K + LABELS[i]] - wantOwn) < 1e-6);
    }
    for (const s of rowSums(r.targets)) assert.ok(Math.abs(s - 1) < 1e-5);
  }
  assert.ok(clipped > 0, 'some boxes were clipped at the border');
});

test('deterministic per seed; switch probability picks cutmix about half the time; prob 0 leaves the batch alone', () => {
  const x = randomImages(5);
  const cfg: MixConfig = { mixup: 0.2, cutmix: 1, classes: K };
  const run = (seed: number) => {
    const rand = randOf(seed);
    return Array.from({ length: 5 }, () => mixBatch(x, [B, H, W, C], LABELS, cfg, rand));
  };
  const a = run(99),
    b = run(99),
    c = run(100);
  assert.deepEqual(
    a.map((r) => [r.mode, r.lambda, Array.from(r.images), Array.from(r.targets)]),
    b.map((r) => [r.mode, r.lambda, Array.from(r.images), Array.from(r.targets)]),
  );
  assert.notDeepEqual(
    a.map((r) => r.lambda),
    c.map((r) => r.lambda),
  );

  const tiny = new Float32Array(2);
  const rand = randOf(4);
  let cut = 0;
  const n = 2000;
  for (let i = 0; i < n; i++)
    if (mixBatch(tiny, [2, 1, 1, 1], [0, 1], { mixup: 0.2, cutmix: 1, classes: 2 }, rand).mode === 'cutmix') cut++;
  assert.ok(Math.abs(cut / n - 0.5) < 5 * Math.sqrt(0.25 / n), `cutmix share ${cut / n}`);

  const none = mixBatch(x, [B, H, W, C], LABELS, { ...cfg, prob: 0 }, randOf(1));
  assert.equal(none.mode, 'none');
  assert.equal(none.lambda, 1);
  assert.deepEqual(Array.from(none.images), Array.from(x));
  assert.equal(none.targets[1 * K + 3], 1);
  assert.throws(() => mixBatch(x, [B, H, W, C], [0, 1, 2, 9], cfg, randOf(1)), /label 9 at batch index 3/);
});
