// Store integrity (issue 12, items 1–4) on a real store on disk through the real CLI: commit never
// writes through a symlink out of the staging dir, a corrupt blob is quarantined and replaced, a
// cache hit whose files changed after commit is quarantined and recomputed, and gc never removes
// a blob an in-flight commit holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, link, mkdir, open, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Store, verifyStore } from '../../engine/store/index.js';
import { gcStore } from '../../engine/maintenance/gc.js';
import { listRuns, runKeys } from '../../engine/run/records.js';
import { cli, executions, tempDir, writeExp } from './helpers.js';

function sh(script: string): string {
  return `[sh, -c, ${JSON.stringify(script)}]`;
}

async function runRecord(
  dir: string,
  exp: string,
): Promise<{ instances: Array<{ id: string; key: string; status: string; error?: string }> }> {
  return JSON.parse(await readFile(join(dir, 'runs', exp, 'latest', 'run.json'), 'utf8'));
}

async function keyOf(dir: string, exp: string, id: string): Promise<string> {
  const inst = (await runRecord(dir, exp)).instances.find((i) => i.id === id);
  assert.ok(inst?.key, `no key for ${id}`);
  return inst.key;
}

/** Flips one byte of a committed (read-only, hardlinked to its blob) file in place. */
async function flipByte(file: string, at = 0): Promise<void> {
  await chmod(file, 0o644);
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0x20;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

async function blobInodes(storeRoot: string): Promise<Set<number>> {
  const inodes = new Set<number>();
  for (const p of await readdir(join(storeRoot, 'objects')).catch(() => [] as string[])) {
    for (const n of await readdir(join(storeRoot, 'objects', p))) inodes.add((await stat(join(storeRoot, 'objects', p, n))).ino);
  }
  return inodes;
}

test('commit refuses a link out of the staging dir, naming it, and leaves the outside files untouched', async (t) => {
  const dir = await tempDir(t);
  const outside = join(dir, 'outside');
  await mkdir(join(outside, 'tree'), { recursive: true });
  await writeFile(join(outside, 'user.txt'), 'the user file\n');
  await writeFile(join(outside, 'tree', 'shared.bin'), 'shared\n');
  await link(join(outside, 'tree', 'shared.bin'), join(outside, 'shared-again.bin')); // nlink 2
  const before = async () =>
    Promise.all(
      [join(outside, 'user.txt'), join(outside, 'tree', 'shared.bin')].map(async (f) => {
        const s = await stat(f);
        return { f, ino: s.ino, mode: s.mode, nlink: s.nlink, text: await readFile(f, 'utf8') };
      }),
    );
  const was = await before();

  for (const [name, target] of [
    ['file', join(outside, 'user.txt')],
    ['dir', join(outside, 'tree')],
  ] as const) {
    await writeExp(
      dir,
      `${name}.yaml`,
      `name: link-${name}\nstages:\n  s:\n    kind: command\n    params:\n      cmd: ${sh(`ln -s ${target} "$CA_PIPE_OUT/res"`)}\n      outs: [res]\n`,
    );
    const r = await cli(['run', `${name}.yaml`, '--quiet'], dir);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const said = r.stdout + r.stderr;
    assert.match(said, /res is a symbolic link to .*outside/);
    assert.ok(said.includes(target), `names the target: ${said}`);
  }
  assert.deepEqual(await before(), was, 'outside files keep their inode, mode, link count and content');
  const inodes = await blobInodes(join(dir, 'runs', '.store'));
  for (const w of was) assert.ok(!inodes.has(w.ino), `${w.f} was hard-linked into objects/`);
});

test('a link inside the staging dir is committed as a plain copy of its target', async (t) => {
  const dir = await tempDir(t);
  await writeExp(
    dir,
    'in.yaml',
    `name: link-in\nstages:\n  s:\n    kind: command\n    params:\n      cmd: ${sh('mkdir "$CA_PIPE_OUT/d"; echo hi > "$CA_PIPE_OUT/d/a.txt"; ln -s d/a.txt "$CA_PIPE_OUT/b.txt"; ln -s d "$CA_PIPE_OUT/e"')}\n`,
  );
  const r = await cli(['run', 'in.yaml', '--quiet'], dir);
  assert.equal(r.code, 0, r.stderr);
  const store = await Store.openExisting(join(dir, 'runs', '.store'));
  const key = await keyOf(dir, 'link-in', 's');
  assert.deepEqual(
    (await store.manifest(key))!.files.map((f) => f.path),
    ['b.txt', 'd/a.txt', 'e/a.txt'],
  );
  assert.equal((await verifyStore(store)).problems.length, 0);
});

test('a corrupt blob is quarantined and replaced when its content is committed again', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  await writeExp(
    dir,
    'one.yaml',
    `name: one\nstages:\n  a:\n    kind: command\n    params: { cmd: ${sh(`echo a >> ${counter}; echo original content > "$CA_PIPE_OUT/o.txt"`)} }\n`,
  );
  assert.equal((await cli(['run', 'one.yaml', '--quiet'], dir)).code, 0);
  const root = join(dir, 'runs', '.store');
  const key = await keyOf(dir, 'one', 'a');
  await flipByte(join(root, 'entries', key, 'out', 'o.txt'));
  await rm(join(root, 'entries', key), { recursive: true, force: true });

  const r = await cli(['run', 'one.yaml', '--quiet'], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await executions(counter), ['a', 'a']);
  const v = await cli(['verify', '--store', root], dir);
  assert.equal(v.code, 0, v.stdout);
  assert.match(v.stdout, /all good/);
  assert.equal(await readFile(join(root, 'entries', key, 'out', 'o.txt'), 'utf8'), 'original content\n');
  const q = await readdir(join(root, 'quarantine', 'objects'));
  assert.equal(q.filter((n) => !n.endsWith('.why')).length, 1, 'the corrupt blob is kept aside');
  // …until gc: quarantine is for a look, not for ever.
  const gc = await cli(['gc', '--force', '--grace', '0'], dir);
  assert.match(gc.stdout, /2 quarantined item\(s\)/);
  assert.deepEqual(await readdir(join(root, 'quarantine', 'objects')), []);
  assert.equal((await cli(['verify', '--store', root], dir)).code, 0);
});

