// Split stages on the one-node Slurm (issue 15): a saliency + evaluate experiment with
// `parallel: { shards: 4 }` becomes, per stage, one 4-task array (each task a contiguous range of
// shards into the stage's scratch) plus one merge job with afterok on the tasks. The committed
// outputs are the same bytes as with no split and as the local executor; a scancelled task is
// resubmitted alone, the other tasks' shards kept; a killed driver re-adopts the array.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tempDir } from '../engine/helpers.js';
import { runDigests, writeShardWorld } from '../support/shard-world.js';
import { finished, latestDir, needSlurm, readJson, runCli, slurmState, submissions, waitFor, type Journal } from './helpers.js';

const PARTS = (stage: string, n: number) => Array.from({ length: n }, (_, i) => `${stage}#part-${i + 1}-of-${n}`);

/** The submissions whose tasks are exactly `ids` (in task order). */
const submittedAs = (subs: Journal[], ids: string[]) => subs.filter((s) => JSON.stringify(Object.values(s.tasks)) === JSON.stringify(ids));

interface SplitRun {
  runId: string;
  status: string;
  instances: Array<{
    id: string;
    status: string;
    digest?: string;
    provenance?: Record<string, any>;
    split?: {
      shards: number;
      parts: Record<string, { id: string; state?: string; done?: boolean; history?: Array<{ id: string; state: string }> }>;
    };
  }>;
}

/** Completion records the jobs of a run left (slurm/<run>/done/*.json in the store). */
function doneRecords(store: string, runId: string): Record<string, { status: string; provenance?: Record<string, any> }> {
  const d = join(store, 'slurm', runId, 'done');
  const recs = readdirSync(d).map((n) => readJson<{ instance: string; status: string; provenance?: Record<string, any> }>(join(d, n)));
  return Object.fromEntries(recs.map((r) => [r.instance, r]));
}

/** How many times the stage itself (not a part) started, from its stage log. */
function mergeStarts(runDir: string, stage: string): number {
  const log = readFileSync(join(runDir, 'logs', `${stage}.log`), 'utf8');
  return log.split('\n').filter((l) => new RegExp(`stage ${stage} \\(${stage}\\) key [0-9a-f]+$`).test(l)).length;
}

