// Stores and run directories we may not write: a read-only store still serves cache hits, and
// what cannot be done is said plainly, with the option that fixes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Store, writeDenied } from '../../engine/store/index.js';
import { runPlan } from '../../engine/run/index.js';
import { executions, planFor, runFile, tempDir, testRegistry, writeExp } from './helpers.js';

function chain(counter: string, c = 'C'): string {
  const k = JSON.stringify(counter);
  return `name: ro\nstages:\n  a: { kind: emit, params: { text: A, counter: ${k} } }\n  b: { kind: emit, needs: [a], params: { text: B, counter: ${k} } }\n  c: { kind: emit, needs: [b], params: { text: ${c}, counter: ${k} } }\n`;
}

async function listTree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

test('a read-only store serves a fully cached rerun and refuses, clearly, to compute', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const reg = testRegistry();
  const file = await writeExp(dir, 'ro.yaml', chain(counter));
  assert.equal((await runFile(dir, file, reg)).status, 'succeeded');
  const root = join(dir, 'runs', '.store');
  const before = await listTree(root);

  const ro = Store.openReadOnly(root);
  const cached = await runPlan(await planFor(file, reg), { store: ro, runsDir: join(dir, 'other-runs'), registry: reg });
  assert.equal(cached.status, 'succeeded');
  assert.deepEqual(
    cached.record.instances.map((i) => i.status),
    ['cached', 'cached', 'cached'],
  );

  await writeExp(dir, 'ro.yaml', chain(counter, 'C2'));
  const changed = await runPlan(await planFor(file, reg), { store: ro, runsDir: join(dir, 'other-runs'), registry: reg });
  assert.equal(changed.status, 'failed');
  assert.deepEqual(
    changed.record.instances.map((i) => i.status),
    ['cached', 'cached', 'failed'],
  );
  assert.match(
    changed.failures[0]!.error,
    /not in the store, and the store .* cannot record new results \(opened read-only\): run with --store DIR/,
  );
  assert.deepEqual(await executions(counter), ['a', 'b', 'c'], 'nothing executed against the read-only store');
  assert.deepEqual(await listTree(root), before, 'the store was not written');
});

/** A directory this process cannot create entries in, if the machine has one (root can write most). */
async function unwritableParent(): Promise<string | undefined> {
  for (const parent of ['/sys', '/proc']) {
    const probe = join(parent, `ca-pipe-probe-${process.pid}`);
    try {
      await mkdir(probe);
      await rmdir(probe);
    } catch (e) {
      if (writeDenied(e)) return parent;
    }
  }
  return undefined;
}

test('a store or runs dir that cannot be created is an error naming the option to change', async (t) => {
  const parent = await unwritableParent();
  if (!parent) return t.skip('no unwritable directory on this machine');
  await assert.rejects(
    Store.open(join(parent, 'store')),
    (e: Error) => e.message.startsWith(`cannot create the store at ${join(parent, 'store')} (E`) && e.message.includes('--store DIR'),
  );
  const dir = await tempDir(t);
  const reg = testRegistry();
  const file = await writeExp(dir, 'ro.yaml', chain(join(dir, 'count.txt')));
  const store = await Store.open(join(dir, 'store'));
  await assert.rejects(
    runPlan(await planFor(file, reg), { store, runsDir: join(parent, 'runs'), registry: reg }),
    (e: Error) => e.message.startsWith(`cannot write run records under ${join(parent, 'runs')}`) && e.message.includes('--runs DIR'),
  );
});
