// A reduced quickstart with some of the new saliency methods, and with ROAD and the
// model-randomisation sanity check turned on in both evaluations (through `-s`, as a user would):
// the evaluate outputs record both protocols, the report's summary.json validates with their
// paired and baseline-adjusted rows, and the report shows them. It also prints the evaluate stages' time with and without the two checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, EXPERIMENTS, outputDir, readRun, REDUCED_QUICKSTART, setFlags } from './helpers.js';
import { reportSummarySchema } from './report-summary.schema.js';

const REDUCED = [
  ...REDUCED_QUICKSTART,
  // Some of issue 16's methods end to end too: whole-model gradients and Opti-CAM through GAP,
  // the second-order and contrastive ones through the CA head (their own tests cover every family).
  'saliency_gap.methods=[gradcam, hirescam, fullgrad, opticam, random, ones]',
  'saliency_gap.opticam={steps: 5}',
  'saliency_ca.methods=[ca-attention, gradcam, shapleycam, finercam, random, ones]',
];
const EXTRA = ['evaluate_gap', 'evaluate_ca'].flatMap((e) => [
  `${e}.road={percentages: [0.2, 0.5], noise: 0.01, seed: 0}`,
  `${e}.sanity={seed: 0}`,
]);

interface Ajv {
  compile(schema: object): ((data: unknown) => boolean) & { errors?: unknown[] | null };
}

/** Seconds per executed instance, from the run's --json event stream (instance-done). */
function seconds(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of stdout.trim().split('\n')) {
    const e = JSON.parse(line) as { type: string; id?: string; ms?: number };
    if (e.type === 'instance-done' && e.id && e.ms !== undefined) out[e.id] = e.ms / 1000;
  }
  return out;
}

test('reduced quickstart with ROAD and the sanity check: outputs, report rows, adjusted comparison', { timeout: 300_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'ca-pipe-road-sanity-'));
  const where = ['--store', join(root, 'store'), '--runs', join(root, 'runs')];
  const file = join(EXPERIMENTS, 'quickstart.yaml');
  const plain = await cli(['run', file, '--json', ...where, ...setFlags(REDUCED)], { timeoutMs: 200_000 });
  assert.equal(plain.code, 0, plain.stderr.slice(-3000));
  const before = seconds(plain.stdout);
  const r = await cli(['run', file, '--json', ...where, ...setFlags([...REDUCED, ...EXTRA])], { timeoutMs: 250_000 });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const after = seconds(r.stdout);
  const run = readRun(join(root, 'runs'), 'quickstart');
  // Only the evaluations (and the report) rerun: ROAD and the sanity check key the evaluate stage only.
  assert.deepEqual(
    run.instances
      .filter((i) => i.status === 'executed')
      .map((i) => i.id)
      .sort(),
    ['evaluate_ca', 'evaluate_gap', 'report'],
  );
  for (const e of ['evaluate_gap', 'evaluate_ca'])
    console.log(`# ${e}: ${before[e]!.toFixed(1)} s without, ${after[e]!.toFixed(1)} s with ROAD (2 percentages) + sanity check`);

  const store = join(root, 'store');
  const gap = JSON.parse(readFileSync(join(await outputDir(run, store, 'evaluate_gap'), 'evaluation.json'), 'utf8'));
  const ca = JSON.parse(readFileSync(join(await outputDir(run, store, 'evaluate_ca'), 'evaluation.json'), 'utf8'));
  assert.deepEqual(Object.keys(gap.methods).sort(), ['fullgrad', 'gradcam', 'hirescam', 'ones', 'opticam', 'random']);
  assert.deepEqual(Object.keys(ca.methods).sort(), ['ca-attention', 'finercam', 'gradcam', 'ones', 'random', 'shapleycam']);
  for (const e of [gap, ca]) {
    assert.deepEqual(e.road.protocol.percentages, [0.2, 0.5]);
    assert.deepEqual(e.road.protocol.fraction, { morf: 'removed', lerf: 'kept' });
    assert.equal(e.sanity.protocol.seed, 0);
    for (const m of Object.keys(e.methods)) {
      assert.ok(Number.isFinite(e.methods[m].road.mean), `${e.pooling} ${m}: ROAD`);
      assert.equal(e.sanity.methods[m].length, e.sanity.protocol.steps.length);
    }
    // The random baseline does not depend on the weights: unchanged by every randomisation.
    for (const s of e.sanity.methods.random) assert.ok(Math.abs(s.spearman.mean - 1) < 1e-9, `${e.pooling} random at ${s.step}`);
  }
  assert.deepEqual(gap.sanity.protocol.steps, ['classifier', 'layer4', 'layer3', 'layer2', 'layer1', 'stem']);
  assert.deepEqual(ca.sanity.protocol.steps, ['classifier', 'head', 'layer4', 'layer3', 'layer2', 'layer1', 'stem']);

  const out = await outputDir(run, store, 'report');
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  const req = createRequire(import.meta.url);
  const Ajv2020 = (req('ajv/dist/2020.js') as { default: new (o: object) => Ajv }).default;
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(reportSummarySchema);
  assert.ok(validate(summary), JSON.stringify(validate.errors, null, 1));
  for (const metric of ['road', 'road_morf', 'road_lerf', 'sanity_rank', 'sanity_ssim']) {
    const row = summary.paired.find((x: any) => x.method === 'gradcam' && x.metric === metric);
    assert.ok(row?.adjusted, `gradcam ${metric}: paired and adjusted row`);
    assert.equal(row.adjusted.baseline, 'random');
  }
  assert.ok(summary.adjustment.text.length >= 1);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(html.includes('ROAD-MoRF↓') && html.includes('MPRT-SSIM↓') && html.includes('id="adjusted-comparison"'));
  assert.match(readFileSync(join(out, 'summary.md'), 'utf8'), /adjusted for the random map/);
});
