// torchvision's transforms on PIL images, to the bit: Resize(resize) + CenterCrop(size) for
// evaluation, RandomResizedCrop's crop-then-resize for training (the box comes from
// transforms.ts' sampler), then ToTensor + Normalize in float32.
import type { CropBox, RgbImage } from '../io/image.js';
import { resizeAsPil } from './pil-resample.js';
import { evalGeometry, IMAGENET_MEAN, IMAGENET_STD } from './transforms.js';

/**
 * byte → ToTensor + Normalize per channel, rounded to float32 after each operation as torch
 * computes it (v/255, then − mean, then / std, each a float32 op).
 */
export const TORCHVISION_NORMALISE: readonly Float32Array[] = [0, 1, 2].map((c) => {
  const mean = Math.fround(IMAGENET_MEAN[c]!);
  const std = Math.fround(IMAGENET_STD[c]!);
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = Math.fround(Math.fround(Math.fround(v / 255) - mean) / std);
  return t;
});

/** Resize(shorter side → resize) + CenterCrop(size) of a decoded image. */
export function evalAsTorchvision(img: RgbImage, size: number, resize?: number): RgbImage {
  const plan = evalGeometry(img.width, img.height, size, resize);
  const r = plan.resize!;
  return { data: resizeAsPil(img.data, img.width, img.height, r.width, r.height, plan.cropAfter), width: size, height: size };
}

/** F.resized_crop: PIL crop of `box`, then a BILINEAR resize to size×size. */
export function resizedCropAsTorchvision(img: RgbImage, box: CropBox, size: number): RgbImage {
  const crop = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) {
    const from = ((box.top + y) * img.width + box.left) * 3;
    crop.set(img.data.subarray(from, from + box.width * 3), y * box.width * 3);
  }
  return { data: resizeAsPil(crop, box.width, box.height, size, size), width: size, height: size };
}
