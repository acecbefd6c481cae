// The reduced quickstart (the end-to-end test's sizes) under `--executor slurm` gives the same
// outputs as the local executor: every stage, the train stages and the report included, must
// produce the same output digest (no stage writes timings into its outputs), and therefore every
// downstream stage gets the same key. A stage that differs is reported file by file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tempDir } from '../engine/helpers.js';
import { cli, EXPERIMENTS, outputDir, readRun, REDUCED_QUICKSTART, setFlags, type RunRecord } from '../e2e/helpers.js';
import { needSlurm, SLURM_ENV, submissions } from './helpers.js';

const REDUCED = setFlags(REDUCED_QUICKSTART);

function fileDigests(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const file = join(e.parentPath, e.name);
    out[relative(dir, file)] = createHash('sha256').update(readFileSync(file)).digest('hex');
  }
  return out;
}

type Instance = RunRecord['instances'][number] & { digest?: string };

test(
  'reduced quickstart under --executor slurm: the same output digest as the local executor for every stage',
  { timeout: 400_000 },
  async (t) => {
    if (!needSlurm(t)) return;
    const dir = await tempDir(t, 'ca-pipe-slurm-qs-');
    const file = join(EXPERIMENTS, 'quickstart.yaml');
    const where = (name: string) => ['--store', join(dir, `${name}-store`), '--runs', join(dir, `${name}-runs`)];
    const local = await cli(['run', file, '--quiet', ...where('local'), ...REDUCED], { timeoutMs: 300_000 });
    assert.equal(local.code, 0, local.stderr.slice(-3000));
    const slurm = await cli(['run', file, '--quiet', '--executor', 'slurm', ...where('slurm'), ...REDUCED], {
      timeoutMs: 300_000,
      env: SLURM_ENV,
    });
    assert.equal(slurm.code, 0, slurm.stderr.slice(-3000));
    console.log(`# reduced quickstart: local ${local.seconds.toFixed(1)} s, slurm ${slurm.seconds.toFixed(1)} s`);

    const l = readRun(join(dir, 'local-runs'), 'quickstart');
    const s = readRun(join(dir, 'slurm-runs'), 'quickstart');
    assert.equal(s.status, 'succeeded');
    assert.ok(s.instances.every((i) => i.status === 'executed'));
    assert.ok(submissions(join(dir, 'slurm-runs', 'quickstart', 'latest')).length >= 1, 'the stages ran as Slurm jobs');
    assert.deepEqual(s.instances.map((i) => i.id).sort(), l.instances.map((i) => i.id).sort(), 'same stage instances');
    for (const must of ['data', 'pretrain', 'ca', 'report'])
      assert.ok(
        l.instances.some((i) => i.id === must),
        `the plan has ${must}`,
      );

    const inst = (r: RunRecord, id: string) => r.instances.find((i) => i.id === id) as Instance;
    let files = 0;
    for (const { id } of l.instances) {
      const [fl, fs] = await Promise.all([outputDir(l, join(dir, 'local-store'), id), outputDir(s, join(dir, 'slurm-store'), id)]).then(
        (d) => d.map(fileDigests),
      );
      // File by file first: when a stage differs, the message names the files that do.
      const differing = Object.keys({ ...fl, ...fs })
        .filter((rel) => fl![rel] !== fs![rel])
        .sort();
      assert.deepEqual(differing, [], `${id}: files that differ between the local and the Slurm run`);
      const digest = inst(l, id).digest;
      assert.ok(digest, `${id}: local run.json records an output digest`);
      assert.equal(inst(s, id).digest, digest, `${id}: output digest under slurm differs from local`);
      assert.equal(inst(s, id).key, inst(l, id).key, `${id}: key under slurm differs from local`);
      files += Object.keys(fl!).length;
    }
    console.log(`# ${l.instances.length} stage instances, ${files} files: identical under local and Slurm`);
  },
);
