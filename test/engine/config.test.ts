import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { mkdirSync } from 'node:fs';
import { ConfigError, loadExperiment } from '../../engine/config/index.js';
import { createRegistry } from '../../engine/registry.js';
import { posOf, registry, writeFiles, indexKind } from './kinds.js';

const CHAIN = `stages:
  data:
    kind: index
    params: { source: synthetic, classes: 6 }
  train:
    kind: train
    needs: [data]
    params: { lr: 0.1, heads: 1 }
`;

async function load(text: string, opts: { overrides?: string[]; env?: NodeJS.ProcessEnv; extra?: Record<string, string> } = {}) {
  const dir = writeFiles({ 'exp.yaml': text, ...(opts.extra ?? {}) });
  return loadExperiment(path.join(dir, 'exp.yaml'), { registry, overrides: opts.overrides, env: opts.env ?? {} });
}

/** Loading must fail with a ConfigError whose message contains every part. */
async function failsWith(
  text: string,
  parts: string[],
  opts: { overrides?: string[]; env?: NodeJS.ProcessEnv; extra?: Record<string, string> } = {},
): Promise<ConfigError> {
  try {
    await load(text, opts);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message lacks ${JSON.stringify(p)}:\n${e.message}`);
    return e;
  }
  assert.fail('loading should have failed');
}

test('valid experiment loads with stages, needs, scope and settings', async () => {
  const text = `store: runs/.store\njobs: 2\n${CHAIN}`;
  const exp = await load(text);
  assert.equal(exp.name, 'exp');
  assert.deepEqual(
    exp.stages.map((s) => s.name),
    ['data', 'train'],
  );
  assert.deepEqual(exp.stages[1]!.needs, { data: 'data' });
  assert.equal(exp.stages[1]!.scope, 'variant');
  assert.deepEqual(exp.settings, { store: 'runs/.store', jobs: 2 });
  assert.equal(exp.baseDir, path.dirname(exp.file));
  const lr = exp.locate(['stages', 'train', 'params', 'lr'])!;
  assert.equal(`${lr.line}:${lr.column}`, posOf(text, '0.1'));
});

test('YAML syntax error (duplicate key) is located at the offending key', async () => {
  const text = `stages:\n  data:\n    kind: index\n    kind: train\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, 'kind: train')}`, 'YAML syntax error']);
});

test('YAML syntax error (unclosed flow map) names the file and the line', async () => {
  const text = `stages:\n  data:\n    kind: index\n    params: { source: x\n`;
  const e = await failsWith(text, ['exp.yaml:', 'YAML syntax error']);
  assert.ok(e.issues[0]!.line >= 4);
});

test('unknown top-level key: did you mean, at the key', async () => {
  const text = `stages:\n  data: { kind: index, params: { source: s } }\nstroe: x\n`;
  const e = await failsWith(text, [`exp.yaml:${posOf(text, 'stroe')}: stroe: unknown key "stroe" (did you mean "store"?)`]);
  assert.equal(e.issues.length, 1);
  assert.equal(e.issues[0]!.path, 'stroe');
});

test('unknown key in a stage spec: did you mean', async () => {
  const text = CHAIN.replace('needs: [data]', 'neds: [data]');
  await failsWith(text, [`exp.yaml:${posOf(text, 'neds')}: stages.train.neds: unknown key "neds" (did you mean "needs"?)`]);
});

test('unknown param: did you mean, with the field path', async () => {
  const text = CHAIN.replace('lr: 0.1', 'lrr: 0.1');
  await failsWith(text, [`exp.yaml:${posOf(text, 'lrr')}: stages.train.params.lrr: unknown key "lrr" (did you mean "lr"?)`]);
});

test('wrong param type: message form file:line:col: path: expected X, got Y, with caret', async () => {
  const text = CHAIN.replace('lr: 0.1', 'lr: abc');
  const e = await failsWith(text, [`exp.yaml:${posOf(text, 'abc')}: stages.train.params.lr: expected number, got string "abc"`]);
  const formatted = e.format().split('\n');
  assert.ok(formatted[1]!.includes('params: { lr: abc, heads: 1 }'), formatted.join('\n'));
  const col = Number(posOf(text, 'abc').split(':')[1]);
  // The caret sits under the offending value in the source excerpt.
  const srcLine = formatted[1]!;
  const caretLine = formatted[2]!;
  const srcStart = srcLine.indexOf('| ') + 2;
  assert.equal(caretLine.indexOf('^'), srcStart + col - 1);
});

test('several problems are reported together', async () => {
  const text = CHAIN.replace('lr: 0.1', 'lr: abc').replace('classes: 6', 'classes: 0');
  const e = await failsWith(text, ['stages.train.params.lr', 'stages.data.params.classes', `exp.yaml:${posOf(text, 'classes: 0', 9)}`]);
  assert.equal(e.issues.length, 2);
});

test('unknown stage kind: did you mean, known kinds listed', async () => {
  const text = CHAIN.replace('kind: train', 'kind: trian');
  await failsWith(text, [
    `exp.yaml:${posOf(text, 'trian')}: stages.train.kind: unknown stage kind "trian" (did you mean "train"?)`,
    'known kinds: evaluate, index, report, train',
  ]);
});

test('dangling needs: did you mean, at the list entry', async () => {
  const text = CHAIN.replace('needs: [data]', 'needs: [dta]');
  await failsWith(text, [`exp.yaml:${posOf(text, 'dta')}: stages.train.needs[0]: unknown stage "dta" (did you mean "data"?)`]);
});

test('needs with an input name the kind does not accept', async () => {
  const text = CHAIN.replace('needs: [data]', 'needs: { data: data, int: data }');
  await failsWith(text, [
    `exp.yaml:${posOf(text, 'int:')}: stages.train.needs.int: stage kind "train" does not accept input "int" (did you mean "init"?)`,
  ]);
});

test('missing required input', async () => {
  const text = CHAIN.replace('    needs: [data]\n', '');
  await failsWith(text, [`exp.yaml:${posOf(text, 'train:')}: stages.train: stage kind "train" requires input "data"`]);
});

test('dependency cycle names the cycle, located at the needs entry', async () => {
  const text = `stages:
  a:
    kind: evaluate
    needs: [b]
  b:
    kind: evaluate
    needs: [a]
`;
  const e = await failsWith(text, ['dependency cycle: ']);
  const i = e.issues[0]!;
  const at = `${i.line}:${i.column}`;
  // Either entry closes the cycle depending on traversal order; it must be one of them.
  assert.ok([posOf(text, '[b]', 1), posOf(text, '[a]', 1)].includes(at), at);
  assert.ok(/a -> b -> a|b -> a -> b/.test(e.message), e.message);
});

test('sweep axis on an unknown param: did you mean', async () => {
  const text = `${CHAIN}sweep:\n  train.lrr: [0.1, 0.2]\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, 'train.lrr')}: sweep.train.lrr: unknown param "lrr" (did you mean "lr"?)`]);
});

test('sweep axis on an unknown stage: did you mean', async () => {
  const text = `${CHAIN}sweep:\n  trian.lr: [0.1, 0.2]\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, 'trian.lr')}: sweep.trian.lr: unknown stage "trian" (did you mean "train"?)`]);
});

test('sweep axis that is not a list', async () => {
  const text = `${CHAIN}sweep:\n  train.lr: 0.1\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, 'train.lr: 0.1', 10)}: sweep.train.lr: expected a list of values, got number 0.1`]);
});

test('sweep axis with an empty list', async () => {
  const text = `${CHAIN}sweep:\n  train.lr: []\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, '[]')}: sweep.train.lr: empty list`]);
});

test('zip lists of different lengths', async () => {
  const text = `${CHAIN}zip:\n  train.epochs: [1, 2]\n  train.batch: [8, 16, 32]\n`;
  await failsWith(text, [
    `exp.yaml:${posOf(text, 'train.batch')}: zip.train.batch: zip lists must all have the same length: "train.batch" has 3 values, "train.epochs" has 2`,
  ]);
});

test('sweep value rejected by the param schema is located at the value', async () => {
  const text = `${CHAIN}sweep:\n  train.heads: [1, two]\n`;
  await failsWith(text, [
    `exp.yaml:${posOf(text, 'two')}: sweep.train.heads[1]: stages.train.params.heads: expected integer, got string "two"`,
  ]);
});

test('missing required input path is located at the param naming it', async () => {
  const text = `stages:\n  data:\n    kind: index\n    params: { source: folder, root: images/train }\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, 'images/train')}: stages.data.params.root: required path not found: images/train`]);
  // Present → fine.
  const dir = writeFiles({ 'exp.yaml': text });
  mkdirSync(path.join(dir, 'images', 'train'), { recursive: true });
  const exp = await loadExperiment(path.join(dir, 'exp.yaml'), { registry });
  assert.equal(exp.stages[0]!.params.root, 'images/train');
});

test('a missing path given by a sweep value is located at that value', async () => {
  const text = `stages:\n  data:\n    kind: index\n    params: { source: folder }\nsweep:\n  data.root: [., nowhere]\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, 'nowhere')}: sweep.data.root[1]: required path not found: nowhere`]);
});

test('bad interpolation: unknown reference with did you mean', async () => {
  const text = `vars: { size: 64 }\nstages:\n  data:\n    kind: index\n    params: { source: s, size: \${vars.sise} }\n`;
  await failsWith(text, [
    `exp.yaml:${posOf(text, '${vars.sise}')}: stages.data.params.size: unknown reference \${vars.sise} (did you mean \${vars.size}?)`,
  ]);
});

test('bad interpolation: missing environment variable', async () => {
  const text = `stages:\n  data:\n    kind: index\n    params: { source: "\${env:CAPIPE_NOPE}" }\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, '"${env')}: stages.data.params.source: environment variable CAPIPE_NOPE is not set`]);
});

test('bad interpolation: reference cycle', async () => {
  const text = `vars:\n  a: \${vars.b}\n  b: "x-\${vars.a}"\nstages:\n  data: { kind: index, params: { source: s } }\n`;
  const e = await failsWith(text, ['interpolation cycle: vars.a -> vars.b -> vars.a']);
  assert.ok([posOf(text, '${vars.b}'), posOf(text, '"x-')].includes(`${e.issues[0]!.line}:${e.issues[0]!.column}`));
});

test('errors inside an extended file name that file', async () => {
  const base = `stages:\n  data:\n    kind: index\n    params: { source: s, classes: many }\n`;
  const text = `extends: base.yaml\nstages:\n  train: { kind: train, needs: [data] }\n`;
  await failsWith(text, [`base.yaml:${posOf(base, 'many')}: stages.data.params.classes: expected integer, got string "many"`], {
    extra: { 'base.yaml': base },
  });
});

test('extends pointing to a missing file is located at the extends value', async () => {
  const text = `extends: nothere.yaml\n${CHAIN}`;
  await failsWith(text, [`exp.yaml:${posOf(text, 'nothere')}: extends: cannot read extended file`, 'file not found']);
});

test('extends cycle is reported at the extends value', async () => {
  const other = `extends: exp.yaml\nvars: { a: 1 }\n`;
  const text = `extends: other.yaml\n${CHAIN}`;
  await failsWith(text, [`other.yaml:${posOf(other, 'exp.yaml')}: extends: extends cycle: exp.yaml -> other.yaml -> exp.yaml`], {
    extra: { 'other.yaml': other },
  });
});

test('sweeping a param of an experiment-scope stage is an error', async () => {
  const text = `${CHAIN}  report: { kind: report, needs: [train] }\nsweep:\n  report.title: [a, b]\n`;
  await failsWith(text, [`exp.yaml:${posOf(text, 'report.title')}: sweep.report.title: stage "report" has scope: experiment`]);
});

test('unknown override path: did you mean', async () => {
  await failsWith(CHAIN, ['<overrides>:1:1: stages.train.params.lrr: unknown key "lrr" under stages.train.params (did you mean "lr"?)'], {
    overrides: ['train.lrr=0.5'],
  });
  await failsWith(CHAIN, ['<overrides>:2:1: trian.lr: "trian" is neither a stage nor a top-level key (did you mean "train"?)'], {
    overrides: ['train.lr=0.5', 'trian.lr=0.5'],
  });
});

test('override with a value of the wrong type is located in the override', async () => {
  await failsWith(CHAIN, ['<overrides>:1:10: stages.train.params.lr: expected number, got string "abc"'], { overrides: ['train.lr=abc'] });
});

test('extends deep-merges: maps merge, lists and scalars replace, this file wins', async () => {
  const base = `name: base-name
