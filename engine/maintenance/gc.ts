// Garbage collection: removes what no run record references. Dry run unless `force`. It reads
// both the store and the run records, so it sits above engine/store and engine/run (which uses
// the store), not inside the store.
import { randomBytes } from 'node:crypto';
import { link, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Store } from '../store/store.js';
import { effectiveStatus, readRun, type RunRecord } from '../run/records.js';
import { RunFiles, type SlurmPlanFile } from '../run/slurm/files.js';
import { cancelMarker } from '../run/slurm/journal.js';
import { parseManifest } from '../store/manifest.js';
import { breakStale, pidAlive, staleOwner } from '../store/lock.js';

export interface GcReport {
  dryRun: boolean;
  keptEntries: number;
  entries: string[];
  objects: string[];
  scratch: string[];
  staging: string[];
  specs: string[];
  /** Stale lock files (owner gone). */
  locks: string[];
  /** Quarantined entries and blobs (found corrupt), older than the grace period. */
  quarantine: string[];
  /** Bytes of removed (or removable) blobs. */
  bytes: number;
  /** Job files (`slurm/<run>/`) of Slurm runs that ended, with why they may go. */
  slurmRuns: SlurmRunVerdict[];
  /** Keys kept alive only by Slurm completion records (their driver has not recorded them yet). */
  slurmKeys: number;
}

export interface SlurmRunVerdict {
  runId: string;
  /** Run status as recorded ("succeeded", "interrupted", ...), or "no run record". */
  status: string;
  /** Milliseconds since the last write to the run's job files (or since the run ended). */
  idleMs: number;
}

export interface GcOptions {
  force?: boolean;
  /** Unreferenced blobs younger than this stay (commits in progress). Default 0. */
  graceMs?: number;
  /**
   * Job files of Slurm runs that finished (succeeded, failed or cancelled) stay this long after
   * their last write. Default: `graceMs`.
   */
  slurmGraceMs?: number;
  /**
   * Job files of Slurm runs that were interrupted (the driver stopped, its jobs may still be
   * running and a restarted driver adopts them from these files), or whose run record cannot be
   * found, stay this long after their last write. Default 7 days.
   */
  slurmIdleMs?: number;
  /** Runs directories to look for a Slurm run's record in when its plan file does not say. */
  runsDirs?: string[];
  /** Names under scratch/ that are not per-key dirs but shared caches, collected by `gcCacheDir`. */
  sharedScratch?: string[];
}

const DAY_MS = 24 * 3600_000;
/** A blob's temporary file younger than this may be a commit in progress. */
const TMP_BLOB_MS = 3600_000;

/**
 * Blobs that commits in progress rely on: the union of the live pin files (store.ts writes one per
 * commit, listing every blob the entry will name, before touching objects/). Pins of processes
 * dead on this host are removed when `clean`; another host's pin counts until a day old.
 */
async function pinnedBlobs(store: Store, clean: boolean): Promise<Set<string>> {
  const shas = new Set<string>();
  const dir = join(store.root, 'pins');
  for (const name of await ls(dir)) {
    const f = join(dir, name);
    let pin: { pid?: number; host?: string; shas?: unknown };
    try {
      pin = JSON.parse(await readFile(f, 'utf8')) as typeof pin;
    } catch {
      continue; // being written: its commit has not touched objects/ yet
    }
    const dead =
      pin.host === hostname()
        ? typeof pin.pid === 'number' && !pidAlive(pin.pid)
        : Date.now() - ((await stat(f).catch(() => undefined))?.mtimeMs ?? 0) > DAY_MS;
    if (dead) {
      if (clean) await rm(f, { force: true });
      continue;
    }
    if (Array.isArray(pin.shas)) for (const s of pin.shas) if (typeof s === 'string') shas.add(s);
  }
  return shas;
}

/**
 * Removes unreferenced blobs without racing a commit that starts using one meanwhile. A commit
 * pins its blobs (pins/) before touching objects/, renames its entry into place, then unpins. So a
 * blob is first moved aside, then the pins and the entries are read again: a blob pinned at any
 * of the reads, or named by an entry that appeared since gc first listed them, is put back. A
 * commit that looks for the object while it is aside stores it again itself (store.ts storeBlob).
 */
async function dropUnpinned(store: Store, blobs: string[], pinnedAtStart: Set<string>, entriesAtStart: Set<string>): Promise<void> {
  const aside = await moveAside(store, blobs, pinnedAtStart);
  await restoreClaimed(store, aside, entriesAtStart);
}

interface AsideBlob {
  p: string;
  tmp: string;
  sha: string;
}

