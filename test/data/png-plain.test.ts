// The JS decoder for plain PNGs must give sharp's bytes exactly, and hand everything else to sharp.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { decodeRgb, encodePng, imageSize } from '../../ml/io/image.js';
import { crc32 } from '../../ml/io/crc.js';
import { plainPng } from '../../ml/io/png-plain.js';
import { Rng } from '../../ml/data/rng.js';
import { PNG_SIGNATURE, pngChunk as chunk } from '../support/png.js';
import { withTmp } from './helpers.js';

interface PngSpec {
  width: number;
  height: number;
  colour: 0 | 2 | 4 | 6;
  /** Filter type of every row, or one per row. */
  filter: number | number[];
  depth?: number;
  interlace?: number;
  /** Extra chunks after IHDR. */
  extra?: Buffer[];
  /** IDAT split into this many chunks. */
  idats?: number;
}

const CHANNELS = { 0: 1, 2: 3, 4: 2, 6: 4 } as const;

/** A PNG written by the test itself, each row with the filter asked for. */
function buildPng(pixels: Uint8Array, s: PngSpec): Buffer {
  const ch = CHANNELS[s.colour];
  const stride = s.width * ch;
  const filtered = Buffer.alloc(s.height * (stride + 1));
  for (let y = 0; y < s.height; y++) {
    const kind = Array.isArray(s.filter) ? s.filter[y % s.filter.length]! : s.filter;
    filtered[y * (stride + 1)] = kind;
    for (let i = 0; i < stride; i++) {
      const at = (yy: number, ii: number) => (yy >= 0 && ii >= 0 ? pixels[yy * stride + ii]! : 0);
      const a = at(y, i - ch);
      const b = at(y - 1, i);
      const c = at(y - 1, i - ch);
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >>> 1, paeth][kind]!;
      filtered[y * (stride + 1) + 1 + i] = (pixels[y * stride + i]! - pred) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(s.width, 0);
  ihdr.writeUInt32BE(s.height, 4);
  ihdr.set([s.depth ?? 8, s.colour, 0, 0, s.interlace ?? 0], 8);
  const z = deflateSync(filtered);
  const parts = s.idats ?? 1;
  const step = Math.ceil(z.length / parts);
  const idats = Array.from({ length: parts }, (_, k) => chunk('IDAT', z.subarray(k * step, (k + 1) * step)));
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), ...(s.extra ?? []), ...idats, chunk('IEND', new Uint8Array(0))]);
}

/** x − y ramps: the upper-left sample is the mean of the left and upper ones, Paeth's tie case. */
function diagonalPixels(width: number, height: number, channels: number): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) out[(y * width + x) * channels + c] = (7 * (x - y) + 100 + 13 * c) & 0xff;
  return out;
}

function randomPixels(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed, 0, 0);
  return Uint8Array.from({ length: n }, () => Math.floor(rng.float() * 256));
}

/** sharp's decode of the same bytes (from a file: the JS path takes buffers only). */
async function viaSharp(dir: string, png: Buffer, name: string) {
  const file = join(dir, name);
  await writeFile(file, png);
  return decodeRgb(file);
}

