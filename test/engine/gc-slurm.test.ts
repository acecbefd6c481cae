// gc and Slurm: completion records protect what a job committed before its driver recorded it;
// job files of ended runs go after a grace period. No Slurm needed: the files are written by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './helpers.js';
import { Store } from '../../engine/store/index.js';
import { gcStore } from '../../engine/maintenance/gc.js';
import { RunFiles, cancelMarker } from '../../engine/run/slurm/index.js';

const KEY_RUN = 'a'.repeat(64);
const KEY_SLURM = 'b'.repeat(64);
const KEY_NONE = 'c'.repeat(64);
const HOUR = 3600_000;
const DAY = 24 * HOUR;

async function commit(store: Store, key: string, text: string): Promise<void> {
  const st = await store.newStaging(key);
  await writeFile(join(st.outDir, 'o.txt'), text);
  await store.commit(st);
}

/** Sets mtime and atime of a tree to `ms` ago. */
async function age(path: string, ms: number): Promise<void> {
  const st = await stat(path);
  if (st.isDirectory()) for (const n of await readdir(path)) await age(join(path, n), ms);
  const t = new Date(Date.now() - ms);
  await utimes(path, t, t);
}

test('a key named only by a Slurm completion record survives gc --force', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  for (const [k, text] of [
    [KEY_RUN, 'run'],
    [KEY_SLURM, 'slurm'],
    [KEY_NONE, 'none'],
  ] as const)
    await commit(store, k, text);
  await new RunFiles(store.root, 'r1').writeDone({ instance: 'train@v0', status: 'executed', key: KEY_SLURM, digest: 'd', dir: '/x' });
  const dry = await gcStore(store, new Set([KEY_RUN]));
  assert.deepEqual(dry.entries, [KEY_NONE]);
  assert.equal(dry.slurmKeys, 1);
  assert.equal(dry.keptEntries, 2);
  const real = await gcStore(store, new Set([KEY_RUN]), { force: true });
  assert.deepEqual(real.entries, [KEY_NONE]);
  assert.ok(await store.lookup(KEY_SLURM), 'the job-committed entry is still there');
  assert.equal(await store.lookup(KEY_NONE), undefined);
});

test('a record written between the run-record read and the lock check still protects the entry', async (t) => {
  const store = await Store.open(join(await tempDir(t), 'store'));
  await commit(store, KEY_SLURM, 'slurm');
  const files = new RunFiles(store.root, 'r1');
  // The job's last steps happen while gc is checking locks: write the record, release the lock.
  const isLocked = store.isLocked.bind(store);
  store.isLocked = async (key: string) => {
    if (key === KEY_SLURM) await files.writeDone({ instance: 'i', status: 'executed', key: KEY_SLURM, digest: 'd', dir: '/x' });
    return isLocked(key);
  };
  const r = await gcStore(store, new Set(), { force: true });
  assert.deepEqual(r.entries, []);
  assert.ok(await store.lookup(KEY_SLURM));
});

interface RunSpec {
  runId: string;
  status?: 'running' | 'succeeded' | 'failed' | 'interrupted';
  host?: string;
  idleMs: number;
  cancelled?: boolean;
  /** Write plan.json naming the run's logs dir (else gc must find the run by id). */
  plan?: boolean;
}

async function makeRun(store: Store, runsDir: string, s: RunSpec): Promise<void> {
  const runDir = join(runsDir, 'exp', s.runId);
  const files = new RunFiles(store.root, s.runId);
  if (s.plan) {
    await files.init({
      runId: s.runId,
      experiment: { name: 'exp', file: 'e.yaml', baseDir: '/', resolved: {} },
      variants: [],
      instances: [],
      logsDir: join(runDir, 'logs'),
    });
  }
  await files.writeDone({ instance: 'i', status: 'executed', key: KEY_SLURM, digest: 'd', dir: '/x' });
  await age(files.dir, s.idleMs);
  if (!s.status) return;
  await mkdir(join(runDir, 'slurm'), { recursive: true });
  const ended = s.status === 'running' ? {} : { endedAt: new Date(Date.now() - s.idleMs).toISOString() };
  await writeFile(
    join(runDir, 'run.json'),
    JSON.stringify({
      version: 1,
      runId: s.runId,
      experiment: 'exp',
      status: s.status,
      pid: 1,
      host: s.host ?? 'elsewhere',
      executor: 'slurm',
      instances: [],
      ...ended,
    }),
  );
  if (s.cancelled) await writeFile(cancelMarker(runDir), 'now\n');
}

