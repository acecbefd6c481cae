import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { chmod, link, mkdir, readFile, readdir, stat, utimes, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { gcStore } from '../../engine/maintenance/gc.js';
import { Store, verifyStore, tryAcquire, staleOwner, breakStale, serializeManifest } from '../../engine/store/index.js';
import { tempDir } from './helpers.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const KEY_A = 'a'.repeat(64);
const KEY_B = 'b'.repeat(64);

async function commitFiles(store: Store, key: string, files: Record<string, string>) {
  const st = await store.newStaging(key);
  for (const [p, body] of Object.entries(files)) {
    await mkdir(join(st.outDir, p, '..'), { recursive: true });
    await writeFile(join(st.outDir, p), body);
  }
  return store.commit(st, { stage: 's' });
}

test('commit: manifest lists sorted files with their sha256; digest is the sha256 of the manifest bytes', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  const e = await commitFiles(store, KEY_A, { 'z.txt': 'zed', 'd/a.txt': 'alpha' });
  const text = await readFile(join(store.entryDir(KEY_A), 'manifest.json'), 'utf8');
  const expected = `{"version":1,"files":[{"path":"d/a.txt","sha256":"${sha('alpha')}","size":5},{"path":"z.txt","sha256":"${sha('zed')}","size":3}]}\n`;
  assert.equal(text, expected);
  assert.equal(e.digest, sha(expected));
  assert.equal(await readFile(join(e.dir, 'd/a.txt'), 'utf8'), 'alpha');
  assert.deepEqual(await store.lookup(KEY_A), e);
  assert.equal(await store.lookup(KEY_B), undefined);
  // Nothing left in staging after a commit.
  assert.deepEqual(await readdir(join(store.root, 'staging')), []);
});

test('identical content in two entries is one blob (hardlinked or copied) and the digests match', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  const a = await commitFiles(store, KEY_A, { 'x.bin': 'same bytes' });
  const b = await commitFiles(store, KEY_B, { 'x.bin': 'same bytes' });
  assert.equal(a.digest, b.digest);
  const blobs = await readdir(join(store.root, 'objects', sha('same bytes').slice(0, 2)));
  assert.deepEqual(blobs, [sha('same bytes')]);
  const ia = await stat(join(a.dir, 'x.bin'));
  const ib = await stat(join(b.dir, 'x.bin'));
  assert.equal(ia.ino, ib.ino, 'both entries point at the one blob');
  assert.equal(ia.mode & 0o222, 0, 'committed files are read-only');
});

test('committing a key that another process already committed keeps the first entry', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  const first = await commitFiles(store, KEY_A, { 'o.txt': 'one' });
  const second = await commitFiles(store, KEY_A, { 'o.txt': 'two' });
  assert.equal(second.digest, first.digest);
  assert.equal(await readFile(join(second.dir, 'o.txt'), 'utf8'), 'one');
  assert.deepEqual(await readdir(join(store.root, 'staging')), []);
});

test('an uncommitted staging dir (crash before rename) is not an entry', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  const st = await store.newStaging(KEY_A);
  await writeFile(join(st.outDir, 'half.txt'), 'partial');
  assert.equal(await store.lookup(KEY_A), undefined);
  assert.deepEqual(await store.listEntries(), []);
});

test('manifest serialisation does not depend on file order', () => {
  const f1 = { path: 'b', sha256: sha('b'), size: 1 };
  const f2 = { path: 'a', sha256: sha('a'), size: 1 };
  assert.equal(serializeManifest({ version: 1, files: [f1, f2] }), serializeManifest({ version: 1, files: [f2, f1] }));
});

test('locks: O_EXCL, release, stale by dead pid, stale by old heartbeat, one breaker wins', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'k.lock');
  const timing = { heartbeatMs: 50, staleMs: 1000 };
  const l1 = await tryAcquire(file, timing);
  assert.ok(l1);
  assert.equal(await tryAcquire(file, timing), undefined, 'second acquire fails while held');
  assert.equal(await staleOwner(file, timing), undefined, 'a live lock is not stale');
  await l1.release();
  const l2 = await tryAcquire(file, timing);
  assert.ok(l2, 'free again after release');
  await l2.release();

  // A lock owned by a pid that no longer exists on this host.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  const owner = { pid: deadPid, host: hostname(), startedAt: new Date().toISOString(), token: 'dead0' };
  await writeFile(file, JSON.stringify(owner));
  const judged = await staleOwner(file, timing);
  assert.ok(judged && judged !== 'gone' && judged.token === 'dead0');

  // Two breakers judged the same stale lock: exactly one of them moves it away.
  const results = await Promise.all([breakStale(file, judged), breakStale(file, judged)]);
  assert.deepEqual(results.sort(), [true, true], 'both see the path free afterwards');
  const leftovers = (await readdir(dir)).filter((n) => n.includes('.broken.'));
  assert.deepEqual(leftovers, []);
  const l3 = await tryAcquire(file, timing);
  assert.ok(l3);

  // A breaker holding an outdated judgement must not destroy a fresh lock.
  assert.equal(await breakStale(file, owner), false);
  assert.equal(JSON.parse(await readFile(file, 'utf8')).token, l3.owner.token, 'fresh lock put back');
  await l3.release();

  // On this host a live owner with a late heartbeat (busy event loop) keeps its lock.
  await writeFile(file, JSON.stringify({ pid: process.ppid, host: hostname(), startedAt: '', token: 'busy' }));
  const late = new Date(Date.now() - 60_000);
  await utimes(file, late, late);
  assert.equal(await staleOwner(file, timing), undefined);

  // Another host's lock with an old heartbeat is stale; with a fresh one it is not.
  await writeFile(file, JSON.stringify({ pid: 1, host: 'elsewhere', startedAt: '', token: 'remote' }));
  assert.equal(await staleOwner(file, timing), undefined);
  const old = new Date(Date.now() - 5000);
  await utimes(file, old, old);
  const s = await staleOwner(file, timing);
  assert.ok(s && s !== 'gone' && s.token === 'remote');
});

