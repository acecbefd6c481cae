// A reduced heads × learning-rate sweep (experiments/sweep-heads.yaml with tiny sizes) through the
// real CLI: shared stages run once, the report labels shared outputs without a variant, and its
// sweep table holds the varied parameters and only the metric columns that differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, EXPERIMENTS, outputDir, readRun } from './helpers.js';

const REDUCED = [
  'data.synthetic.per_class=12',
  'data.split.fraction=0.15',
  'pretrain.epochs=1',
  'pretrain.batch_size=16',
  'ca.epochs=1',
  'ca.batch_size=16',
  'saliency_gap.methods=[gradcam,random]',
  'saliency_ca.methods=[ca-attention,gradcam,random]',
].flatMap((s) => ['-s', s]);

const unescape = (s: string) =>
  s
    .replace(/<[^>]+>/g, '')
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');

test('reduced sweep: shared stages once, per-variant CA branch, sweep table of what varies', { timeout: 240_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'ca-pipe-sweep-'));
  const store = join(root, 'store');
  const runs = join(root, 'runs');
  const r = await cli(['run', join(EXPERIMENTS, 'sweep-heads.yaml'), '--quiet', '--store', store, '--runs', runs, ...REDUCED], {
    timeoutMs: 220_000,
  });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  console.log(`# reduced sweep (6 variants): ${r.seconds.toFixed(1)} s`);
  const run = readRun(runs, 'sweep-heads');
  const count = (stage: string) => run.instances.filter((i) => i.stage === stage && i.status === 'executed').length;
  for (const s of ['data', 'pretrain', 'taps', 'saliency_gap', 'evaluate_gap', 'report']) assert.equal(count(s), 1, s);
  for (const s of ['ca', 'saliency_ca', 'evaluate_ca']) assert.equal(count(s), 6, s);

  const out = await outputDir(run, store, 'report');
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(
    summary.models.filter((m: any) => m.stage === 'pretrain').map((m: any) => m.variant),
    [''],
    'the shared backbone has no variant label',
  );
  const caModels = summary.models.filter((m: any) => m.stage === 'ca');
  assert.equal(caModels.length, 6);
  assert.deepEqual(caModels.map((m: any) => m.heads).sort(), [1, 1, 2, 2, 4, 4]);
  assert.equal(summary.sweep.length, 6);
  // Each variant's paired rows compare its own CA evaluation with the one shared GAP evaluation.
  const variants = new Set(summary.paired.map((p: any) => p.variant));
  assert.equal(variants.size, 6);
  const gapMeans = new Set(summary.paired.filter((p: any) => p.method === 'gradcam' && p.metric === 'AD').map((p: any) => p.gap));
  assert.equal(gapMeans.size, 1, 'the GAP side is the same evaluation in every variant');

  const html = readFileSync(join(out, 'report.html'), 'utf8');
  const sweepSection = html.slice(html.lastIndexOf('<h2>Sweep</h2>'));
  const headers = [...sweepSection.matchAll(/<th>(.*?)<\/th>/g)].map((m) => unescape(m[1]!));
  assert.ok(headers.includes('ca.heads') && headers.includes('ca.lr'), `sweep table headers: ${headers.join(' | ')}`);
  // GAP scores come from the shared evaluation: constant across variants, so not a column.
  assert.ok(!headers.some((h) => h.startsWith('gap ')), `constant GAP columns in the sweep table: ${headers.join(' | ')}`);
  const rows = [...sweepSection.matchAll(/<tr>(.*?)<\/tr>/g)].slice(1);
  assert.equal(rows.length, 6);
});
