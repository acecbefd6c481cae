import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeGray, decodeRgb } from '../../ml/io/image.js';
import { buildIndex } from '../../ml/data/build-index.js';
import { renderSample, SHAPES } from '../../ml/data/synthetic.js';
import { withTmp } from './helpers.js';

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const p = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
      out.set(p.slice(dir.length), await readFile(p));
    }
  }
  return out;
}

test('generation is byte-identical across two runs with the same seed, and differs with another seed', async () => {
  await withTmp(async (tmp) => {
    const params = { source: 'synthetic' as const, synthetic: { classes: 8, per_class: 3, size: 48, seed: 11 } };
    await buildIndex(params, { baseDir: tmp, outDir: join(tmp, 'a') });
    await buildIndex(params, { baseDir: tmp, outDir: join(tmp, 'b') });
    await buildIndex({ ...params, synthetic: { ...params.synthetic, seed: 12 } }, { baseDir: tmp, outDir: join(tmp, 'c') });
    const a = await filesOf(join(tmp, 'a'));
    const b = await filesOf(join(tmp, 'b'));
    const c = await filesOf(join(tmp, 'c'));
    assert.equal(a.size, 8 * 3 * 2);
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs between runs`);
    const same = [...a].filter(([k, v]) => k.startsWith('/images/') && v.equals(c.get(k)!)).length;
    assert.equal(same, 0);
  });
});

test('the mask is exactly the object: object colour inside, untouched background outside', () => {
  for (let label = 0; label < SHAPES.length; label++) {
    for (let i = 0; i < 4; i++) {
      const size = i % 2 ? 64 : 100;
      const s = renderSample(5, label, i, size);
      const bg = renderSample(5, label, i, size, { withoutObject: true });
      const bare = renderSample(5, label, i, size, { withoutObject: true, withoutDistractors: true });
      let inside = 0;
      let changed = 0;
      let x0 = size,
        y0 = size,
        x1 = -1,
        y1 = -1;
      for (let p = 0; p < size * size; p++) {
        const px = [s.rgb[3 * p], s.rgb[3 * p + 1], s.rgb[3 * p + 2]];
        if (s.mask[p] === 255) {
          inside++;
          assert.deepEqual(px, s.colour, `class ${label} #${i}: mask pixel ${p} is not the object colour`);
          if (px.some((v, c) => v !== bare.rgb[3 * p + c])) changed++;
          const x = p % size,
            y = Math.floor(p / size);
          x0 = Math.min(x0, x);
          x1 = Math.max(x1, x);
          y0 = Math.min(y0, y);
          y1 = Math.max(y1, y);
        } else {
          assert.equal(s.mask[p], 0);
          assert.deepEqual(
            px,
            [bg.rgb[3 * p], bg.rgb[3 * p + 1], bg.rgb[3 * p + 2]],
            `class ${label} #${i}: pixel ${p} outside the mask was painted`,
          );
        }
      }
      // The object covers a real area and its colour never occurs in the background under it
      // (distractors may share the colour; the background never does).
      assert.ok(inside > 0.01 * size * size, `object too small: ${inside}`);
      assert.equal(changed, inside, `object colour found in the background under the mask`);
      assert.deepEqual(s.box, { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 });
    }
  }
});

test('classes are shapes, not colours or backgrounds: object colours spread over hues in every class', () => {
  const hueOf = ([r, g, b]: number[]): number => {
    const max = Math.max(r!, g!, b!),
      min = Math.min(r!, g!, b!);
    if (max === min) return 0;
    const d = max - min;
    const h = max === r ? ((g! - b!) / d + 6) % 6 : max === g ? (b! - r!) / d + 2 : (r! - g!) / d + 4;
    return h / 6;
  };
  for (let label = 0; label < SHAPES.length; label++) {
    const bins = new Set<number>();
    for (let i = 0; i < 40; i++) bins.add(Math.floor(hueOf(renderSample(0, label, i, 32).colour) * 6));
    assert.ok(bins.size >= 5, `class ${SHAPES[label]} uses only ${bins.size} of 6 hue bins`);
  }
});

test('written PNGs decode to the rendered pixels; masks are 1-channel and match', async () => {
  await withTmp(async (tmp) => {
    const built = await buildIndex(
      { source: 'synthetic', synthetic: { classes: 2, per_class: 2, size: 40, seed: 3 } },
      { baseDir: tmp, outDir: tmp },
    );
    for (const r of built.records) {
      const s = renderSample(3, r.label, r.id % 2, 40);
      const img = await decodeRgb(join(tmp, r.path));
      assert.deepEqual(Buffer.from(img.data), Buffer.from(s.rgb));
      const m = await decodeGray(join(tmp, r.mask!));
      assert.deepEqual(Buffer.from(m.data), Buffer.from(s.mask));
      const sharp = (await import('sharp')).default;
      assert.equal((await sharp(join(tmp, r.mask!)).metadata()).channels, 1);
      assert.deepEqual(r.box, s.box);
    }
  });
});