test('a held lock heartbeats (mtime advances)', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'h.lock');
  const lock = await tryAcquire(file, { heartbeatMs: 30, staleMs: 1000 });
  assert.ok(lock);
  const old = new Date(Date.now() - 10_000);
  await utimes(file, old, old);
  await new Promise((r) => setTimeout(r, 150));
  assert.ok(Date.now() - (await stat(file)).mtimeMs < 2000);
  await lock.release();
});

test('acquire waits for a held key and returns the entry its holder commits', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  const got = await store.acquire(KEY_A);
  assert.ok(got.lock);
  let waited = false;
  const waiter = store.acquire(KEY_A, { pollMs: 20, onWait: () => (waited = true) });
  await new Promise((r) => setTimeout(r, 80));
  const st = await store.newStaging(KEY_A);
  await writeFile(join(st.outDir, 'r.txt'), 'result');
  const e = await store.commit(st);
  await got.lock.release();
  const res = await waiter;
  assert.ok(waited);
  assert.equal(res.entry?.digest, e.digest);
});

test('gc keeps referenced entries and their blobs, removes the rest only with force', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  await commitFiles(store, KEY_A, { 'keep.txt': 'keep me', 'shared.txt': 'shared' });
  await commitFiles(store, KEY_B, { 'drop.txt': 'drop me', 'shared.txt': 'shared' });
  const dry = await gcStore(store, new Set([KEY_A]));
  assert.deepEqual(dry.entries, [KEY_B]);
  assert.deepEqual(dry.objects, [sha('drop me')]);
  assert.ok(await store.lookup(KEY_B), 'dry run deletes nothing');
  assert.deepEqual((await gcStore(store, new Set([KEY_A]), { graceMs: 60_000 })).objects, [], 'young blobs are spared');
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  await writeFile(store.lockFile(KEY_B), JSON.stringify({ pid: dead, host: hostname(), startedAt: '', token: 't' }));
  const real = await gcStore(store, new Set([KEY_A]), { force: true });
  assert.deepEqual(real.locks, [`${KEY_B}.lock`]);
  await assert.rejects(stat(store.lockFile(KEY_B)), 'stale lock removed');
  assert.equal(real.dryRun, false);
  assert.equal(await store.lookup(KEY_B), undefined);
  const a = await store.lookup(KEY_A);
  assert.ok(a);
  assert.equal(await readFile(join(a.dir, 'shared.txt'), 'utf8'), 'shared');
  assert.equal((await verifyStore(store)).problems.length, 0);
});

test('verify detects a flipped byte', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  const e = await commitFiles(store, KEY_A, { 'data.bin': 'abcdefgh' });
  assert.deepEqual((await verifyStore(store)).problems, []);
  const p = join(e.dir, 'data.bin');
  await chmod(p, 0o644);
  const fh = await open(p, 'r+');
  await fh.write(Buffer.from(['d'.charCodeAt(0) ^ 0x01]), 0, 1, 3);
  await fh.close();
  const r = await verifyStore(store);
  assert.ok(
    r.problems.some((x) => x.where === 'object' && x.id === sha('abcdefgh')),
    'blob flagged',
  );
  assert.ok(
    r.problems.some((x) => x.where === 'entry' && x.id === KEY_A && x.path === 'data.bin'),
    'entry flagged',
  );
});

test('an output hardlinked to an outside file is copied into the store, leaving that file alone', async (t) => {
  const dir = await tempDir(t);
  const store = await Store.open(join(dir, 'store'));
  const outside = join(dir, 'user-data.txt');
  await writeFile(outside, 'user bytes', { mode: 0o644 });
  const st = await store.newStaging(KEY_A);
  await link(outside, join(st.outDir, 'data.txt'));
  const e = await store.commit(st);
  const o = await stat(outside);
  assert.equal(o.mode & 0o777, 0o644, 'outside file keeps its permissions');
  assert.notEqual((await stat(join(e.dir, 'data.txt'))).ino, o.ino, 'the store holds its own copy');
  assert.equal(await readFile(join(e.dir, 'data.txt'), 'utf8'), 'user bytes');
});
