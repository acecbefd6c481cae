// PIL-style antialiased bilinear resize (triangle filter widened by the downscale factor, pixel
// centres at +0.5, weights renormalised at the borders), separable, rounding to 8 bits after each
// pass as Pillow does. Used where libvips differs from torchvision/PIL: libvips shifts the image
// by half a pixel when it enlarges, so enlargements are done here.

interface Taps {
  start: Int32Array;
  count: Int32Array;
  /** Row-major, `maxTaps` weights per output position. */
  weights: Float32Array;
  maxTaps: number;
}

function computeTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // triangle support 1, widened when shrinking
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * maxTaps);
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    let lo = Math.trunc(centre - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(centre + support + 0.5);
    if (hi > inSize) hi = inSize;
    let total = 0;
    const n = hi - lo;
    for (let k = 0; k < n; k++) {
      const d = Math.abs((k + lo - centre + 0.5) / filterScale);
      const w = d < 1 ? 1 - d : 0;
      weights[i * maxTaps + k] = w;
      total += w;
    }
    if (total > 0) for (let k = 0; k < n; k++) weights[i * maxTaps + k]! /= total;
    start[i] = lo;
    count[i] = n;
  }
  return { start, count, weights, maxTaps };
}

function clampRound(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
}

/** Horizontal pass: interleaved RGB sw×h → dw×h. */
export function resizeRowsRgb(src: Uint8Array, sw: number, h: number, dw: number): Uint8Array {
  const tx = computeTaps(sw, dw);
  const out = new Uint8Array(dw * h * 3);
  const { start, count, weights, maxTaps } = tx;
  for (let y = 0; y < h; y++) {
    const rowIn = y * sw * 3;
    const rowOut = y * dw * 3;
    for (let x = 0; x < dw; x++) {
      const n = count[x]!;
      const wo = x * maxTaps;
      let p = rowIn + start[x]! * 3;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < n; k++, p += 3) {
        const w = weights[wo + k]!;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      const q = rowOut + x * 3;
      out[q] = clampRound(r);
      out[q + 1] = clampRound(g);
      out[q + 2] = clampRound(b);
    }
  }
  return out;
}

/** Vertical pass: interleaved RGB w×sh → w×dh. */
export function resizeColumnsRgb(src: Uint8Array, w: number, sh: number, dh: number): Uint8Array {
  const ty = computeTaps(sh, dh);
  const stride = w * 3;
  const out = new Uint8Array(stride * dh);
  // Row-at-a-time accumulation keeps memory access sequential.
  const acc = new Float64Array(stride);
  for (let y = 0; y < dh; y++) {
    const s0 = ty.start[y]!;
    const n = ty.count[y]!;
    const wo = y * ty.maxTaps;
    const rowOut0 = y * stride;
    if (n <= 3) {
      // Enlarging (and mild shrinking) needs at most three source rows: one fused loop.
      const w0 = ty.weights[wo]!;
      const w1 = n > 1 ? ty.weights[wo + 1]! : 0;
      const w2 = n > 2 ? ty.weights[wo + 2]! : 0;
      const o0 = s0 * stride;
      const o1 = n > 1 ? o0 + stride : o0;
      const o2 = n > 2 ? o0 + 2 * stride : o0;
      for (let i = 0; i < stride; i++) {
        const v = src[o0 + i]! * w0 + src[o1 + i]! * w1 + src[o2 + i]! * w2;
        out[rowOut0 + i] = v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
      }
      continue;
    }
    acc.fill(0);
    for (let k = 0; k < n; k++) {
      const wt = ty.weights[wo + k]!;
      const off = (s0 + k) * stride;
      for (let i = 0; i < stride; i++) acc[i]! += src[off + i]! * wt;
    }
    const rowOut = y * stride;
    for (let i = 0; i < stride; i++) out[rowOut + i] = clampRound(acc[i]!);
  }
  return out;
}

/** Resizes interleaved 8-bit RGB from sw×sh to dw×dh (horizontal pass first, as Pillow). */
export function resizeBilinearRgb(src: Uint8Array, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  const mid = dw === sw ? src : resizeRowsRgb(src, sw, sh, dw);
  return dh === sh ? mid : resizeColumnsRgb(mid, dw, sh, dh);
}

/** Cuts a box out of interleaved RGB. */
export function cropRgb(src: Uint8Array, sw: number, box: { left: number; top: number; width: number; height: number }): Uint8Array {
  const out = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) {
    const from = ((box.top + y) * sw + box.left) * 3;
    out.set(src.subarray(from, from + box.width * 3), y * box.width * 3);
  }
  return out;
}
