// Model-independent baseline maps. AD and AI can be gamed by near-constant maps (an all-ones map
// leaves the image untouched: AD = 0), so every report shows these next to the real methods.
// They are NOT min-max normalised ('ones' would otherwise collapse to zeros), and never flagged
// degenerate: being constant is the point of 'ones', and a metric stage that skips degenerate maps
// must still score the baselines.

import { mulberry32 } from './rng.js';
import { checkPositiveInt, type SaliencyMap } from './types.js';

function checkSize(h: number, w: number): void {
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
}

/** I.i.d. uniform [0, 1) values from a seeded stream (seed per image keeps maps reproducible). */
export function randomBaseline(h: number, w: number, seed: number): SaliencyMap {
  checkSize(h, w);
  const rand = mulberry32(seed);
  const map = new Float32Array(h * w);
  for (let i = 0; i < map.length; i++) map[i] = rand();
  return { map, h, w, degenerate: false };
}

/**
 * Centre prior: exp(−(y−c_y)²/(2σ_y²) − (x−c_x)²/(2σ_x²)) with the centre at the middle of the
 * pixel grid ((h−1)/2, (w−1)/2) and σ a quarter of the side (σ_y = h/4, σ_x = w/4); divided by
 * its maximum so the peak is 1 even on even-sized grids.
 */
export function centerBaseline(h: number, w: number): SaliencyMap {
  checkSize(h, w);
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const sy = h / 4;
  const sx = w / 4;
  const map = new Float32Array(h * w);
  let peak = 0;
  const vals = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = Math.exp(-((y - cy) ** 2) / (2 * sy * sy) - (x - cx) ** 2 / (2 * sx * sx));
      vals[y * w + x] = v;
      if (v > peak) peak = v;
    }
  }
  for (let i = 0; i < map.length; i++) map[i] = vals[i] / peak;
  return { map, h, w, degenerate: false };
}

/** All ones: the "fake CAM" that keeps the whole image. */
export function onesBaseline(h: number, w: number): SaliencyMap {
  checkSize(h, w);
  return { map: new Float32Array(h * w).fill(1), h, w, degenerate: false };
}
