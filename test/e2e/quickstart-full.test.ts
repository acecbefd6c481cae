// The real quickstart (experiments/quickstart.yaml, no overrides) through the CLI, checked against
// the numbers the issues ask of it: scratch pretraining ≥ 90 % validation accuracy, frozen
// CA-Stream within 2 points of GAP, Grad-CAM and the CA attention map beating the random and
// centre baselines on the energy-based pointing game, and a rerun that executes nothing. Minutes of CPU: the one test of
// the suite that trains at full size, so the acceptance numbers are measured on every CI run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, EXPERIMENTS, outputDir, readRun } from './helpers.js';

interface Interval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

interface Evaluation {
  accuracy: { top1: number; n: number };
  methods: Record<string, { energy?: Interval; pointing?: Interval }>;
}

/** Points by which the method's mean energy-based pointing score must exceed each baseline's. */
const EPG_MARGIN = 2;

const root = mkdtempSync(join(tmpdir(), 'ca-pipe-quickstart-full-'));
const store = join(root, 'store');
const runs = join(root, 'runs');
const args = ['run', join(EXPERIMENTS, 'quickstart.yaml'), '--store', store, '--runs', runs, '--quiet'];

let evaluations: Promise<{ gap: Evaluation; ca: Evaluation; seconds: number }> | undefined;

/** Runs the quickstart once for all tests of this file. */
function quickstart(): Promise<{ gap: Evaluation; ca: Evaluation; seconds: number }> {
  evaluations ??= (async () => {
    const r = await cli(args, { timeoutMs: 900_000 });
    assert.equal(r.code, 0, `quickstart failed:\n${r.stderr}`);
    const run = readRun(runs, 'quickstart');
    const read = async (id: string) =>
      JSON.parse(readFileSync(join(await outputDir(run, store, id), 'evaluation.json'), 'utf8')) as Evaluation;
    return { gap: await read('evaluate_gap'), ca: await read('evaluate_ca'), seconds: r.seconds };
  })();
  return evaluations;
}

function epg(e: Evaluation, method: string): number {
  const v = e.methods[method]?.energy?.mean;
  assert.ok(typeof v === 'number' && Number.isFinite(v), `no energy-based pointing score for ${method}`);
  return v;
}

/** The energy game scores as percentages (the report prints them ×100). */
const pct = (x: number) => 100 * x;

function assertBeatsBaselines(e: Evaluation, method: string, label: string): void {
  const m = pct(epg(e, method));
  for (const base of ['random', 'center']) {
    const b = pct(epg(e, base));
    assert.ok(m >= b + EPG_MARGIN, `${label} ${method} EPG ${m.toFixed(2)} does not beat ${base} ${b.toFixed(2)} by ${EPG_MARGIN} points`);
  }
}

test(
  'quickstart: scratch resnet-mini-hr ≥ 90 % validation accuracy, frozen CA-Stream within 2 points of GAP',
  { timeout: 900_000 },
  async () => {
    const { gap, ca, seconds } = await quickstart();
    console.log(
      `# quickstart wall time ${seconds.toFixed(1)} s; top-1 GAP ${pct(gap.accuracy.top1).toFixed(2)} %, CA ${pct(ca.accuracy.top1).toFixed(2)} % on ${gap.accuracy.n} images`,
    );
    assert.ok(gap.accuracy.top1 >= 0.9, `GAP top-1 ${pct(gap.accuracy.top1).toFixed(2)} % < 90 %`);
    assert.ok(
      ca.accuracy.top1 >= gap.accuracy.top1 - 0.02,
      `CA top-1 ${pct(ca.accuracy.top1).toFixed(2)} % is more than 2 points below GAP ${pct(gap.accuracy.top1).toFixed(2)} %`,
    );
  },
);

test(
  'quickstart: Grad-CAM (through GAP and through CA) beats the random and centre baselines on the energy pointing game',
  { timeout: 900_000 },
  async () => {
    const { gap, ca } = await quickstart();
    assertBeatsBaselines(gap, 'gradcam', 'GAP');
    assertBeatsBaselines(ca, 'gradcam', 'CA');
  },
);

test(
  'quickstart: the CA attention map beats the random and centre baselines on the energy pointing game',
  { timeout: 900_000 },
  async () => {
    const { ca } = await quickstart();
    console.log(
      `# EPG ca-attention ${pct(epg(ca, 'ca-attention')).toFixed(2)}, gradcam ${pct(epg(ca, 'gradcam')).toFixed(2)}, random ${pct(epg(ca, 'random')).toFixed(2)}, center ${pct(epg(ca, 'center')).toFixed(2)}`,
    );
    assertBeatsBaselines(ca, 'ca-attention', 'CA');
  },
);

test('quickstart: a second run executes nothing', { timeout: 900_000 }, async () => {
  await quickstart();
  const r = await cli(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const run = readRun(runs, 'quickstart');
  const executed = run.instances.filter((i) => i.status !== 'cached').map((i) => `${i.id}: ${i.status}`);
  assert.deepEqual(executed, []);
  rmSync(root, { recursive: true, force: true });
});
