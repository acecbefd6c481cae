// The original project's image transforms as geometry + a normalisation loop; the pixel work
// (decode, crop, bilinear resize) is done by sharp in ml/io/image.ts (convention `fast`) or as
// PIL does in torchvision-transform.ts (convention `torchvision`).
//   eval:  resize the shorter side to `resize` (default floor(size / 0.875): 256 for 224), centre crop `size`
//   train: RandomResizedCrop(size, scale 0.08–1, ratio 3/4–4/3) + horizontal flip p = 0.5
// followed by ImageNet normalisation.
import type { CropBox, DecodeOptions } from '../io/image.js';
import type { Rng } from './rng.js';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export type Layout = 'NCHW' | 'NHWC';

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function defaultResize(size: number): number {
  return Math.floor(size / 0.875);
}

/** torchvision Resize(int) + CenterCrop(size): the decode plan for an image of w×h. */
export function evalGeometry(width: number, height: number, size: number, resize = defaultResize(size)): DecodeOptions {
  // Shorter side → resize, longer side → int(resize · long / short) (truncation, as torchvision).
  let rw: number;
  let rh: number;
  if (width <= height) {
    rw = resize;
    rh = Math.floor((resize * height) / width);
  } else {
    rh = resize;
    rw = Math.floor((resize * width) / height);
  }
  if (rw < size || rh < size) throw new Error(`eval transform: resize ${resize} is smaller than the crop ${size}`);
  const top = roundHalfEven((rh - size) / 2);
  const left = roundHalfEven((rw - size) / 2);
  return { resize: { width: rw, height: rh }, cropAfter: { left, top, width: size, height: size } };
}

export interface RandomResizedCropOptions {
  scale?: [number, number];
  ratio?: [number, number];
}

/** torchvision RandomResizedCrop.get_params: 10 attempts, then a centre crop clamped to the ratio range. */
export function sampleRandomResizedCrop(width: number, height: number, rng: Rng, opts: RandomResizedCropOptions = {}): CropBox {
  const [smin, smax] = opts.scale ?? [0.08, 1];
  const [rmin, rmax] = opts.ratio ?? [3 / 4, 4 / 3];
  const area = width * height;
  const logR0 = Math.log(rmin);
  const logR1 = Math.log(rmax);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(smin, smax);
    const aspect = Math.exp(rng.uniform(logR0, logR1));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { left, top, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < rmin) {
    w = width;
    h = roundHalfEven(w / rmin);
  } else if (inRatio > rmax) {
    h = height;
    w = roundHalfEven(h * rmax);
  } else {
    w = width;
    h = height;
  }
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/** Per-channel lookup tables byte → (v/255 − mean)/std, computed once. */
const LUT: Float32Array[] = [0, 1, 2].map((c) => {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = (v / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
  return t;
});

/**
 * Writes one normalised image (interleaved RGB bytes, w×h) into `out` at image slot `index`
 * of a batch in the given layout, mirroring horizontally when `flip`; `lut` maps bytes to
 * normalised values per channel.
 */
export function normaliseInto(
  rgb: Uint8Array,
  width: number,
  height: number,
  out: Float32Array,
  index: number,
  layout: Layout,
  flip = false,
  lut: readonly Float32Array[] = LUT,
): void {
  const hw = width * height;
  const base = index * hw * 3;
  const l0 = lut[0]!;
  const l1 = lut[1]!;
  const l2 = lut[2]!;
  if (layout === 'NCHW') {
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) {
        const src = (row + (flip ? width - 1 - x : x)) * 3;
        const dst = base + row + x;
        out[dst] = l0[rgb[src]!]!;
        out[dst + hw] = l1[rgb[src + 1]!]!;
        out[dst + 2 * hw] = l2[rgb[src + 2]!]!;
      }
    }
  } else {
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) {
        const src = (row + (flip ? width - 1 - x : x)) * 3;
        const dst = base + (row + x) * 3;
        out[dst] = l0[rgb[src]!]!;
        out[dst + 1] = l1[rgb[src + 1]!]!;
        out[dst + 2] = l2[rgb[src + 2]!]!;
      }
    }
  }
}
