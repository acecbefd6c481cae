// The engine side of split stages: the shard ranges of the parts (worked out by hand), part ids as
// the Slurm files and journal hold them, and where `parallel` comes from in an experiment file.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { shardRange } from '../../engine/contract.js';
import { loadExperiment } from '../../engine/config/index.js';
import { buildPlan } from '../../engine/plan/index.js';
import { createRegistry } from '../../engine/registry.js';
import { splitSummary } from '../../engine/run/slurm/driver.js';
import { parsePartId, partId } from '../../engine/run/slurm/parts.js';
import { STAGE_KINDS } from '../../stages/index.js';
import { tempDir } from './helpers.js';

test('shardRange: contiguous ranges that cover every shard once, sizes within one', () => {
  // 6 shards over 4 parts: floor(i·6/4) = 0, 1, 3, 4, 6.
  assert.deepEqual(
    [0, 1, 2, 3].map((index) => shardRange(6, { index, count: 4 })),
    [
      { start: 0, end: 1 },
      { start: 1, end: 3 },
      { start: 3, end: 4 },
      { start: 4, end: 6 },
    ],
  );
  // More parts than shards: some parts are empty, none overlaps.
  assert.deepEqual(
    [0, 1, 2].map((index) => shardRange(2, { index, count: 3 })),
    [
      { start: 0, end: 0 },
      { start: 0, end: 1 },
      { start: 1, end: 2 },
    ],
  );
  assert.deepEqual(shardRange(5, { index: 0, count: 1 }), { start: 0, end: 5 });
  assert.throws(() => shardRange(5, { index: 4, count: 4 }), /invalid shard part 4\/4/);
});

test('part ids round-trip and name the instance (variants included)', () => {
  const id = partId('evaluate@3f2a', { index: 1, count: 4 });
  assert.equal(id, 'evaluate@3f2a#part-2-of-4');
  assert.deepEqual(parsePartId(id), { instance: 'evaluate@3f2a', part: { index: 1, count: 4 } });
  assert.equal(parsePartId('evaluate@3f2a'), undefined);
  assert.equal(parsePartId('x#part-5-of-4'), undefined);
});

test('splitSummary counts the tasks by state', () => {
  const s = splitSummary({
    shards: 4,
    parts: { '1/4': { id: '9_0', done: true }, '2/4': { id: '9_1', state: 'RUNNING' }, '3/4': { id: '9_2', state: 'RUNNING' } },
  });
  assert.equal(s, '4 shard parts: 1 done, 2 running, 1 todo');
});

test('parallel: a stage\u2019s own, else executor.parallel for kinds that split; never on others', async (t) => {
  const dir = await tempDir(t, 'ca-pipe-split-cfg-');
  const file = join(dir, 'exp.yaml');
  writeFileSync(
    file,
    `executor: { type: child-process, parallel: { shards: 3 } }
stages:
  data: { kind: index, params: { source: synthetic } }
  model: { kind: command, params: { cmd: ["true"] } }
  sal: { kind: saliency, needs: { model: model, data: data }, params: { methods: [random] } }
  ev: { kind: evaluate, needs: { model: model, data: data, saliency: sal }, parallel: { shards: 5 } }
`,
  );
  const registry = createRegistry(STAGE_KINDS);
  const plan = await buildPlan(await loadExperiment(file, { registry, env: {} }), registry);
  const par = Object.fromEntries(plan.instances.map((i) => [i.id, i.parallel?.shards]));
  assert.deepEqual(par, { data: undefined, model: undefined, sal: 3, ev: 5 });
  // The split is not in the key.
  writeFileSync(
    file,
    (await import('node:fs')).readFileSync(file, 'utf8').replace('shards: 3', 'shards: 1').replace(', parallel: { shards: 5 }', ''),
  );
  const plain = await buildPlan(await loadExperiment(file, { registry, env: {} }), registry);
  assert.deepEqual(
    plain.instances.map((i) => i.planKey),
    plan.instances.map((i) => i.planKey),
  );
  assert.equal(plain.instances.find((i) => i.id === 'sal')!.parallel, undefined, 'one shard is no split');
});
