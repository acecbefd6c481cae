import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeRgb, imageSize } from '../../ml/io/image.js';
import { decodeEvalRgb, loadImageTensor } from '../../ml/data/image-tensor.js';
import { Rng } from '../../ml/data/rng.js';
import { evalGeometry, roundHalfEven, sampleRandomResizedCrop } from '../../ml/data/transforms.js';
import { withTmp } from './helpers.js';

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
const norm = (v: number, c: number): number => (v / 255 - MEAN[c]!) / STD[c]!;

/** w×h RGB image: R = 4·x, G = 8·y, B = 77 — linear ramps, so any symmetric resampling filter is exact in the interior. */
function ramp(w: number, h: number): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set([4 * x, 8 * y, 77], (y * w + x) * 3);
  return b;
}

test('eval transform: shorter side resized by exactly 1/2, centre crop, ImageNet normalisation, NCHW and NHWC', async () => {
  await withTmp(async (tmp) => {
    // 48×32 landscape: shorter side 32 → 16, longer 24; crop 8 at left (24-8)/2 = 8, top (16-8)/2 = 4.
    const file = join(tmp, 'ramp.png');
    await sharp(ramp(48, 32), { raw: { width: 48, height: 32, channels: 3 } })
      .png()
      .toFile(file);
    const size = 8;
    const nchw = await loadImageTensor(file, { transform: 'eval', size, resize: 16, layout: 'NCHW' });
    const nhwc = await loadImageTensor(file, { transform: 'eval', size, resize: 16, layout: 'NHWC' });
    const bytes = await decodeEvalRgb(file, size, 16);
    assert.deepEqual([bytes.width, bytes.height], [8, 8]);
    assert.deepEqual([bytes.data[0], bytes.data[1], bytes.data[2]], [4 * (2 * 8 + 0.5), 8 * (2 * 4 + 0.5), 77]);
    assert.deepEqual(nchw.shape, [1, 3, 8, 8]);
    assert.deepEqual(nhwc.shape, [1, 8, 8, 3]);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        // Output pixel (x+8, y+4) of the half-size image is centred on source coordinate 2i + 0.5.
        const expected = [4 * (2 * (x + 8) + 0.5), 8 * (2 * (y + 4) + 0.5), 77];
        for (let c = 0; c < 3; c++) {
          const want = norm(expected[c]!, c);
          assert.ok(
            Math.abs(nchw.data[c * 64 + y * 8 + x]! - want) < 1e-5,
            `NCHW c${c} (${x},${y}): ${nchw.data[c * 64 + y * 8 + x]} vs ${want}`,
          );
          assert.ok(Math.abs(nhwc.data[(y * 8 + x) * 3 + c]! - want) < 1e-5, `NHWC c${c} (${x},${y})`);
        }
      }
    }
  });
});

test('eval geometry follows torchvision (int truncation of the long side, round-half-even crop offsets)', () => {
  // 501×375 at 224: short side 375 → 256; long side int(256·501/375) = int(342.016) = 342.
  assert.deepEqual(evalGeometry(501, 375, 224), {
    resize: { width: 342, height: 256 },
    cropAfter: { left: 59, top: 16, width: 224, height: 224 },
  });
  // Portrait 227×256 with resize 227: no scaling, margins (3, 32) → offsets round(1.5) = 2, 16.
  assert.deepEqual(evalGeometry(227, 256, 224, 227), {
    resize: { width: 227, height: 256 },
    cropAfter: { left: 2, top: 16, width: 224, height: 224 },
  });
  assert.deepEqual(evalGeometry(300, 600, 224).resize, { width: 256, height: 512 });
  assert.throws(() => evalGeometry(100, 100, 224, 200), /resize 200 is smaller than the crop 224/);
  assert.deepEqual([roundHalfEven(2.5), roundHalfEven(3.5), roundHalfEven(-2.5), roundHalfEven(2.4)], [2, 4, -2, 2]);
});

