// What a `scope: experiment` stage (the report) receives: one input entry per variant carrying
// that variant's identity, and the ExperimentInfo (in-process and through a child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExperimentInfo, VariantInput } from '../../engine/contract.js';
import { ChildProcessExecutor } from '../../engine/run/index.js';
import { Store } from '../../engine/store/index.js';
import { childRunner, collectKind, executions, runFile, tempDir, testRegistry, writeExp } from './helpers.js';

interface Seen {
  variantInputs: Record<string, VariantInput[]>;
  experiment: ExperimentInfo | null;
}

function sweepYaml(counter: string, reportText = 'one'): string {
  const c = JSON.stringify(counter);
  return `name: scope
stages:
  a: { kind: emit, params: { text: A, counter: ${c} } }
  b: { kind: emit, needs: [a], params: { text: B, counter: ${c} } }
  c: { kind: emit, needs: [b], params: { text: C, counter: ${c} } }
  report: { kind: collect, needs: { last: c, mid: b }, params: { tag: ${reportText} } }
sweep:
  c.text: [x, y]
  c.pad: [1, 2]
`;
}

async function seenBy(dir: string, key: string): Promise<Seen> {
  return JSON.parse(await readFile(join(dir, 'runs', '.store', 'entries', key, 'out', 'seen.json'), 'utf8')) as Seen;
}

