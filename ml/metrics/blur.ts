// Gaussian blur used as the insertion substrate.
//
// The original evaluation (RISE, reused by CA-Stream) builds its kernel as
// scipy.ndimage.gaussian_filter(dirac, sigma) — i.e. a Gaussian-filtered k×k Dirac in scipy's
// default 'reflect' mode — and not as a sampled Gaussian. For small k and large sigma the reflections
// fold the wide Gaussian back onto the k×k support, so the result is nearly a box filter
// (5×5, σ 5 → all weights ≈ 0.04). We reproduce that construction exactly.

/** A square 2-D kernel, row-major, `size × size`. */
export interface Kernel2d {
  size: number;
  data: Float64Array;
  /** When set, data[r·size + c] = separable[r]·separable[c] and blurImage filters rows then columns. */
  separable?: Float64Array;
}

/** Boundary handling of the image convolution. `zero` is what the original code does. */
export type BlurPadding = 'zero' | 'reflect';

/**
 * scipy's 1-D Gaussian kernel: radius = int(truncate·σ + 0.5), weights exp(−x²/2σ²) normalised
 * to sum 1 (x = −radius..radius).
 */
export function scipyGaussianKernel1d(sigma: number, truncate = 4.0): Float64Array {
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new Error(`gaussian kernel: sigma must be a positive number, got ${sigma}`);
  if (!(truncate > 0)) throw new Error(`gaussian kernel: truncate must be positive, got ${truncate}`);
  const radius = Math.trunc(truncate * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let x = -radius; x <= radius; x++) {
    const v = Math.exp((-0.5 * x * x) / (sigma * sigma));
    w[x + radius] = v;
    sum += v;
  }
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

/**
 * Index into a length-n signal under scipy's 'reflect' extension (half-sample symmetric:
 * `d c b a | a b c d | d c b a`), valid for any integer i.
 */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/**
 * scipy.ndimage.gaussian_filter1d applied to a length-`size` Dirac centred at size//2 (reflect mode):
 * out[i] = Σ_j w[j] · dirac[reflect(i + j)].
 */
export function gaussianFilteredDirac1d(size: number, sigma: number, truncate = 4.0): Float64Array {
  if (!Number.isInteger(size) || size < 1) throw new Error(`gaussian kernel: size must be a positive integer, got ${size}`);
  const w = scipyGaussianKernel1d(sigma, truncate);
  const radius = (w.length - 1) / 2;
  const centre = Math.floor(size / 2);
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    let acc = 0;
    for (let j = -radius; j <= radius; j++) if (reflectIndex(i + j, size) === centre) acc += w[j + radius];
    out[i] = acc;
  }
  return out;
}

/**
 * The 2-D kernel gaussian_filter(dirac(size×size), σ): gaussian_filter is separable and the Dirac is
 * the outer product of two 1-D Diracs, so the result is the outer product of the 1-D profiles.
 */
export function gaussianBlurKernel(size: number, sigma: number, truncate = 4.0): Kernel2d {
  const p = gaussianFilteredDirac1d(size, sigma, truncate);
  const data = new Float64Array(size * size);
  for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) data[r * size + c] = p[r] * p[c];
  return { size, data, separable: p };
}

/**
 * Per-channel 2-D correlation of an NCHW batch with `kernel` (same kernel for every channel,
 * like conv2d with a diagonal weight), output the same size as the input. Padding (k−1)/2 on each side:
 * `zero` (the original: borders darken towards the normalised zero) or `reflect` (half-sample symmetric).
 */
export function blurImage(
  x: Float32Array,
  dims: { n: number; c: number; h: number; w: number },
  kernel: Kernel2d,
  padding: BlurPadding = 'zero',
  out?: Float32Array,
): Float32Array {
  const { n, c, h, w } = dims;
  const plane = h * w;
  if (x.length !== n * c * plane) throw new Error(`blurImage: input has ${x.length} values, expected ${n}×${c}×${h}×${w}`);
  const k = kernel.size;
  if (k % 2 !== 1) throw new Error(`blurImage: kernel size must be odd, got ${k}`);
  const res = out ?? new Float32Array(x.length);
  if (res.length !== x.length) throw new Error(`blurImage: output buffer has ${res.length} values, expected ${x.length}`);
  if (res === x) throw new Error('blurImage: output buffer must not alias the input');
  // Precomputed source rows/columns per tap; −1 marks a zero-padded tap.
  const rowIdx = tapIndices(h, k, padding);
  const colIdx = tapIndices(w, k, padding);
  if (kernel.separable) {
    // Two 1-D passes; equal to the 2-D correlation with the outer-product kernel for both paddings
    // (zero rows stay zero; reflected rows of the row-filtered image are the row-filtered reflected rows).
    const k1 = kernel.separable;
    const tmp = new Float64Array(plane);
    const row = new Float64Array(w);
    for (let p = 0; p < n * c; p++) {
      const base = p * plane;
      for (let y = 0; y < h; y++) {
        const rb = base + y * w;
        for (let xx = 0; xx < w; xx++) {
          let acc = 0;
          const ci = xx * k;
          for (let b = 0; b < k; b++) {
            const sx = colIdx[ci + b];
            if (sx >= 0) acc += k1[b] * x[rb + sx];
          }
          tmp[y * w + xx] = acc;
        }
      }
      for (let y = 0; y < h; y++) {
        const ri = y * k;
        const ob = base + y * w;
        row.fill(0);
        for (let a = 0; a < k; a++) {
          const sy = rowIdx[ri + a];
          if (sy < 0) continue;
          const wa = k1[a];
          const tb = sy * w;
          for (let xx = 0; xx < w; xx++) row[xx] += wa * tmp[tb + xx];
        }
        for (let xx = 0; xx < w; xx++) res[ob + xx] = row[xx];
      }
    }
    return res;
  }
  const kd = kernel.data;
  for (let p = 0; p < n * c; p++) {
    const base = p * plane;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let acc = 0;
        for (let a = 0; a < k; a++) {
          const sy = rowIdx[y * k + a];
          if (sy < 0) continue;
          const rowBase = base + sy * w;
          const kb = a * k;
          for (let b = 0; b < k; b++) {
            const sx = colIdx[xx * k + b];
            if (sx >= 0) acc += kd[kb + b] * x[rowBase + sx];
          }
        }
        res[base + y * w + xx] = acc;
      }
    }
  }
  return res;
}

function tapIndices(len: number, k: number, padding: BlurPadding): Int32Array {
  const r = (k - 1) / 2;
  const idx = new Int32Array(len * k);
  for (let i = 0; i < len; i++)
    for (let a = 0; a < k; a++) {
      const s = i + a - r;
      idx[i * k + a] = s >= 0 && s < len ? s : padding === 'zero' ? -1 : reflectIndex(s, len);
    }
  return idx;
}