test('colour statistics do not give the label away: a nearest-class-mean classifier on them is near chance', () => {
  const classes = 6;
  const size = 32;
  // Features: mean RGB of the whole image and of its brightest/darkest quarter (colour "style").
  const features = (rgb: Uint8Array): number[] => {
    const lum: number[] = [];
    const sum = [0, 0, 0];
    for (let p = 0; p < size * size; p++) {
      for (let c = 0; c < 3; c++) sum[c]! += rgb[p * 3 + c]!;
      lum.push(rgb[p * 3]! + rgb[p * 3 + 1]! + rgb[p * 3 + 2]!);
    }
    lum.sort((a, b) => a - b);
    const q = lum.length >> 2;
    return [...sum.map((v) => v / (size * size)), lum[q]! / 3, lum[3 * q]! / 3];
  };
  const train: number[][][] = [];
  const means: number[][] = [];
  for (let c = 0; c < classes; c++) {
    train.push(Array.from({ length: 60 }, (_, i) => features(renderSample(21, c, i, size).rgb)));
    means.push(train[c]![0]!.map((_, k) => train[c]!.reduce((s, f) => s + f[k]!, 0) / 60));
  }
  let correct = 0;
  let total = 0;
  for (let c = 0; c < classes; c++) {
    for (let i = 60; i < 100; i++) {
      const f = features(renderSample(21, c, i, size).rgb);
      let best = 0;
      let bestD = Infinity;
      means.forEach((m, k) => {
        const d = m.reduce((s, v, j) => s + (v - f[j]!) ** 2, 0);
        if (d < bestD) [best, bestD] = [k, d];
      });
      correct += best === c ? 1 : 0;
      total++;
    }
  }
  // Chance is 1/6; 240 test images give a standard error of ~0.024.
  assert.ok(correct / total < 0.3, `colour-only accuracy ${(correct / total).toFixed(3)}`);
});

/** Total variation of the RGB image outside the object mask (horizontal + vertical neighbours). */
function backgroundVariation(rgb: Uint8Array, mask: Uint8Array, size: number): number {
  let tv = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      if (mask[p]) continue;
      for (const q of [x + 1 < size ? p + 1 : -1, y + 1 < size ? p + size : -1]) {
        if (q < 0 || mask[q]) continue;
        for (let c = 0; c < 3; c++) tv += Math.abs(rgb[3 * p + c] - rgb[3 * q + c]);
      }
    }
  }
  return tv;
}

test('clutter: "full" is the default rendering; "low" keeps objects and masks but drops distractors and stripes', () => {
  let fullTv = 0;
  let lowTv = 0;
  let distractorsDropped = 0;
  for (let label = 0; label < 6; label++) {
    for (let i = 0; i < 8; i++) {
      const def = renderSample(9, label, i, 64);
      const full = renderSample(9, label, i, 64, { clutter: 'full' });
      const low = renderSample(9, label, i, 64, { clutter: 'low' });
      assert.deepEqual(full.rgb, def.rgb, 'clutter: full must not change the default images');
      assert.deepEqual(low.mask, full.mask, `class ${label} #${i}: the object moved`);
      assert.deepEqual(low.box, full.box);
      assert.deepEqual(low.colour, full.colour);
      const a = backgroundVariation(full.rgb, full.mask, 64);
      const b = backgroundVariation(low.rgb, low.mask, 64);
      assert.ok(b <= a, `class ${label} #${i}: low clutter has more background variation (${b}) than full (${a})`);
      fullTv += a;
      lowTv += b;
      const bare = renderSample(9, label, i, 64, { withoutDistractors: true });
      if (!bare.rgb.every((v, k) => v === full.rgb[k]) && bare.rgb.every((v, k) => v === low.rgb[k])) distractorsDropped++;
    }
  }
  // Stripes are the busiest backgrounds: without them the total variation drops well below full's.
  assert.ok(lowTv < 0.7 * fullTv, `background variation low ${lowTv} vs full ${fullTv}`);
  // On non-striped backgrounds, low is exactly full without its distractors.
  assert.ok(distractorsDropped >= 20, `only ${distractorsDropped} of 48 images equal full minus distractors`);
});
