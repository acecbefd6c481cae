import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colorize, jet, overlay } from '../../ml/saliency/overlay.js';
import { assertClose } from './helpers.js';

test('jet: endpoints and interior points follow matplotlib _jet_data piecewise-linear anchors', () => {
  assertClose(jet(0), [0, 0, 0.5]);
  assertClose(jet(1), [0.5, 0, 0]);
  // t = .5: red on (.35,0)–(.66,1): .15/.31; green on the (.375,1)–(.64,1) plateau; blue on (.34,1)–(.65,0)
  assertClose(jet(0.5), [0.15 / 0.31, 1, 1 - 0.16 / 0.31]);
  // t = .125: red 0, green anchor (.125, 0), blue plateau 1
  assertClose(jet(0.125), [0, 0, 1]);
  // t = .89: red anchor 1; green on (.64,1)–(.91,0): 1 − .25/.27; blue 0
  assertClose(jet(0.89), [1, 1 - 0.25 / 0.27, 0]);
  // t = .055 (blue halfway from .5 at 0 to 1 at .11)
  assertClose(jet(0.055), [0, 0, 0.75]);
  // Out of range and NaN are clamped.
  assert.deepEqual(jet(-3), jet(0));
  assert.deepEqual(jet(7), jet(1));
  assert.deepEqual(jet(NaN), jet(0));
});

test('overlay: (1 − α)·image + α·255·jet(map upsampled with half-pixel bilinear)', () => {
  const H = 1;
  const W = 4;
  const image = new Uint8Array(H * W * 3).fill(100);
  const out = overlay(image, H, W, new Float32Array([0, 1]), 1, 2, { alpha: 0.5 });
  // map [0, 1] → [0, .25, .75, 1] at W = 4
  const expect = [0, 0.25, 0.75, 1].flatMap((t) => jet(t).map((c) => Math.round(50 + 0.5 * 255 * c)));
  assert.deepEqual(Array.from(out), expect);
  // α = 0 returns the image, α = 1 the colour map.
  assert.deepEqual(Array.from(overlay(image, H, W, new Float32Array([0, 1]), 1, 2, { alpha: 0 })), Array.from(image));
  const full = overlay(image, H, W, new Float32Array([1, 1]), 1, 2, { alpha: 1 });
  assert.deepEqual(Array.from(full.subarray(0, 3)), [128, 0, 0]); // 255·0.5 = 127.5 → 128
  assert.deepEqual(Array.from(colorize(new Float32Array([0, 1]), 1, 2)), [0, 0, 128, 128, 0, 0]);
  assert.throws(() => overlay(image, H, W, new Float32Array(3), 1, 2), /overlay map has 3 values, expected 2/);
});
