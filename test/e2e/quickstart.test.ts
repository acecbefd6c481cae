// A reduced quickstart through the real CLI: the same experiment file and stages, tiny sizes through
// `-s` overrides (72 synthetic images, 2 epochs, a 10-image validation split that is explained). Checks the report's three
// files (summary.json against its schema, the paired CA − GAP rows recomputed from the two
// evaluations' per-image scores), that the HTML renders cleanly in headless Chromium, that a rerun
// executes nothing, and that the heads sweep reuses the quickstart's cached upstream stages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findChromium, INSTALL_HINT, loadPage, probePage } from './chromium.js';
import { cli, EXPERIMENTS, outputDir, readRun, REDUCED_QUICKSTART, setFlags, type PlanJson } from './helpers.js';
import { reportSummarySchema } from './report-summary.schema.js';

const REDUCED = setFlags(REDUCED_QUICKSTART);

const GAP_METHODS = ['gradcam', 'gradcampp', 'scorecam', 'random', 'center', 'ones'];
const CA_METHODS = ['ca-attention', ...GAP_METHODS];

interface Ajv {
  compile(schema: object): ((data: unknown) => boolean) & { errors?: unknown[] | null };
}

function validator(schema: object) {
  const req = createRequire(import.meta.url);
  const Ajv2020 = (req('ajv/dist/2020.js') as { default: new (o: object) => Ajv }).default;
  return new Ajv2020({ allErrors: true, strict: false }).compile(schema);
}

