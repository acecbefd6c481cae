import { test } from 'node:test';
import assert from 'node:assert/strict';
import { axisTable, minMaxNormalise, resizeBilinear, resizePlane } from '../../ml/metrics/upsample.js';
import { assertAllClose } from '../assert-close.js';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => assertAllClose(a, b, { tol, scale: 1 });

// Input [[0,1],[2,3]] = X + 2Y, so the bilinear result is Xs[c] + 2·Ys[r] with the per-axis source positions.
test('bilinear 2×2 → 4×4, align_corners=false (half-pixel centres, negative source clamped to 0)', () => {
  // src = (d+0.5)/2 − 0.5 = −0.25→0, 0.25, 0.75, 1.25→clamped to the last pixel (weight on index 1 = 1)
  const out = resizeBilinear(new Float32Array([0, 1, 2, 3]), 2, 2, 4, 4);
  close(out, [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
});

test('bilinear 2×2 → 4×4, align_corners=true', () => {
  const t = 1 / 3;
  const out = resizeBilinear(new Float32Array([0, 1, 2, 3]), 2, 2, 4, 4, { alignCorners: true });
  const xs = [0, t, 2 * t, 1];
  const exp: number[] = [];
  for (const y of xs) for (const x of xs) exp.push(x + 2 * y);
  close(out, exp);
});

test('bilinear downsampling and several planes', () => {
  // 1×3 → 1×2: src = (d+0.5)·1.5 − 0.5 = 0.25, 1.75 → 0·0.75+10·0.25 = 2.5, 10·0.25+20·0.75 = 17.5
  close(resizeBilinear(new Float32Array([0, 10, 20]), 1, 3, 1, 2), [2.5, 17.5]);
  close(resizeBilinear(new Float32Array([0, 10, 20]), 1, 3, 1, 2, { alignCorners: true }), [0, 20]);
  close(resizeBilinear(new Float32Array([7, 9]), 1, 1, 2, 2, { planes: 2 }), [7, 7, 7, 7, 9, 9, 9, 9]);
  assert.throws(() => resizeBilinear(new Float32Array(3), 2, 2, 4, 4), /expected 1×2×2/);
});

test('min-max normalisation per map, constant map → zeros', () => {
  const out = minMaxNormalise(new Float32Array([2, 4, 6, 5, 5, 5]), 3);
  close(out, [0, 0.5, 1, 0, 0, 0]);
});

test('bilinear: align_corners True and False (torch conventions), mirror edge mode', () => {
  // 1×2 → 1×3, align_corners=True: [0, .5, 1]·(b − a) + a
  close(resizeBilinear(new Float32Array([2, 4]), 1, 2, 1, 3, { alignCorners: true }), [2, 3, 4]);
  // 1×2 → 1×4, align_corners=False: sources −.25→0 (clamped), .25, .75, 1.25→1 (edge)
  close(resizeBilinear(new Float32Array([0, 1]), 1, 2, 1, 4), [0, 0.25, 0.75, 1]);
  // mirror: −.25 reflects to .25, 1.25 to .75
  close(resizeBilinear(new Float32Array([0, 1]), 1, 2, 1, 4, { edge: 'mirror' }), [0.25, 0.25, 0.75, 0.75]);
  // 2-D, align_corners=True, 2×2 → 3×3: centre is the mean of the four corners.
  close(resizeBilinear(new Float32Array([0, 0, 0, 2]), 2, 2, 3, 3, { alignCorners: true }), [0, 0, 0, 0, 0.5, 1, 0, 1, 2]);
  // Two planes are resized independently.
  close(resizeBilinear(new Float32Array([0, 1, 5, 5]), 1, 2, 1, 3, { alignCorners: true, planes: 2 }), [0, 0.5, 1, 5, 5, 5]);
});

test('mirror edge reflects about the edge sample centres far outside the input (period 2·(n − 1))', () => {
  // 3 samples [0, 10, 20] → 9 outputs: s = (d + .5)/3 − .5 = −1/3, 0, 1/3, ..., 7/3.
  // Reflection: s < 0 → −s; s > 2 → 4 − s; then linear in the (reflected) coordinate: value = 10·s.
  const out = resizeBilinear(new Float32Array([0, 10, 20]), 1, 3, 1, 9, { edge: 'mirror' });
  const want = Array.from({ length: 9 }, (_, d) => {
    let s = (d + 0.5) / 3 - 0.5;
    if (s < 0) s = -s;
    if (s > 2) s = 4 - s;
    return 10 * s;
  });
  close(out, want, 1e-5);
});

/** Per-pixel torch rule written out directly (clamp edges), as an independent reference. */
function torchBilinear(src: Float32Array, h: number, w: number, H: number, W: number, ac: boolean): number[] {
  const coord = (d: number, nIn: number, nOut: number) =>
    ac ? (nOut > 1 ? (d * (nIn - 1)) / (nOut - 1) : 0) : Math.max(0, ((d + 0.5) * nIn) / nOut - 0.5);
  const out: number[] = [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const sy = coord(y, h, H);
      const sx = coord(x, w, W);
      const y0 = Math.min(Math.floor(sy), h - 1);
      const x0 = Math.min(Math.floor(sx), w - 1);
      const y1 = Math.min(y0 + 1, h - 1);
      const x1 = Math.min(x0 + 1, w - 1);
      const fy = sy - y0;
      const fx = sx - x0;
      const at = (r: number, c: number) => src[r * w + c];
      out.push((at(y0, x0) * (1 - fx) + at(y0, x1) * fx) * (1 - fy) + (at(y1, x0) * (1 - fx) + at(y1, x1) * fx) * fy);
    }
  return out;
}

test('clamp mode equals the per-pixel torch formula; flat regions stay exactly flat', () => {
  const src = new Float32Array(7 * 5).map((_, i) => Math.sin(i * 1.7) + (i % 3));
  for (const alignCorners of [false, true])
    for (const [H, W] of [
      [32, 20],
      [7, 5],
      [3, 11],
      [1, 1],
    ] as const)
      close(resizeBilinear(src, 7, 5, H, W, { alignCorners }), torchBilinear(src, 7, 5, H, W, alignCorners), 1e-6);
  // A constant map of a value that is not a short binary fraction upsamples to exactly that value.
  const v = Math.fround(0.1);
  const up = resizeBilinear(new Float32Array(12).fill(v), 3, 4, 17, 23);
  assert.ok(up.every((x) => x === v));
});

test('axisTable + resizePlane write one plane at an offset (the path Score-CAM, RISE and overlays use)', () => {
  const src = new Float32Array([9, 9, 0, 1, 2, 3]); // the plane starts at offset 2
  const out = new Float64Array(2 + 16).fill(-1);
  resizePlane(src, 2, 2, axisTable(2, 4), axisTable(2, 4), out, 2);
  close(Array.from(out.subarray(0, 2)), [-1, -1]);
  close(out.subarray(2), [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  assert.throws(() => axisTable(0, 4), /input size must be a positive integer/);
});