test('shards 4 vs shards 1 vs local: the same digests; one array and one merge per split stage', { timeout: 300_000 }, async (t) => {
  if (!needSlurm(t)) return;
  const dir = await tempDir(t, 'ca-pipe-slurm-shards-');
  const four = await writeShardWorld(dir, { name: 'four', shards: 4, executor: 'slurm' });
  const one = await writeShardWorld(dir, { name: 'one', executor: 'slurm' });
  const where = (n: string) => ['--store', join(dir, `${n}-store`), '--runs', join(dir, 'runs')];
  const t0 = Date.now();
  const r4 = await finished(runCli(['run', four, '--quiet', ...where('four')], dir).done, 'shards 4 run', 200_000);
  assert.equal(r4.code, 0, r4.stderr);
  const t1 = Date.now();
  const r1 = await finished(runCli(['run', one, '--quiet', ...where('one')], dir).done, 'shards 1 run', 200_000);
  assert.equal(r1.code, 0, r1.stderr);
  const t2 = Date.now();
  const local = await cli(['run', one, '--quiet', '--executor', 'in-process', ...where('local'), '--runs', join(dir, 'local-runs')], dir);
  assert.equal(local.code, 0, local.stderr);
  console.log(`# shards 4 on slurm ${((t1 - t0) / 1000).toFixed(1)} s, shards 1 on slurm ${((t2 - t1) / 1000).toFixed(1)} s`);

  const d4 = runDigests(join(latestDir(join(dir, 'runs'), 'four'), 'run.json'));
  const d1 = runDigests(join(latestDir(join(dir, 'runs'), 'one'), 'run.json'));
  const dl = runDigests(join(dir, 'local-runs', 'one', 'latest', 'run.json'));
  assert.ok(d4.saliency && d4.evaluate);
  assert.deepEqual(d4, d1, 'shards 4 and shards 1 commit the same bytes');
  assert.deepEqual(d4, dl, 'the Slurm runs commit what the local executor commits');

  const runDir = latestDir(join(dir, 'runs'), 'four');
  const subs = submissions(runDir);
  for (const stage of ['saliency', 'evaluate']) {
    const arrays = submittedAs(subs, PARTS(stage, 4));
    assert.equal(arrays.length, 1, `${stage}: its four parts go out as one array`);
    assert.ok(arrays[0]!.output!.includes('%a'));
    const merges = submittedAs(subs, [stage]);
    assert.equal(merges.length, 1, `${stage}: one merge job`);
    const tasks = [0, 1, 2, 3].map((i) => `${arrays[0]!.job}_${i}`);
    assert.ok(
      tasks.every((j) => merges[0]!.deps!.includes(j)),
      `${stage}: the merge waits on every task (afterok): ${merges[0]!.deps!.join(',')}`,
    );
    assert.equal(mergeStarts(runDir, stage), 1, `${stage}: the merge ran once`);
  }
  assert.equal(subs.length, 2 + 2 * 2, 'data, weights, and per split stage an array and a merge');
  const run = readJson<SplitRun>(join(runDir, 'run.json'));
  const sal = run.instances.find((i) => i.id === 'saliency')!;
  assert.equal(sal.split?.shards, 4);
  assert.deepEqual(Object.keys(sal.split!.parts).sort(), ['1/4', '2/4', '3/4', '4/4']);
  assert.ok(Object.values(sal.split!.parts).every((p) => p.done));
  // 6 shards over 4 tasks: [0,1) [1,3) [3,4) [4,6); the merge computed none of them.
  assert.equal(sal.provenance!.reused_shards, 6);
  const recs = doneRecords(join(dir, 'four-store'), run.runId);
  assert.deepEqual(
    PARTS('saliency', 4).map((p) => recs[p]?.status),
    ['executed', 'executed', 'executed', 'executed'],
  );
  assert.deepEqual(
    PARTS('evaluate', 4).map((p) => recs[p]!.provenance!.evaluate.forward_images > 0),
    [true, true, true, true],
    'every evaluate task scored its own shards',
  );
  assert.equal(run.instances.find((i) => i.id === 'evaluate')!.provenance!.evaluate.forward_images, 0, 'the evaluate merge ran no forward');

  // Cached: the same experiment with another split is a hit without a single job.
  const again = await finished(runCli(['run', one, '--quiet', ...where('four')], dir).done, 'cached rerun');
  assert.equal(again.code, 0, again.stderr);
  assert.equal(submissions(latestDir(join(dir, 'runs'), 'one')).length, 0, 'shards do not enter the key');
});

/** Waits for the saliency parts' array, then for its task `index` to be RUNNING; returns the array job. */
async function runningPart(runDir: string, index: number): Promise<string> {
  const array = await waitFor(() => submittedAs(submissions(runDir), PARTS('saliency', 4))[0]?.job, 'saliency array submitted', 120_000);
  await waitFor(() => slurmState(`${array}_${index}`) === 'RUNNING', `task ${array}_${index} running`, 60_000);
  return array;
}