function readJsonl(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** method → metric → id → value, from an evaluation's per_image.jsonl (numbers only). */
function perImage(dir: string): Map<string, Map<string, Map<number, number>>> {
  const out = new Map<string, Map<string, Map<number, number>>>();
  for (const r of readJsonl(join(dir, 'per_image.jsonl'))) {
    const m = out.get(r.method as string) ?? new Map<string, Map<number, number>>();
    out.set(r.method as string, m);
    for (const [k, v] of Object.entries(r)) {
      if (k === 'id' || k === 'method' || typeof v !== 'number' || !Number.isFinite(v)) continue;
      const byId = m.get(k) ?? new Map<number, number>();
      m.set(k, byId);
      byId.set(r.id as number, v);
    }
  }
  return out;
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;

test(
  'reduced quickstart: report files, summary schema, paired rows, browser, cached rerun, shared sweep stages',
  { timeout: 240_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'ca-pipe-quickstart-'));
    const store = join(root, 'store');
    const runs = join(root, 'runs');
    const where = ['--store', store, '--runs', runs];
    const file = join(EXPERIMENTS, 'quickstart.yaml');

    const first = await cli(['run', file, '--json', ...where, ...REDUCED], { timeoutMs: 200_000 });
    assert.equal(first.code, 0, `first run failed:\n${first.stderr.slice(-3000)}`);
    console.log(`# reduced quickstart, clean store: ${first.seconds.toFixed(1)} s`);
    const run = readRun(runs, 'quickstart');
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(run.instances.map((i) => `${i.id}:${i.status}`).sort(), [
      'ca:executed',
      'data:executed',
      'evaluate_ca:executed',
      'evaluate_gap:executed',
      'pretrain:executed',
      'report:executed',
      'saliency_ca:executed',
      'saliency_gap:executed',
    ]);

    // ── the three report files ──
    const out = await outputDir(run, store, 'report');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    for (const id of ['metrics-table', 'training-curves', 'insdel-curves', 'gallery'])
      assert.ok(html.includes(`id="${id}"`), `report.html lacks #${id}`);
    assert.ok(statSync(join(out, 'report.html')).size < 5_000_000);
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//i, 'the report references nothing outside itself');

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    const validate = validator(reportSummarySchema);
    assert.ok(validate(summary), `summary.json does not match its schema: ${JSON.stringify(validate.errors, null, 1)}`);
    assert.deepEqual(summary.models.map((m: any) => `${m.stage}:${m.head}`).sort(), ['ca:ca-stream', 'pretrain:gap']);
    const byPool = (p: string) => summary.evaluations.filter((e: any) => e.pooling === p);
    assert.equal(byPool('gap').length, 1);
    assert.equal(byPool('ca').length, 1);
    const [gap, ca] = [byPool('gap')[0], byPool('ca')[0]];
    assert.equal(gap.stage, 'evaluate_gap');
    assert.equal(ca.stage, 'evaluate_ca');
    assert.deepEqual(Object.keys(gap.methods).sort(), [...GAP_METHODS].sort());
    assert.deepEqual(Object.keys(ca.methods).sort(), [...CA_METHODS].sort());
    // Every validation image of the index is explained and scored.
    const splits = JSON.parse(readFileSync(join(await outputDir(run, store, 'data'), 'splits.json'), 'utf8')) as { val: number[] };
    assert.equal(splits.val.length, Math.floor(72 * 0.15));
    for (const e of [gap, ca]) {
      assert.equal(e.accuracy.n, splits.val.length);
      // The synthetic index has object masks, so every method gets the pointing games.
      for (const [m, s] of Object.entries<any>(e.methods))
        assert.ok(s.energy && s.energy.n > 0, `${e.pooling} ${m}: no energy pointing game`);
    }

    // Paired rows, recomputed from the two evaluations' per-image scores (common images only).
    const gapImg = perImage(await outputDir(run, store, 'evaluate_gap'));
    const caImg = perImage(await outputDir(run, store, 'evaluate_ca'));
    let checked = 0;
    for (const method of GAP_METHODS) {
      for (const metric of ['AD', 'AG', 'AI', 'insertion', 'deletion', 'energy']) {
        const g = gapImg.get(method)?.get(metric);
        const c = caImg.get(method)?.get(metric);
        const ids = [...(c?.keys() ?? [])].filter((id) => g?.has(id));
        const row = summary.paired.find((r: any) => r.method === method && r.metric === metric);
        if (ids.length === 0) {
          assert.equal(row, undefined, `${method} ${metric}: no common images, yet a paired row`);
          continue;
        }
        assert.ok(row, `paired row missing for ${method} ${metric}`);
        const d = mean(ids.map((id) => c!.get(id)! - g!.get(id)!));
        assert.equal(row.diff.n, ids.length, `${method} ${metric}: n`);
        assert.ok(Math.abs(row.diff.mean - d) < 1e-9, `${method} ${metric}: diff ${row.diff.mean} vs ${d}`);
        assert.ok(Math.abs(row.gap - mean(ids.map((id) => g!.get(id)!))) < 1e-9);
        assert.ok(Math.abs(row.ca - mean(ids.map((id) => c!.get(id)!))) < 1e-9);
        assert.ok(
          row.diff.lo <= row.diff.mean + 1e-12 && row.diff.mean <= row.diff.hi + 1e-12,
          `${method} ${metric}: mean outside its interval`,
        );
        // The baseline-adjusted difference: (CA − GAP) of the method minus that of the random map,
        // over the images all four scores cover.
        if (method === 'random') assert.equal(row.adjusted, undefined, 'random is not adjusted against itself');
        else {
          const gr = gapImg.get('random')?.get(metric);
          const cr = caImg.get('random')?.get(metric);
          const all = ids.filter((id) => gr?.has(id) && cr?.has(id));
          if (all.length) {
            const a = mean(all.map((id) => c!.get(id)! - g!.get(id)! - (cr!.get(id)! - gr!.get(id)!)));
            assert.equal(row.adjusted?.diff.n, all.length, `${method} ${metric}: adjusted n`);
            assert.ok(Math.abs(row.adjusted.diff.mean - a) < 1e-9, `${method} ${metric}: adjusted ${row.adjusted.diff.mean} vs ${a}`);
            assert.ok(row.adjusted.diff.lo <= row.adjusted.diff.mean + 1e-12 && row.adjusted.diff.mean <= row.adjusted.diff.hi + 1e-12);
          }
        }
        checked++;
      }
    }
    assert.ok(summary.adjustment.text.length > 0 && html.includes('id="adjusted-comparison"'), 'the report says which gains survive');
    assert.ok(checked >= GAP_METHODS.length * 4, `only ${checked} paired rows could be checked`);
    console.log(`# ${checked} paired rows recomputed from per-image scores`);
    assert.ok(!summary.paired.some((r: any) => r.method === 'ca-attention'), 'ca-attention has no GAP counterpart');

    const md = readFileSync(join(out, 'summary.md'), 'utf8');
    assert.match(md, new RegExp(`^## GAP — evaluate_gap: top-1 [\\d.]+ % on ${splits.val.length} images$`, 'm'));
    assert.match(md, new RegExp(`^## CA — evaluate_ca: top-1 [\\d.]+ % on ${splits.val.length} images$`, 'm'));
    for (const m of CA_METHODS) assert.match(md, new RegExp(`^\\| ${m} \\|`, 'm'));

    // ── the real report in a browser ──
    const bin = findChromium();
    if (!bin) assert.fail(INSTALL_HINT);
    const page = loadPage(bin, join(out, 'report.html'));
    assert.deepEqual(page.console, [], `console messages:\n${page.console.join('\n')}`);
    const probe = probePage(bin, join(out, 'report.html'), [
      '#metrics-table table',
      '#training-curves svg path',
      '#insdel-curves svg path',
      '#gallery img',
    ]);
    assert.equal(probe.brokenImages, 0);
    for (const [s, n] of Object.entries(probe.counts)) assert.ok(n > 0, `${s}: none rendered`);

    // ── a rerun executes nothing ──
    const second = await cli(['run', file, '--json', ...where, ...REDUCED]);
    assert.equal(second.code, 0, second.stderr);
    console.log(`# reduced quickstart, fully cached rerun: ${second.seconds.toFixed(2)} s`);
    const events = second.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; id?: string; counts?: Record<string, number> });
    assert.deepEqual(
      events.filter((e) => e.type === 'instance-start'),
      [],
      'nothing starts',
    );
    assert.equal(events.filter((e) => e.type === 'instance-cached').length, 8);
    assert.deepEqual(events.at(-1)?.counts && { executed: events.at(-1)!.counts!.executed, cached: events.at(-1)!.counts!.cached }, {
      executed: 0,
      cached: 8,
    });
    assert.ok(readRun(runs, 'quickstart').instances.every((i) => i.status === 'cached'));
    assert.ok(second.seconds < 15, `cached rerun took ${second.seconds.toFixed(1)} s`);

    // ── the sweep on the same store reuses the quickstart's upstream instances ──
    const sweep = await cli(['plan', join(EXPERIMENTS, 'sweep-heads.yaml'), '--json', ...where, ...REDUCED]);
    assert.equal(sweep.code, 0, sweep.stderr);
    const plan = JSON.parse(sweep.stdout) as PlanJson;
    const status = (stage: string) => [...new Set(plan.instances.filter((i) => i.stage === stage).map((i) => i.status))];
    for (const s of ['data', 'pretrain', 'saliency_gap', 'evaluate_gap'])
      assert.deepEqual(status(s), ['cached'], `${s} reused by the sweep`);
    for (const s of ['taps', 'ca', 'saliency_ca', 'evaluate_ca']) assert.ok(!status(s).includes('cached'), `${s} is new in the sweep`);
  },
);