test('RandomResizedCrop: boxes inside the image, area and ratio within range, reproducible per key', () => {
  for (let id = 0; id < 300; id++) {
    const w = 100 + (id % 7) * 60;
    const h = 80 + (id % 5) * 70;
    const box = sampleRandomResizedCrop(w, h, new Rng(1, 0, id));
    assert.ok(box.left >= 0 && box.top >= 0 && box.left + box.width <= w && box.top + box.height <= h, JSON.stringify(box));
    assert.deepEqual(sampleRandomResizedCrop(w, h, new Rng(1, 0, id)), box);
    const area = (box.width * box.height) / (w * h);
    const ratio = box.width / box.height;
    // Rounding of w and h to integers loosens the bounds slightly.
    assert.ok(area > 0.06 && area <= 1, `area ${area}`);
    assert.ok(ratio > 0.7 && ratio < 1.4, `ratio ${ratio}`);
  }
});

test('RandomResizedCrop falls back to a centre crop clamped to the ratio range', () => {
  // 1000×10 with scale ≥ 0.9: every attempt needs h ≥ 82 > 10, so all 10 fail.
  // in_ratio 100 > 4/3 → h = 10, w = round(10·4/3) = 13, left = (1000 − 13) // 2 = 493.
  assert.deepEqual(sampleRandomResizedCrop(1000, 10, new Rng(0), { scale: [0.9, 1] }), { left: 493, top: 0, width: 13, height: 10 });
  // Tall: in_ratio 0.01 < 3/4 → w = 10, h = round(10 / 0.75) = 13, top = (1000 − 13) // 2.
  assert.deepEqual(sampleRandomResizedCrop(10, 1000, new Rng(0), { scale: [0.9, 1] }), { left: 0, top: 493, width: 10, height: 13 });
});

test('train transform: the crop + flip of Rng(seed, epoch, id), resized exactly, mirrored when flipped', async () => {
  await withTmp(async (tmp) => {
    const file = join(tmp, 'r.png');
    await sharp(ramp(32, 32), { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toFile(file);
    let flips = 0;
    for (let id = 0; id < 12; id++) {
      const rng = new Rng(4, 2, id);
      const box = sampleRandomResizedCrop(32, 32, rng);
      const flip = rng.float() < 0.5;
      flips += flip ? 1 : 0;
      const t = await loadImageTensor(file, { transform: 'train', size: box.width, seed: 4, epoch: 2, id, layout: 'NCHW' });
      // Output side = crop width: horizontal scale 1, and R depends on x only, so row 0's R is
      // exactly the source column whatever the vertical scale.
      for (let x = 0; x < box.width; x++) {
        const srcX = box.left + (flip ? box.width - 1 - x : x);
        assert.ok(Math.abs(t.data[x]! - norm(4 * srcX, 0)) < 1e-5, `id ${id} x ${x}`);
      }
    }
    assert.ok(flips > 0 && flips < 12);
  });
});

test('decode: grayscale and CMYK become RGB, alpha is dropped, EXIF orientation is applied', async () => {
  await withTmp(async (tmp) => {
    const gray = join(tmp, 'g.png');
    await sharp(Buffer.from([10, 20, 30, 40, 50, 60]), { raw: { width: 3, height: 2, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(gray);
    const g = await decodeRgb(gray);
    assert.deepEqual([g.width, g.height], [3, 2]);
    assert.deepEqual([...g.data.slice(0, 6)], [10, 10, 10, 20, 20, 20]);

    const cmyk = join(tmp, 'c.jpg');
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 40, b: 40 } } })
      .toColourspace('cmyk')
      .jpeg({ quality: 100 })
      .toFile(cmyk);
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    const c = await decodeRgb(cmyk);
    assert.equal(c.data.length, 8 * 8 * 3);
    assert.ok(c.data[0]! > 150 && c.data[1]! < 100 && c.data[2]! < 100, `CMYK red decoded as ${[...c.data.slice(0, 3)]}`);

    const rgba = join(tmp, 'a.webp');
    await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } })
      .webp({ lossless: true })
      .toFile(rgba);
    const a = await decodeRgb(rgba);
    assert.equal(a.data.length, 4 * 4 * 3);

    // 16 wide × 8 high, left half red; EXIF orientation 6 = rotate 90° clockwise on display.
    const raw = Buffer.alloc(16 * 8 * 3, 0);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) raw.set([255, 0, 0], (y * 16 + x) * 3);
    const rot = join(tmp, 'o.jpg');
    await sharp(raw, { raw: { width: 16, height: 8, channels: 3 } })
      .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
      .withMetadata({ orientation: 6 })
      .toFile(rot);
    assert.deepEqual(await imageSize(rot), { width: 8, height: 16 });
    const o = await decodeRgb(rot);
    assert.deepEqual([o.width, o.height], [8, 16]);
    // After a clockwise quarter turn the left half becomes the top half.
    const red = (x: number, y: number): number => o.data[(y * 8 + x) * 3]!;
    assert.ok(red(0, 0) > 200 && red(7, 3) > 200, 'top half red');
    assert.ok(red(0, 15) < 50 && red(7, 12) < 50, 'bottom half not red');
  });
});

