// A split stage on local workers (`parallel.shards` with --executor child-process): the parts run as
// separate processes, the merge writes what a single run writes, so the digests equal those of the
// in-process run without `parallel`; the merge reuses every shard and the parts split them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../bad-inputs/run-cli.js';
import { runDigests, writeShardWorld } from '../support/shard-world.js';

test('parallel.shards with the child-process executor: same digests as one in-process run; merge reuses every shard', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ca-pipe-split-local-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const single = await writeShardWorld(dir, { name: 'single' });
  const split = await writeShardWorld(dir, { name: 'split', shards: 3 });
  const a = await runCli(['run', single, '--quiet', '--store', 's1', '--runs', 'runs'], dir);
  assert.equal(a.exitCode, 0, a.output);
  const b = await runCli(['run', split, '--quiet', '--executor', 'child-process', '--store', 's2', '--runs', 'runs'], dir);
  assert.equal(b.exitCode, 0, b.output);
  const da = runDigests(join(dir, 'runs/single/latest/run.json'));
  const db = runDigests(join(dir, 'runs/split/latest/run.json'));
  assert.ok(da.saliency && da.evaluate);
  assert.deepEqual(db, da, 'a split run must commit the same bytes');

  const run = JSON.parse(readFileSync(join(dir, 'runs/split/latest/run.json'), 'utf8')) as {
    instances: Array<{ id: string; provenance?: Record<string, any> }>;
  };
  const prov = (id: string) => run.instances.find((i) => i.id === id)!.provenance!;
  // 6 val images in shards of one: the merge found all 6 finished by the 3 workers.
  assert.equal(prov('saliency').reused_shards, 6);
  assert.equal(prov('saliency').split.shards, 3);
  assert.equal(prov('evaluate').evaluate.reused_shards, 6);
  assert.equal(prov('evaluate').evaluate.forward_images, 0, 'the merge of evaluate runs no forward pass');
  // The plan's estimates now use the rate that run's evaluate stage measured.
  const plan = await runCli(['plan', single, '--store', 's1', '--runs', 'runs'], dir);
  assert.match(plan.output, /estimates at [\d.]+ forwards\/s, measured by evaluate in run /, plan.output);
  // Each worker logged its own part.
  for (const i of [1, 2, 3])
    assert.match(readFileSync(join(dir, 'runs/split/latest/logs/saliency.log'), 'utf8'), new RegExp(`shard part ${i}/3`));
});

test('parallel on a stage kind that cannot split is a located error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ca-pipe-split-bad-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = await writeShardWorld(dir, { name: 'bad' });
  const { writeFile, readFile } = await import('node:fs/promises');
  const text = (await readFile(file, 'utf8')).replace(
    '  weights:\n    kind: command\n',
    '  weights:\n    kind: command\n    parallel: { shards: 2 }\n',
  );
  await writeFile(file, text);
  const r = await runCli(['plan', file], dir);
  assert.equal(r.exitCode, 2, r.output);
  assert.match(r.output, /bad\.yaml:\d+:\d+.*stages\.weights\.parallel.*stage kind "command" cannot be split over shards/s);
});
