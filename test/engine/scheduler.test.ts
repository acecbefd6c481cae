import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { executions, planFor, runFile, tempDir, testRegistry, writeExp } from './helpers.js';
import { analysePlan, readEvents, readRun } from '../../engine/run/index.js';
import { Store } from '../../engine/store/index.js';

function chain(counter: string, b = 'B', c = 'C'): string {
  return `name: chain
stages:
  a:
    kind: emit
    params: { text: A, counter: ${JSON.stringify(counter)} }
  b:
    kind: emit
    needs: [a]
    params: { text: ${b}, counter: ${JSON.stringify(counter)} }
  c:
    kind: emit
    needs: [b]
    params: { text: ${c}, counter: ${JSON.stringify(counter)} }
`;
}

test('rerun of an unchanged 3-stage experiment executes nothing; changing the middle reruns middle and last', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const reg = testRegistry();
  const file = await writeExp(dir, 'chain.yaml', chain(counter));
  const r1 = await runFile(dir, file, reg);
  assert.equal(r1.status, 'succeeded');
  assert.deepEqual(await executions(counter), ['a', 'b', 'c']);
  const c = r1.record.instances.find((i) => i.id === 'c')!;
  assert.equal(await readFile(join(dir, 'runs', '.store', 'entries', c.key!, 'out', 'out.txt'), 'utf8'), 'A\nB\nC\n');

  const r2 = await runFile(dir, file, reg);
  assert.deepEqual(await executions(counter), ['a', 'b', 'c'], 'nothing executed again');
  assert.deepEqual(
    r2.record.instances.map((i) => i.status),
    ['cached', 'cached', 'cached'],
  );

  await writeExp(dir, 'chain.yaml', chain(counter, 'B2'));
  const r3 = await runFile(dir, file, reg);
  assert.deepEqual((await executions(counter)).slice(3), ['b', 'c']);
  assert.deepEqual(
    r3.record.instances.map((i) => i.status),
    ['cached', 'executed', 'executed'],
  );

  // run.json, journal and latest link are on disk and agree with the result.
  const onDisk = await readRun(r3.runDir);
  assert.equal(onDisk.status, 'succeeded');
  assert.deepEqual(
    onDisk.instances.map((i) => i.status),
    ['cached', 'executed', 'executed'],
  );
  assert.equal(await readlink(join(dir, 'runs', 'chain', 'latest')), onDisk.runId);
  const ev = await readEvents(r3.runDir);
  assert.equal(ev[0].type, 'run-start');
  assert.equal(ev.at(-1)!.type, 'run-end');
  assert.equal(ev.filter((e) => e.type === 'instance-done').length, 2);
  assert.match(await readFile(join(r3.runDir, 'logs', 'b.log'), 'utf8'), /stage b \(emit\)/);
});

test('a stage that reproduces identical bytes leaves its downstream cached (early cutoff)', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const reg = testRegistry();
  const file = await writeExp(dir, 'chain.yaml', chain(counter));
  await runFile(dir, file, reg);
  // Adding `fail: false` changes b's key (a new param) but not the bytes b writes.
  const yaml = chain(counter).replace('params: { text: B,', 'params: { fail: false, text: B,');
  await writeExp(dir, 'chain.yaml', yaml);
  const r = await runFile(dir, file, reg);
  assert.deepEqual(
    r.record.instances.map((i) => i.status),
    ['cached', 'executed', 'cached'],
  );
  assert.deepEqual((await executions(counter)).slice(3), ['b']);
});

test('a 2x2 sweep over the last stage runs the shared upstream stages once', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const reg = testRegistry();
  const file = await writeExp(dir, 'sweep.yaml', chain(counter) + `sweep:\n  c.text: [x, y]\n  c.pad: [1, 2]\n`);
  const r = await runFile(dir, file, reg);
  assert.equal(r.status, 'succeeded');
  const ex = await executions(counter);
  assert.equal(ex.filter((s) => s === 'a').length, 1);
  assert.equal(ex.filter((s) => s === 'b').length, 1);
  // pad is a non-key param: the 4 variants need only 2 distinct c computations (one per text).
  const cs = r.record.instances.filter((i) => i.stage === 'c');
  assert.equal(new Set(cs.map((i) => i.key)).size, 2);
  assert.equal(ex.filter((s) => s === 'c').length, 2);
  assert.equal(r.record.variants.length, 4);
  const outs = new Set<string>();
  for (const i of cs) outs.add(await readFile(join(dir, 'runs', '.store', 'entries', i.key!, 'out', 'out.txt'), 'utf8'));
  assert.deepEqual([...outs].sort(), ['A\nB\nx\n', 'A\nB\ny\n']);
});

