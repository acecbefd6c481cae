// Pillow's 8-bit antialiased bilinear resize (Image.resize(..., BILINEAR), what torchvision's
// Resize and RandomResizedCrop run on PIL images), reproduced to the bit: triangle filter widened
// by the downscale factor, double-precision weights renormalised per output pixel, then turned
// into 22-bit fixed point and accumulated in integers with rounding, horizontal pass first, 8-bit
// clipping after each pass. Float weights (resize.ts) agree except on rounding ties; this file
// exists so that the `torchvision` convention has none of those.

/** Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

interface FixedTaps {
  /** First source index of each output position. */
  start: Int32Array;
  count: Int32Array;
  /** `stride` fixed-point weights per output position. */
  weights: Int32Array;
  stride: number;
}

/** Taps of output positions [first, first + n) for a resize of inSize → outSize samples. */
function bilinearTaps(inSize: number, outSize: number, first: number, n: number): FixedTaps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle's support (1) widened when shrinking
  const stride = Math.ceil(support) * 2 + 1;
  const inv = 1 / filterScale; // Pillow multiplies by the reciprocal; dividing can differ in the last bit
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Int32Array(n * stride);
  const w = new Float64Array(stride);
  for (let i = 0; i < n; i++) {
    const centre = (first + i + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(centre - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(centre + support + 0.5));
    const taps = hi - lo;
    let total = 0;
    for (let k = 0; k < taps; k++) {
      const d = Math.abs((k + lo - centre + 0.5) * inv);
      w[k] = d < 1 ? 1 - d : 0;
      total += w[k]!;
    }
    for (let k = 0; k < taps; k++) {
      const normalised = total !== 0 ? w[k]! / total : w[k]!;
      // Triangle weights are never negative, so Pillow's rounding is (int)(0.5 + w · 2^22).
      weights[i * stride + k] = Math.trunc(0.5 + normalised * ONE);
    }
    start[i] = lo;
    count[i] = taps;
  }
  return { start, count, weights, stride };
}

/** Tap count of the unrolled kernels; positions with fewer taps are padded with zero weights. */
const UNROLLED = 4;

/**
 * The same taps as exactly UNROLLED per position when none has more (and the input is that
 * long), else null. A zero weight adds exactly nothing to Pillow's integer sums, so the padded
 * taps give the same bytes; positions near the end are shifted left to stay inside the input.
 */