/** a → b: b copies a's file and appends its own param X. */
function pairYaml(counter: string): string {
  return `name: pair
stages:
  a:
    kind: command
    params: { cmd: ${sh(`echo a >> ${counter}; echo 41 > "$CA_PIPE_OUT/evaluation.json"`)} }
  b:
    kind: command
    needs: [a]
    params:
      cmd: ${sh(`echo b >> ${counter}; cat "$CA_PIPE_IN_A/evaluation.json" > "$CA_PIPE_OUT/report.txt"; echo "$X" >> "$CA_PIPE_OUT/report.txt"`)}
      env: { X: one }
`;
}

test('a cache hit edited after commit is quarantined, said once, and recomputed (downstream never reads the edit)', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  await writeExp(dir, 'pair.yaml', pairYaml(counter));
  assert.equal((await cli(['run', 'pair.yaml', '--quiet'], dir)).code, 0);
  const root = join(dir, 'runs', '.store');
  const aKey = await keyOf(dir, 'pair', 'a');
  const f = join(root, 'entries', aKey, 'out', 'evaluation.json');
  await chmod(f, 0o644);
  await writeFile(f, '99\n'); // same size, new bytes: a user "fixing" a number

  const r = await cli(['run', 'pair.yaml', '-s', 'b.env.X=two'], dir);
  assert.equal(r.code, 0, r.stderr);
  const said = r.stdout + r.stderr;
  assert.equal(said.match(/changed after commit/g)?.length, 1, said);
  assert.match(said, /evaluation\.json: modified after commit/);
  assert.deepEqual(await executions(counter), ['a', 'b', 'a', 'b']);
  const bKey = await keyOf(dir, 'pair', 'b');
  assert.equal(await readFile(join(root, 'entries', bKey, 'out', 'report.txt'), 'utf8'), '41\ntwo\n');
  const q = await readdir(join(root, 'quarantine', 'entries'));
  assert.ok(
    q.some((n) => n.startsWith(`${aKey}.`)),
    `quarantined: ${q}`,
  );
  const v = await cli(['verify', '--store', root], dir);
  assert.equal(v.code, 0, v.stdout);
});