store: base-store
vars: { size: 64, seed: 1 }
stages:
  data:
    kind: index
    params: { source: synthetic, classes: 6 }
  train:
    kind: train
    needs: [data]
    params: { lr: 0.1, heads: 1, layers: [1, 2, 3] }
`;
  const text = `extends: base.yaml
name: child
vars: { size: 32 }
stages:
  train:
    params: { lr: 0.5, layers: [7] }
`;
  const exp = await load(text, { extra: { 'base.yaml': base } });
  assert.equal(exp.name, 'child');
  assert.deepEqual(exp.resolved.vars, { size: 32, seed: 1 });
  assert.equal(exp.settings.store, 'base-store');
  const train = exp.stages.find((s) => s.name === 'train')!;
  assert.deepEqual(train.params, { lr: 0.5, heads: 1, layers: [7] });
  assert.deepEqual(train.needs, { data: 'data' });
  assert.equal(exp.resolved.extends, undefined);
  // Locations follow the file that wrote each value.
  assert.equal(path.basename(exp.locate(['stages', 'train', 'params', 'lr'])!.file), 'exp.yaml');
  assert.equal(path.basename(exp.locate(['stages', 'train', 'params', 'heads'])!.file), 'base.yaml');
  assert.equal(exp.locate(['stages', 'train', 'params', 'heads'])!.line, 11);
});

test('overrides are typed by the params schema; absolute paths work; a swept param is pinned', async () => {
  const text = `vars: { size: 64 }\n${CHAIN}sweep:\n  train.lr: [0.1, 0.2]\n`;
  const exp = await load(text, {
    overrides: [
      'train.lr=0.01',
      'train.tag=1e-3',
      'train.layers=[1,2]',
      'vars.size=32',
      'train.optim.momentum=0.5',
      'stages.train.params.heads=8',
      'data.source=12',
    ],
  });
  const train = exp.stages.find((s) => s.name === 'train')!;
  assert.equal(train.params.lr, 0.01);
  assert.equal(train.params.tag, '1e-3');
  assert.deepEqual(train.params.layers, [1, 2]);
  assert.deepEqual(train.params.optim, { momentum: 0.5 });
  assert.equal(train.params.heads, 8);
  assert.equal(exp.stages[0]!.params.source, '12');
  assert.deepEqual(exp.resolved.vars, { size: 32 });
  assert.equal(exp.sweep.length, 0);
});

test('interpolation: typed whole references, embedded strings, env with defaults, escapes', async () => {
  const text = `vars: { size: 48, name: cats, list: [1, 2] }
