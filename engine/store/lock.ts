// Per-key locks that work on shared filesystems: only open(O_EXCL), rename, utimes and unlink.
// A lock file holds its owner (pid, host, token); the owner refreshes its mtime as a heartbeat.
// A lock whose owner pid is gone (same host) or whose heartbeat is too old (other hosts) is stale: it is
// broken by renaming it away first and then checking that the renamed file is the one judged
// stale, so two breakers cannot both win and a fresh lock is put back if grabbed by mistake.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
  token: string;
}

export interface LockTiming {
  /** How often the owner touches the lock file. */
  heartbeatMs: number;
  /** A heartbeat older than this marks the lock stale (other hosts, or pid reuse). */
  staleMs: number;
}

export const DEFAULT_LOCK_TIMING: LockTiming = {
  heartbeatMs: Number(process.env.CA_PIPE_LOCK_HEARTBEAT_MS ?? 2000),
  staleMs: Number(process.env.CA_PIPE_LOCK_STALE_MS ?? 30000),
};

export class HeldLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  /** Set when the heartbeat finds the lock file is no longer ours. */
  lost = false;

  constructor(
    readonly file: string,
    readonly owner: LockOwner,
    timing: LockTiming,
  ) {
    this.timer = setInterval(() => void this.beat(), timing.heartbeatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    if (this.released) return;
    const cur = await readOwner(this.file);
    if (!cur || cur.token !== this.owner.token) {
      this.lost = true;
      return;
    }
    const now = new Date();
    await utimes(this.file, now, now).catch(() => undefined);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    const cur = await readOwner(this.file);
    if (cur && cur.token === this.owner.token) await unlink(this.file).catch(() => undefined);
  }
}

export async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as LockOwner;
    return typeof v.token === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process of this host with that pid exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Attempts to create the lock; undefined when someone else holds it. */
export async function tryAcquire(file: string, timing: LockTiming = DEFAULT_LOCK_TIMING): Promise<HeldLock | undefined> {
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(12).toString('hex'),
  };
  let fh;
  try {
    fh = await open(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  }
  try {
    await fh.writeFile(JSON.stringify(owner) + '\n');
  } finally {
    await fh.close();
  }
  return new HeldLock(file, owner, timing);
}

/** Whether the current lock file is stale; returns its owner when it is (for breakStale). */
export async function staleOwner(file: string, timing: LockTiming = DEFAULT_LOCK_TIMING): Promise<LockOwner | 'gone' | undefined> {
  let st;
  try {
    st = await stat(file);
  } catch {
    return 'gone';
  }
  const owner = await readOwner(file);
  const age = Date.now() - st.mtimeMs;
  if (!owner) {
    // Half-written by a creator that died between open and write: stale once old enough.
    return age > timing.staleMs ? { pid: -1, host: '', startedAt: '', token: '' } : undefined;
  }
  if (owner.host === hostname()) {
    // On this host the pid says it all; a late heartbeat only means a busy event loop (a stage
    // computing synchronously). Only a very old heartbeat counts, against pid reuse.
    if (owner.pid !== process.pid && !pidAlive(owner.pid)) return owner;
    return age > Math.max(10 * timing.staleMs, 5 * 60_000) ? owner : undefined;
  }
  return age > timing.staleMs ? owner : undefined;
}

/** Breaks a lock judged stale. Returns true when the lock path is free afterwards (by us or anyone). */
export async function breakStale(file: string, judged: LockOwner): Promise<boolean> {
  const aside = `${file}.broken.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true; // another breaker won
    throw e;
  }
  const got = await readOwner(aside);
  if ((got?.token ?? '') === judged.token) {
    await unlink(aside).catch(() => undefined);
    return true;
  }
  // We moved a lock that was re-acquired after our judgement: put it back if the path is free.
  try {
    await link(aside, file);
  } catch {
    /* someone created a new lock meanwhile; the displaced owner will notice via its heartbeat */
  }
  await unlink(aside).catch(() => undefined);
  return false;
}
