import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { reportStage } from '../../stages/report/index.js';
import type { StageContext, VariantInput } from '../../engine/contract.js';

const iv = (mean: number) => ({ mean, lo: mean - 1, hi: mean + 1, n: 3 });

async function evaluation(dir: string, pooling: 'gap' | 'ca', perImage: Array<{ id: number; AD: number }>) {
  await mkdir(dir, { recursive: true });
  const ad = perImage.reduce((s, r) => s + r.AD, 0) / perImage.length;
  await writeFile(
    join(dir, 'evaluation.json'),
    JSON.stringify({
      format: 'ca-pipe.evaluate/1',
      protocol: { name: 'ca-stream' },
      pooling,
      accuracy: { top1: pooling === 'ca' ? 0.9 : 0.88, top5: 1, n: 3 },
      methods: {
        '<gradcam>': {
          AD: iv(ad),
          AI: iv(40),
          AG: iv(10),
          insertion: iv(0.7),
          deletion: iv(0.1),
          excluded: { constant: pooling === 'gap' ? 1 : 0 },
        },
      },
    }),
  );
  await writeFile(join(dir, 'per_image.jsonl'), perImage.map((r) => JSON.stringify({ method: '<gradcam>', ...r })).join('\n') + '\n');
  await writeFile(join(dir, 'curves.json'), JSON.stringify({ '<gradcam>': { insertion: [0.1, 0.5, 0.9], deletion: [0.9, 0.3, 0.1] } }));
}

async function saliency(dir: string, pooling: string, ids: number[]) {
  await mkdir(join(dir, 'overlays'), { recursive: true });
  const overlays = [];
  for (const id of ids) {
    // Noise makes PNGs incompressible, so the size budget really bites.
    const px = Buffer.alloc(64 * 64 * 3);
    let x = (id + 1) * 0x9e3779b9;
    for (let i = 0; i < px.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      px[i] = x & 255;
    }
    await sharp(px, { raw: { width: 64, height: 64, channels: 3 } })
      .png()
      .toFile(join(dir, 'overlays', `${id}-gradcam.png`));
    overlays.push({ id, method: 'gradcam', file: `overlays/${id}-gradcam.png` });
  }
  await writeFile(
    join(dir, 'saliency.json'),
    JSON.stringify({
      format: 'ca-pipe.saliency/1',
      methods: ['gradcam'],
      h: 2,
      w: 2,
      split: 'val',
      target: 'gt',
      pooling,
      ids,
      targets: ids.map(() => 0),
      shards: [],
      degenerate: {},
      overlays,
    }),
  );
}

function ctxFor(root: string, variantInputs: Record<string, VariantInput[]>, params: Record<string, unknown>): StageContext<any> {
  const noop = () => {};
  return {
    params: { gallery_images: 6, max_bytes: 5_000_000, bootstrap: 200, seed: 0, ...params },
    inputs: {},
    variantInputs,
    outDir: join(root, 'out'),
    scratchDir: join(root, 'scratch'),
    baseDir: root,
    progress: { total: noop, tick: noop, set: noop, message: noop },
    log: { info: noop, warn: noop, error: noop, debug: noop },
    signal: new AbortController().signal,
    stage: { name: 'report', variantId: '', alias: '', key: 'k' },
    provenance: {},
    experiment: {
      name: 'exp<1>',
      file: '/x/exp.yaml',
      resolved: { stages: { '<script>': 1 } },
      variants: [],
      instances: [{ id: 'a', stage: 'a', kind: 'index', variant: '', status: 'cached', seconds: 0.1 }],
      toolVersion: '0.1.0',
    },
  };
}