test('--verify-hits rehashes hits: an edit that kept size, mtime and inode is found too', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  await writeExp(dir, 'pair.yaml', pairYaml(counter));
  assert.equal((await cli(['run', 'pair.yaml', '--quiet'], dir)).code, 0);
  const aKey = await keyOf(dir, 'pair', 'a');
  const f = join(dir, 'runs', '.store', 'entries', aKey, 'out', 'evaluation.json');
  const st = await stat(f);
  await chmod(f, 0o644);
  const fh = await open(f, 'r+');
  await fh.write('9', 0);
  await fh.close();
  // Back to the recorded (whole-millisecond) mtime; half a millisecond past it, because a Date
  // converted to float seconds can land a nanosecond short and floor to the previous millisecond.
  await utimes(f, st.atime, (Math.floor(st.mtimeMs) + 0.5) / 1000);
  // The cheap check cannot see this edit (by design: it only stats)…
  assert.equal((await cli(['run', 'pair.yaml', '--quiet'], dir)).code, 0);
  assert.deepEqual(await executions(counter), ['a', 'b']);
  // …the full one does.
  const r = await cli(['run', 'pair.yaml', '--verify-hits'], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /evaluation\.json: content does not match its sha256/);
  assert.deepEqual(await executions(counter), ['a', 'b', 'a']);
});

test('gc --force with no grace never removes a blob an in-flight commit deduplicates against', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'runs', '.store');
  // 1200 files: a commit long enough for the gc loop below to meet it many times.
  const make = `i=0; while [ $i -lt 1200 ]; do echo "file $i" > "$CA_PIPE_OUT/f$i.txt"; i=$((i+1)); done`;
  const yaml = (tag: string) =>
    `name: many\nstages:\n  m:\n    kind: command\n    params:\n      cmd: ${sh(make)}\n      env: { TAG: ${tag} }\n`;
  await writeExp(dir, 'many.yaml', yaml('first'));
  assert.equal((await cli(['run', 'many.yaml', '--quiet'], dir)).code, 0);
  const store = await Store.openExisting(root);
  for (let round = 0; round < 2; round++) {
    // Forget the runs: every blob is unreferenced, and the next run (another key, the same bytes)
    // links to those very blobs while gc removes them.
    await rm(join(dir, 'runs', 'many'), { recursive: true, force: true });
    await writeExp(dir, 'many.yaml', yaml(`round${round}`));
    let running = true;
    let gcs = 0;
    const loop = (async () => {
      while (running) {
        // What `ca-pipe gc` protects: every key a run record (the one in progress too) names.
        const referenced = async () => {
          const keys = new Set<string>();
          for (const ref of await listRuns(join(dir, 'runs'))) for (const k of await runKeys(ref.dir)) keys.add(k);
          return keys;
        };
        await gcStore(store, referenced, { force: true, graceMs: 0 });
        gcs++;
      }
    })();
    const r = await cli(['run', 'many.yaml', '--quiet'], dir);
    running = false;
    await loop;
    assert.equal(r.code, 0, `round ${round} after ${gcs} gc passes: ${r.stdout}${r.stderr}`);
    const rep = await verifyStore(store);
    assert.deepEqual(rep.problems, [], `round ${round}`);
    assert.equal(rep.entries, 1, 'the new entry is there, complete');
  }
});
