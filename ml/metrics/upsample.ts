// Bilinear resizing of maps (the one resize of ml/metrics and ml/saliency) and min-max normalisation.
//
// Source coordinate of output index d along an axis of size n_in → n_out:
//   alignCorners false (F.interpolate default, half-pixel centres): s = (d + ½)·n_in/n_out − ½
//   alignCorners true  (torch UpsamplingBilinear2d, Score-CAM masks): s = d·(n_in − 1)/(n_out − 1)
//                                                                    (0 when n_out = 1)
// Outside [0, n_in − 1] the edge mode decides:
//   'clamp'  (default) repeats the edge sample: PyTorch clamps negative s to 0 and the upper
//            neighbour to n_in − 1, so the first output pixels of an upsampling copy the first
//            input pixel instead of extrapolating;
//   'mirror' reflects about the edge sample centres (skimage resize mode='reflect'), which the
//            official RISE mask upsampling relies on.

export const MINMAX_EPSILON = 2.220446049250313e-16;

/** Any flat numeric buffer a map or activation may be held in. */
export type FloatBuffer = Float32Array | Float64Array;

export type EdgeMode = 'clamp' | 'mirror';

export interface AxisOptions {
  alignCorners?: boolean;
  edge?: EdgeMode;
}

/** For each output index: the two source indices and the weight of the second. */
export interface AxisTable {
  i0: Int32Array;
  i1: Int32Array;
  t: Float64Array;
}

function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`resizeBilinear: ${name} must be a positive integer, got ${v}`);
}

function mirrorIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/** The interpolation taps of one axis (see the file header for the rule). */
export function axisTable(nIn: number, nOut: number, opts: AxisOptions = {}): AxisTable {
  checkSize('input size', nIn);
  checkSize('output size', nOut);
  const i0 = new Int32Array(nOut);
  const i1 = new Int32Array(nOut);
  const t = new Float64Array(nOut);
  const mirror = opts.edge === 'mirror';
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
 * Resizes one plane (rows of width w, at srcOffset) with precomputed axis tables into out at
 * outOffset. Separable: each source row that is needed is interpolated along x once, then each
 * output pixel is one lerp between two of those rows — a 7×7 map goes to 224×224 at about one
 * lerp per output pixel. The lerp form a + t·(b − a) returns a exactly where a = b, so flat
 * regions stay exactly flat (insertion/deletion orders ties by raster index).
 */
export function resizePlane(
  src: ArrayLike<number>,
  srcOffset: number,
  w: number,
  rows: AxisTable,
  cols: AxisTable,
  out: FloatBuffer,
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

export interface ResizeOptions extends AxisOptions {
  /** Number of consecutive h×w planes in `src` (e.g. N·C for an NCHW batch). Default 1. */
  planes?: number;
  out?: Float32Array;
}

/** Bilinear resize of `planes` consecutive h×w maps to H×W (see the file header for the exact rule). */
export function resizeBilinear(src: FloatBuffer, h: number, w: number, H: number, W: number, opts: ResizeOptions = {}): Float32Array {
  const planes = opts.planes ?? 1;
  for (const [name, v] of [
    ['h', h],
    ['w', w],
    ['H', H],
    ['W', W],
    ['planes', planes],
  ] as const)
    checkSize(name, v);
  if (src.length !== planes * h * w) throw new Error(`resizeBilinear: input has ${src.length} values, expected ${planes}×${h}×${w}`);
  const out = opts.out ?? new Float32Array(planes * H * W);
  if (out.length !== planes * H * W)
    throw new Error(`resizeBilinear: output buffer has ${out.length} values, expected ${planes}×${H}×${W}`);
  const rows = axisTable(h, H, opts);
  const cols = axisTable(w, W, opts);
  for (let p = 0; p < planes; p++) resizePlane(src, p * h * w, w, rows, cols, out, p * H * W);
  return out;
}

/**
 * In-place-capable min-max normalisation of each of `planes` consecutive maps of `size` values:
 * (x − min)/(max − min + ε). A constant map becomes all zeros (callers detect that with classifyMap).
 */
export function minMaxNormalise(
  src: Float32Array,
  size: number = src.length,
  eps: number = MINMAX_EPSILON,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  if (!Number.isInteger(size) || size < 1 || src.length % size !== 0)
    throw new Error(`minMaxNormalise: ${src.length} values are not a whole number of maps of ${size}`);
  if (out.length !== src.length) throw new Error(`minMaxNormalise: output buffer has ${out.length} values, expected ${src.length}`);
  for (let b = 0; b < src.length; b += size) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = b; i < b + size; i++) {
      const v = src[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const den = hi - lo + eps;
    for (let i = b; i < b + size; i++) out[i] = (src[i] - lo) / den;
  }
  return out;
}