stages:
  data:
    kind: index
    params: { source: "\${vars.name}-\${vars.size}", size: \${vars.size}, classes: "\${env:CAPIPE_CLASSES}", seed: "\${env:CAPIPE_SEED:-7}" }
  train:
    kind: train
    needs: [data]
    params: { layers: \${vars.list}, tag: "$\${literal} \${stages.data.params.size}" }
`;
  const exp = await load(text.replace('vars: { size: 48,', 'vars: { size: "${env:CAPIPE_SIZE}",'), {
    env: { CAPIPE_CLASSES: '12', CAPIPE_SIZE: '48' },
  });
  const data = exp.stages[0]!.params;
  assert.equal(data.source, 'cats-48');
  assert.equal(data.size, 48);
  assert.equal(data.classes, 12); // env text typed by the integer schema
  assert.equal(data.seed, 7);
  const train = exp.stages[1]!.params;
  assert.deepEqual(train.layers, [1, 2]);
  assert.equal(train.tag, '${literal} 48');
});

test('overrides can replace or add sweep axes', async () => {
  const text = `${CHAIN}sweep:\n  train.lr: [0.1, 0.2]\n`;
  const exp = await load(text, { overrides: ['sweep.train.lr=[0.5, 0.6, 0.7]', 'sweep.train.heads=[2, 4]'] });
  assert.deepEqual(
    exp.sweep.map((a) => [a.path, a.values]),
    [
      ['train.lr', [0.5, 0.6, 0.7]],
      ['train.heads', [2, 4]],
    ],
  );
});

test('a referenced scalar takes the type of the field it lands on', async () => {
  const text = `vars: { n: 3 }\n${CHAIN.replace('heads: 1', 'heads: 1, names: [a, "${vars.n}"]')}`;
  const exp = await load(text);
  assert.deepEqual(exp.stages[1]!.params.names, ['a', '3']);
});

test('keys of open-ended maps (additionalProperties) can be swept and overridden; others cannot', async () => {
  const text = `${CHAIN}sweep:\n  train.labels.mode: [a, b]\n`;
  const exp = await load(text, { overrides: ['train.labels.extra=1'] });
  assert.deepEqual(
    exp.sweep.map((a) => a.path),
    ['train.labels.mode'],
  );
  assert.deepEqual(exp.stages[1]!.params.labels, { extra: '1' });
  await failsWith(CHAIN, ['stages.train.params.optim.mode: unknown key "mode" under stages.train.params.optim'], {
    overrides: ['train.optim.mode=x'],
  });
});

test('override values flow through interpolation', async () => {
  const text = `vars: { size: 64 }\nstages:\n  data:\n    kind: index\n    params: { source: s, size: \${vars.size} }\n`;
  const exp = await load(text, { overrides: ['vars.size=16'] });
  assert.equal(exp.stages[0]!.params.size, 16);
});

test('createRegistry rejects duplicate kinds', () => {
  assert.throws(() => createRegistry([indexKind, indexKind]), /registered twice/);
});