test('a failure skips downstream; --keep-going lets independent branches finish', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const reg = testRegistry();
  const yaml = `name: branches
stages:
  root: { kind: emit, params: { text: R, counter: ${JSON.stringify(counter)} } }
  bad: { kind: emit, needs: [root], params: { text: X, fail: true, counter: ${JSON.stringify(counter)} } }
  after_bad: { kind: emit, needs: [bad], params: { text: Y, counter: ${JSON.stringify(counter)} } }
  good: { kind: emit, needs: [root], params: { text: G, counter: ${JSON.stringify(counter)} } }
`;
  const file = await writeExp(dir, 'b.yaml', yaml);
  const r = await runFile(dir, file, reg, [], { keepGoing: true });
  assert.equal(r.status, 'failed');
  const st = Object.fromEntries(r.record.instances.map((i) => [i.id, i.status]));
  assert.deepEqual(st, { root: 'executed', bad: 'failed', after_bad: 'skipped', good: 'executed' });
  assert.equal(r.failures.length, 1);
  assert.match(r.failures[0].error, /told to fail/);
  assert.ok(r.failures[0].log?.endsWith('bad.log'));

  const dir2 = await tempDir(t);
  const file2 = await writeExp(dir2, 'b.yaml', yaml.replaceAll(JSON.stringify(counter), JSON.stringify(join(dir2, 'c.txt'))));
  const r2 = await runFile(dir2, file2, reg);
  const st2 = Object.fromEntries(r2.record.instances.map((i) => [i.id, i.status]));
  assert.equal(st2.bad, 'failed');
  assert.equal(st2.after_bad, 'skipped');
  // Without keep-going nothing new starts after the failure (good comes after bad in order).
  assert.equal(st2.good, 'skipped');
});

test('-j 2 runs independent stages concurrently', async (t) => {
  const dir = await tempDir(t);
  const marks = join(dir, 'marks.txt');
  const reg = testRegistry();
  const sleeper = (name: string) =>
    `  ${name}:\n    kind: command\n    params:\n      cmd: [sh, -c, 'echo start >> ${marks}; sleep 0.4; echo end >> ${marks}; echo ${name} > "$CA_PIPE_OUT/o"']\n`;
  const file = await writeExp(dir, 'p.yaml', `name: par\nstages:\n${sleeper('x')}${sleeper('y')}`);
  const r = await runFile(dir, file, reg, [], { jobs: 2 });
  assert.equal(r.status, 'succeeded');
  assert.deepEqual((await readFile(marks, 'utf8')).split('\n').filter(Boolean), ['start', 'start', 'end', 'end']);
});

test('an aborted run stops its stages and records the interruption', async (t) => {
  const dir = await tempDir(t);
  const reg = testRegistry();
  const file = await writeExp(
    dir,
    'slow.yaml',
    `name: slow\nstages:\n  s:\n    kind: command\n    params: { cmd: [sleep, '30'] }\n  after:\n    kind: command\n    needs: [s]\n    params: { cmd: ['true'] }\n`,
  );
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('SIGINT received')), 300);
  const t0 = Date.now();
  const r = await runFile(dir, file, reg, [], { signal: ac.signal });
  assert.ok(Date.now() - t0 < 10_000, 'did not wait for the 30 s sleep');
  assert.equal(r.status, 'interrupted');
  // Interrupted, not failed; its dependents were skipped because the run stopped, not for a failure.
  assert.deepEqual(
    r.record.instances.map((i) => i.status),
    ['interrupted', 'skipped'],
  );
  assert.match(r.record.instances[0].error!, /interrupted/);
  assert.equal(r.record.instances[1].error, 'run interrupted');
  assert.deepEqual(r.failures, []);
  assert.equal(r.counts.interrupted, 1);
});

test('an experiment-scope stage sees every variant of its input', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const c = JSON.stringify(counter);
  const file = await writeExp(
    dir,
    'rep.yaml',
    `name: rep
stages:
  a: { kind: emit, params: { text: A, counter: ${c} } }
  b: { kind: emit, needs: [a], params: { text: B, counter: ${c} } }
  report: { kind: emit, needs: [b], scope: experiment, params: { text: R, counter: ${c} } }
sweep:
  b.text: [p, q, r]
`,
  );
  const r = await runFile(dir, file, testRegistry());
  assert.equal(r.status, 'succeeded', JSON.stringify(r.failures));
  assert.deepEqual((await executions(counter)).sort(), ['a', 'b', 'b', 'b', 'report']);
  const rep = r.record.instances.find((i) => i.stage === 'report')!;
  const body = await readFile(join(dir, 'runs', '.store', 'entries', rep.key!, 'out', 'out.txt'), 'utf8');
  // One upstream output per variant (each "A\n<text>\n"), in plan order, then the report's text.
  assert.deepEqual(body.split('\n').filter(Boolean).sort(), ['A', 'A', 'A', 'R', 'p', 'q', 'r']);
});

test('plan analysis: cached vs to-run with reasons, and a changed sweep value is compared with its closest variant', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const reg = testRegistry();
  const file = await writeExp(dir, 'sw.yaml', chain(counter) + 'sweep:\n  c.text: [x, y]\n');
  const store = await Store.open(join(dir, 'runs', '.store'));
  const before = await analysePlan(await planFor(file, reg), store, join(dir, 'runs'));
  assert.deepEqual(
    before.map((r) => [r.stage, r.status]),
    [
      ['a', 'to-run'],
      ['b', 'to-run'],
      ['c', 'to-run'],
      ['c', 'to-run'],
    ],
  );
  assert.deepEqual(before[0].reasons, ['never run']);
  assert.match(before[1].reasons[0], /upstream changed: a/);
  await runFile(dir, file, reg);

  await writeExp(dir, 'sw.yaml', chain(counter) + 'sweep:\n  c.text: [x, z]\n');
  const after = await analysePlan(await planFor(file, reg), store, join(dir, 'runs'));
  assert.deepEqual(
    after.map((r) => r.status),
    ['cached', 'cached', 'cached', 'to-run'],
  );
  const z = after[3];
  assert.match(z.reasons[0], /^new key \(new variant; compared with c@/);
  // x and y are equally close to z; either comparison names the changed param and nothing else.
  assert.equal(z.changes.length, 1);
  assert.match(z.changes[0], /^param text: "[xy]" -> "z"$/);
});
