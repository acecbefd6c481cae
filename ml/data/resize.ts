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
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** Resizes interleaved 8-bit RGB from sw×sh to dw×dh. */
export function resizeBilinearRgb(src: Uint8Array, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  // Horizontal pass: sw×sh → dw×sh.
  const tx = computeTaps(sw, dw);
  const mid = new Uint8Array(dw * sh * 3);
  for (let y = 0; y < sh; y++) {
    const rowIn = y * sw * 3;
    const rowOut = y * dw * 3;
    for (let x = 0; x < dw; x++) {
      const s0 = tx.start[x]!;
      const n = tx.count[x]!;
      const wo = x * tx.maxTaps;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < n; k++) {
        const w = tx.weights[wo + k]!;
        const p = rowIn + (s0 + k) * 3;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      const q = rowOut + x * 3;
      mid[q] = clampRound(r);
      mid[q + 1] = clampRound(g);
      mid[q + 2] = clampRound(b);
    }
  }
  // Vertical pass: dw×sh → dw×dh.
  const ty = computeTaps(sh, dh);
  const out = new Uint8Array(dw * dh * 3);
  const stride = dw * 3;
  for (let y = 0; y < dh; y++) {
    const s0 = ty.start[y]!;
    const n = ty.count[y]!;
    const wo = y * ty.maxTaps;
    const rowOut = y * stride;
    for (let i = 0; i < stride; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += mid[(s0 + k) * stride + i]! * ty.weights[wo + k]!;
      out[rowOut + i] = clampRound(acc);
    }
  }
  return out;
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
