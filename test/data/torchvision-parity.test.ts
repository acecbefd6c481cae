// The `torchvision` convention against tensors torchvision + PIL computed on real photographs
// (test/fixtures/pixels, made by test/fixtures-gen/pixels.py; see the README there).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { loadImageTensor } from '../../ml/data/image-tensor.js';
import { createLoader } from '../../ml/data/loader.js';
import { Rng } from '../../ml/data/rng.js';
import { resizeAsPil } from '../../ml/data/pil-resample.js';
import { resizedCropAsTorchvision, TORCHVISION_NORMALISE } from '../../ml/data/torchvision-transform.js';
import { normaliseInto, sampleRandomResizedCrop } from '../../ml/data/transforms.js';
import { loadEvalBatch } from '../../ml/explain/images.js';
import { decodeAsPil } from '../../ml/io/image-as-pil.js';
import { parseNpy } from '../../ml/io/npy.js';
import { repoRoot } from './helpers.js';

interface Manifest {
  mean: number[];
  std: number[];
  table: number[][];
  eval: Array<{ image: string; pil_mode: string; size: number; resize: number; ref: string }>;
  train: Array<{
    image: string;
    box: { top: number; left: number; height: number; width: number };
    flip: boolean;
    size: number;
    ref: string;
  }>;
  resample: Array<{ from: [number, number]; to: [number, number]; input: string; ref: string }>;
}

const DIR = join(repoRoot(), 'test', 'fixtures', 'pixels');
const manifest: Manifest = JSON.parse(await readFile(join(DIR, 'manifest.json'), 'utf8'));
const image = (name: string): string => join(DIR, 'images', name);

/** torchvision's NCHW tensor: table[c][u8] (the generator checked this equals it bit for bit). */
async function reference(name: string, size: number): Promise<Float32Array> {
  const u8 = parseNpy(gunzipSync(await readFile(join(DIR, 'refs', name))), name);
  assert.deepEqual(u8.shape, [size, size, 3]);
  const hw = size * size;
  const out = new Float32Array(3 * hw);
  for (let p = 0; p < hw; p++) for (let c = 0; c < 3; c++) out[c * hw + p] = Math.fround(manifest.table[c]![u8.data[p * 3 + c] as number]!);
  return out;
}

async function readU8(name: string): Promise<Uint8Array> {
  return parseNpy(gunzipSync(await readFile(join(DIR, 'refs', name))), name).data as Uint8Array;
}

/** max and mean |Δ| in 0–255 pixel units (a normalised difference times std·255). */
function deltas(got: Float32Array, want: Float32Array): { max: number; mean: number } {
  const hw = got.length / 3;
  let max = 0;
  let sum = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!) * manifest.std[Math.floor(i / hw)]! * 255;
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / got.length };
}

// 1/255 of the range, with float32 slack for the ×std·255 conversion back to pixel units.
const TOLERANCE = 1 + 1e-4;

test("ToTensor + Normalize: the byte table equals torchvision's float32 values bit for bit", () => {
  for (let c = 0; c < 3; c++)
    for (let v = 0; v < 256; v++)
      assert.equal(TORCHVISION_NORMALISE[c]![v], Math.fround(manifest.table[c]![v]!), `channel ${c}, byte ${v}`);
});

test('the fixtures cover an ICC profile, CMYK, greyscale, alpha, palette, 16-bit, EXIF rotation and a ≥ 4× image', () => {
  const modes = new Set(manifest.eval.map((e) => e.pil_mode));
  for (const m of ['RGB', 'CMYK', 'L', 'RGBA', 'P', 'I;16']) assert.ok(modes.has(m), m);
  const names = manifest.eval.map((e) => e.image);
  for (const n of ['rocket-adobergb.jpg', 'retina-1411.jpg', 'coffee-rgb16.png', 'chelsea-exif6.jpg']) assert.ok(names.includes(n), n);
});

test("Pillow's BILINEAR resize, bit for bit: shrinking, enlarging, one axis, both ways, and any window of it", async () => {
  for (const r of manifest.resample) {
    const [sw, sh] = r.from;
    const [dw, dh] = r.to;
    const src = await readU8(r.input);
    const want = await readU8(r.ref);
    assert.deepEqual(resizeAsPil(src, sw, sh, dw, dh), want, `${sw}×${sh} → ${dw}×${dh}`);
    const win = { left: Math.floor(dw / 3), top: Math.floor(dh / 4), width: Math.ceil(dw / 2), height: Math.ceil(dh / 2) };
    const part = resizeAsPil(src, sw, sh, dw, dh, win);
    for (let y = 0; y < win.height; y++) {
      const from = ((win.top + y) * dw + win.left) * 3;
      assert.deepEqual(
        part.subarray(y * win.width * 3, (y + 1) * win.width * 3),
        want.subarray(from, from + win.width * 3),
        `${sw}×${sh} → ${dw}×${dh}, window row ${y}`,
      );
    }
  }
});

