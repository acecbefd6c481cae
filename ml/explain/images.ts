// Images and object regions under the evaluation transform (resize the shorter side, centre crop),
// so a map, the image it explains and the object mask share one pixel grid. Decoding is ml/data's
// (the same pixels the data loader feeds the model); normalisation here takes the model card's
// mean/std, which a user's pretrained model may set to other values than ImageNet's.
import { decodeEvalRgb } from '../data/image-tensor.js';
import type { Preprocessing } from '../data/preprocessing.js';
import { evalGeometry } from '../data/transforms.js';

export interface EvalTransform {
  size: number;
  /** Shorter side before the centre crop (default floor(size / 0.875), as the data loader). */
  resize?: number;
  /** Pixel convention (default fast). */
  preprocessing?: Preprocessing;
}

/**
 * Writes normalised CHW values of an RGB image into slot `index` of an NCHW batch. `asTorch`
 * rounds to float32 after each operation as torch's ToTensor + Normalize do (the `torchvision`
 * convention); otherwise the arithmetic is double and rounded once.
 */
export function normaliseRgbInto(
  rgb: Uint8Array,
  hw: number,
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array,
  index: number,
  asTorch = false,
): void {
  const base = index * 3 * hw;
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const m = mean[c];
    const s = std[c];
    if (asTorch) {
      const mf = f(m);
      const sf = f(s);
      for (let p = 0, o = base + c * hw; p < hw; p++) out[o + p] = f(f(f(rgb[p * 3 + c] / 255) - mf) / sf);
    } else {
      for (let p = 0, o = base + c * hw; p < hw; p++) out[o + p] = (rgb[p * 3 + c] / 255 - m) / s;
    }
  }
}

/** Loads files into one normalised NCHW batch (a few decodes in flight). */
export async function loadEvalBatch(
  paths: string[],
  t: EvalTransform,
  mean: readonly number[],
  std: readonly number[],
  signal?: AbortSignal,
): Promise<Float32Array> {
  const hw = t.size * t.size;
  const out = new Float32Array(paths.length * 3 * hw);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      signal?.throwIfAborted();
      const i = next++;
      const img = await decodeEvalRgb(paths[i], t.size, t.resize, undefined, t.preprocessing);
      normaliseRgbInto(img.data, hw, mean, std, out, i, t.preprocessing === 'torchvision');
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

/** An object mask (nonzero = object) under the same geometry, as 0/1 values. */
export async function loadEvalMask(path: string, t: EvalTransform): Promise<Uint8Array> {
  const img = await decodeEvalRgb(path, t.size, t.resize, undefined, t.preprocessing);
  const hw = t.size * t.size;
  const m = new Uint8Array(hw);
  for (let p = 0; p < hw; p++) m[p] = img.data[p * 3] >= 128 ? 1 : 0;
  return m;
}

/**
 * A box given in source pixels ({x, y, w, h}, top-left pixel and size) mapped through the eval
 * geometry to inclusive corners on the size×size grid (clipped by the consumer).
 */
export function boxToEval(
  box: { x: number; y: number; w: number; h: number },
  source: { width: number; height: number },
  t: EvalTransform,
): { x0: number; y0: number; x1: number; y1: number } {
  const plan = evalGeometry(source.width, source.height, t.size, t.resize);
  const sx = plan.resize!.width / source.width;
  const sy = plan.resize!.height / source.height;
  const { left, top } = plan.cropAfter!;
  return {
    x0: box.x * sx - left,
    y0: box.y * sy - top,
    x1: (box.x + box.w) * sx - left - 1,
    y1: (box.y + box.h) * sy - top - 1,
  };
}
