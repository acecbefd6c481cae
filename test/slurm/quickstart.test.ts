// The reduced quickstart (the end-to-end test's sizes) under `--executor slurm` gives the same
// outputs as the local executor: the same output digest for every stage whose output two local runs
// reproduce, and the same bytes for every file two local runs agree on (stages that record their
// own timings, such as train's images/s and the report's timing table, differ run to run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../engine/helpers.js';
import { cli, EXPERIMENTS, outputDir, readRun, type RunRecord } from '../e2e/helpers.js';
import { needSlurm, SLURM_ENV, submissions } from './helpers.js';

const REDUCED = ['data.synthetic.per_class=12', 'data.split.fraction=0.15', 'pretrain.epochs=2', 'pretrain.batch_size=16', 'ca.epochs=2', 'ca.batch_size=16'].flatMap((s) => ['-s', s]);

function fileDigests(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const rel = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1);
    out[rel] = createHash('sha256').update(readFileSync(join(dir, rel))).digest('hex');
  }
  return out;
}

test('reduced quickstart under --executor slurm: same output digests as the local executor', { timeout: 400_000 }, async (t) => {
  if (!needSlurm(t)) return;
  const dir = await tempDir(t, 'ca-pipe-slurm-qs-');
  const file = join(EXPERIMENTS, 'quickstart.yaml');
  const where = (name: string) => ['--store', join(dir, `${name}-store`), '--runs', join(dir, `${name}-runs`)];
  // Two local runs tell which output files are reproducible at all (some stages record timings).
  const locals = [];
  for (const name of ['local1', 'local2']) {
    const r = await cli(['run', file, '--quiet', ...where(name), ...REDUCED], { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    locals.push(r);
  }
  const slurm = await cli(['run', file, '--quiet', '--executor', 'slurm', ...where('slurm'), ...REDUCED], { timeoutMs: 300_000, env: SLURM_ENV });
  assert.equal(slurm.code, 0, slurm.stderr.slice(-3000));
  console.log(`# reduced quickstart: local ${locals[0]!.seconds.toFixed(1)} s, slurm ${slurm.seconds.toFixed(1)} s`);

  const runs = ['local1', 'local2', 'slurm'].map((n) => readRun(join(dir, `${n}-runs`), 'quickstart'));
  const [l1, l2, s] = runs as [RunRecord, RunRecord, RunRecord];
  assert.equal(s.status, 'succeeded');
  assert.ok(s.instances.every((i) => i.status === 'executed'));
  assert.ok(submissions(join(dir, 'slurm-runs', 'quickstart', 'latest')).length >= 1, 'the stages ran as Slurm jobs');
  const digest = (r: RunRecord, id: string) => (r.instances.find((i) => i.id === id) as { digest?: string } | undefined)?.digest;
  const unreproducible: string[] = [];
  let compared = 0;
  for (const i of l1.instances) {
    if (digest(l1, i.id) === digest(l2, i.id)) assert.equal(digest(s, i.id), digest(l1, i.id), `${i.id}: output digest under slurm differs from local`);
    // File by file: every file two local runs agree on must be identical under Slurm.
    const [f1, f2, fs] = await Promise.all(runs.map(async (r, k) => fileDigests(await outputDir(r, join(dir, `${['local1', 'local2', 'slurm'][k]}-store`), i.id))));
    assert.deepEqual(Object.keys(fs!).sort(), Object.keys(f1!).sort(), `${i.id}: same files`);
    for (const [rel, d] of Object.entries(f1!)) {
      if (f2![rel] !== d) {
        unreproducible.push(`${i.id}/${rel}`);
        continue;
      }
      assert.equal(fs![rel], d, `${i.id}/${rel} differs under slurm`);
      compared++;
    }
  }
  console.log(`# compared ${compared} files; not reproducible between two local runs (timings), skipped: ${unreproducible.join(', ') || 'none'}`);
  assert.ok(compared >= 10, `only ${compared} reproducible files`);
  for (const must of ['data', 'pretrain/best.safetensors', 'ca/best.safetensors']) {
    assert.ok(!unreproducible.some((u) => u.startsWith(must)), `${must} must be reproducible`);
  }
});
