// A decoder for the PNGs that need no colour handling: 8-bit, non-interlaced, greyscale or RGB
// (with or without alpha), and no chunk that could change how the samples read (no ICC profile,
// gamma, palette, transparency key or EXIF orientation). For those, libvips' answer is the stored
// samples themselves, so inflating and unfiltering them here gives the same bytes without two
// sharp pipelines per image (metadata, then decode), which cost ~1 ms per small image, several
// times the decode itself: a 64-px dataset spends most of its loading time there.
// Anything else, and any file that is not exactly well-formed (bad CRC, truncated stream, bytes
// after IEND), is left to sharp, which decodes it or reports the error as before.
import { inflateSync } from 'node:zlib';
import { crc32 } from './crc.js';
import type { RgbImage } from './image.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Chunks that carry no information about the samples' values. */
const INERT = new Set(['pHYs', 'tEXt', 'zTXt', 'iTXt', 'tIME']);
/** Colour type → channels, for the types decoded here. */
const CHANNELS: Partial<Record<number, number>> = { 0: 1, 2: 3, 4: 2, 6: 4 };
/** sharp's limitInputPixels in image.ts: larger images go to sharp, which refuses them. */
const MAX_PIXELS = 1 << 28;

export interface PlainPng {
  width: number;
  height: number;
  /** The pixels as 8-bit RGB (alpha dropped, grey replicated); undefined when the data is not well-formed. */
  decode(): RgbImage | undefined;
}

// The loader asks imageSize() and then decodeRgb() about the same buffer (file bytes, never
// changed afterwards): walk and check it once.
const seen = new WeakMap<Uint8Array, PlainPng | null>();

/** The file's size and a decoder when it is a PNG this module handles; otherwise undefined. */
export function plainPng(buf: Uint8Array): PlainPng | undefined {
  let known = seen.get(buf);
  if (known === undefined) seen.set(buf, (known = parsePlainPng(buf) ?? null));
  return known ?? undefined;
}

function parsePlainPng(buf: Uint8Array): PlainPng | undefined {
  if (buf.length < 8 + 25 + 12 || SIGNATURE.some((b, i) => buf[i] !== b)) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const idat: Uint8Array[] = [];
  let header: { width: number; height: number; channels: number } | undefined;
  let pos = 8;
  let ended = false;
  while (pos + 12 <= buf.length && !ended) {
    const len = view.getUint32(pos);
    const end = pos + 8 + len;
    if (end + 4 > buf.length) return undefined;
    const type = String.fromCharCode(buf[pos + 4]!, buf[pos + 5]!, buf[pos + 6]!, buf[pos + 7]!);
    if (crc32(buf, pos + 4, end) !== view.getUint32(end)) return undefined;
    const data = buf.subarray(pos + 8, end);
    if (type === 'IHDR') {
      if (header || pos !== 8 || len !== 13) return undefined;
      const width = view.getUint32(pos + 8);
      const height = view.getUint32(pos + 12);
      const [depth, colour, compression, filter, interlace] = data.subarray(8, 13);
      const channels = CHANNELS[colour!];
      if (depth !== 8 || !channels || compression !== 0 || filter !== 0 || interlace !== 0) return undefined;
      if (width === 0 || height === 0 || width * height > MAX_PIXELS) return undefined;
      header = { width, height, channels };
    } else if (type === 'IDAT') {
      if (!header) return undefined;
      idat.push(data);
    } else if (type === 'IEND') {
      ended = true;
    } else if (!INERT.has(type) || !header) {
      return undefined;
    }
    pos = end + 4;
  }
  if (!header || !ended || pos !== buf.length || idat.length === 0) return undefined;
  const { width, height, channels } = header;
  return { width, height, decode: () => unfilterToRgb(idat, width, height, channels) };
}

function unfilterToRgb(idat: Uint8Array[], width: number, height: number, channels: number): RgbImage | undefined {
  let raw: Uint8Array;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat));
  } catch {
    return undefined;
  }
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) return undefined;
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const kind = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const out = y * stride;
    const up = out - stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? rows[out + i - channels]! : 0;
      const b = y > 0 ? rows[up + i]! : 0;
      let pred: number;
      if (kind === 0) pred = 0;
      else if (kind === 1) pred = a;
      else if (kind === 2) pred = b;
      else if (kind === 3) pred = (a + b) >>> 1;
      else if (kind === 4) {
        const c = i >= channels && y > 0 ? rows[up + i - channels]! : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else return undefined;
      rows[out + i] = (raw[src + i]! + pred) & 0xff;
    }
  }
  if (channels === 3) return { data: rows, width, height };
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  const grey = channels <= 2;
  for (let i = 0; i < n; i++) {
    const s = i * channels;
    rgb[i * 3] = rows[s]!;
    rgb[i * 3 + 1] = rows[grey ? s : s + 1]!;
    rgb[i * 3 + 2] = rows[grey ? s : s + 2]!;
  }
  return { data: rgb, width, height };
}