async function moveAside(store: Store, blobs: string[], pinnedAtStart: Set<string>): Promise<AsideBlob[]> {
  const before = await pinnedBlobs(store, true);
  const aside: AsideBlob[] = [];
  for (const p of blobs) {
    const sha = basename(p);
    if (before.has(sha) || pinnedAtStart.has(sha)) continue;
    const tmp = `${p}.tmp.gc.${process.pid}.${randomBytes(3).toString('hex')}`;
    try {
      await rename(p, tmp);
      aside.push({ p, tmp, sha });
    } catch {
      /* gone already */
    }
  }
  return aside;
}

/** Read only once every blob is aside: a commit that pins after this read finds its blob gone and stores it again. */
async function restoreClaimed(store: Store, aside: AsideBlob[], entriesAtStart: Set<string>): Promise<void> {
  const keep = await pinnedBlobs(store, false);
  for (const key of await store.listEntries()) {
    if (entriesAtStart.has(key)) continue;
    const mf = join(store.entryDir(key), 'manifest.json');
    try {
      for (const f of parseManifest(await readFile(mf, 'utf8'), mf).files) keep.add(f.sha256);
    } catch {
      /* removed again meanwhile */
    }
  }
  for (const a of aside) {
    if (keep.has(a.sha)) await link(a.tmp, a.p).catch(() => undefined); // EEXIST: the commit stored it again
    await rm(a.tmp, { force: true });
  }
}