function padTaps(t: FixedTaps, inSize: number): FixedTaps | null {
  const n = t.start.length;
  if (inSize < UNROLLED) return null;
  for (let i = 0; i < n; i++) if (t.count[i]! > UNROLLED) return null;
  const start = new Int32Array(n);
  const weights = new Int32Array(n * UNROLLED);
  for (let i = 0; i < n; i++) {
    const lo = Math.min(t.start[i]!, inSize - UNROLLED);
    const shift = t.start[i]! - lo;
    for (let k = 0; k < t.count[i]!; k++) weights[i * UNROLLED + shift + k] = t.weights[i * t.stride + k]!;
    start[i] = lo;
  }
  return { start, count: new Int32Array(n).fill(UNROLLED), weights, stride: UNROLLED };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

export interface Window {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Resizes interleaved RGB sw×sh to dw×dh as Pillow does and returns only `window` of the result
 * (the centre crop): every output pixel depends on its own taps alone, so computing just the
 * window gives the same bytes as resizing everything and cropping afterwards.
 */
export function resizeAsPil(
  src: Uint8Array,
  sw: number,
  sh: number,
  dw: number,
  dh: number,
  window: Window = { left: 0, top: 0, width: dw, height: dh },
): Uint8Array {
  const { left, top, width, height } = window;
  if (left < 0 || top < 0 || left + width > dw || top + height > dh)
    throw new Error(`resizeAsPil: window ${width}×${height}+${left}+${top} outside ${dw}×${dh}`);
  const needH = dw !== sw;
  const needV = dh !== sh;
  const rawY = needV ? bilinearTaps(sh, dh, top, height) : null;
  const padY = rawY && padTaps(rawY, sh);
  const ty = padY ?? rawY;
  // Source rows the vertical pass reads (or the window's rows when there is none); starts and
  // ends of the taps never decrease along the output.
  const rowLo = ty ? ty.start[0]! : top;
  const rowHi = ty ? ty.start[height - 1]! + ty.count[height - 1]! : top + height;
  const rows = rowHi - rowLo;
  let mid: Uint8Array;
  if (needH) {
    const rawX = bilinearTaps(sw, dw, left, width);
    const padX = padTaps(rawX, sw);
    mid = padX ? horizontalPass4(src, sw, rowLo, rows, padX) : horizontalPass(src, sw, rowLo, rows, rawX);
  } else {
    mid = cropRows(src, sw, rowLo, rows, left, width);
  }
  if (!ty) return mid;
  return padY ? verticalPass4(mid, width, rowLo, padY) : verticalPass(mid, width, rowLo, ty);
}

function cropRows(src: Uint8Array, sw: number, row0: number, rows: number, left: number, width: number): Uint8Array {
  if (left === 0 && width === sw) return src.subarray(row0 * sw * 3, (row0 + rows) * sw * 3);
  const out = new Uint8Array(rows * width * 3);
  for (let y = 0; y < rows; y++) {
    const from = ((row0 + y) * sw + left) * 3;
    out.set(src.subarray(from, from + width * 3), y * width * 3);
  }
  return out;
}

function horizontalPass(src: Uint8Array, sw: number, row0: number, rows: number, t: FixedTaps): Uint8Array {
  const width = t.start.length;
  const out = new Uint8Array(rows * width * 3);
  const { start, count, weights, stride } = t;
  for (let y = 0; y < rows; y++) {
    const rowIn = (row0 + y) * sw * 3;
    let q = y * width * 3;
    for (let x = 0; x < width; x++, q += 3) {
      const n = count[x]!;
      const wo = x * stride;
      let p = rowIn + start[x]! * 3;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let k = 0; k < n; k++, p += 3) {
        const w = weights[wo + k]!;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      out[q] = clip8(r);
      out[q + 1] = clip8(g);
      out[q + 2] = clip8(b);
    }
  }
  return out;
}

/** horizontalPass with exactly four taps per output pixel. */
function horizontalPass4(src: Uint8Array, sw: number, row0: number, rows: number, t: FixedTaps): Uint8Array {
  const width = t.start.length;
  // A clamped array clips to 0–255 on store, as clip8 does, without the branches.
  const out = new Uint8ClampedArray(rows * width * 3);
  const { start, weights } = t;
  for (let y = 0; y < rows; y++) {
    const rowIn = (row0 + y) * sw * 3;
    let q = y * width * 3;
    for (let x = 0, wo = 0; x < width; x++, q += 3, wo += 4) {
      const p = rowIn + start[x]! * 3;
      const w0 = weights[wo]!;
      const w1 = weights[wo + 1]!;
      const w2 = weights[wo + 2]!;
      const w3 = weights[wo + 3]!;
      // Math.imul: the products and sums stay below 2^31 (weights sum to 2^22), so int32 is exact.
      out[q] =
        (HALF + Math.imul(src[p]!, w0) + Math.imul(src[p + 3]!, w1) + Math.imul(src[p + 6]!, w2) + Math.imul(src[p + 9]!, w3)) >>
        PRECISION_BITS;
      out[q + 1] =
        (HALF + Math.imul(src[p + 1]!, w0) + Math.imul(src[p + 4]!, w1) + Math.imul(src[p + 7]!, w2) + Math.imul(src[p + 10]!, w3)) >>
        PRECISION_BITS;
      out[q + 2] =
        (HALF + Math.imul(src[p + 2]!, w0) + Math.imul(src[p + 5]!, w1) + Math.imul(src[p + 8]!, w2) + Math.imul(src[p + 11]!, w3)) >>
        PRECISION_BITS;
    }
  }
  return new Uint8Array(out.buffer);
}

/** verticalPass with exactly four taps per output row. */
function verticalPass4(src: Uint8Array, width: number, row0: number, t: FixedTaps): Uint8Array {
  const height = t.start.length;
  const lineLen = width * 3;
  const out = new Uint8ClampedArray(height * lineLen);
  for (let y = 0; y < height; y++) {
    const o0 = (t.start[y]! - row0) * lineLen;
    const o1 = o0 + lineLen;
    const o2 = o1 + lineLen;
    const o3 = o2 + lineLen;
    const w0 = t.weights[y * 4]!;
    const w1 = t.weights[y * 4 + 1]!;
    const w2 = t.weights[y * 4 + 2]!;
    const w3 = t.weights[y * 4 + 3]!;
    const o = y * lineLen;
    for (let i = 0; i < lineLen; i++) {
      out[o + i] =
        (HALF + Math.imul(src[o0 + i]!, w0) + Math.imul(src[o1 + i]!, w1) + Math.imul(src[o2 + i]!, w2) + Math.imul(src[o3 + i]!, w3)) >>
        PRECISION_BITS;
    }
  }
  return new Uint8Array(out.buffer);
}

/** `src` holds source rows from `row0` on, `width` pixels each. */
function verticalPass(src: Uint8Array, width: number, row0: number, t: FixedTaps): Uint8Array {
  const height = t.start.length;
  const lineLen = width * 3;
  const out = new Uint8Array(height * lineLen);
  // A row of accumulators at a time keeps the reads sequential.
  const acc = new Int32Array(lineLen);
  for (let y = 0; y < height; y++) {
    acc.fill(HALF);
    const n = t.count[y]!;
    const wo = y * t.stride;
    for (let k = 0; k < n; k++) {
      const w = t.weights[wo + k]!;
      const off = (t.start[y]! - row0 + k) * lineLen;
      for (let i = 0; i < lineLen; i++) acc[i]! += src[off + i]! * w;
    }
    const o = y * lineLen;
    for (let i = 0; i < lineLen; i++) out[o + i] = clip8(acc[i]!);
  }
  return out;
}