test('report pairs GAP and CA per image, escapes every string, and writes the three files', async () => {
  const root = await mkdtemp(join(tmpdir(), 'report-'));
  await evaluation(join(root, 'eg'), 'gap', [
    { id: 1, AD: 10 },
    { id: 2, AD: 20 },
    { id: 3, AD: 30 },
  ]);
  // CA has an extra image (4) that GAP lacks: pairing must use only the common ids 1..3.
  await evaluation(join(root, 'ec'), 'ca', [
    { id: 1, AD: 8 },
    { id: 2, AD: 17 },
    { id: 3, AD: 26 },
    { id: 4, AD: 99 },
  ]);
  await saliency(join(root, 'sg'), 'gap', [1, 2]);
  await saliency(join(root, 'sc'), 'ca', [2, 3]);
  await mkdir(join(root, 'out'));
  const v = (dir: string, key: string): VariantInput[] => [{ variantId: '', alias: '', values: {}, dir: join(root, dir), key }];
  await reportStage.run(ctxFor(root, { eg: v('eg', 'k1'), ec: v('ec', 'k2'), sg: v('sg', 'k3'), sc: v('sc', 'k4') }, {}));
  const html = await readFile(join(root, 'out', 'report.html'), 'utf8');
  const summary = JSON.parse(await readFile(join(root, 'out', 'summary.json'), 'utf8'));
  assert.ok(!html.includes('<gradcam>') && html.includes('&lt;gradcam&gt;'), 'method names are escaped');
  assert.ok(!html.includes('<script>') && html.includes('&lt;script&gt;'), 'config strings are escaped');
  assert.ok(html.includes('exp&lt;1&gt;'));
  const ad = summary.paired.find((r: any) => r.metric === 'AD');
  // CA − GAP over ids 1..3: (8−10 + 17−20 + 26−30)/3 = −3.
  assert.ok(Math.abs(ad.diff.mean - -3) < 1e-9, `paired AD diff ${ad.diff.mean}`);
  assert.equal(ad.diff.n, 3);
  assert.ok(ad.diff.lo <= -3 && ad.diff.hi >= -3);
  // Gallery: only image 2 has overlays in both saliency outputs.
  assert.equal((html.match(/<img /g) ?? []).length, 2);
  assert.match(html, /constant map\(s\) left out/);
  assert.match(await readFile(join(root, 'out', 'summary.md'), 'utf8'), /\| <gradcam> \| 20\.00 \|/);
});

test('report stays under its byte budget by thinning the gallery', async () => {
  const root = await mkdtemp(join(tmpdir(), 'report-'));
  const ids = Array.from({ length: 40 }, (_, i) => i);
  await saliency(join(root, 's'), 'ca', ids);
  await evaluation(join(root, 'e'), 'ca', [{ id: 1, AD: 1 }]);
  await mkdir(join(root, 'out'));
  const v = (dir: string, key: string): VariantInput[] => [{ variantId: '', alias: '', values: {}, dir: join(root, dir), key }];
  await reportStage.run(ctxFor(root, { s: v('s', 'a'), e: v('e', 'b') }, { gallery_images: 40, max_bytes: 150_000 }));
  const html = await readFile(join(root, 'out', 'report.html'), 'utf8');
  const imgs = (html.match(/<img /g) ?? []).length;
  assert.ok(html.length <= 150_000, `html ${html.length} bytes`);
  assert.ok(imgs > 0 && imgs < 40, `gallery thinned to ${imgs}`);
});