test('job files of ended Slurm runs go after their grace period; running and recently interrupted ones stay', async (t) => {
  const dir = await tempDir(t);
  const store = await Store.open(join(dir, 'store'));
  const runsDir = join(dir, 'runs');
  const runs: RunSpec[] = [
    { runId: 'ok-old', status: 'succeeded', idleMs: HOUR, plan: true },
    { runId: 'failed-old', status: 'failed', idleMs: HOUR },
    { runId: 'ok-young', status: 'succeeded', idleMs: 60_000, plan: true },
    { runId: 'running-old', status: 'running', idleMs: 30 * DAY, plan: true },
    { runId: 'interrupted-hour', status: 'interrupted', idleMs: HOUR, plan: true },
    { runId: 'interrupted-week', status: 'interrupted', idleMs: 8 * DAY, plan: true },
    { runId: 'cancelled-hour', status: 'interrupted', idleMs: HOUR, cancelled: true },
    { runId: 'orphan-hour', idleMs: HOUR },
    { runId: 'orphan-week', idleMs: 8 * DAY },
  ];
  for (const r of runs) await makeRun(store, runsDir, r);
  const expected = ['cancelled-hour', 'failed-old', 'interrupted-week', 'ok-old', 'orphan-week'];
  const opts = { graceMs: 15 * 60_000, runsDirs: [runsDir] };

  const dry = await gcStore(store, new Set(), opts);
  assert.deepEqual(dry.slurmRuns.map((r) => r.runId).sort(), expected);
  const status = Object.fromEntries(dry.slurmRuns.map((r) => [r.runId, r.status]));
  assert.deepEqual(status, {
    'ok-old': 'succeeded',
    'failed-old': 'failed',
    'interrupted-week': 'interrupted',
    'cancelled-hour': 'cancelled',
    'orphan-week': 'no run record',
  });
  const idle = dry.slurmRuns.find((r) => r.runId === 'ok-old')!.idleMs;
  assert.ok(idle >= HOUR && idle < HOUR + 60_000, `idle ${idle} ms`);
  assert.equal((await readdir(join(store.root, 'slurm'))).length, runs.length, 'a dry run removes nothing');

  const real = await gcStore(store, new Set(), { ...opts, force: true });
  assert.deepEqual(real.slurmRuns.map((r) => r.runId).sort(), expected);
  const left = (await readdir(join(store.root, 'slurm'))).sort();
  assert.deepEqual(
    left,
    runs
      .map((r) => r.runId)
      .filter((id) => !expected.includes(id))
      .sort(),
  );
  // A shorter idle limit lets the hour-old interrupted run and the orphan go too.
  const short = await gcStore(store, new Set(), { ...opts, slurmIdleMs: 30 * 60_000 });
  assert.deepEqual(short.slurmRuns.map((r) => r.runId).sort(), ['interrupted-hour', 'orphan-hour']);
});

test("a fresh write into an ended run's job files restarts its grace period", async (t) => {
  const dir = await tempDir(t);
  const store = await Store.open(join(dir, 'store'));
  const runsDir = join(dir, 'runs');
  await makeRun(store, runsDir, { runId: 'r', status: 'succeeded', idleMs: HOUR, plan: true });
  // Touches only the done record, as a late job would; run.json still says it ended an hour ago.
  await new RunFiles(store.root, 'r').writeDone({ instance: 'late', status: 'cached', key: KEY_RUN });
  const r = await gcStore(store, new Set(), { graceMs: 15 * 60_000, runsDirs: [runsDir] });
  assert.deepEqual(r.slurmRuns, []);
});
