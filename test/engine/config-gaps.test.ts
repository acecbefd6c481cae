// Per-variant interpolation of swept values, sweep values typed by their param's schema, and the
// bare-string form of `needs`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ConfigError, loadExperiment } from '../../engine/config/index.js';
import { buildPlan } from '../../engine/plan/index.js';
import { posOf, registry, writeFiles } from './kinds.js';

async function load(text: string) {
  const dir = writeFiles({ 'exp.yaml': text });
  return loadExperiment(path.join(dir, 'exp.yaml'), { registry, env: { SUFFIX: 'z' } });
}

async function plan(text: string) {
  return buildPlan(await load(text), registry);
}

const REFS = `stages:
  data: { kind: index, params: { source: synthetic } }
  train:
    kind: train
    needs: [data]
    params: { lr: 0.1, heads: 1, tag: "lr-\${stages.train.params.lr}-\${env:SUFFIX}" }
  ev:
    kind: evaluate
    needs: [train]
    params: { metric: "\${stages.train.params.tag}", steps: "\${stages.train.params.heads}" }
`;

test('without a sweep, references take the written values', async () => {
  const p = await plan(REFS);
  const byStage = Object.fromEntries(p.instances.map((i) => [i.stage, i.params]));
  assert.equal(byStage.train!.tag, 'lr-0.1-z');
  assert.equal(byStage.ev!.metric, 'lr-0.1-z');
  assert.equal(byStage.ev!.steps, 1);
});

test("${stages.<s>.params.<p>} sees each variant's swept value, through chains of references", async () => {
  const p = await plan(`${REFS}sweep:\n  train.lr: [0.5, 0.25]\n  train.heads: [2, 3]\n`);
  assert.equal(p.variants.length, 4);
  const data = p.instances.filter((i) => i.stage === 'data');
  assert.equal(data.length, 1, 'the unaffected upstream stays shared');
  for (const v of p.variants) {
    const lr = v.values['train.lr'] as number;
    const heads = v.values['train.heads'] as number;
    const train = p.instances.find((i) => i.id === p.byVariant![v.id]!.train)!;
    const ev = p.instances.find((i) => i.id === p.byVariant![v.id]!.ev)!;
    assert.deepEqual([train.params.lr, train.params.heads, train.params.tag], [lr, heads, `lr-${lr}-z`], v.alias);
    assert.equal(ev.params.metric, `lr-${lr}-z`, `${v.alias}: a reference to a templated field`);
    assert.equal(ev.params.steps, heads, `${v.alias}: a whole reference keeps the number type`);
  }
  assert.equal(new Set(p.instances.filter((i) => i.stage === 'ev').map((i) => i.planKey)).size, 4);
});

test('a reference to an unswept param of a swept stage does not multiply its consumer', async () => {
  const text = REFS.replace('"${stages.train.params.tag}"', '"${stages.data.params.source}"').replace(
    '"${stages.train.params.heads}"',
    '7',
  );
  const p = await plan(`${text}sweep:\n  train.heads: [2, 3]\n`);
  const ev = p.instances.filter((i) => i.stage === 'ev');
  assert.equal(ev.length, 2, 'one per train instance (different inputs), not more');
  assert.ok(ev.every((i) => i.params.metric === 'synthetic' && i.params.steps === 7));
});

test('sweep values are typed by the param schema like -s overrides', async () => {
  const p = await plan(`stages:
  data: { kind: index, params: { source: synthetic } }
  train: { kind: train, needs: [data], params: { lr: 0.1 } }
sweep:
  train.heads: ["2", "8"]
  train.tag: [1, true]
`);
  const heads = [...new Set(p.variants.map((v) => v.values['train.heads']))];
  assert.deepEqual(heads, [2, 8]);
  const tags = [...new Set(p.variants.map((v) => v.values['train.tag']))];
  assert.deepEqual(tags, ['1', 'true']);
  const trains = p.instances.filter((i) => i.stage === 'train');
  assert.ok(trains.every((i) => typeof i.params.heads === 'number' && typeof i.params.tag === 'string'));
  assert.ok(
    p.variants.some((v) => v.alias === 'heads=8,tag=1'),
    p.variants.map((v) => v.alias).join(' '),
  );
});