async function ls(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/**
 * `referenced`: every key any run record mentions. Entries, scratch dirs and specs of other keys
 * go, unless their key is locked right now (a run in progress); staging dirs of unlocked keys go;
 * blobs no kept entry lists go. Given as a function, the records are read after the lock checks:
 * a run journals a key before releasing its lock, so an entry found unlocked is in the records
 * read then (a set read before gc started can miss an entry committed meanwhile).
 */
export async function gcStore(
  store: Store,
  references: Set<string> | (() => Promise<Set<string>>),
  opts: GcOptions = {},
): Promise<GcReport> {
  const pinnedAtStart = await pinnedBlobs(store, false);
  const gc = new StoreGc(store, opts);
  const { entriesAtStart, claimed } = await gc.planEntries(references);
  const dropBlobs = await gc.planBlobs();
  if (gc.force) {
    await gc.removeEntries();
    await dropUnpinned(store, dropBlobs, pinnedAtStart, entriesAtStart);
  } else {
    gc.report.objects = gc.report.objects.filter((sha) => !pinnedAtStart.has(sha));
  }
  await gc.sweepScratch(claimed);
  await gc.sweepStaging();
  await gc.sweepSpecs(claimed);
  await gc.sweepQuarantine();
  await gc.sweepLocks();
  gc.report.slurmRuns = await gcSlurmRuns(store, { ...opts, now: gc.now });
  return gc.report;
}

/** One gc pass over a store: fills `report`, removes only when `force`. */
class StoreGc {
  readonly force: boolean;
  // A blob linked in the last few minutes may belong to a commit in progress (its entry not yet
  // renamed into place): it is left for a later gc.
  readonly graceMs: number;
  readonly now = Date.now();
  readonly report: GcReport;
  private readonly lockedCache = new Map<string, boolean>();
  private readonly keepBlobs = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly opts: GcOptions,
  ) {
    this.force = opts.force ?? false;
    this.graceMs = opts.graceMs ?? 0;
    this.report = {
      dryRun: !this.force,
      keptEntries: 0,
      entries: [],
      objects: [],
      scratch: [],
      staging: [],
      specs: [],
      locks: [],
      quarantine: [],
      bytes: 0,
      slurmRuns: [],
      slurmKeys: 0,
    };
  }

  private async locked(key: string): Promise<boolean> {
    if (!this.lockedCache.has(key)) this.lockedCache.set(key, await this.store.isLocked(key));
    return this.lockedCache.get(key)!;
  }

  private async keep(key: string): Promise<void> {
    this.report.keptEntries++;
    const mf = join(this.store.entryDir(key), 'manifest.json');
    try {
      for (const f of parseManifest(await readFile(mf, 'utf8'), mf).files) this.keepBlobs.add(f.sha256);
    } catch {
      /* a damaged entry keeps nothing alive; `verify` reports it */
    }
  }

  /** Sorts entries into kept and `report.entries`; the lock checks come before any record read. */
  async planEntries(
    references: Set<string> | (() => Promise<Set<string>>),
  ): Promise<{ entriesAtStart: Set<string>; claimed: (key: string) => boolean }> {
    const unclaimed: string[] = [];
    const entriesAtStart = new Set(await this.store.listEntries());
    const unlocked: string[] = [];
    for (const key of entriesAtStart) {
      if (await this.locked(key)) await this.keep(key);
      else unlocked.push(key);
    }
    const referenced = typeof references === 'function' ? await references() : references;
    for (const key of unlocked) {
      if (referenced.has(key)) await this.keep(key);
      else unclaimed.push(key);
    }
    // A Slurm job commits, writes its completion record, then releases the key's lock; its driver
    // copies the key into run.json later. Reading the records only now, after the lock checks,
    // closes that window: an entry found unlocked above has its record written already.
    const slurm = await slurmReferences(this.store);
    for (const key of unclaimed) {
      if (slurm.has(key)) {
        this.report.slurmKeys++;
        await this.keep(key);
      } else this.report.entries.push(key);
    }
    return { entriesAtStart, claimed: (key) => referenced.has(key) || slurm.has(key) };
  }

  /**
   * Blobs no kept entry lists, past their grace. Blob ages are read before any entry is removed:
   * unlinking an entry's file changes the blob's ctime (same inode).
   */
  async planBlobs(): Promise<string[]> {
    const { store, now, graceMs, report } = this;
    const dropBlobs: string[] = [];
    for (const prefix of await ls(join(store.root, 'objects'))) {
      for (const name of await ls(join(store.root, 'objects', prefix))) {
        if (this.keepBlobs.has(name)) continue;
        const p = join(store.root, 'objects', prefix, name);
        const st = await stat(p).catch(() => undefined);
        if (!st || now - st.ctimeMs < graceMs) continue;
        // A temporary file is a blob being stored (or one a killed commit left): only old ones go.
        if (name.includes('.tmp.') && now - st.mtimeMs < Math.max(graceMs, TMP_BLOB_MS)) continue;
        report.objects.push(name);
        report.bytes += st.size;
        dropBlobs.push(p);
      }
    }
    return dropBlobs;
  }

  async removeEntries(): Promise<void> {
    for (const key of this.report.entries) await rm(this.store.entryDir(key), { recursive: true, force: true });
  }

  async sweepScratch(claimed: (key: string) => boolean): Promise<void> {
    for (const name of await ls(join(this.store.root, 'scratch'))) {
      if (this.opts.sharedScratch?.includes(name)) continue;
      const key = name.replace(/\.attempt$/, '');
      if (claimed(key) && !(await this.store.lookup(key))) continue; // interrupted work a run may resume
      if (await this.locked(key)) continue;
      this.report.scratch.push(name);
      if (this.force) await rm(join(this.store.root, 'scratch', name), { recursive: true, force: true });
    }
  }

  async sweepStaging(): Promise<void> {
    for (const name of await ls(join(this.store.root, 'staging'))) {
      const key = name.split('.')[0];
      if (await this.locked(key)) continue;
      this.report.staging.push(name);
      if (this.force) await rm(join(this.store.root, 'staging', name), { recursive: true, force: true });
    }
  }

  async sweepSpecs(claimed: (key: string) => boolean): Promise<void> {
    for (const name of await ls(join(this.store.root, 'specs'))) {
      if (!name.endsWith('.json')) continue;
      const key = name.split('.')[0]!; // specs/<key>.json and a split's specs/<key>.part-<i>-of-<n>.json
      if (claimed(key) || (await this.locked(key))) continue;
      this.report.specs.push(name);
      if (this.force) await rm(join(this.store.root, 'specs', name), { force: true });
    }
  }

  /** Corrupt entries and blobs moved aside by runs: kept for a look, not for ever. */
  async sweepQuarantine(): Promise<void> {
    for (const sub of ['entries', 'objects']) {
      const qdir = join(this.store.root, 'quarantine', sub);
      for (const name of await ls(qdir)) {
        const st = await stat(join(qdir, name)).catch(() => undefined);
        if (!st || this.now - st.mtimeMs < this.graceMs) continue;
        this.report.quarantine.push(`${sub}/${name}`);
        if (this.force) await rm(join(qdir, name), { recursive: true, force: true });
      }
    }
  }

  /** Leftovers of broken locks, and locks whose owner died (e.g. killed right after its commit). */
  async sweepLocks(): Promise<void> {
    for (const name of await ls(join(this.store.root, 'locks'))) {
      const p = join(this.store.root, 'locks', name);
      if (name.includes('.lock.broken.')) {
        if (this.force) await rm(p, { force: true });
      } else if (name.endsWith('.lock')) {
        const stale = await staleOwner(p, this.store.timing);
        if (stale && stale !== 'gone') {
          this.report.locks.push(name);
          if (this.force) await breakStale(p, stale);
        }
      }
    }
  }
}

/** Every key named by a completion record under slurm/<run>/done/. */
async function slurmReferences(store: Store): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const runId of await ls(join(store.root, 'slurm'))) {
    for (const r of (await new RunFiles(store.root, runId).readAllDone()).values()) if (typeof r.key === 'string') keys.add(r.key);
  }
  return keys;
}

