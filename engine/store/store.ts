// The content-addressed store. Layout under the root:
//   objects/<sha[0:2]>/<sha>    file blobs, read-only, deduplicated across entries
//   entries/<key>/manifest.json canonical manifest (its sha256 is the output digest)
//   entries/<key>/meta.json     who produced it (stage, kind, key material, time)
//   entries/<key>/out/          the materialised output (hardlinks to objects, or copies)
//   scratch/<key>/              persistent per-key working dir (checkpoints), survives crashes
//   staging/<key>.<pid>.<rand>/ one attempt's outputs before commit
//   locks/<key>.lock            per-key lock (see lock.ts)
//   specs/<key>.json            serialized instance specs for child-process executors
//   roots/<hash>.json           runs directories using this store (gc reads all their records)
//   entries/<key>/stat.json     size, mtime and inode of each out/ file at commit (cheap hit check)
//   pins/<key>.<pid>.<rand>     blobs a commit in progress relies on (gc leaves them alone)
//   quarantine/{entries,objects}/ entries and blobs found corrupt, moved aside (never reused)
// An entry becomes visible only by the atomic rename of a complete staging dir, so a crash can
// never leave something that looks committed but is half written.
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, link, lstat, mkdir, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sha256Bytes, sha256File } from './hash.js';
import { type Manifest, listFiles, parseManifest, serializeManifest } from './manifest.js';
import { materialiseLinks } from './links.js';
import { cheapCheck, fullCheck, parseStatRecord, recordStats } from './hit-check.js';
import {
  DEFAULT_LOCK_TIMING,
  type HeldLock,
  type LockOwner,
  type LockTiming,
  breakStale,
  pidAlive,
  readOwner,
  staleOwner,
  tryAcquire,
} from './lock.js';

const COMMIT_CONCURRENCY = 16;

/** Runs `fn` over `items` with at most `limit` calls pending; the first rejection wins. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export interface EntryMeta {
  key: string;
  digest: string;
  committedAt: string;
  stage?: string;
  instance?: string;
  kind?: string;
  material?: unknown;
  /** How the entry was produced (backend, machine, executor): shown for later cache hits. */
  provenance?: Record<string, unknown>;
  /** Wall-clock seconds the producing execution took. */
  seconds?: number;
}

export interface Entry {
  key: string;
  /** sha256 of the canonical manifest. */
  digest: string;
  /** Read-only materialised output directory. */
  dir: string;
}

export interface Staging {
  key: string;
  root: string;
  /** Empty directory the stage writes into. */
  outDir: string;
}

export type AcquireResult = { entry: Entry; lock?: undefined } | { lock: HeldLock; entry?: undefined };

const KEY_RE = /^[A-Za-z0-9._-]+$/;

export function checkKey(key: string): string {
  if (!KEY_RE.test(key) || key.startsWith('.')) throw new Error(`invalid store key "${key}"`);
  return key;
}

/** "EROFS: read-only file system" for errors that mean "not allowed to write here", else undefined. */
export function writeDenied(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const words: Record<string, string> = { EROFS: 'read-only file system', EACCES: 'permission denied', EPERM: 'operation not permitted' };
  return code && words[code] ? `${code}: ${words[code]}` : undefined;
}

/** The nearest existing ancestor of `p` (itself included) when it is not a directory. */
export async function blockingFile(p: string): Promise<string | undefined> {
  for (let d = resolve(p); ; d = dirname(d)) {
    const st = await stat(d).catch(() => undefined);
    if (st) return st.isDirectory() ? undefined : d;
    if (dirname(d) === d) return undefined;
  }
}

/** The store's location cannot be used (a file, not writable): a bad input, found before any work. */
export class StoreLocationError extends Error {
  override name = 'StoreLocationError';
}

export class Store {
  readonly root: string;
  readonly timing: LockTiming;
  /**
   * Why this store cannot be written (e.g. "EROFS: read-only file system"), when it cannot: it
   * then serves cache hits but cannot record new results.
   */
  readOnly: string | undefined;

  private constructor(root: string, timing: LockTiming) {
    this.root = resolve(root);
    this.timing = timing;
  }