test('gallery rows follow the saliency stage order (class-interleaved), not sorted ids', async () => {
  const root = await mkdtemp(join(tmpdir(), 'report-order-'));
  await evaluation(join(root, 'eg'), 'gap', [{ id: 1, AD: 10 }]);
  await saliency(join(root, 'sg'), 'gap', [9, 2, 5, 7]);
  await saliency(join(root, 'sc'), 'ca', [7, 5, 2, 9]);
  await mkdir(join(root, 'out'));
  const v = (dir: string, key: string): VariantInput[] => [{ variantId: '', alias: '', values: {}, dir: join(root, dir), key }];
  await reportStage.run(ctxFor(root, { eg: v('eg', 'k1'), sg: v('sg', 'k3'), sc: v('sc', 'k4') }, { gallery_images: 3 }));
  const html = await readFile(join(root, 'out', 'report.html'), 'utf8');
  const rows = [...html.matchAll(/<tr><td>#(\d+)<\/td>/g)].map((m) => Number(m[1]));
  assert.deepEqual(rows, [9, 2, 5]);
});

test('the report does not depend on timings, cache status (run.json has them) or the checkout path, only on its inputs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'report-det-'));
  await evaluation(join(root, 'eg'), 'gap', [
    { id: 1, AD: 10 },
    { id: 2, AD: 20 },
  ]);
  await evaluation(join(root, 'ec'), 'ca', [
    { id: 1, AD: 8 },
    { id: 2, AD: 17 },
  ]);
  const v = (dir: string, key: string): VariantInput[] => [{ variantId: '', alias: '', values: {}, dir: join(root, dir), key }];
  const inputs = { eg: v('eg', 'k1'), ec: v('ec', 'k2') };
  const outputs: string[][] = [];
  for (const [k, history] of [
    { status: 'executed', seconds: 4321.25 },
    { status: 'cached', seconds: undefined },
  ].entries()) {
    const ctx = ctxFor(root, inputs, {});
    ctx.outDir = join(root, `out${k}`);
    await mkdir(ctx.outDir);
    const provenance = { backend: 'wasm-backend-x', train: { train_images_per_s: 100 + 300 * k } };
    ctx.experiment!.instances = [{ id: 'pretrain', stage: 'pretrain', kind: 'train', variant: '', ...history, provenance }];
    // Another checkout of the same project: only the experiment file's name reaches the report.
    ctx.experiment!.file = k === 0 ? '/home/a/project/experiments/exp.yaml' : '/srv/b/experiments/exp.yaml';
    await reportStage.run(ctx);
    outputs.push(await Promise.all(['report.html', 'summary.md', 'summary.json'].map((f) => readFile(join(ctx.outDir, f), 'utf8'))));
  }
  assert.deepEqual(outputs[1], outputs[0]);
  const html = outputs[0]![0]!;
  assert.match(html, /<td>pretrain<\/td><td>train<\/td><td>–<\/td><td>wasm-backend-x<\/td>/, 'instance table: id, kind, variant, backend');
  assert.ok(!html.includes('4321') && !html.includes('executed'), 'no seconds, no status');
  assert.match(html, /run\.json/, 'points to run.json for timings');
  assert.ok(
    html.includes('(exp.yaml)') && !html.includes('/srv/b') && !html.includes('/home/a'),
    'experiment file named without its directory',
  );
});

/** An evaluation with several methods' per-image insertion scores (fractions, reported ×100). */
async function insertionEvaluation(dir: string, pooling: 'gap' | 'ca', perMethod: Record<string, number[]>) {
  await mkdir(dir, { recursive: true });
  const methods = Object.fromEntries(
    Object.keys(perMethod).map((m) => [m, { AD: iv(1), AI: iv(1), AG: iv(1), insertion: iv(0.5), deletion: iv(0.1), excluded: {} }]),
  );
  await writeFile(
    join(dir, 'evaluation.json'),
    JSON.stringify({
      format: 'ca-pipe.evaluate/1',
      protocol: { name: 'ca-stream' },
      pooling,
      accuracy: { top1: 0.9, top5: 1, n: 6 },
      methods,
    }),
  );
  const rows = Object.entries(perMethod).flatMap(([method, v]) => v.map((insertion, id) => JSON.stringify({ method, id, insertion })));
  await writeFile(join(dir, 'per_image.jsonl'), rows.join('\n') + '\n');
}

test('adjusted comparison: a gain the random map shares does not survive, one beyond it does', async () => {
  const root = await mkdtemp(join(tmpdir(), 'report-adj-'));
  const gap = [0.5, 0.4, 0.6, 0.5, 0.45, 0.55];
  // random: CA − GAP = 0.09, 0.11, 0.10, 0.09, 0.11, 0.10 (the models alone raise insertion by ~10 points)
  const randomDiff = [0.09, 0.11, 0.1, 0.09, 0.11, 0.1];
  // scorecam: 0.05 or 0.06 more than random on every image, so the adjusted mean is 0.055 (5.5 points)
  // and every resampled mean lies in [0.05, 0.06], so does the interval.
  const extra = [0.05, 0.06, 0.05, 0.06, 0.05, 0.06];
  const at = (d: number[], e: number[] = d.map(() => 0)) => gap.map((g, i) => g + d[i]! + e[i]!);
  await insertionEvaluation(join(root, 'eg'), 'gap', { gradcam: gap, scorecam: gap, random: gap });
  // gradcam under CA moves exactly as random: raw gain ~10 points, adjusted 0.
  await insertionEvaluation(join(root, 'ec'), 'ca', { gradcam: at(randomDiff), scorecam: at(randomDiff, extra), random: at(randomDiff) });
  await mkdir(join(root, 'out'));
  const v = (dir: string, key: string): VariantInput[] => [{ variantId: '', alias: '', values: {}, dir: join(root, dir), key }];
  await reportStage.run(ctxFor(root, { eg: v('eg', 'k1'), ec: v('ec', 'k2') }, {}));
  const summary = JSON.parse(await readFile(join(root, 'out', 'summary.json'), 'utf8'));
  const row = (method: string) => summary.paired.find((r: any) => r.method === method && r.metric === 'insertion');
  assert.equal(row('random').adjusted, undefined, 'the baseline is not adjusted against itself');
  const g = row('gradcam');
  assert.ok(Math.abs(g.diff.mean - 0.1) < 1e-9 && g.diff.lo > 0, `raw gradcam gain ${JSON.stringify(g.diff)}`);
  assert.ok(Math.abs(g.adjusted.diff.mean) < 1e-12 && Math.abs(g.adjusted.diff.lo) < 1e-12 && Math.abs(g.adjusted.diff.hi) < 1e-12);
  assert.equal(g.adjusted.baseline, 'random');
  const s = row('scorecam');
  assert.ok(Math.abs(s.adjusted.diff.mean - 0.055) < 1e-9, `adjusted scorecam ${s.adjusted.diff.mean}`);
  assert.ok(s.adjusted.diff.lo >= 0.05 - 1e-12 && s.adjusted.diff.hi <= 0.06 + 1e-12 && s.adjusted.diff.n === 6);
  assert.ok(Math.abs(s.adjusted.method_diff - 0.155) < 1e-9 && Math.abs(s.adjusted.baseline_diff - 0.1) < 1e-9);
  assert.deepEqual(summary.adjustment.survive, [{ variant: '', method: 'scorecam', metric: 'insertion' }]);
  assert.deepEqual(summary.adjustment.vanish, [{ variant: '', method: 'gradcam', metric: 'insertion' }]);
  const md = await readFile(join(root, 'out', 'summary.md'), 'utf8');
  assert.match(
    md,
    /Gains of CA over GAP that survive the adjustment for the random map .*: scorecam insertion 5\.50 \\\[5\.\d\d, 5\.\d\d\\\]/,
  );
  assert.match(md, /do not survive it .*: gradcam insertion 10\.00/);
  const html = await readFile(join(root, 'out', 'report.html'), 'utf8');
  assert.match(html, /<div id="adjusted-comparison">.*survive the adjustment.*scorecam insertion 5\.50 \[5\.\d\d, 5\.\d\d\]/);
  assert.match(html, /adjusted for random \[95% CI\]/);
});

test('adjusted comparison: without the baseline in both evaluations the report says so', async () => {
  const root = await mkdtemp(join(tmpdir(), 'report-adj0-'));
  await insertionEvaluation(join(root, 'eg'), 'gap', { gradcam: [0.1, 0.2] });
  await insertionEvaluation(join(root, 'ec'), 'ca', { gradcam: [0.2, 0.3], random: [0.1, 0.1] });
  await mkdir(join(root, 'out'));
  const v = (dir: string, key: string): VariantInput[] => [{ variantId: '', alias: '', values: {}, dir: join(root, dir), key }];
  await reportStage.run(ctxFor(root, { eg: v('eg', 'k1'), ec: v('ec', 'k2') }, {}));
  const summary = JSON.parse(await readFile(join(root, 'out', 'summary.json'), 'utf8'));
  assert.equal(summary.paired[0].adjusted, undefined);
  assert.match(summary.adjustment.text[0], /No variant has the random baseline in both/);
  assert.match(await readFile(join(root, 'out', 'summary.md'), 'utf8'), /No variant has the random baseline/);
});