test('corrupt and truncated files are reported with their path', async () => {
  await withTmp(async (tmp) => {
    const bad = join(tmp, 'bad.jpg');
    await writeFile(bad, Buffer.from('definitely not a jpeg'));
    await assert.rejects(loadImageTensor(bad, { transform: 'eval', size: 8 }), (e: Error) => e.message.includes(bad));
    const good = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
      .jpeg()
      .toBuffer();
    const cut = join(tmp, 'cut.jpg');
    await writeFile(cut, good.subarray(0, Math.floor(good.length / 2)));
    await assert.rejects(loadImageTensor(cut, { transform: 'eval', size: 8 }), (e: Error) => e.message.includes(cut));
  });
});

test('enlarging follows PIL: half-pixel centres, clamped borders (computed here from the formula)', async () => {
  const { resizeBilinearRgb } = await import('../../ml/data/resize.js');
  // 4×2 source, R = 40·x; enlarge ×2 horizontally: output x' samples source x'/2 − 0.25, clamped.
  const src = new Uint8Array(4 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) src.set([40 * x, 100, 7], (y * 4 + x) * 3);
  const out = resizeBilinearRgb(src, 4, 2, 8, 2);
  const want = Array.from({ length: 8 }, (_, x) => 40 * Math.min(3, Math.max(0, x / 2 - 0.25)));
  assert.deepEqual(
    Array.from({ length: 8 }, (_, x) => out[x * 3]),
    want,
  );
  assert.ok(Array.from({ length: 16 }, (_, i) => out[i * 3 + 1]).every((v) => v === 100));
});

test('shrinking: libvips (used for speed) stays close to the PIL-style filter on a noise image', async () => {
  const { resizeBilinearRgb } = await import('../../ml/data/resize.js');
  const rng = new Rng(9);
  const [w, h, dw, dh] = [100, 80, 37, 29];
  const src = Uint8Array.from({ length: w * h * 3 }, () => rng.int(256));
  const viaJs = resizeBilinearRgb(src, w, h, dw, dh);
  const viaVips = await decodeRgb(
    await sharp(Buffer.from(src), { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toBuffer(),
    { resize: { width: dw, height: dh } },
  );
  let sum = 0;
  for (let i = 0; i < viaJs.length; i++) sum += Math.abs(viaJs[i]! - viaVips.data[i]!);
  // Noise is the worst case for filter differences; natural images differ far less.
  assert.ok(sum / viaJs.length < 1.5, `mean abs difference ${sum / viaJs.length}`);
});

test('mixed resize (one axis shrinks in libvips, the other grows in JS) keeps both axes aligned', async () => {
  const { decodeResized } = await import('../../ml/data/image-tensor.js');
  const png = await sharp(ramp(48, 32), { raw: { width: 48, height: 32, channels: 3 } })
    .png()
    .toBuffer();
  for (const [w, h] of [
    [24, 64],
    [96, 16],
  ] as const) {
    const img = await decodeResized(png, { resize: { width: w, height: h } }, 48, 32);
    assert.deepEqual([img.width, img.height], [w, h]);
    // Source coordinate of output pixel i along an axis of scale s: (i + 0.5)/s − 0.5, clamped
    // when enlarging (PIL's border handling); both ramps are linear so these are the exact values.
    const at = (i: number, s: number, n: number): number => Math.min(n - 1, Math.max(0, (i + 0.5) / s - 0.5));
    for (let x = 1; x < w - 1; x++) assert.equal(img.data[x * 3], 4 * at(x, w / 48, 48), `R at x=${x} for ${w}×${h}`);
    for (let y = 1; y < h - 1; y++) assert.equal(img.data[y * w * 3 + 1], 8 * at(y, h / 32, 32), `G at y=${y} for ${w}×${h}`);
  }
});
