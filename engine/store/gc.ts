// Garbage collection: removes what no run record references. Dry run unless `force`.
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from './store.js';
import { parseManifest } from './manifest.js';
import { breakStale, staleOwner } from './lock.js';

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
  /** Bytes of removed (or removable) blobs. */
  bytes: number;
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
 * blobs no kept entry lists go.
 */
export async function gcStore(store: Store, referenced: Set<string>, opts: { force?: boolean; graceMs?: number } = {}): Promise<GcReport> {
  const force = opts.force ?? false;
  // A blob linked in the last few minutes may belong to a commit in progress (its entry not yet
  // renamed into place): it is left for a later gc.
  const graceMs = opts.graceMs ?? 0;
  const now = Date.now();
  const report: GcReport = { dryRun: !force, keptEntries: 0, entries: [], objects: [], scratch: [], staging: [], specs: [], locks: [], bytes: 0 };
  const lockedCache = new Map<string, boolean>();
  const locked = async (key: string): Promise<boolean> => {
    if (!lockedCache.has(key)) lockedCache.set(key, await store.isLocked(key));
    return lockedCache.get(key)!;
  };
  const keepBlobs = new Set<string>();
  for (const key of await store.listEntries()) {
    if (referenced.has(key) || (await locked(key))) {
      report.keptEntries++;
      const mf = join(store.entryDir(key), 'manifest.json');
      try {
        for (const f of parseManifest(await readFile(mf, 'utf8'), mf).files) keepBlobs.add(f.sha256);
      } catch {
        /* a damaged entry keeps nothing alive; `verify` reports it */
      }
    } else report.entries.push(key);
  }
  // Blob ages are read before any entry is removed: unlinking an entry's file changes the
  // blob's ctime (same inode).
  const dropBlobs: string[] = [];
  for (const prefix of await ls(join(store.root, 'objects'))) {
    for (const name of await ls(join(store.root, 'objects', prefix))) {
      if (keepBlobs.has(name)) continue;
      const p = join(store.root, 'objects', prefix, name);
      const st = await stat(p).catch(() => undefined);
      if (!st || now - st.ctimeMs < graceMs) continue;
      report.objects.push(name);
      report.bytes += st.size;
      dropBlobs.push(p);
    }
  }
  if (force) {
    for (const key of report.entries) await rm(store.entryDir(key), { recursive: true, force: true });
    for (const p of dropBlobs) await rm(p, { force: true });
  }

  for (const name of await ls(join(store.root, 'scratch'))) {
    const key = name.replace(/\.attempt$/, '');
    if (referenced.has(key) && !(await store.lookup(key))) continue; // interrupted work a run may resume
    if (await locked(key)) continue;
    report.scratch.push(name);
    if (force) await rm(join(store.root, 'scratch', name), { recursive: true, force: true });
  }
  for (const name of await ls(join(store.root, 'staging'))) {
    const key = name.split('.')[0];
    if (await locked(key)) continue;
    report.staging.push(name);
    if (force) await rm(join(store.root, 'staging', name), { recursive: true, force: true });
  }
  for (const name of await ls(join(store.root, 'specs'))) {
    if (!name.endsWith('.json')) continue;
    const key = name.replace(/\.json$/, '');
    if (referenced.has(key) || (await locked(key))) continue;
    report.specs.push(name);
    if (force) await rm(join(store.root, 'specs', name), { force: true });
  }
  // Leftovers of broken locks, and locks whose owner died (e.g. killed right after its commit).
  for (const name of await ls(join(store.root, 'locks'))) {
    const p = join(store.root, 'locks', name);
    if (name.includes('.lock.broken.')) {
      if (force) await rm(p, { force: true });
    } else if (name.endsWith('.lock')) {
      const stale = await staleOwner(p, store.timing);
      if (stale && stale !== 'gone') {
        report.locks.push(name);
        if (force) await breakStale(p, stale);
      }
    }
  }
  return report;
}
