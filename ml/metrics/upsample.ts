// Bilinear resizing of saliency maps and min-max normalisation.
//
// Semantics follow torch.nn.functional.interpolate(mode='bilinear'):
// - alignCorners=false (half-pixel centres): src = (dst + 0.5)·(in/out) − 0.5, and negative source
//   coordinates are clamped to 0 (PyTorch does this for linear modes), so the first output pixels
//   of an upsampling copy the first input pixel instead of extrapolating;
// - alignCorners=true: src = dst·(in − 1)/(out − 1) (0 when out = 1), corner pixels coincide.

export const MINMAX_EPSILON = 2.220446049250313e-16;

/** Per-axis source taps: lower index, upper index and weight of the upper one. */
interface AxisTaps {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

function axisTaps(inSize: number, outSize: number, alignCorners: boolean): AxisTaps {
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  for (let d = 0; d < outSize; d++) {
    let src: number;
    if (alignCorners) src = outSize > 1 ? (d * (inSize - 1)) / (outSize - 1) : 0;
    else src = Math.max(0, (d + 0.5) * (inSize / outSize) - 0.5);
    let i0 = Math.floor(src);
    if (i0 > inSize - 1) i0 = inSize - 1;
    lo[d] = i0;
    hi[d] = Math.min(i0 + 1, inSize - 1);
    frac[d] = src - i0;
  }
  return { lo, hi, frac };
}

export interface ResizeOptions {
  alignCorners?: boolean;
  /** Number of consecutive h×w planes in `src` (e.g. N·C for an NCHW batch). Default 1. */
  planes?: number;
  out?: Float32Array;
}

/** Bilinear resize of `planes` consecutive h×w maps to H×W (see the file header for the exact rule). */
export function resizeBilinear(
  src: Float32Array,
  h: number,
  w: number,
  H: number,
  W: number,
  opts: ResizeOptions = {},
): Float32Array {
  const planes = opts.planes ?? 1;
  for (const [name, v] of [['h', h], ['w', w], ['H', H], ['W', W], ['planes', planes]] as const)
    if (!Number.isInteger(v) || v < 1) throw new Error(`resizeBilinear: ${name} must be a positive integer, got ${v}`);
  if (src.length !== planes * h * w) throw new Error(`resizeBilinear: input has ${src.length} values, expected ${planes}×${h}×${w}`);
  const out = opts.out ?? new Float32Array(planes * H * W);
  if (out.length !== planes * H * W) throw new Error(`resizeBilinear: output buffer has ${out.length} values, expected ${planes}×${H}×${W}`);
  const ac = opts.alignCorners ?? false;
  const ty = axisTaps(h, H, ac);
  const tx = axisTaps(w, W, ac);
  for (let p = 0; p < planes; p++) {
    const sb = p * h * w;
    const ob = p * H * W;
    for (let y = 0; y < H; y++) {
      const r0 = sb + ty.lo[y] * w;
      const r1 = sb + ty.hi[y] * w;
      const fy = ty.frac[y];
      for (let x = 0; x < W; x++) {
        const c0 = tx.lo[x];
        const c1 = tx.hi[x];
        const fx = tx.frac[x];
        const top = src[r0 + c0] * (1 - fx) + src[r0 + c1] * fx;
        const bot = src[r1 + c0] * (1 - fx) + src[r1 + c1] * fx;
        out[ob + y * W + x] = top * (1 - fy) + bot * fy;
      }
    }
  }
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