test('CRC-32 check value: crc32("123456789") = 0xCBF43926, also over a sub-range', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(Buffer.from('xx123456789y'), 2, 11), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test('every colour type and filter decodes to sharp’s bytes, from one or several IDAT chunks', async () => {
  await withTmp(async (dir) => {
    for (const colour of [0, 2, 4, 6] as const) {
      for (const filter of [0, 1, 2, 3, 4, [0, 1, 2, 3, 4]]) {
        const spec: PngSpec = { width: 13, height: 9, colour, filter, idats: colour === 2 ? 3 : 1 };
        const png = buildPng(randomPixels(13 * 9 * CHANNELS[colour], colour * 10 + (Array.isArray(filter) ? 9 : filter)), spec);
        const fast = plainPng(png)?.decode();
        assert.ok(fast, `colour ${colour} filter ${filter}: taken by the JS decoder`);
        const ref = await viaSharp(dir, png, `c${colour}-f${filter}.png`);
        assert.deepEqual([fast.width, fast.height], [ref.width, ref.height]);
        assert.deepEqual(Buffer.from(fast.data), Buffer.from(ref.data), `colour ${colour} filter ${filter}`);
        assert.deepEqual(await imageSize(png), { width: 13, height: 9 });
      }
      const diagonal = buildPng(diagonalPixels(13, 9, CHANNELS[colour]), { width: 13, height: 9, colour, filter: 4 });
      const ref = await viaSharp(dir, diagonal, `c${colour}-diagonal.png`);
      assert.deepEqual(Buffer.from(plainPng(diagonal)!.decode()!.data), Buffer.from(ref.data), `colour ${colour}, Paeth ties`);
    }
  });
});

test('PNGs written by sharp (ca-pipe’s own encoder, and adaptive filtering) decode to sharp’s bytes', async () => {
  await withTmp(async (dir) => {
    const rgb = randomPixels(31 * 17 * 3, 5);
    const own = await encodePng(rgb, 31, 17, 3);
    const adaptive = await sharp(Buffer.from(rgb), { raw: { width: 31, height: 17, channels: 3 } })
      .png({ adaptiveFiltering: true, compressionLevel: 9 })
      .toBuffer();
    for (const [name, png] of [
      ['own', own],
      ['adaptive', adaptive],
    ] as const) {
      const fast = plainPng(png)?.decode();
      assert.ok(fast, `${name}: taken by the JS decoder`);
      assert.deepEqual(Buffer.from(fast.data), Buffer.from(rgb), name);
      assert.deepEqual(Buffer.from((await viaSharp(dir, png, `${name}.png`)).data), Buffer.from(rgb), name);
    }
  });
});

test('PNGs whose samples need interpretation, or that are not well-formed, are left to sharp', () => {
  const base: PngSpec = { width: 4, height: 3, colour: 2, filter: 1 };
  const px = randomPixels(4 * 3 * 3, 1);
  assert.ok(plainPng(buildPng(px, base)), 'the well-formed file is taken');
  const gama = chunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f]));
  const iccp = chunk('iCCP', Buffer.from('x\0\0'));
  const exif = chunk('eXIf', Buffer.from('MM\0*'));
  const trns = chunk('tRNS', Buffer.from([0, 1, 0, 2, 0, 3]));
  for (const [why, extra] of [
    ['gamma', gama],
    ['ICC profile', iccp],
    ['EXIF orientation', exif],
    ['transparency key', trns],
  ] as const)
    assert.equal(plainPng(buildPng(px, { ...base, extra: [extra] })), undefined, why);
  assert.ok(plainPng(buildPng(px, { ...base, extra: [chunk('tEXt', Buffer.from('Software\0ca-pipe'))] })), 'text chunks change no sample');
  assert.equal(plainPng(buildPng(randomPixels(4 * 3 * 6, 2), { ...base, depth: 16 })), undefined, '16-bit');
  assert.equal(plainPng(buildPng(px, { ...base, interlace: 1 })), undefined, 'interlaced');
  const good = buildPng(px, base);
  const badCrc = Buffer.from(good);
  badCrc[good.length - 20] ^= 1; // inside the IDAT chunk
  assert.equal(plainPng(badCrc), undefined, 'bad CRC');
  assert.equal(plainPng(Buffer.concat([good, Buffer.from('junk')])), undefined, 'bytes after IEND');
  assert.equal(plainPng(good.subarray(0, good.length - 12)), undefined, 'no IEND');
  const badFilter = buildPng(px, { ...base, filter: 1 });
  // A filter byte of 5 inside a well-formed file: found only when inflating, so decode() refuses.
  const raw = Buffer.alloc(3 * 13);
  raw[0] = 5;
  const withBadFilter = Buffer.concat([badFilter.subarray(0, 33), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
  assert.equal(plainPng(withBadFilter)?.decode(), undefined, 'unknown filter type');
});

test('a corrupt PNG still fails with sharp’s error naming the file; a resize still goes through sharp', async () => {
  await withTmp(async (dir) => {
    const px = randomPixels(8 * 6 * 3, 3);
    const png = buildPng(px, { width: 8, height: 6, colour: 2, filter: 4 });
    const broken = Buffer.from(png);
    broken[png.length - 20] ^= 0xff;
    await assert.rejects(decodeRgb(broken, { name: 'broken.png' }), /cannot decode image broken\.png/);
    const opts = { resize: { width: 4, height: 3 } };
    const file = join(dir, 'p.png');
    await writeFile(file, png);
    const ref = await decodeRgb(file, opts);
    const got = await decodeRgb(png, opts);
    assert.deepEqual([got.width, got.height], [4, 3]);
    assert.deepEqual(Buffer.from(got.data), Buffer.from(ref.data));
    // An identity plan (resize to its own size, whole-image crop) is the plain decode.
    const same = await decodeRgb(png, { resize: { width: 8, height: 6 }, cropAfter: { left: 0, top: 0, width: 8, height: 6 } });
    assert.deepEqual(Buffer.from(same.data), Buffer.from(px));
  });
});
