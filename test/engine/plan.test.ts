import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { loadExperiment } from '../../engine/config/index.js';
import {
  axisLabels,
  buildPlan,
  canonicalJson,
  computeKey,
  expandVariants,
  explainKeyDiff,
  finaliseKey,
  sha256Hex,
} from '../../engine/plan/index.js';
import { createRegistry } from '../../engine/registry.js';
import type { StageKind } from '../../engine/contract.js';
import type { KeyMaterial } from '../../engine/types.js';
import { evalKind, indexKind, registry, reportKind, trainKind, writeFiles } from './kinds.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

async function plan(text: string, reg = registry) {
  const dir = writeFiles({ 'exp.yaml': text });
  const exp = await loadExperiment(path.join(dir, 'exp.yaml'), { registry: reg, env: {} });
  return buildPlan(exp, reg);
}

const CHAIN3 = `stages:
  data:
    kind: index
    params: { source: synthetic, classes: 6 }
  train:
    kind: train
    needs: [data]
    params: { lr: 0.1 }
  ev:
    kind: evaluate
    needs: [train]
`;

test('canonicalJson sorts keys at every level, keeps array order, drops undefined, no whitespace', () => {
  const v = { b: 1, a: [true, null, 'x', { d: 0.5, c: 'é' }], e: undefined, c: { z: -0, y: 1e21 } };
  assert.equal(canonicalJson(v), '{"a":[true,null,"x",{"c":"é","d":0.5}],"b":1,"c":{"y":1e+21,"z":0}}');
  assert.equal(canonicalJson('a"b'), '"a\\"b"');
});

test('sha256Hex matches the FIPS 180-2 "abc" vector; computeKey hashes the canonical material', () => {
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const m: KeyMaterial = { version: 3, kind: 'train', params: { lr: 0.1, a: [1, 2] }, inputs: { data: 'd1' }, external: {} };
  const expected = '{"external":{},"inputs":{"data":"d1"},"kind":"train","params":{"a":[1,2],"lr":0.1},"version":3}';
  assert.equal(computeKey(m), sha(expected));
  // Param order is irrelevant.
  assert.equal(computeKey({ ...m, params: { a: [1, 2], lr: 0.1 } }), computeKey(m));
  assert.notEqual(computeKey({ ...m, params: { a: [2, 1], lr: 0.1 } }), computeKey(m));
});

test('no sweep: a single variant with empty id and alias', async () => {
  const p = await plan(CHAIN3);
  assert.deepEqual(p.variants, [{ id: '', alias: '', values: {} }]);
  assert.deepEqual(
    p.instances.map((i) => i.id),
    ['data', 'train', 'ev'],
  );
});

test('the format example from the design brief plans: 8 variants, 1 + 8 + 1 instances', async () => {
  const p = await plan(`name: demo
vars: { size: 64 }
sweep:
  train.lr: [0.1, 0.01]
  train.heads: [1, 8]
zip:
  train.epochs: [1, 2]
  train.batch: [8, 16]
stages:
  data:
    kind: index
    params: { source: synthetic, classes: 6, size: \${vars.size} }
  train:
    kind: train
    needs: [data]
    params: { lr: 0.1, heads: 1 }
  report:
    kind: report
    scope: experiment
    needs: [train]
`);
  assert.equal(p.experiment.name, 'demo');
  assert.equal(p.variants.length, 8);
  assert.deepEqual(
    p.instances.map((i) => i.stage),
    ['data', ...Array(8).fill('train'), 'report'],
  );
  assert.equal(p.instances[0]!.params.size, 64);
  assert.equal((p.instances.at(-1)!.deps.train as string[]).length, 8);
});

test('2x2 grid x 2-row zip gives 8 variants with hashed ids and readable aliases', async () => {
  const p = await plan(
    `${CHAIN3}sweep:\n  train.lr: [0.1, 0.01]\n  train.heads: [1, 8]\nzip:\n  train.epochs: [1, 2]\n  train.batch: [8, 16]\n`,
  );
  assert.equal(p.variants.length, 8);
  assert.equal(new Set(p.variants.map((v) => v.id)).size, 8);
  const first = p.variants[0]!;
  assert.deepEqual(first.values, { 'train.lr': 0.1, 'train.heads': 1, 'train.epochs': 1, 'train.batch': 8 });
  assert.equal(first.id, sha('{"train.batch":8,"train.epochs":1,"train.heads":1,"train.lr":0.1}').slice(0, 8));
  assert.equal(first.alias, 'lr=0.1,heads=1,epochs=1,batch=8');
  // Zip rows stay paired: epochs 1 always with batch 8, epochs 2 with batch 16.
  for (const v of p.variants) assert.equal(v.values['train.batch'], v.values['train.epochs'] === 1 ? 8 : 16);
  // Grid without zip: 4; zip alone: 2.
  const exp = p.experiment;
  assert.equal(expandVariants({ ...exp, zip: [] }).length, 4);
  assert.equal(expandVariants({ ...exp, sweep: [] }).length, 2);
});

