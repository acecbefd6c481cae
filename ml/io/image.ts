// Image decode/encode through sharp. sharp is imported lazily: stage modules and the CLI load
// this file's importers on every invocation, and a fully cached rerun must not pay for libvips.
import type { Sharp, SharpOptions } from 'sharp';
import { plainPng } from './png-plain.js';

type SharpFactory = (input?: string | Buffer, options?: SharpOptions) => Sharp;
type SharpModule = SharpFactory & { concurrency(n?: number): number; cache(opts: boolean | object): unknown };

let sharpModule: Promise<SharpModule> | null = null;

/** The sharp module, imported on first use. */
export function loadSharp(): Promise<SharpModule> {
  sharpModule ??= import('sharp').then((m) => (m.default ?? m) as unknown as SharpModule);
  return sharpModule;
}

export interface RgbImage {
  /** Interleaved RGB, 8 bits per channel, row-major. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface DecodeOptions {
  /** Region of the EXIF-oriented image to cut out before resizing. */
  crop?: CropBox;
  /** Output size after the (optional) crop; bilinear, aspect not preserved (exact target). */
  resize?: { width: number; height: number };
  /** Region of the resized image to keep (centre crop of the eval transform). */
  cropAfter?: CropBox;
  /** Name for error messages when decoding from a buffer (the file it was read from). */
  name?: string;
}

const INPUT_OPTIONS: SharpOptions = { autoOrient: true, failOn: 'warning', limitInputPixels: 1 << 28 };

function describeInput(input: string | Buffer, name?: string): string {
  return name ?? (typeof input === 'string' ? input : '<buffer>');
}

/** Width and height after EXIF orientation (or as stored, with autoOrient false), from the header only. */
export async function imageSize(
  input: string | Buffer,
  name?: string,
  opts: { autoOrient?: boolean } = {},
): Promise<{ width: number; height: number }> {
  if (typeof input !== 'string') {
    const png = plainPng(input);
    if (png) return { width: png.width, height: png.height };
  }
  const sharp = await loadSharp();
  let meta;
  try {
    meta = await sharp(input, INPUT_OPTIONS).metadata();
  } catch (e) {
    throw new Error(`cannot decode image ${describeInput(input, name)}: ${(e as Error).message}`);
  }
  const orient = opts.autoOrient ?? true;
  const w = (orient ? meta.autoOrient?.width : undefined) ?? meta.width;
  const h = (orient ? meta.autoOrient?.height : undefined) ?? meta.height;
  if (!w || !h) throw new Error(`cannot decode image ${describeInput(input, name)}: no dimensions in header`);
  return { width: w, height: h };
}

/**
 * Decodes JPEG/PNG/WebP (grayscale, CMYK, alpha all become 8-bit sRGB RGB, alpha dropped like
 * PIL's convert('RGB')), applying EXIF orientation, then optional crop → resize → crop.
 */
export async function decodeRgb(input: string | Buffer, opts: DecodeOptions = {}): Promise<RgbImage> {
  if (typeof input !== 'string') {
    const png = plainPng(input);
    const img = png && keepsEveryPixel(opts, png.width, png.height) ? png.decode() : undefined;
    if (img) return img;
  }
  const sharp = await loadSharp();
  let p = sharp(input, INPUT_OPTIONS);
  if (opts.crop) p = p.extract(opts.crop);
  if (opts.resize) {
    // 'linear' is libvips' antialiased triangle filter, the counterpart of PIL's BILINEAR.
    p = p.resize(opts.resize.width, opts.resize.height, { kernel: 'linear', fit: 'fill' });
  }
  if (opts.cropAfter) p = p.extract(opts.cropAfter);
  p = p.toColourspace('srgb').removeAlpha();
  let out;
  try {
    out = await p.raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new Error(`cannot decode image ${describeInput(input, opts.name)}: ${(e as Error).message}`);
  }
  const { width, height, channels } = out.info;
  return { data: toRgb(out.data, width * height, channels), width, height };
}

function isWhole(box: CropBox | undefined, width: number, height: number): boolean {
  return !box || (box.left === 0 && box.top === 0 && box.width === width && box.height === height);
}

/** Whether the crops and resize of `opts` leave a width×height image exactly as it is. */
function keepsEveryPixel(opts: DecodeOptions, width: number, height: number): boolean {
  const sameSize = !opts.resize || (opts.resize.width === width && opts.resize.height === height);
  return isWhole(opts.crop, width, height) && sameSize && isWhole(opts.cropAfter, width, height);
}

/** Expands 1/2-channel rasters and drops a 4th channel, as a safety net behind toColourspace. */
function toRgb(data: Buffer, n: number, channels: number): Uint8Array {
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (channels <= 2) {
      const v = data[i * channels] as number;
      rgb[i * 3] = v;
      rgb[i * 3 + 1] = v;
      rgb[i * 3 + 2] = v;
    } else {
      rgb[i * 3] = data[i * channels] as number;
      rgb[i * 3 + 1] = data[i * channels + 1] as number;
      rgb[i * 3 + 2] = data[i * channels + 2] as number;
    }
  }
  return rgb;
}

/** Fixed encoder settings: the same pixels always give the same bytes (for a given libvips). */
const PNG_OPTIONS = { compressionLevel: 6, adaptiveFiltering: false, palette: false, effort: 7 } as const;

/** Encodes an 8-bit raster (1 = gray, 3 = RGB) as PNG with fixed options. */
export async function encodePng(data: Uint8Array, width: number, height: number, channels: 1 | 3): Promise<Buffer> {
  if (data.length !== width * height * channels) {
    throw new Error(`encodePng: ${data.length} bytes for ${width}×${height}×${channels}`);
  }
  const sharp = await loadSharp();
  let p = sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } });
  p = channels === 1 ? p.toColourspace('b-w') : p.toColourspace('srgb');
  return p.png(PNG_OPTIONS).toBuffer();
}

/** Encodes RGB as JPEG (used for benchmark and test fixtures). */
export async function encodeJpeg(data: Uint8Array, width: number, height: number, quality = 90): Promise<Buffer> {
  const sharp = await loadSharp();
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
}

/** Reads a 1-channel mask (first channel of whatever is stored). */
export async function decodeGray(input: string | Buffer): Promise<{ data: Uint8Array; width: number; height: number }> {
  const sharp = await loadSharp();
  try {
    const out = await sharp(input, INPUT_OPTIONS).toColourspace('b-w').extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength),
      width: out.info.width,
      height: out.info.height,
    };
  } catch (e) {
    throw new Error(`cannot decode image ${describeInput(input)}: ${(e as Error).message}`);
  }
}