  /**
   * Opens (creating if needed) a writable store. An existing store on a filesystem we may not
   * write (a shared cache mounted read-only) opens read-only; a store that cannot be created is a
   * clear error naming the way out.
   */
  static async open(root: string, timing: LockTiming = DEFAULT_LOCK_TIMING): Promise<Store> {
    const s = new Store(root, timing);
    try {
      for (const d of ['objects', 'entries', 'scratch', 'staging', 'locks', 'specs']) await mkdir(join(s.root, d), { recursive: true });
      // mkdir of existing dirs succeeds even on a read-only filesystem: probe with a real write.
      const probe = join(s.root, 'locks', `.probe.${process.pid}.${randomBytes(3).toString('hex')}`);
      await writeFile(probe, '');
      await unlink(probe);
    } catch (e) {
      const why = writeDenied(e);
      if (!why) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR' || code === 'EEXIST') {
          throw new StoreLocationError(
            `cannot use ${s.root} as the store: ${(await blockingFile(s.root)) ?? s.root} is a file, not a directory (${code}): choose a directory with --store DIR or \`store:\` in the experiment file`,
          );
        }
        throw e;
      }
      if ((await stat(join(s.root, 'entries')).catch(() => undefined))?.isDirectory()) return Store.openReadOnly(root, timing, why);
      throw new StoreLocationError(
        `cannot create the store at ${s.root} (${why}): choose a writable directory with --store DIR or \`store:\` in the experiment file`,
      );
    }
    return s;
  }

  /** An existing store used without writing to it: lookups only, new results cannot be committed. */
  static openReadOnly(root: string, timing: LockTiming = DEFAULT_LOCK_TIMING, why = 'opened read-only'): Store {
    const s = new Store(root, timing);
    s.readOnly = why;
    return s;
  }

  /** A handle that creates nothing: lookups on a missing store find nothing (for `plan`, `why`). */
  static at(root: string, timing: LockTiming = DEFAULT_LOCK_TIMING): Store {
    return new Store(root, timing);
  }

  /** Opens a store that must already exist (for gc/verify: a typo must not look like an empty store). */
  static async openExisting(root: string, timing: LockTiming = DEFAULT_LOCK_TIMING): Promise<Store> {
    const s = new Store(root, timing);
    const st = await stat(join(s.root, 'entries')).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`no ca-pipe store at ${s.root} (choose one with --store DIR)`);
    return Store.open(root, timing);
  }

  objectPath(sha: string): string {
    return join(this.root, 'objects', sha.slice(0, 2), sha);
  }
  entryDir(key: string): string {
    return join(this.root, 'entries', checkKey(key));
  }
  lockFile(key: string): string {
    return join(this.root, 'locks', `${checkKey(key)}.lock`);
  }
  specFile(key: string): string {
    return join(this.root, 'specs', `${checkKey(key)}.json`);
  }
  scratchPath(key: string): string {
    return join(this.root, 'scratch', checkKey(key));
  }

  /** The persistent scratch dir of a key (created on demand). */
  async scratchDir(key: string): Promise<string> {
    const d = this.scratchPath(key);
    await mkdir(d, { recursive: true });
    return d;
  }

  /** Number of attempts already started for a key (interrupted or failed ones included). */
  async nextAttempt(key: string): Promise<number> {
    const f = join(this.root, 'scratch', `${checkKey(key)}.attempt`);
    let n = 0;
    try {
      n = Number((await readFile(f, 'utf8')).trim()) || 0;
    } catch {
      /* first attempt */
    }
    await writeFile(f, `${n + 1}\n`);
    return n + 1;
  }

  /** The committed entry for a key, if any. */
  async lookup(key: string): Promise<Entry | undefined> {
    const dir = this.entryDir(key);
    let text: string;
    try {
      text = await readFile(join(dir, 'manifest.json'), 'utf8');
    } catch {
      return undefined;
    }
    return { key, digest: sha256Bytes(text), dir: join(dir, 'out') };
  }

  async manifest(key: string): Promise<Manifest | undefined> {
    const f = join(this.entryDir(key), 'manifest.json');
    try {
      return parseManifest(await readFile(f, 'utf8'), f);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async meta(key: string): Promise<EntryMeta | undefined> {
    try {
      return JSON.parse(await readFile(join(this.entryDir(key), 'meta.json'), 'utf8')) as EntryMeta;
    } catch {
      return undefined;
    }
  }

  async listEntries(): Promise<string[]> {
    return (await readdir(join(this.root, 'entries'))).filter((k) => KEY_RE.test(k) && !k.startsWith('.')).sort();
  }

  /**
   * Returns the committed entry, or the key's lock. While another process holds the lock this
   * waits (polling) and then usually finds the entry that process committed; stale locks are broken.
   */
  async acquire(
    key: string,
    opts: { signal?: AbortSignal; pollMs?: number; onWait?: (owner: LockOwner | undefined) => void } = {},
  ): Promise<AcquireResult> {
    const lockFile = this.lockFile(key);
    let announced = false;
    for (;;) {
      opts.signal?.throwIfAborted();
      const entry = await this.lookup(key);
      if (entry) return { entry };
      const lock = await tryAcquire(lockFile, this.timing);
      if (lock) {
        // The holder before us may have committed between our lookup and our acquire.
        const late = await this.lookup(key);
        if (late) {
          await lock.release();
          return { entry: late };
        }
        return { lock };
      }
      const stale = await staleOwner(lockFile, this.timing);
      if (stale === 'gone') continue;
      if (stale) {
        await breakStale(lockFile, stale);
        continue;
      }
      if (!announced) {
        announced = true;
        opts.onWait?.(await readOwner(lockFile));
      }
      await sleep(opts.pollMs ?? 200, undefined, { signal: opts.signal });
    }
  }

  async newStaging(key: string): Promise<Staging> {
    await this.removeOrphanStaging(key);
    const root = join(this.root, 'staging', `${checkKey(key)}.${process.pid}.${randomBytes(4).toString('hex')}`);
    const outDir = join(root, 'out');
    await mkdir(outDir, { recursive: true });
    return { key, root, outDir };
  }

  /**
   * Staging dirs of this key left by processes that died (kill -9) before committing: called by the
   * lock holder, so no live process on this host can be writing them. Names are <key>.<pid>.<rand>;
   * a dir of a pid alive here (perhaps another host's on a shared filesystem) is left to gc.
   */
  async removeOrphanStaging(key: string): Promise<string[]> {
    const removed: string[] = [];
    const prefix = `${checkKey(key)}.`;
    for (const name of await readdir(join(this.root, 'staging')).catch(() => [] as string[])) {
      if (!name.startsWith(prefix)) continue;
      const pid = Number(name.slice(prefix.length).split('.')[0]);
      if (!Number.isInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
      await rm(join(this.root, 'staging', name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }

  async discard(staging: Staging): Promise<void> {
    await rm(staging.root, { recursive: true, force: true });
  }

  /**
   * Puts one file's content into objects/ and makes the output file a link to that object. An
   * object already there is trusted only once its bytes hash to its name: a corrupt one (a byte
   * flipped through an entry's hardlink) is quarantined and replaced by ours.
   */
  private async storeBlob(abs: string, sha: string): Promise<void> {
    // gc may move an unpinned-looking object aside for a moment (see gc.ts): a step that finds
    // the object gone starts over, creating it from our file if it stays gone.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.storeBlobOnce(abs, sha);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw e;
      }
    }
  }

  private async storeBlobOnce(abs: string, sha: string): Promise<void> {
    const obj = this.objectPath(sha);
    await mkdir(join(this.root, 'objects', sha.slice(0, 2)), { recursive: true });
    const st = await lstat(abs);
    if (!st.isFile()) throw new Error(`commit: ${abs} is not a regular file any more`);
    const ost0 = await stat(obj).catch(() => undefined);
    let haveObject = !!ost0;
    if (ost0 && !(ost0.ino === st.ino && ost0.dev === st.dev)) {
      const bad =
        ost0.size !== st.size
          ? `size ${ost0.size}, expected ${st.size}`
          : (await sha256File(obj, ost0.size).catch(() => sha)) !== sha
            ? 'content does not match its name'
            : undefined;
      if (bad) {
        await this.quarantineObject(sha, bad);
        haveObject = false;
      }
    }
    if (!haveObject) {
      // A file with other links (e.g. a hardlinked user file) is copied so chmod does not touch it.
      const tmp = `${obj}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
      const linked =
        st.nlink === 1 &&
        (await link(abs, tmp).then(
          () => true,
          () => false,
        ));
      if (!linked) await copyFile(abs, tmp); // no hardlinks here, or a file shared with the outside
      await chmod(tmp, 0o444);
      await rename(tmp, obj); // same content under the same name: a concurrent writer is harmless
    }
    // Replace the staging file by a link to the object (dedup), unless it already is that inode.
    const ost = await stat(obj);
    if (ost.ino === st.ino && ost.dev === st.dev) return;
    const tmp = `${abs}.ca-pipe-link`;
    try {
      await link(obj, tmp);
    } catch {
      await copyFile(obj, tmp);
      await chmod(tmp, 0o444);
    }
    await rename(tmp, abs);
  }

  /** Moves a corrupt blob out of objects/ (kept for inspection under quarantine/objects/). */
  async quarantineObject(sha: string, why: string): Promise<string | undefined> {
    const dir = join(this.root, 'quarantine', 'objects');
    await mkdir(dir, { recursive: true });
    const dest = join(dir, `${sha}.${Date.now()}.${randomBytes(3).toString('hex')}`);
    try {
      await rename(this.objectPath(sha), dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // another process moved it first
      throw e;
    }
    await writeFile(`${dest}.why`, `${why}\n`).catch(() => undefined);
    return dest;
  }

  /**
   * Moves a committed entry aside (quarantine/entries/) so that the key is recomputed; its blobs
   * are left to the next commit of the same content, which checks them (storeBlob), and to gc.
   */
  async quarantineEntry(key: string, why: string): Promise<string | undefined> {
    const dir = join(this.root, 'quarantine', 'entries');
    await mkdir(dir, { recursive: true });
    const dest = join(dir, `${checkKey(key)}.${Date.now()}.${randomBytes(3).toString('hex')}`);
    try {
      await rename(this.entryDir(key), dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      throw e;
    }
    await writeFile(join(dest, 'quarantined.txt'), `${why}\n`).catch(() => undefined);
    return dest;
  }

  /**
   * The committed entry for a key after checking it is still what was committed: `cheap` compares
   * each file's size, mtime and inode with the values recorded at commit, `full` rehashes every
   * file. A damaged entry is quarantined and reported as `damaged` (the caller recomputes it).
   * Entries committed before stat.json existed pass the cheap check unexamined.
   */
  async checkedLookup(
    key: string,
    mode: 'cheap' | 'full' = 'cheap',
  ): Promise<{ entry?: Entry; damaged?: { why: string; movedTo?: string } }> {
    const dir = this.entryDir(key);
    const mf = join(dir, 'manifest.json');
    let text: string;
    try {
      text = await readFile(mf, 'utf8');
    } catch {
      return {};
    }
    const entry: Entry = { key, digest: sha256Bytes(text), dir: join(dir, 'out') };
    let why: string | undefined;
    if (mode === 'full') {
      try {
        why = await fullCheck(entry.dir, parseManifest(text, mf));
      } catch (e) {
        why = (e as Error).message;
      }
    } else {
      // The manifest's paths are in stat.json too, with the digest they belong to: no need to
      // parse the manifest itself (a megabyte for a dataset).
      const record = await readFile(join(dir, 'stat.json'), 'utf8').then(parseStatRecord, () => undefined);
      if (record) why = cheapCheck(entry.dir, entry.digest, record);
    }
    if (!why) return { entry };
    if (this.readOnly) return { damaged: { why } };
    return { damaged: { why, movedTo: await this.quarantineEntry(key, why) } };
  }

  /**
   * Hashes the staging outputs into objects, writes the manifest, checks it against the files and
   * renames the staging dir into entries/<key>. If another process committed the key first, its
   * entry wins (same key ⇒ same computation) and ours is discarded.
   */
  async commit(staging: Staging, meta: Omit<EntryMeta, 'key' | 'digest' | 'committedAt'> = {}): Promise<Entry> {
    await materialiseLinks(staging.outDir);
    const files = await listFiles(staging.outDir);
    const manifest: Manifest = { version: 1, files: new Array(files.length) };
    // Outputs of thousands of small files (a synthetic dataset) spend their time waiting on
    // syscalls: keep several in flight. Concurrent writers of one blob are safe (see storeBlob).
    await forEachLimit(files, COMMIT_CONCURRENCY, async (f, i) => {
      manifest.files[i] = { path: f.rel, sha256: await sha256File(f.abs, f.size), size: f.size };
    });
    // Pinned before any object is touched: gc leaves these blobs alone until the entry is in place.
    const pin = await this.pin(
      staging.key,
      manifest.files.map((f) => f.sha256),
    );
    try {
      await forEachLimit(files, COMMIT_CONCURRENCY, (f, i) => this.storeBlob(f.abs, manifest.files[i]!.sha256));
      // Check what will be committed: every file present with its size and its blob stored. A blob
      // removed meanwhile (a gc that judged it before our pin) is stored again from our file.
      await forEachLimit(manifest.files, COMMIT_CONCURRENCY, async (f, i) => {
        const st = await stat(files[i]!.abs);
        let ost = await stat(this.objectPath(f.sha256)).catch(() => undefined);
        if (!ost) {
          await this.storeBlob(files[i]!.abs, f.sha256);
          ost = await stat(this.objectPath(f.sha256));
        }
        if (st.size !== f.size || ost.size !== f.size) throw new Error(`commit of ${staging.key}: ${f.path} changed while being committed`);
      });
      const text = serializeManifest(manifest);
      const digest = sha256Bytes(text);
      await writeFile(join(staging.root, 'manifest.json'), text);
      await writeFile(join(staging.root, 'stat.json'), JSON.stringify(recordStats(staging.outDir, manifest, digest)) + '\n');
      const full: EntryMeta = { key: staging.key, digest, committedAt: new Date().toISOString(), ...meta };
      await writeFile(join(staging.root, 'meta.json'), JSON.stringify(full, null, 2) + '\n');
      const dest = this.entryDir(staging.key);
      try {
        await rename(staging.root, dest);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR') throw e;
        await this.discard(staging);
        const existing = await this.lookup(staging.key);
        if (!existing) throw e;
        return existing;
      }
      // The scratch dir served its purpose once the outputs are committed.
      await rm(this.scratchPath(staging.key), { recursive: true, force: true });
      await unlink(join(this.root, 'scratch', `${staging.key}.attempt`)).catch(() => undefined);
      return { key: staging.key, digest, dir: join(dest, 'out') };
    } finally {
      await unlink(pin).catch(() => undefined);
    }
  }

  /** Writes the pin file of a commit in progress (see gc.ts: pinnedBlobs). */
  private async pin(key: string, shas: string[]): Promise<string> {
    const dir = join(this.root, 'pins');
    await mkdir(dir, { recursive: true });
    const f = join(dir, `${checkKey(key)}.${process.pid}.${randomBytes(4).toString('hex')}`);
    await writeFile(f, JSON.stringify({ pid: process.pid, host: hostname(), shas }) + '\n');
    return f;
  }

  /**
   * Remembers a runs directory that uses this store, so that `gc` (from any project sharing the
   * store) also honours the run records kept there.
   */
  async registerRunsDir(runsDir: string): Promise<void> {
    if (this.readOnly) return; // nobody can gc a store nobody can write
    const abs = resolve(runsDir);
    const dir = join(this.root, 'roots');
    await mkdir(dir, { recursive: true });
    const f = join(dir, `${sha256Bytes(abs).slice(0, 32)}.json`);
    if (await stat(f).catch(() => undefined)) return;
    const tmp = `${f}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ path: abs }) + '\n');
    await rename(tmp, f);
  }

  /** Runs directories registered with registerRunsDir. */
  async runsDirs(): Promise<string[]> {
    const dir = join(this.root, 'roots');
    const out: string[] = [];
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      try {
        const v = JSON.parse(await readFile(join(dir, name), 'utf8')) as { path?: unknown };
        if (typeof v.path === 'string') out.push(v.path);
      } catch {
        /* a torn file from a killed writer: ignored */
      }
    }
    return out.sort();
  }

  /** Whether a key's lock is currently held by a live owner. */
  async isLocked(key: string): Promise<boolean> {
    const s = await staleOwner(this.lockFile(key), this.timing);
    return s === undefined;
  }
}