test('alias labels are disambiguated when two axes share a last segment', () => {
  const m = axisLabels(['train.lr', 'finetune.lr', 'train.heads']);
  assert.deepEqual([...m.values()], ['train.lr', 'finetune.lr', 'heads']);
});

test('sweep over the last stage of a 3-stage chain: 1 + 1 + 4 instances', async () => {
  const p = await plan(`${CHAIN3}sweep:\n  ev.metric: [auc, drop]\n  ev.steps: [5, 10]\n`);
  const count = (s: string) => p.instances.filter((i) => i.stage === s).length;
  assert.deepEqual([count('data'), count('train'), count('ev')], [1, 1, 4]);
  assert.equal(p.instances[0]!.id, 'data');
  assert.equal(p.instances[1]!.id, 'train');
  assert.deepEqual(
    p.instances
      .slice(2)
      .map((i) => i.id)
      .sort(),
    p.variants.map((v) => `ev@${v.id}`).sort(),
  );
  for (const i of p.instances.slice(2)) assert.deepEqual(i.deps, { train: 'train' });
  assert.deepEqual(
    p.instances[1]!.variants,
    p.variants.map((v) => v.id),
  );
});

test('a stage downstream of a per-variant stage is per-variant; partial sharing follows the axes', async () => {
  const mid = await plan(`${CHAIN3}sweep:\n  train.lr: [0.1, 0.2]\n  train.heads: [1, 8]\n`);
  const count = (p: typeof mid, s: string) => p.instances.filter((i) => i.stage === s).length;
  assert.deepEqual([count(mid, 'data'), count(mid, 'train'), count(mid, 'ev')], [1, 4, 4]);
  const split = await plan(`${CHAIN3}sweep:\n  data.seed: [1, 2]\n  ev.steps: [5, 10]\n`);
  assert.deepEqual([count(split, 'data'), count(split, 'train'), count(split, 'ev')], [2, 2, 4]);
  // Each variant's train instance consumes that variant's data instance.
  for (const v of split.variants) {
    const ids = split.byVariant![v.id]!;
    const train = split.instances.find((i) => i.id === ids.train)!;
    assert.equal(train.deps.data, ids.data);
    const data = split.instances.find((i) => i.id === ids.data)!;
    assert.equal(data.params.seed, v.values['data.seed']);
  }
});

test('experiment-scope stage: one instance whose deps list every variant', async () => {
  const p = await plan(`${CHAIN3}  report:\n    kind: report\n    needs: [ev]\nsweep:\n  ev.steps: [5, 10, 20]\n`);
  const rep = p.instances.find((i) => i.stage === 'report')!;
  assert.equal(rep.id, 'report');
  assert.equal(rep.scope, 'experiment');
  assert.deepEqual(
    rep.deps.ev,
    p.variants.map((v) => p.byVariant![v.id]!.ev),
  );
  assert.equal(p.instances.at(-1), rep);
  assert.equal(rep.params.title, 'Report');
});

test('schema defaults are applied; nonKeyParams stay in params but leave the key', async () => {
  const a = await plan(CHAIN3);
  const b = await plan(CHAIN3.replace('params: { lr: 0.1 }', 'params: { workers: 16, lr: 0.1 }'));
  const ta = a.instances.find((i) => i.stage === 'train')!;
  const tb = b.instances.find((i) => i.stage === 'train')!;
  assert.deepEqual(ta.params, { lr: 0.1, heads: 1, epochs: 1, batch: 8, workers: 2 });
  assert.equal(tb.params.workers, 16);
  assert.deepEqual(tb.nonKeyParams, ['workers']);
  assert.equal('workers' in tb.material.params, false);
  assert.equal(ta.planKey, tb.planKey);
  // Param order in the file is irrelevant too.
  const c = await plan(CHAIN3.replace('params: { source: synthetic, classes: 6 }', 'params: { classes: 6, source: synthetic }'));
  assert.deepEqual(
    c.instances.map((i) => i.planKey),
    a.instances.map((i) => i.planKey),
  );
  // A changed upstream param changes downstream plan keys, not downstream params.
  const d = await plan(CHAIN3.replace('classes: 6', 'classes: 7'));
  assert.notEqual(d.instances[1]!.planKey, a.instances[1]!.planKey);
  assert.deepEqual(d.instances[1]!.material.params, a.instances[1]!.material.params);
});

