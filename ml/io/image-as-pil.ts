// Decoding as torchvision's loader sees an image: PIL's Image.open(f).convert('RGB'). That is
// no colour management (embedded ICC profiles ignored), no EXIF orientation, no shrink-on-load,
// and PIL's own mode conversions: CMYK by its ink formula, 16-bit RGB by the high byte, 16-bit
// greyscale (mode I;16) clipped at 255, greyscale replicated, alpha dropped without blending.
// libvips still does the decoding (its libjpeg-turbo and libspng give PIL's samples bit for bit);
// only the conversions to RGB are done here.
import type { SharpOptions } from 'sharp';
import { loadSharp, type RgbImage } from './image.js';

const AS_PIL: SharpOptions = { autoOrient: false, ignoreIcc: true, failOn: 'warning', limitInputPixels: 1 << 28 };

/** Decodes JPEG/PNG/WebP to 8-bit RGB exactly as PIL's convert('RGB') would. */
export async function decodeAsPil(input: Buffer, name = '<buffer>'): Promise<RgbImage> {
  const sharp = await loadSharp();
  try {
    const meta = await sharp(input, AS_PIL).metadata();
    const wide = meta.depth === 'ushort';
    let p = sharp(input, AS_PIL);
    // Asking for the image's own colour space keeps libvips from converting anything.
    if (meta.space === 'cmyk') p = p.pipelineColourspace('cmyk').toColourspace('cmyk');
    else if (meta.space === 'b-w' || meta.space === 'grey16') p = p.toColourspace(meta.space);
    else p = p.toColourspace(wide ? 'rgb16' : 'srgb');
    const out = await p.raw(wide ? { depth: 'ushort' } : {}).toBuffer({ resolveWithObject: true });
    const { width, height, channels } = out.info;
    const n = width * height;
    if (wide) {
      const samples = new Uint16Array(out.data.buffer, out.data.byteOffset, out.data.byteLength / 2);
      return { data: channels <= 2 ? grey16ToRgb(samples, n, channels) : rgb16ToRgb(samples, n, channels), width, height };
    }
    const bytes = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
    if (meta.space === 'cmyk') return { data: cmykToRgb(bytes, n, channels), width, height };
    if (channels <= 2) return { data: greyToRgb(bytes, n, channels), width, height };
    return { data: channels === 3 ? bytes : dropAlpha(bytes, n, channels), width, height };
  } catch (e) {
    throw new Error(`cannot decode image ${name}: ${(e as Error).message}`);
  }
}

/** PIL's cmyk2rgb: each channel is (255 − K) − C·(255 − K)/255 in its rounded integer form. */
function cmykToRgb(src: Uint8Array, n: number, channels: number): Uint8Array {
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, p = 0, q = 0; i < n; i++, p += channels, q += 3) {
    const nk = 255 - src[p + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = src[p + c]! * nk + 128;
      rgb[q + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return rgb;
}

function greyToRgb(src: Uint8Array, n: number, channels: number): Uint8Array {
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, p = 0, q = 0; i < n; i++, p += channels, q += 3) rgb[q] = rgb[q + 1] = rgb[q + 2] = src[p]!;
  return rgb;
}

function dropAlpha(src: Uint8Array, n: number, channels: number): Uint8Array {
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, p = 0, q = 0; i < n; i++, p += channels, q += 3) {
    rgb[q] = src[p]!;
    rgb[q + 1] = src[p + 1]!;
    rgb[q + 2] = src[p + 2]!;
  }
  return rgb;
}

/** PIL reads 16-bit RGB(A) PNGs as 8-bit RGB(A) keeping each sample's high byte. */
function rgb16ToRgb(src: Uint16Array, n: number, channels: number): Uint8Array {
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, p = 0, q = 0; i < n; i++, p += channels, q += 3) {
    rgb[q] = src[p]! >> 8;
    rgb[q + 1] = src[p + 1]! >> 8;
    rgb[q + 2] = src[p + 2]! >> 8;
  }
  return rgb;
}

/**
 * 16-bit greyscale opens as mode I;16, whose convert('RGB') clips at 255 (not a rescale); with
 * alpha it opens as LA from the high bytes.
 */
function grey16ToRgb(src: Uint16Array, n: number, channels: number): Uint8Array {
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, p = 0, q = 0; i < n; i++, p += channels, q += 3) {
    const s = src[p]!;
    rgb[q] = rgb[q + 1] = rgb[q + 2] = channels === 1 ? (s > 255 ? 255 : s) : s >> 8;
  }
  return rgb;
}