/** Newest mtime of a directory tree (the dir itself included); 0 when it cannot be read. */
async function lastWrite(dir: string): Promise<number> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return 0;
  let newest = st.mtimeMs;
  if (!st.isDirectory()) return newest;
  for (const name of await ls(dir)) newest = Math.max(newest, await lastWrite(join(dir, name)));
  return newest;
}

/** The record of a Slurm run: next to the logs dir its plan file names, else by id under runsDirs. */
async function slurmRunRecord(files: RunFiles, runsDirs: string[]): Promise<{ record: RunRecord; dir: string } | undefined> {
  const candidates: string[] = [];
  try {
    const plan = JSON.parse(await readFile(files.planFile, 'utf8')) as Partial<SlurmPlanFile>;
    if (typeof plan.logsDir === 'string') candidates.push(dirname(plan.logsDir));
  } catch {
    /* no plan file (yet, or damaged): look the run up by id */
  }
  for (const runsDir of runsDirs) {
    for (const exp of await ls(resolve(runsDir))) if (!exp.startsWith('.')) candidates.push(join(resolve(runsDir), exp, files.runId));
  }
  for (const dir of candidates) {
    const record = await readRun(dir).catch(() => undefined);
    if (record?.runId === files.runId) return { record, dir };
  }
  return undefined;
}

/**
 * Job files of ended Slurm runs: once the driver has settled every instance they only duplicate
 * run.json. A running run keeps them; an interrupted one (jobs may still be running, a restarted
 * driver adopts them) or one without a findable record keeps them until idle for `slurmIdleMs`.
 */
async function gcSlurmRuns(store: Store, opts: GcOptions & { now: number }): Promise<SlurmRunVerdict[]> {
  const out: SlurmRunVerdict[] = [];
  const finishedGrace = opts.slurmGraceMs ?? opts.graceMs ?? 0;
  const idleGrace = opts.slurmIdleMs ?? 7 * DAY_MS;
  for (const runId of await ls(join(store.root, 'slurm'))) {
    const files = new RunFiles(store.root, runId);
    const found = await slurmRunRecord(files, opts.runsDirs ?? []);
    let status = found ? effectiveStatus(found.record) : 'no run record';
    if (status === 'running') continue;
    let last = await lastWrite(files.dir);
    if (found?.record.endedAt) last = Math.max(last, Date.parse(found.record.endedAt) || 0);
    const idleMs = Math.max(0, opts.now - last);
    // The marker `ca-pipe cancel` leaves: its jobs were cancelled.
    const cancelled = found ? !!(await stat(cancelMarker(found.dir)).catch(() => undefined)) : false;
    const finished = status === 'succeeded' || status === 'failed' || cancelled;
    if (cancelled && status === 'interrupted') status = 'cancelled';
    if (idleMs < (finished ? finishedGrace : idleGrace)) continue;
    out.push({ runId, status, idleMs });
    if (opts.force) await rm(files.dir, { recursive: true, force: true });
  }
  return out;
}

export interface CacheFileVerdict {
  file: string;
  bytes: number;
  /** Milliseconds since the file was last written or read (the later of mtime and atime). */
  idleMs: number;
}

export interface CacheGcReport {
  dir: string;
  dryRun: boolean;
  removed: CacheFileVerdict[];
  bytes: number;
  keptFiles: number;
  keptBytes: number;
}

/**
 * Files of a flat cache directory not used for `maxIdleMs`. Only names matching `names` are
 * considered, so a cache dir pointed at the wrong place loses nothing else. "Used" is the later of
 * mtime and atime: the cache's owner renews mtime on every hit (atime is unreliable: relatime,
 * noatime); a fresh atime only makes a file stay longer.
 */
export async function gcCacheDir(
  dir: string,
  opts: { maxIdleMs: number; names: RegExp; force?: boolean; now?: number },
): Promise<CacheGcReport> {
  const now = opts.now ?? Date.now();
  const report: CacheGcReport = { dir, dryRun: !opts.force, removed: [], bytes: 0, keptFiles: 0, keptBytes: 0 };
  for (const name of (await ls(dir)).sort()) {
    if (!opts.names.test(name)) continue;
    const file = join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) continue;
    const idleMs = Math.max(0, now - Math.max(st.mtimeMs, st.atimeMs));
    if (idleMs < opts.maxIdleMs) {
      report.keptFiles++;
      report.keptBytes += st.size;
      continue;
    }
    report.removed.push({ file, bytes: st.size, idleMs });
    report.bytes += st.size;
    if (opts.force) await rm(file, { force: true });
  }
  return report;
}
