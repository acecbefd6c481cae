// One image file → one normalised tensor slot, under the eval or train transform.
// Augmentation randomness comes from Rng(seed, epoch, id), so an item's crop and flip do not
// depend on which worker processes it or in which order.
import { readFile } from 'node:fs/promises';
import { decodeRgb, imageSize, type DecodeOptions, type RgbImage } from '../io/image.js';
import { decodeAsPil } from '../io/image-as-pil.js';
import type { Preprocessing } from './preprocessing.js';
import { cropRgb, resizeColumnsRgb, resizeRowsRgb } from './resize.js';
import { Rng } from './rng.js';
import { evalAsTorchvision, resizedCropAsTorchvision, TORCHVISION_NORMALISE } from './torchvision-transform.js';
import { evalGeometry, normaliseInto, sampleRandomResizedCrop, type Layout } from './transforms.js';

export type TransformName = 'train' | 'eval';

export interface TransformSpec {
  transform: TransformName;
  /** Output side (square). */
  size: number;
  /** Eval only: shorter side before the centre crop (default floor(size / 0.875)). */
  resize?: number;
  /** Train only: RandomResizedCrop scale range (default [0.08, 1]). */
  scale?: [number, number];
  /** Train only: RandomResizedCrop aspect range (default [3/4, 4/3]). */
  ratio?: [number, number];
  /** Train only: horizontal flip probability (default 0.5). */
  hflip?: number;
  /** Pixel convention (default fast: sharp decode and resize). */
  preprocessing?: Preprocessing;
}

export interface AugmentKey {
  seed: number;
  epoch: number;
  id: number;
}

/** Decodes `path` and writes the transformed, normalised image into slot `index` of `out`. */
export async function loadImageInto(
  path: string,
  spec: TransformSpec,
  key: AugmentKey,
  out: Float32Array,
  index: number,
  layout: Layout,
): Promise<void> {
  // One read, then header and pixels from memory: sharp's metadata() on a path re-opens the file.
  const bytes = await readImageFile(path);
  if (spec.preprocessing === 'torchvision') return loadAsTorchvisionInto(bytes, path, spec, key, out, index, layout);
  const { width, height } = await imageSize(bytes, path);
  let flip = false;
  let img;
  if (spec.transform === 'train') {
    const rng = new Rng(key.seed, key.epoch, key.id);
    const crop = sampleRandomResizedCrop(width, height, rng, { scale: spec.scale, ratio: spec.ratio });
    flip = rng.float() < (spec.hflip ?? 0.5);
    img = await decodeResized(bytes, { crop, resize: { width: spec.size, height: spec.size }, name: path }, crop.width, crop.height);
  } else {
    img = await decodeResized(bytes, { ...evalGeometry(width, height, spec.size, spec.resize), name: path }, width, height);
  }
  if (img.width !== spec.size || img.height !== spec.size) {
    throw new Error(`${path}: transform produced ${img.width}×${img.height}, expected ${spec.size}×${spec.size}`);
  }
  normaliseInto(img.data, img.width, img.height, out, index, layout, flip);
}

/** The `torchvision` convention: the full PIL-equivalent decode, then torchvision's geometry. */
async function loadAsTorchvisionInto(
  bytes: Buffer,
  path: string,
  spec: TransformSpec,
  key: AugmentKey,
  out: Float32Array,
  index: number,
  layout: Layout,
): Promise<void> {
  const full = await decodeAsPil(bytes, path);
  let flip = false;
  let img: RgbImage;
  if (spec.transform === 'train') {
    // The same draws in the same order as the fast path, on the unrotated size PIL reports.
    const rng = new Rng(key.seed, key.epoch, key.id);
    const crop = sampleRandomResizedCrop(full.width, full.height, rng, { scale: spec.scale, ratio: spec.ratio });
    flip = rng.float() < (spec.hflip ?? 0.5);
    img = resizedCropAsTorchvision(full, crop, spec.size);
  } else {
    img = evalAsTorchvision(full, spec.size, spec.resize);
  }
  normaliseInto(img.data, img.width, img.height, out, index, layout, flip, TORCHVISION_NORMALISE);
}

/**
 * Shrinking is left to libvips (fast, close to PIL's antialiased bilinear); an axis that is
 * enlarged is resampled in JS because libvips shifts enlarged images by half a source pixel.
 * With one axis shrinking and the other growing, libvips shrinks its axis alone (the other at
 * scale 1 stays untouched) and JS enlarges the other. srcW×srcH is the size entering the
 * resize (the crop's size, or the oriented image size without a crop).
 */
export async function decodeResized(input: Buffer, plan: DecodeOptions, srcW: number, srcH: number): Promise<RgbImage> {
  const r = plan.resize;
  if (!r || (r.width <= srcW && r.height <= srcH)) return decodeRgb(input, plan);
  const upW = r.width > srcW;
  const upH = r.height > srcH;
  const first: DecodeOptions = { ...(plan.crop && { crop: plan.crop }), ...(plan.name && { name: plan.name }) };
  if (upW !== upH) first.resize = upW ? { width: srcW, height: r.height } : { width: r.width, height: srcH };
  const base = await decodeRgb(input, first);
  let data = upW ? resizeRowsRgb(base.data, base.width, base.height, r.width) : base.data;
  if (upH) data = resizeColumnsRgb(data, r.width, base.height, r.height);
  let width = r.width;
  let height = r.height;
  if (plan.cropAfter) {
    data = cropRgb(data, width, plan.cropAfter);
    width = plan.cropAfter.width;
    height = plan.cropAfter.height;
  }
  return { data, width, height };
}

/** Decodes one image under the eval geometry (shorter side → resize, centre crop size) to RGB bytes. */
export async function decodeEvalRgb(
  input: string | Buffer,
  size: number,
  resize?: number,
  name?: string,
  preprocessing: Preprocessing = 'fast',
): Promise<RgbImage> {
  const label = name ?? (typeof input === 'string' ? input : '<buffer>');
  const bytes = typeof input === 'string' ? await readImageFile(input) : input;
  if (preprocessing === 'torchvision') return evalAsTorchvision(await decodeAsPil(bytes, label), size, resize);
  const { width, height } = await imageSize(bytes, label);
  return decodeResized(bytes, { ...evalGeometry(width, height, size, resize), name: label }, width, height);
}

async function readImageFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read image ${path}${code === 'ENOENT' ? ': no such file' : `: ${(e as Error).message}`}`);
  }
}

export interface ImageTensor {
  data: Float32Array;
  /** [1, 3, H, W] for NCHW, [1, H, W, 3] for NHWC. */
  shape: [number, number, number, number];
}

/** Convenience for single images (saliency on one file, tests). */
export async function loadImageTensor(
  path: string,
  opts: TransformSpec & { layout?: Layout; seed?: number; epoch?: number; id?: number },
): Promise<ImageTensor> {
  const layout = opts.layout ?? 'NCHW';
  const s = opts.size;
  const data = new Float32Array(3 * s * s);
  await loadImageInto(path, opts, { seed: opts.seed ?? 0, epoch: opts.epoch ?? 0, id: opts.id ?? 0 }, data, 0, layout);
  return { data, shape: layout === 'NCHW' ? [1, 3, s, s] : [1, s, s, 3] };
}
