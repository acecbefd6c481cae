// ROAD's noisy linear imputation and pixel orders, against systems solved by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noisyLinearImpute } from '../../ml/metrics/imputation.js';
import { roadEval, roadJitter, roadKeep, roadOrder, ROAD_DEFAULTS } from '../../ml/metrics/road.js';

test('imputation: a 3×3 image with two removed pixels, solved by hand', () => {
  //   1 2 3
  //   4 c 6      c = centre, k = corner; direct neighbours weigh 1/6, diagonal ones 1/12.
  //   7 8 k
  // centre: all 8 neighbours in the image (weights sum to 1):
  //   c = (2+4+6+8)/6 + (1+3+7)/12 + k/12  →  12c − k = 51
  // corner: in-image neighbours 6 and 8 (1/6 each) and c (1/12), total 5/12:
  //   (5/12)k = (6+8)/6 + c/12            →  5k − c = 28
  // ⇒ 59c = 283: c = 283/59, k = 12c − 51 = 387/59.
  const img = Float32Array.from([1, 2, 3, 4, 0, 6, 7, 8, 0]);
  const keep = Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 1, 0]);
  const out = noisyLinearImpute(img, keep, 3, 3, { noise: [0] });
  assert.ok(Math.abs(out[4] - 283 / 59) < 1e-6, `centre ${out[4]}`);
  assert.ok(Math.abs(out[8] - 387 / 59) < 1e-6, `corner ${out[8]}`);
  assert.deepEqual(
    Array.from(out).filter((_, j) => keep[j]),
    [1, 2, 3, 4, 6, 7, 8],
    'kept pixels unchanged',
  );
});

test('imputation: channels solved separately, noise added channel-major in image units, bad input named', () => {
  // A 1×3 row: only the left/right neighbours exist, so the middle pixel is their mean.
  const img = Float32Array.from([2, 0, 4, 10, 0, 30]);
  const keep = Uint8Array.from([1, 0, 1]);
  const draws = [0.5, -2];
  let k = 0;
  const out = noisyLinearImpute(img, keep, 1, 3, { noise: [0.1, 1], normal: () => draws[k++]! });
  assert.ok(Math.abs(out[1] - (3 + 0.1 * 0.5)) < 1e-6, `channel 0 ${out[1]}`);
  assert.ok(Math.abs(out[4] - (20 + 1 * -2)) < 1e-5, `channel 1 ${out[4]}`);
  assert.throws(() => noisyLinearImpute(img, Uint8Array.from([0, 0, 0]), 1, 3, { noise: [0, 0] }), /every pixel is removed/);
  assert.throws(() => noisyLinearImpute(img, keep, 1, 3, { noise: [0.1, 0.1] }), /needs a normal/);
  assert.throws(() => noisyLinearImpute(img, Uint8Array.from([1, 0]), 1, 3, { noise: [0, 0] }), /mask has 2 pixels/);
});

test('imputation: a large removed block is the discrete harmonic fill (a linear ramp is reproduced exactly)', () => {
  // The weights are symmetric, so the mean of the 8 neighbours of a plane a + b·x + c·y is the plane
  // itself: a ramp with its interior removed must come back unchanged (up to the solver tolerance).
  const H = 24;
  const img = new Float32Array(H * H);
  const keep = new Uint8Array(H * H).fill(1);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < H; x++) {
      img[y * H + x] = 0.5 + 0.02 * x - 0.01 * y;
      if (y > 1 && y < H - 2 && x > 1 && x < H - 2) keep[y * H + x] = 0;
    }
  const out = noisyLinearImpute(Float32Array.from(img.map((v, j) => (keep[j] ? v : 0))), keep, H, H, { noise: [0] });
  let err = 0;
  for (let j = 0; j < H * H; j++) err = Math.max(err, Math.abs(out[j] - img[j]));
  assert.ok(err < 1e-5, `max error ${err}`);
});

test('imputation: matches a dense Gaussian-elimination solve on a 12×12 mask with 60 % removed, 3 channels', () => {
  const H = 12;
  const W = 12;
  const C = 3;
  const plane = H * W;
  let seed = 7;
  // A fixed linear congruential stream, so the mask and pixels are the same on every run.
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const img = Float32Array.from({ length: C * plane }, () => rnd());
  const order = Array.from({ length: plane }, (_, i) => i).sort(() => rnd() - 0.5);
  const keep = new Uint8Array(plane).fill(1);
  for (let k = 0; k < Math.round(0.6 * plane); k++) keep[order[k]!] = 0;
  const unknown = Array.from({ length: plane }, (_, i) => i).filter((i) => !keep[i]);
  const n = unknown.length;
  const col = new Map(unknown.map((pix, u) => [pix, u]));
  // The equations written from the definition: a removed pixel's value times its in-image weight sum
  // equals the weighted sum of its in-image neighbours (removed ones as unknowns).
  const stencil: Array<[number, number, number]> = [];
  for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) if (dy || dx) stencil.push([dy, dx, dy && dx ? 1 / 12 : 1 / 6]);
  for (let c = 0; c < C; c++) {
    const A = Array.from({ length: n }, () => new Float64Array(n + 1));
    unknown.forEach((pix, u) => {
      const y = Math.floor(pix / W);
      const x = pix % W;
      for (const [dy, dx, w] of stencil) {
        if (y + dy < 0 || y + dy >= H || x + dx < 0 || x + dx >= W) continue;
        const j = (y + dy) * W + x + dx;
        A[u]![u] += w;
        if (keep[j]) A[u]![n] += w * img[c * plane + j]!;
        else A[u]![col.get(j)!] -= w;
      }
    });
    // Gaussian elimination with partial pivoting, then back substitution.
    for (let k = 0; k < n; k++) {
      let piv = k;
      for (let i = k + 1; i < n; i++) if (Math.abs(A[i]![k]!) > Math.abs(A[piv]![k]!)) piv = i;
      [A[k], A[piv]] = [A[piv]!, A[k]!];
      for (let i = k + 1; i < n; i++) {
        const f = A[i]![k]! / A[k]![k]!;
        if (f !== 0) for (let j = k; j <= n; j++) A[i]![j] -= f * A[k]![j]!;
      }
    }
    const sol = new Float64Array(n);
    for (let k = n - 1; k >= 0; k--) {
      let v = A[k]![n]!;
      for (let j = k + 1; j < n; j++) v -= A[k]![j]! * sol[j]!;
      sol[k] = v / A[k]![k]!;
    }
    const out = noisyLinearImpute(img, keep, H, W, { noise: [0, 0, 0] });
    unknown.forEach((pix, u) => {
      // The output is float32: allow its rounding (half an ulp, ≤ 2⁻²⁴ relative) on top of 1e-9.
      const got = out[c * plane + pix]!;
      assert.ok(Math.abs(got - sol[u]!) <= 1e-9 + Math.abs(sol[u]!) * 2 ** -24, `channel ${c} pixel ${pix}: ${got} vs ${sol[u]}`);
    });
  }
});