test('typed sweep values that coincide are duplicates; untypable values are located errors', async () => {
  const dup = `stages:\n  data: { kind: index, params: { source: s } }\n  train: { kind: train, needs: [data] }\nsweep:\n  train.heads: [2, "2"]\n`;
  await assert.rejects(
    load(dup),
    (e: unknown) => e instanceof ConfigError && /sweep\.train\.heads\[1\]: duplicate value 2/.test(e.message),
  );
  const bad = `stages:\n  data: { kind: index, params: { source: s } }\n  train: { kind: train, needs: [data] }\nsweep:\n  train.heads: [2, two]\n`;
  await assert.rejects(
    load(bad),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message.includes(`exp.yaml:${posOf(bad, 'two')}`) &&
      /sweep\.train\.heads\[1\]: stages\.train\.params\.heads: expected integer, got string "two"/.test(e.message),
  );
});

test('needs: <stage> (a bare string) is accepted as a one-item list', async () => {
  const exp = await load(`stages:\n  data: { kind: index, params: { source: s } }\n  train: { kind: train, needs: data }\n`);
  assert.deepEqual(exp.stages.find((s) => s.name === 'train')!.needs, { data: 'data' });
  const bad = `stages:\n  data: { kind: index, params: { source: s } }\n  train: { kind: train, needs: dta }\n`;
  await assert.rejects(
    load(bad),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message.includes(`exp.yaml:${posOf(bad, 'dta')}`) &&
      /unknown stage "dta" \(did you mean "data"\?\)/.test(e.message),
  );
});

test('a stage kind with a broken params schema is named', async () => {
  const { createRegistry } = await import('../../engine/registry.js');
  const broken = createRegistry([{ kind: 'broken', version: 1, paramsSchema: { type: 'nonsense' }, run: async () => undefined }]);
  const dir = writeFiles({ 'exp.yaml': 'stages:\n  s: { kind: broken }\n' });
  await assert.rejects(
    loadExperiment(path.join(dir, 'exp.yaml'), { registry: broken, env: {} }),
    /stage kind "broken": invalid paramsSchema/,
  );
});

test('override values read without the yaml library agree with YAML', async () => {
  const { plainScalar } = await import('../../engine/config/overrides.js');
  const { parse } = await import('yaml');
  const samples = ['0', '7', '-12', '0.01', '1e-3', '2.5E+4', 'true', 'false', 'sgd', 'resnet50', 'a/b-c_d', 'x1'];
  for (const s of samples) assert.deepEqual(plainScalar(s), parse(s), s);
  // Everything else is left to YAML (flow collections, quotes, null and friends, odd numbers).
  for (const s of ['[1, 2]', '{a: 1}', '"q"', 'null', '~', '', 'True', '0x1F', '.5', '1.', 'a b', 'a:b'])
    assert.equal(typeof plainScalar(s), 'symbol', s);
});

test('a zip axis may repeat a value when the tuples differ; a repeated tuple is a located error', async () => {
  const ok = await plan(
    `stages:\n  data: { kind: index, params: { source: s } }\n  train: { kind: train, needs: [data] }\nzip:\n  train.heads: [2, 2, 4]\n  train.lr: [0.1, 0.2, 0.1]\n`,
  );
  assert.deepEqual(ok.variants.map((v) => v.alias).sort(), ['heads=2,lr=0.1', 'heads=2,lr=0.2', 'heads=4,lr=0.1']);
  const dup = `stages:\n  data: { kind: index, params: { source: s } }\n  train: { kind: train, needs: [data] }\nzip:\n  train.heads: [2, 4, 2]\n  train.lr: [0.1, 0.2, 0.1]\n`;
  await assert.rejects(
    load(dup),
    (e: unknown) =>
      e instanceof ConfigError && /zip\.train\.heads\[2\]: zip entry 2 repeats entry 0 \(train\.heads=2, train\.lr=0\.1\)/.test(e.message),
  );
});