async function packageVersion(): Promise<string> {
  let d = resolve(fileURLToPath(import.meta.url), '..');
  for (;;) {
    try {
      return (JSON.parse(await readFile(join(d, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      d = resolve(d, '..');
    }
  }
}

const ALIASES = ['text=x,pad=1', 'text=x,pad=2', 'text=y,pad=1', 'text=y,pad=2'];

test('a 2x2 sweep before an experiment-scope stage: each entry carries its own variant; shared upstream dirs repeat', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const file = await writeExp(dir, 'scope.yaml', sweepYaml(counter));
  const r = await runFile(dir, file, testRegistry([collectKind]));
  assert.equal(r.status, 'succeeded', JSON.stringify(r.failures));
  const report = r.record.instances.find((i) => i.stage === 'report')!;
  const seen = await seenBy(dir, report.key!);

  for (const input of ['last', 'mid'] as const) {
    const list = seen.variantInputs[input]!;
    assert.deepEqual(list.map((v) => v.alias).sort(), ALIASES, `${input}: every variant's alias`);
    assert.equal(new Set(list.map((v) => v.variantId)).size, 4, `${input}: four distinct variant ids`);
    for (const v of list) {
      const [text, pad] = v.alias.split(',').map((kv) => kv.split('=')[1]);
      assert.deepEqual(v.values, { 'c.text': text, 'c.pad': Number(pad) }, `${input}: values match the alias`);
    }
  }
  // b is shared by all variants: the same dir and key four times.
  const mid = seen.variantInputs.mid!;
  assert.equal(new Set(mid.map((v) => v.dir)).size, 1);
  assert.equal(new Set(mid.map((v) => v.key)).size, 1);
  assert.equal(await readFile(join(mid[0]!.dir, 'out.txt'), 'utf8'), 'A\nB\n');
  // pad is a non-key param: the two pads of one text share c's entry; each dir holds its text.
  const last = seen.variantInputs.last!;
  assert.equal(new Set(last.map((v) => v.dir)).size, 2);
  for (const v of last) assert.equal(await readFile(join(v.dir, 'out.txt'), 'utf8'), `A\nB\n${v.values['c.text']}\n`);
  // Entries line up with the run's variants (entry i is variant i).
  assert.deepEqual(
    last.map((v) => v.variantId),
    r.record.variants.map((v) => v.id),
  );
  assert.deepEqual(
    mid.map((v) => v.variantId),
    r.record.variants.map((v) => v.id),
  );
});

test('an experiment-scope stage is told about the experiment; that information is not part of its key', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const file = await writeExp(dir, 'scope.yaml', sweepYaml(counter));
  const reg = testRegistry([collectKind]);
  const r1 = await runFile(dir, file, reg);
  assert.equal(r1.status, 'succeeded', JSON.stringify(r1.failures));
  const rep1 = r1.record.instances.find((i) => i.stage === 'report')!;
  const info = (await seenBy(dir, rep1.key!)).experiment!;
  assert.equal(info.name, 'scope');
  assert.equal(info.file, file);
  assert.deepEqual(info.resolved.sweep, { 'c.text': ['x', 'y'], 'c.pad': [1, 2] });
  assert.deepEqual(info.variants.map((v) => v.alias).sort(), ALIASES);
  assert.equal(info.toolVersion, await packageVersion());
  // Upstream instances only (not the report itself). The two pads of one text share a key, so
  // the second of each pair is a cache hit of the first: 4 executed, 2 cached.
  const upstream = r1.record.instances.filter((i) => i.stage !== 'report');
  assert.deepEqual(info.instances.map((i) => [i.id, i.status]).sort(), upstream.map((i) => [i.id, i.status]).sort());
  assert.equal(info.instances.filter((i) => i.status === 'executed').length, 4);
  assert.equal(info.instances.filter((i) => i.status === 'cached').length, 2);
  for (const i of info.instances) {
    if (i.status === 'executed') assert.ok(typeof i.seconds === 'number' && i.seconds >= 0, `${i.id} has seconds`);
    else assert.equal(i.seconds, undefined);
    assert.equal(i.provenance?.executor, 'in-process', `${i.id}: provenance of the producing execution`);
  }
  assert.deepEqual(
    info.instances
      .filter((i) => i.stage === 'c')
      .map((i) => i.variant)
      .sort(),
    ALIASES,
  );
  assert.equal(info.instances.find((i) => i.stage === 'a')!.variant, '');

  // Unchanged: the report stays cached although the run information differs.
  const r2 = await runFile(dir, file, reg);
  assert.equal(r2.record.instances.find((i) => i.stage === 'report')!.status, 'cached');
  // A changed report param: upstream entries are cache hits, reported with the provenance of
  // the execution that produced them.
  await writeExp(dir, 'scope.yaml', sweepYaml(counter, 'two'));
  const r3 = await runFile(dir, file, reg);
  const rep3 = r3.record.instances.find((i) => i.stage === 'report')!;
  assert.equal(rep3.status, 'executed');
  const info3 = (await seenBy(dir, rep3.key!)).experiment!;
  assert.ok(info3.instances.length === upstream.length && info3.instances.every((i) => i.status === 'cached' && i.seconds === undefined));
  assert.ok(info3.instances.every((i) => i.provenance?.executor === 'in-process'));
  assert.equal((await executions(counter)).length, 4, 'a, b and one c per text, all in the first run');
});

test('the child-process executor hands the experiment info and variant inputs to the stage', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const file = await writeExp(dir, 'scope.yaml', sweepYaml(counter));
  const store = await Store.open(join(dir, 'runs', '.store'));
  const r = await runFile(dir, file, testRegistry([collectKind]), [], { executor: new ChildProcessExecutor(store, childRunner()) });
  assert.equal(r.status, 'succeeded', JSON.stringify(r.failures));
  const rep = r.record.instances.find((i) => i.stage === 'report')!;
  const seen = await seenBy(dir, rep.key!);
  assert.deepEqual(seen.variantInputs.mid!.map((v) => v.alias).sort(), ALIASES);
  const info = seen.experiment!;
  assert.equal(info.name, 'scope');
  assert.deepEqual(info.variants.map((v) => v.alias).sort(), ALIASES);
  assert.equal(info.instances.length, 6);
  assert.equal(info.instances.filter((i) => i.status === 'executed').length, 4);
  assert.ok(info.instances.every((i) => i.provenance?.executor === 'child-process'));
});