test('keys: source stages are keyed at plan time; others once upstream digests are known', async () => {
  const p = await plan(CHAIN3);
  const [data, train] = p.instances as [(typeof p.instances)[0], (typeof p.instances)[0]];
  assert.equal(
    data.key,
    computeKey({ kind: 'index', version: 1, params: { source: 'synthetic', classes: 6, size: 32, seed: 0 }, inputs: {}, external: {} }),
  );
  assert.equal(train.key, undefined);
  assert.deepEqual(train.material.inputs, { data: `key:${data.planKey}` });
  assert.equal(finaliseKey(train, new Map()), undefined);
  assert.equal(train.key, undefined);
  const k1 = finaliseKey(train, new Map([['data', 'digest-1']]));
  assert.equal(k1, computeKey({ ...train.material, inputs: { data: 'digest-1' } }));
  assert.equal(train.key, k1);
  // Identical upstream output → identical key (early cutoff); different output → different key.
  assert.equal(finaliseKey(train, new Map([['data', 'digest-1']])), k1);
  assert.notEqual(finaliseKey(train, new Map([['data', 'digest-2']])), k1);
});

test('externalDigest enters the key material', async () => {
  const ext: StageKind = {
    ...indexKind,
    kind: 'ext',
    externalDigest: async (p: { source: string }, baseDir: string) => ({ [p.source]: sha(baseDir) }),
  };
  const reg = createRegistry([ext, trainKind, evalKind, reportKind]);
  const p = await plan(`stages:\n  data: { kind: ext, params: { source: listing } }\n`, reg);
  const inst = p.instances[0]!;
  assert.deepEqual(inst.material.external, { listing: sha(p.experiment.baseDir) });
  assert.equal(inst.key, computeKey(inst.material));
});

test('explainKeyDiff names each changed component', () => {
  const prev: KeyMaterial = {
    kind: 'train',
    version: 1,
    params: { lr: 0.1, optim: { name: 'sgd' }, old: 1 },
    inputs: { data: 'aaaaaaaaaaaaaaaaaaaa', init: 'x' },
    external: { 'deps/a.py': 'h1' },
  };
  const next: KeyMaterial = {
    kind: 'train',
    version: 2,
    params: { lr: 0.01, optim: { name: 'adam' }, fresh: 'y' },
    inputs: { data: 'bbbbbbbbbbbbbbbbbbbb', init: 'x' },
    external: { 'deps/a.py': 'h2', 'deps/b.py': 'h3' },
  };
  assert.deepEqual(explainKeyDiff(prev, next), [
    'version of kind train: 1 -> 2',
    'param fresh: added ("y")',
    'param lr: 0.1 -> 0.01',
    'param old: removed (was 1)',
    'param optim.name: "sgd" -> "adam"',
    'input data: upstream output changed (aaaaaaaaaaaa -> bbbbbbbbbbbb)',
    'external deps/a.py: content changed (h1 -> h2)',
    'external deps/b.py: added (h3)',
  ]);
  assert.deepEqual(explainKeyDiff(prev, structuredClone(prev)), ['no change: the key material is identical']);
  assert.deepEqual(explainKeyDiff(prev, { ...prev, kind: 'other' }), ['kind: train -> other']);
});

test('explainKeyDiff points into lists and long strings so the change is visible', () => {
  const x = 'x'.repeat(100);
  const base: KeyMaterial = {
    kind: 'command',
    version: 1,
    params: { cmd: ['sh', '-c', `${x} echo 3 >> out`], layers: [1, 2] },
    inputs: {},
    external: {},
  };
  const next: KeyMaterial = { ...base, params: { cmd: ['sh', '-c', `${x} echo 33 >> out`], layers: [1, 2, 3] } };
  // Common prefix: 100 x + " echo 3" = 107 characters; the window starts 20 before the difference.
  const tail = 'x'.repeat(13);
  assert.deepEqual(explainKeyDiff(base, next), [
    `param cmd[2]: "…${tail} echo 3 >> out" -> "…${tail} echo 33 >> out" (first difference at character 108)`,
    'param layers: [1,2] -> [1,2,3]',
  ]);
});
