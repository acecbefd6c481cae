import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boxesToMask, energyPointingGame, pointingGame } from '../../ml/metrics/localisation.js';
import { aggregate, classifyMap, keptIndices, saliencyToImage } from '../../ml/metrics/maps.js';
import { resolveProtocol } from '../../ml/metrics/protocol.js';

const H = 6;
const W = 6;
function mapWithMaxAt(y: number, x: number): Float32Array {
  const m = new Float32Array(H * W).fill(0.1);
  m[y * W + x] = 1;
  return m;
}
function maskOf(...pixels: [number, number][]): Uint8Array {
  const m = new Uint8Array(H * W);
  for (const [y, x] of pixels) m[y * W + x] = 1;
  return m;
}

test('pointing game: hit iff the nearest object pixel is within the tolerance', () => {
  const map = mapWithMaxAt(0, 0);
  // object pixel 3 to the right: distance 3
  assert.equal(pointingGame(map, { mask: maskOf([0, 3]) }, H, W, 2).hit, 0);
  assert.equal(pointingGame(map, { mask: maskOf([0, 3]) }, H, W, 3).hit, 1);
  // object pixel at (3,4): distance √(9+16) = 5
  assert.equal(pointingGame(map, { mask: maskOf([3, 4]) }, H, W, 5).hit, 1);
  assert.equal(pointingGame(map, { mask: maskOf([3, 4]) }, H, W, 4.9).hit, 0);
  // nearest of several pixels counts; maximum inside the object is a hit with zero tolerance
  assert.equal(pointingGame(map, { mask: maskOf([5, 5], [0, 1]) }, H, W, 1).hit, 1);
  assert.equal(pointingGame(mapWithMaxAt(2, 2), { mask: maskOf([2, 2]) }, H, W, 0).hit, 1);
  // first maximum in raster order
  const tie = mapWithMaxAt(4, 4);
  tie[1 * W + 1] = 1;
  const r = pointingGame(tie, { mask: maskOf([4, 4]) }, H, W, 0);
  assert.deepEqual([r.y, r.x, r.hit], [1, 1, 0]);
  // boxes: inclusive corners; box x 2..3, y 1..2 at distance 2 from (0,0)→(1,2)? nearest pixel (1,2): √(1+4)
  assert.equal(pointingGame(map, { boxes: [{ x0: 2, y0: 1, x1: 3, y1: 2 }] }, H, W, 2.2).hit, 0);
  assert.equal(pointingGame(map, { boxes: [{ x0: 2, y0: 1, x1: 3, y1: 2 }] }, H, W, 2.3).hit, 1);
  // degenerate: constant map or empty object → NaN
  assert.ok(Number.isNaN(pointingGame(new Float32Array(H * W), { mask: maskOf([0, 0]) }, H, W).hit));
  assert.ok(Number.isNaN(pointingGame(map, { mask: maskOf() }, H, W).hit));
});

test('boxesToMask: union of inclusive boxes clipped to the image', () => {
  const m = boxesToMask(
    [
      { x0: 0, y0: 0, x1: 1, y1: 0 },
      { x0: 1, y0: 0, x1: 2, y1: 1 },
      { x0: 5, y0: 5, x1: 9, y1: 9 },
    ],
    3,
    6,
  );
  assert.deepEqual(Array.from(m), [1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('energy pointing game: share of the saliency mass inside the object', () => {
  // 2×3 map [[1,2,3],[4,0,0]], object = first column → (1+4)/10
  const map = new Float32Array([1, 2, 3, 4, 0, 0]);
  assert.ok(Math.abs(energyPointingGame(map, { mask: [1, 0, 0, 1, 0, 0] }, 2, 3) - 0.5) < 1e-12);
  // box over columns 1..2 of row 0 → (2+3)/10; two overlapping boxes count their union once
  assert.ok(Math.abs(energyPointingGame(map, { boxes: [{ x0: 1, y0: 0, x1: 2, y1: 0 }] }, 2, 3) - 0.5) < 1e-12);
  assert.ok(
    Math.abs(
      energyPointingGame(
        map,
        {
          boxes: [
            { x0: 1, y0: 0, x1: 2, y1: 0 },
            { x0: 2, y0: 0, x1: 2, y1: 1 },
          ],
        },
        2,
        3,
      ) - 0.5,
    ) < 1e-12,
  );
  assert.ok(Number.isNaN(energyPointingGame(new Float32Array(6), { mask: [1, 0, 0, 0, 0, 0] }, 2, 3)));
  assert.throws(() => energyPointingGame(map, { mask: [1] }, 2, 3), /mask has 1 values, expected 2×3/);
});

test('degenerate maps are classified, counted and left out of means', () => {
  assert.equal(classifyMap([0, 0.5, 1]), 'ok');
  assert.equal(classifyMap([0, 0, 0]), 'constant');
  assert.equal(classifyMap([0.3, 0.3, 0.3]), 'constant');
  assert.equal(classifyMap([0.3, NaN, 1]), 'nan');
  assert.equal(classifyMap([0, Infinity]), 'nan');
  const a = aggregate([1, 3, 100, 7, NaN], ['ok', 'ok', 'constant', 'nan', 'ok']);
  assert.deepEqual(a, { mean: 2, n: 2, excluded: { constant: 1, nan: 1, nonFinite: 1 } });
  const b = aggregate([1, 3, 100], ['ok', 'ok', 'constant'], { includeConstant: true });
  assert.equal(b.mean, 104 / 3);
  assert.deepEqual(keptIndices([1, 3, 100, 7, NaN], ['ok', 'ok', 'constant', 'nan', 'ok']), [0, 1]);
});

test('saliencyToImage follows the protocol upsampling rule', () => {
  const p = resolveProtocol('ca-stream');
  const up = saliencyToImage(new Float32Array([0, 1, 2, 3]), 1, 2, 2, 4, 4, p);
  assert.ok(Math.abs(up[1] - 0.25) < 1e-7); // half-pixel centres
  const upT = saliencyToImage(
    new Float32Array([0, 1, 2, 3]),
    1,
    2,
    2,
    4,
    4,
    resolveProtocol('ca-stream', { saliency: { upsample: { alignCorners: true } } }),
  );
  assert.ok(Math.abs(upT[1] - 1 / 3) < 1e-7);
  const upN = saliencyToImage(
    new Float32Array([0, 1, 2, 3]),
    1,
    2,
    2,
    4,
    4,
    resolveProtocol('ca-stream', { saliency: { renormalise: true } }),
  );
  assert.ok(Math.abs(upN[15] - 1) < 1e-6 && upN[0] === 0);
});

test('class-balanced pointing accuracy: mean over classes of per-class hit rates', async () => {
  const { classBalancedMean } = await import('../../ml/metrics/localisation.js');
  // class 0: hits 1,0,0 → 1/3; class 1: 1,1 → 1; NaN (degenerate) left out → (1/3 + 1)/2 = 2/3
  const r = classBalancedMean([1, 0, 0, 1, 1, NaN], [0, 0, 0, 1, 1, 1]);
  assert.ok(Math.abs(r.mean - 2 / 3) < 1e-12);
  assert.deepEqual([r.classes, r.n, r.excluded], [2, 5, 1]);
});
