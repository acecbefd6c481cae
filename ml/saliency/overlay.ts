// Heat-map overlays for reports: matplotlib's 'jet' colour map and an alpha blend onto the image.
// Pure functions on typed arrays; the caller encodes PNGs (sharp).

import { axisTable, resizePlane } from '../metrics/upsample.js';
import { checkLength, checkPositiveInt, type Floats } from './types.js';

/** (x, value) anchors of one colour channel; linear in between (matplotlib `_jet_data`). */
type Segments = ReadonlyArray<readonly [number, number]>;

const JET_RED: Segments = [
  [0, 0],
  [0.35, 0],
  [0.66, 1],
  [0.89, 1],
  [1, 0.5],
];
const JET_GREEN: Segments = [
  [0, 0],
  [0.125, 0],
  [0.375, 1],
  [0.64, 1],
  [0.91, 0],
  [1, 0],
];
const JET_BLUE: Segments = [
  [0, 0.5],
  [0.11, 1],
  [0.34, 1],
  [0.65, 0],
  [1, 0],
];

function piecewise(seg: Segments, t: number): number {
  for (let i = 1; i < seg.length; i++) {
    const [x1, y1] = seg[i];
    if (t <= x1) {
      const [x0, y0] = seg[i - 1];
      return y0 + ((t - x0) / (x1 - x0)) * (y1 - y0);
    }
  }
  return seg[seg.length - 1][1];
}

/**
 * Continuous jet colour of t (clamped to [0, 1]; NaN → 0) as [r, g, b] in [0, 1]. matplotlib
 * samples the same curves into a 256-entry table; this is the exact curve it samples.
 */
export function jet(t: number): [number, number, number] {
  const x = Number.isNaN(t) ? 0 : Math.min(1, Math.max(0, t));
  return [piecewise(JET_RED, x), piecewise(JET_GREEN, x), piecewise(JET_BLUE, x)];
}

export interface OverlayOptions {
  /** Weight of the heat map: out = (1 − α)·image + α·255·jet(map). Default 0.5. */
  alpha?: number;
}

/**
 * Blend a [0, 1] saliency map (h×w, upsampled bilinearly with half-pixel centres to H×W, as the
 * metrics use it) onto an interleaved RGB image (H×W×3, uint8). Returns a new H×W×3 uint8 buffer.
 */
export function overlay(
  imageRGB: Uint8Array | Uint8ClampedArray,
  H: number,
  W: number,
  map01: Floats,
  h: number,
  w: number,
  opts: OverlayOptions = {},
): Uint8Array {
  checkPositiveInt('H', H);
  checkPositiveInt('W', W);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  checkLength('overlay image', imageRGB, H * W * 3, `H×W×3 = ${H}×${W}×3`);
  checkLength('overlay map', map01, h * w, `h×w = ${h}×${w}`);
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`saliency: overlay alpha must be in [0, 1], got ${alpha}`);
  const up = new Float64Array(H * W);
  resizePlane(map01, 0, w, axisTable(h, H, { alignCorners: false }), axisTable(w, W, { alignCorners: false }), up, 0);
  const out = new Uint8Array(H * W * 3);
  for (let i = 0; i < H * W; i++) {
    const [r, g, b] = jet(up[i]);
    const o = i * 3;
    out[o] = Math.round((1 - alpha) * imageRGB[o] + alpha * 255 * r);
    out[o + 1] = Math.round((1 - alpha) * imageRGB[o + 1] + alpha * 255 * g);
    out[o + 2] = Math.round((1 - alpha) * imageRGB[o + 2] + alpha * 255 * b);
  }
  return out;
}

/** The map alone as an H×W×3 jet image (alpha = 1 without an image). */
export function colorize(map01: Floats, h: number, w: number): Uint8Array {
  checkLength('colorize map', map01, h * w, `h×w = ${h}×${w}`);
  const out = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = jet(map01[i]);
    out[i * 3] = Math.round(255 * r);
    out[i * 3 + 1] = Math.round(255 * g);
    out[i * 3 + 2] = Math.round(255 * b);
  }
  return out;
}