for (const e of manifest.eval) {
  test(`eval Resize(${e.resize}) + CenterCrop(${e.size}) matches torchvision: ${e.image} (PIL mode ${e.pil_mode})`, async (t) => {
    const want = await reference(e.ref, e.size);
    const got = await loadImageTensor(image(e.image), {
      transform: 'eval',
      size: e.size,
      resize: e.resize,
      preprocessing: 'torchvision',
      layout: 'NCHW',
    });
    const tv = deltas(got.data, want);
    const fast = deltas(
      (await loadImageTensor(image(e.image), { transform: 'eval', size: e.size, resize: e.resize, preprocessing: 'fast', layout: 'NCHW' }))
        .data,
      want,
    );
    t.diagnostic(
      `${e.image}: torchvision max ${tv.max.toFixed(3)} mean ${tv.mean.toFixed(4)} /255; fast max ${fast.max.toFixed(1)} mean ${fast.mean.toFixed(3)} /255`,
    );
    assert.ok(tv.max <= TOLERANCE, `max |Δ| ${tv.max} /255 (mean ${tv.mean})`);
  });
}

for (const c of manifest.train) {
  const { top, left, height, width } = c.box;
  test(`train resized_crop(${top}, ${left}, ${height}, ${width})${c.flip ? ' + hflip' : ''} matches torchvision: ${c.image}`, async (t) => {
    const want = await reference(c.ref, c.size);
    const full = await decodeAsPil(await readFile(image(c.image)), c.image);
    const img = resizedCropAsTorchvision(full, { left, top, width, height }, c.size);
    const got = new Float32Array(3 * c.size * c.size);
    normaliseInto(img.data, c.size, c.size, got, 0, 'NCHW', c.flip, TORCHVISION_NORMALISE);
    const d = deltas(got, want);
    t.diagnostic(`${c.image}: max ${d.max.toFixed(3)} mean ${d.mean.toFixed(4)} /255`);
    assert.ok(d.max <= TOLERANCE, `max |Δ| ${d.max} /255 (mean ${d.mean})`);
  });
}

test('the train loader under torchvision is resized_crop of the box its Rng draws, flipped as drawn', async () => {
  const name = 'rocket-adobergb.jpg';
  const full = await decodeAsPil(await readFile(image(name)), name);
  for (const id of [0, 1, 2, 3]) {
    const got = await loadImageTensor(image(name), {
      transform: 'train',
      size: 64,
      preprocessing: 'torchvision',
      seed: 5,
      epoch: 1,
      id,
      layout: 'NCHW',
    });
    const rng = new Rng(5, 1, id);
    const box = sampleRandomResizedCrop(full.width, full.height, rng);
    const flip = rng.float() < 0.5;
    const want = new Float32Array(3 * 64 * 64);
    normaliseInto(resizedCropAsTorchvision(full, box, 64).data, 64, 64, want, 0, 'NCHW', flip, TORCHVISION_NORMALISE);
    assert.deepEqual(got.data, want, `item ${id}`);
  }
});

test("saliency and evaluate images (loadEvalBatch with the model card's mean/std) match torchvision too", async () => {
  const cases = manifest.eval;
  const batch = await loadEvalBatch(
    cases.map((e) => image(e.image)),
    { size: 224, resize: 256, preprocessing: 'torchvision' },
    manifest.mean,
    manifest.std,
  );
  const per = 3 * 224 * 224;
  for (let i = 0; i < cases.length; i++) {
    const d = deltas(batch.subarray(i * per, (i + 1) * per), await reference(cases[i]!.ref, 224));
    assert.ok(d.max <= TOLERANCE, `${cases[i]!.image}: max |Δ| ${d.max} /255`);
  }
});

test('the worker-pool loader carries the convention to its threads', async () => {
  const cases = manifest.eval.slice(0, 4);
  const items = cases.map((e, id) => ({ id, path: image(e.image), label: 0 }));
  const loader = createLoader({
    items,
    batchSize: 4,
    transform: 'eval',
    size: 224,
    resize: 256,
    layout: 'NCHW',
    shuffle: false,
    workers: 1,
    preprocessing: 'torchvision',
  });
  const per = 3 * 224 * 224;
  for await (const b of loader) {
    for (let i = 0; i < b.n; i++) {
      const d = deltas(b.x.subarray(i * per, (i + 1) * per), await reference(cases[b.ids[i]!]!.ref, 224));
      assert.ok(d.max <= TOLERANCE, `${cases[b.ids[i]!]!.image}: max |Δ| ${d.max} /255`);
    }
  }
});
