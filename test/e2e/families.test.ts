// The quickstart's whole pipeline (index → scratch pretraining → frozen CA-Stream → saliency →
// evaluate → report) on convnext-mini and efficientnet-mini, reduced to seconds through `-s`
// overrides: every stage takes the new families, scratch training included (depthwise, LayerNorm
// and GELU gradients on wasm).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, EXPERIMENTS, outputDir, readRun } from './helpers.js';

/** Side of the last feature map at 64 px: ConvNeXt /32, EfficientNet /32. */
const CASES = [
  { arch: 'convnext-mini', grid: 2 },
  { arch: 'efficientnet-mini', grid: 2 },
];

for (const { arch, grid } of CASES) {
  test(`reduced quickstart on ${arch}: every stage runs, maps are on the last feature map's grid`, { timeout: 240_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), `ca-pipe-${arch}-`));
    const store = join(root, 'store');
    const runs = join(root, 'runs');
    const overrides = [
      'data.synthetic.per_class=12',
      'data.split.fraction=0.15',
      'pretrain.epochs=1',
      'pretrain.batch_size=16',
      'ca.epochs=1',
      'ca.batch_size=16',
      `pretrain.arch=${arch}`,
      `ca.arch=${arch}`,
      'saliency_gap.methods=[gradcam,ablationcam,random]',
      'saliency_ca.methods=[ca-attention,gradcam,ablationcam]',
    ].flatMap((s) => ['-s', s]);
    const r = await cli(['run', join(EXPERIMENTS, 'quickstart.yaml'), '--json', '--store', store, '--runs', runs, ...overrides], {
      timeoutMs: 220_000,
    });
    assert.equal(r.code, 0, `run failed:\n${r.stderr.slice(-3000)}`);
    console.log(`# reduced quickstart on ${arch}: ${r.seconds.toFixed(1)} s`);
    const run = readRun(runs, 'quickstart');
    assert.equal(run.status, 'succeeded');
    for (const stage of ['pretrain', 'ca']) {
      const card = JSON.parse(readFileSync(join(await outputDir(run, store, stage), 'model.json'), 'utf8'));
      assert.equal(card.arch, arch, stage);
    }
    for (const stage of ['saliency_gap', 'saliency_ca']) {
      const meta = JSON.parse(readFileSync(join(await outputDir(run, store, stage), 'saliency.json'), 'utf8'));
      assert.deepEqual([meta.h, meta.w], [grid, grid], `${stage}: map grid`);
    }
    const summary = JSON.parse(readFileSync(join(await outputDir(run, store, 'report'), 'summary.json'), 'utf8'));
    const ca = summary.evaluations.find((e: any) => e.pooling === 'ca');
    assert.deepEqual(Object.keys(ca.methods).sort(), ['ablationcam', 'ca-attention', 'gradcam']);
    for (const [m, s] of Object.entries<any>(ca.methods)) {
      for (const metric of ['AD', 'AG', 'AI', 'insertion', 'deletion'])
        assert.ok(Number.isFinite(s[metric].mean) && s[metric].n > 0, `CA ${m}: no ${metric}`);
    }
  });
}

test(
  'reduced sweep-heads on convnext-mini: frozen CA-Stream from the feature cache, two attention heads',
  { timeout: 240_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'ca-pipe-convnext-taps-'));
    const store = join(root, 'store');
    const runs = join(root, 'runs');
    const overrides = [
      'data.synthetic.per_class=12',
      'data.split.fraction=0.15',
      'pretrain.epochs=1',
      'pretrain.batch_size=16',
      'ca.epochs=1',
      'ca.batch_size=16',
      'pretrain.arch=convnext-mini',
      'ca.arch=convnext-mini',
      'sweep.ca.heads=[2]',
      'sweep.ca.lr=[0.003]',
      'saliency_gap.methods=[gradcam]',
      'saliency_ca.methods=[ca-attention,gradcam]',
    ].flatMap((s) => ['-s', s]);
    const r = await cli(['run', join(EXPERIMENTS, 'sweep-heads.yaml'), '--json', '--store', store, '--runs', runs, ...overrides], {
      timeoutMs: 220_000,
    });
    assert.equal(r.code, 0, `run failed:\n${r.stderr.slice(-3000)}`);
    const run = readRun(runs, 'sweep-heads');
    assert.equal(run.status, 'succeeded');
    const meta = JSON.parse(readFileSync(join(await outputDir(run, store, 'taps'), 'features.json'), 'utf8'));
    assert.equal(meta.arch, 'convnext-mini');
    assert.deepEqual(meta.taps, ['features.0', 'features.2', 'features.4', 'features.7']);
    const card = JSON.parse(readFileSync(join(await outputDir(run, store, 'ca'), 'model.json'), 'utf8'));
    assert.deepEqual([card.arch, card.head, card.heads], ['convnext-mini', 'ca-stream', 2]);
  },
);
