// Bilinear resizing of channel-major maps. Written here because ml/metrics (which was to export
// one) did not exist when the saliency methods needed it.
//
// Source coordinate of output index i along an axis of size n_in → n_out:
//   alignCorners true  (torch UpsamplingBilinear2d, Score-CAM masks): s = i·(n_in − 1)/(n_out − 1)
//   alignCorners false (F.interpolate default, skimage/OpenCV half-pixel centres):
//                                                                      s = (i + ½)·n_in/n_out − ½
// Outside [0, n_in − 1] the boundary decides: 'clamp' repeats the edge sample (torch clamps s at 0
// and the upper neighbour at n_in − 1, which is the same thing); 'mirror' reflects about the edge
// sample centres (skimage resize mode='reflect', used by the official RISE mask upsampling).

import { checkLength, checkPositiveInt, type Floats } from './types.js';

export interface BilinearOptions {
  alignCorners: boolean;
  boundary?: 'clamp' | 'mirror';
}

/** For each output index: the two source indices and the weight of the second. */
export interface AxisTable {
  i0: Int32Array;
  i1: Int32Array;
  t: Float64Array;
}

function mirrorIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

export function axisTable(nIn: number, nOut: number, opts: BilinearOptions): AxisTable {
  checkPositiveInt('input size', nIn);
  checkPositiveInt('output size', nOut);
  const i0 = new Int32Array(nOut);
  const i1 = new Int32Array(nOut);
  const t = new Float64Array(nOut);
  const mirror = opts.boundary === 'mirror';
  for (let o = 0; o < nOut; o++) {
    let s: number;
    if (opts.alignCorners) s = nOut > 1 ? (o * (nIn - 1)) / (nOut - 1) : 0;
    else s = ((o + 0.5) * nIn) / nOut - 0.5;
    if (mirror) {
      const f = Math.floor(s);
      i0[o] = mirrorIndex(f, nIn);
      i1[o] = mirrorIndex(f + 1, nIn);
      t[o] = s - f;
    } else {
      if (s < 0) s = 0;
      const f = Math.min(Math.floor(s), nIn - 1);
      i0[o] = f;
      i1[o] = Math.min(f + 1, nIn - 1);
      t[o] = s - f;
    }
  }
  return { i0, i1, t };
}

/**
 * Resize one plane (h rows of width w, at srcOffset) to H×W with precomputed axis tables, writing
 * into out at outOffset. Separable: each source row is interpolated along x once (h×W values),
 * then each output pixel is one lerp between two of those rows — a 7×7 map goes to 224×224 at
 * about one lerp per output pixel.
 */
export function resizePlane(
  src: Floats,
  srcOffset: number,
  w: number,
  rows: AxisTable,
  cols: AxisTable,
  out: Float32Array | Float64Array,
  outOffset: number,
): void {
  const H = rows.t.length;
  const W = cols.t.length;
  let h = 0;
  for (let y = 0; y < H; y++) h = Math.max(h, rows.i0[y] + 1, rows.i1[y] + 1);
  const tmp = new Float64Array(h * W);
  for (let r = 0; r < h; r++) {
    const row = srcOffset + r * w;
    const o = r * W;
    for (let x = 0; x < W; x++) {
      const a = src[row + cols.i0[x]];
      tmp[o + x] = a + cols.t[x] * (src[row + cols.i1[x]] - a);
    }
  }
  for (let y = 0; y < H; y++) {
    const r0 = rows.i0[y] * W;
    const r1 = rows.i1[y] * W;
    const ty = rows.t[y];
    const o = outOffset + y * W;
    for (let x = 0; x < W; x++) {
      const top = tmp[r0 + x];
      out[o + x] = top + ty * (tmp[r1 + x] - top);
    }
  }
}

/** Resize C channel-major planes (C×h×w) to C×H×W. */
export function resizeBilinear(
  src: Floats,
  C: number,
  h: number,
  w: number,
  H: number,
  W: number,
  opts: BilinearOptions,
): Float32Array {
  checkPositiveInt('channels', C);
  checkLength('bilinear input', src, C * h * w, `C×h×w = ${C}×${h}×${w}`);
  const rows = axisTable(h, H, opts);
  const cols = axisTable(w, W, opts);
  const out = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) resizePlane(src, c * h * w, w, rows, cols, out, c * H * W);
  return out;
}