test('ROAD order: rescaled map descending, MoRF removes the top ⌊HW·p⌋, LeRF keeps them (official asymmetry)', () => {
  const map = [0.2, 0.9, 0.5, 0.1]; // descending: 1, 2, 0, 3
  const order = roadOrder(map, [0, 0, 0, 0], 1e-5);
  assert.deepEqual(Array.from(order), [1, 2, 0, 3]);
  // p = 0.5 of 4 pixels: MoRF removes pixels 1, 2; LeRF keeps 1, 2 and removes 0, 3.
  assert.deepEqual(Array.from(roadKeep(order, 0.5, 'morf')), [1, 0, 0, 1]);
  assert.deepEqual(Array.from(roadKeep(order, 0.5, 'lerf')), [0, 1, 1, 0]);
  // ⌊4·0.3⌋ = 1.
  assert.deepEqual(Array.from(roadKeep(order, 0.3, 'morf')), [1, 0, 1, 1]);
  // A constant map is ordered by the jitter alone (the official tie-break), ties by raster index.
  assert.deepEqual(Array.from(roadOrder([1, 1, 1], [0, 2e-4, 1e-4], 1e-5)), [1, 2, 0]);
  assert.deepEqual(Array.from(roadOrder([1, 1, 1], [0, 0, 0], 1e-5)), [0, 1, 2]);
  // The jitter field is 1e-4·N(0,1), fixed per (seed, order, percentage), the same for every image.
  const j = roadJitter(1000, 'morf', 2, ROAD_DEFAULTS);
  assert.deepEqual(j, roadJitter(1000, 'morf', 2, ROAD_DEFAULTS));
  assert.notDeepEqual(j, roadJitter(1000, 'lerf', 2, ROAD_DEFAULTS));
  const sd = Math.sqrt(j.reduce((s, x) => s + x * x, 0) / j.length);
  assert.ok(sd > 0.8e-4 && sd < 1.2e-4, `jitter sd ${sd}`);
});

test('ROAD eval: a score that reads the removed pixels gives a hand-computed MoRF/LeRF probability', async () => {
  // One 1-channel 1×4 image, a ramp 0, 1, 2, 3; the map ranks pixel 3 first, then 2, 1, 0; the
  // "model" gives class 0 the probability pixel3/10. MoRF p = 0.25 removes pixel 3, whose only
  // in-image neighbour is pixel 2 = 2 (a 1-row image has no vertical or diagonal ones), so it
  // becomes 2 → 0.2. p = 0.5 removes pixels 3 and 2: x2 = (1 + x3)/2 and x3 = x2 ⇒ both 1 → 0.1.
  const images = Float32Array.from([0, 1, 2, 3]);
  const score = async (b: Float32Array, n: number) => {
    const out = new Float32Array(2 * n);
    for (let r = 0; r < n; r++) {
      out[2 * r] = b[r * 4 + 3] / 10;
      out[2 * r + 1] = 1 - out[2 * r];
    }
    return out;
  };
  const road = { ...ROAD_DEFAULTS, percentages: [0.25, 0.5], noise: 0, jitter: 0 };
  const r = await roadEval({
    images,
    dims: { c: 1, h: 1, w: 4 },
    saliency: Float32Array.from([0, 0.1, 0.5, 1]),
    ids: [7],
    targets: [0],
    labels: [1],
    std: [1],
    score,
    maxBatch: 8,
    road,
  });
  const close = (a: ArrayLike<number>, b: number[]) =>
    assert.ok(
      Array.from(a).every((v, i) => Math.abs(v - b[i]!) < 1e-6),
      `${Array.from(a)} vs ${b}`,
    );
  close(r.prob.morf!, [0.2, 0.1]);
  close(r.mean.morf!, [0.15]);
  // LeRF p = 0.25 keeps pixel 3 only; p = 0.5 keeps pixels 3 and 2: the score reads 3 both times.
  close(r.prob.lerf!, [0.3, 0.3]);
  // Label 1: class 1 (1 − s) wins on every perturbed image.
  assert.deepEqual(Array.from(r.correct.morf!), [1, 1]);
  await assert.rejects(
    roadEval({
      images,
      dims: { c: 1, h: 1, w: 4 },
      saliency: Float32Array.from([0, 0, 0, 1]),
      ids: [0],
      targets: [0],
      labels: [0],
      std: [1],
      score,
      maxBatch: 1,
      road: { ...road, percentages: [1] },
    }),
    /percentages must lie in \(0, 1\)/,
  );
});