test(
  'scancel of one array task: resubmitted alone, the other tasks\u2019 shards kept, digest unchanged',
  { timeout: 300_000 },
  async (t) => {
    if (!needSlurm(t)) return;
    const dir = await tempDir(t, 'ca-pipe-slurm-shards-');
    // RISE with many masks keeps each task busy for a few seconds, so the kill lands mid-run.
    const file = await writeShardWorld(dir, {
      name: 'kill',
      shards: 4,
      executor: '{ type: slurm, retries: 1 }',
      perClass: 8,
      riseMasks: 3000,
    });
    const store = join(dir, 'store');
    const driver = runCli(['run', file, '--json', '--store', store, '--runs', join(dir, 'runs')], dir);
    const runDir = latestDir(join(dir, 'runs'), 'kill');
    const array = await runningPart(runDir, 1);
    execFileSync('scancel', [`${array}_1`]);
    const r = await finished(driver.done, 'run with a cancelled task', 240_000);
    assert.equal(r.code, 0, r.stderr);

    const subs = submissions(runDir);
    const part2 = 'saliency#part-2-of-4';
    assert.equal(submittedAs(subs, PARTS('saliency', 4)).length, 1, 'the array went out once');
    const alone = submittedAs(subs, [part2]);
    assert.equal(alone.length, 1, 'the cancelled task was resubmitted alone');
    assert.equal(
      subs.filter((s) => Object.values(s.tasks).some((id) => id.startsWith('saliency#') && id !== part2)).length,
      1,
      'no other task again',
    );
    assert.equal(mergeStarts(runDir, 'saliency'), 1, 'the merge ran once');
    const run = readJson<SplitRun>(join(runDir, 'run.json'));
    assert.equal(run.status, 'succeeded');
    const sal = run.instances.find((i) => i.id === 'saliency')!;
    const p2 = sal.split!.parts['2/4']!;
    assert.equal(p2.history?.[0]?.id, `${array}_1`);
    assert.match(p2.history![0]!.state, /^CANCELLED/);
    assert.equal(p2.id, alone[0]!.job);
    assert.match(r.stdout, new RegExp(`shard part 2/4: job ${array}_1 ended CANCELLED[^"]*resubmitting \\(retry 1/1\\)`));
    // 8 shards over 4 tasks, 2 each: the merge computed none; the tasks that were not killed ran once.
    assert.equal(sal.provenance!.reused_shards, 8);
    const recs = doneRecords(store, run.runId);
    for (const p of PARTS('saliency', 4)) assert.equal(recs[p]!.status, 'executed', p);

    // The final bytes are those of a run without a split.
    const plain = await writeShardWorld(dir, { name: 'plain', perClass: 8, riseMasks: 3000 });
    const local = await cli(['run', plain, '--quiet', '--store', join(dir, 'local-store'), '--runs', join(dir, 'local-runs')], dir);
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual(runDigests(join(runDir, 'run.json')), runDigests(join(dir, 'local-runs', 'plain', 'latest', 'run.json')));
  },
);

test('driver killed while the array runs: the restart re-adopts it and submits nothing twice', { timeout: 300_000 }, async (t) => {
  if (!needSlurm(t)) return;
  const dir = await tempDir(t, 'ca-pipe-slurm-shards-');
  const file = await writeShardWorld(dir, { name: 'adopt', shards: 4, executor: 'slurm', perClass: 8, riseMasks: 3000 });
  const args = ['run', file, '--quiet', '--store', join(dir, 'store'), '--runs', join(dir, 'runs')];
  const first = runCli(args, dir);
  const runDir = latestDir(join(dir, 'runs'), 'adopt');
  const array = await runningPart(runDir, 0);
  const before = submissions(runDir).length;
  const runId = readJson<SplitRun>(join(runDir, 'run.json')).runId;
  process.kill(-first.child.pid!, 'SIGKILL');
  await first.done;
  assert.notEqual(slurmState(`${array}_0`), '', 'the tasks outlive the driver');

  const st = await cli(['status', runDir], dir);
  assert.match(st.stdout, /saliency .*\n(?:.*\n)*?\s+shard parts: \d of 4 done; tasks \d (RUNNING|PENDING|COMPLETED)/, st.stdout);

  const second = await finished(runCli(args, dir).done, 'restarted driver', 240_000);
  assert.equal(second.code, 0, second.stderr);
  const run = readJson<SplitRun>(join(runDir, 'run.json'));
  assert.equal(run.runId, runId, 'the restart continued the same run');
  assert.equal(run.status, 'succeeded');
  const subs = submissions(runDir);
  assert.equal(submittedAs(subs, PARTS('saliency', 4)).length, 1, 'the array was adopted, not submitted again');
  assert.ok(before >= 3, `data, weights and the array were out before the kill (${before})`);
  const names = subs.map((s) => JSON.stringify(s.tasks));
  assert.equal(new Set(names).size, names.length, `no submission twice: ${names.join(' ')}`);
  assert.equal(mergeStarts(runDir, 'saliency'), 1);
  assert.equal(mergeStarts(runDir, 'evaluate'), 1);
});
