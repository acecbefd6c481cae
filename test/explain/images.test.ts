// Images, masks and boxes go through the same eval geometry (shrinking and enlarging paths), so a
// map, the image it explains and the object mask share one pixel grid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePng } from '../../ml/io/image.js';
import { boxToEval, loadEvalBatch, loadEvalMask } from '../../ml/explain/images.js';
import { decodeEvalRgb, loadImageTensor } from '../../ml/data/image-tensor.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../ml/data/transforms.js';
import { tmp } from './helpers.js';

async function pair(dir: string, W: number, H: number, box: { x: number; y: number; w: number; h: number }) {
  const rgb = new Uint8Array(W * H * 3).fill(128);
  const mask = new Uint8Array(W * H);
  for (let y = box.y; y < box.y + box.h; y++)
    for (let x = box.x; x < box.x + box.w; x++) {
      rgb.set([230, 20, 20], (y * W + x) * 3);
      mask[y * W + x] = 255;
    }
  const img = join(dir, `img-${W}x${H}.png`);
  const msk = join(dir, `mask-${W}x${H}.png`);
  writeFileSync(img, await encodePng(rgb, W, H, 3));
  writeFileSync(msk, await encodePng(mask, W, H, 1));
  return { img, msk };
}

for (const [W, H, size] of [
  [96, 80, 48],
  [40, 36, 48],
] as const) {
  test(`eval geometry ${W}×${H} → ${size}: mask pixels are object pixels, the box maps onto the mask`, async () => {
    const dir = tmp();
    const box = { x: Math.round(W * 0.3), y: Math.round(H * 0.25), w: Math.round(W * 0.35), h: Math.round(H * 0.4) };
    const { img, msk } = await pair(dir, W, H, box);
    const t = { size };
    const im = await decodeEvalRgb(img, size);
    const m = await loadEvalMask(msk, t);
    assert.equal(im.width, size);
    assert.equal(m.length, size * size);
    let inside = 0;
    let x0: number = size,
      y0: number = size,
      x1 = -1,
      y1 = -1;
    for (let y = 1; y < size - 1; y++)
      for (let x = 1; x < size - 1; x++) {
        const p = y * size + x;
        const ring = [p - 1, p + 1, p - size, p + size];
        const r = im.data[p * 3];
        if (m[p] && ring.every((q) => m[q])) {
          assert.ok(r > 200, `object pixel (${x}, ${y}) has red ${r}`);
          inside++;
        }
        if (!m[p] && ring.every((q) => !m[q])) assert.ok(Math.abs(r - 128) < 30, `background pixel (${x}, ${y}) has red ${r}`);
        if (m[p]) {
          x0 = Math.min(x0, x);
          y0 = Math.min(y0, y);
          x1 = Math.max(x1, x);
          y1 = Math.max(y1, y);
        }
      }
    assert.ok(inside > 20);
    const b = boxToEval(box, { width: W, height: H }, t);
    for (const [got, want] of [
      [b.x0, x0],
      [b.y0, y0],
      [b.x1, x1],
      [b.y1, y1],
    ])
      assert.ok(Math.abs(got - want) <= 1.5, `box ${JSON.stringify(b)} vs mask extent ${[x0, y0, x1, y1]}`);
  });
}

test('an eval batch holds the tensors the data loader makes for the same files (one decode path)', async () => {
  const dir = tmp();
  const files: string[] = [];
  // Shrinking, enlarging and an odd aspect, so every branch of the eval geometry is crossed.
  for (const [W, H] of [
    [96, 80],
    [40, 36],
    [31, 70],
  ] as const) {
    const rgb = new Uint8Array(W * H * 3).map((_, i) => (i * 37 + (i % 7) * 11) & 255);
    const f = join(dir, `noise-${W}x${H}.png`);
    writeFileSync(f, await encodePng(rgb, W, H, 3));
    files.push(f);
  }
  const size = 32;
  const batch = await loadEvalBatch(files, { size, resize: 40 }, IMAGENET_MEAN, IMAGENET_STD);
  const per = 3 * size * size;
  for (let i = 0; i < files.length; i++) {
    const ref = await loadImageTensor(files[i], { transform: 'eval', size, resize: 40 });
    for (let k = 0; k < per; k++)
      assert.ok(Math.abs(batch[i * per + k] - ref.data[k]) < 1e-6, `${files[i]} value ${k}: ${batch[i * per + k]} vs ${ref.data[k]}`);
  }
  // Other normalisation constants (a model card's own) are applied, not ImageNet's.
  const own = await loadEvalBatch(files.slice(0, 1), { size, resize: 40 }, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]);
  const rgb = await decodeEvalRgb(files[0], size, 40);
  for (const p of [0, 17, size * size - 1]) assert.ok(Math.abs(own[p] - (rgb.data[p * 3] / 255 - 0.5) / 0.25) < 1e-6);
});

test('a missing image file is an error naming the file', async () => {
  const missing = join(tmp(), 'nope.png');
  await assert.rejects(loadEvalBatch([missing], { size: 8 }, IMAGENET_MEAN, IMAGENET_STD), (e: Error) => e.message.includes(missing));
});
