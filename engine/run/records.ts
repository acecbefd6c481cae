// Run records on disk: runs/<experiment>/<run-id>/{run.json, events.jsonl, logs/<instance>.log}
// plus the runs/<experiment>/latest symlink. run.json is rewritten atomically (tmp + rename) as
// the run progresses; events.jsonl is append-only.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { appendFile, mkdir, readFile, readdir, readlink, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { KeyMaterial, Plan, Variant } from '../types.js';
import type { InstanceStatus, RunEvent, RunStatus } from './events.js';
import { pidAlive } from '../store/lock.js';

export interface InstanceRecord {
  id: string;
  stage: string;
  kind: string;
  variant: Variant;
  key?: string;
  digest?: string;
  status: InstanceStatus;
  start?: string;
  end?: string;
  attempt?: number;
  log?: string;
  error?: string;
  provenance?: Record<string, unknown>;
  /** Key material as hashed (upstream inputs as output digests), for `why`. */
  material?: KeyMaterial;
  /** Cluster executors: the job running (or that ran) this instance (a split instance: its merge job). */
  job?: JobInfo;
  /** An instance split over shard parts (`parallel.shards`): one array task per part, then the merge job. */
  split?: SplitInfo;
}

export interface SplitInfo {
  shards: number;
  /** Part name ("2/4") → its current job and what became of earlier ones. */
  parts: Record<string, JobInfo & { done?: boolean }>;
}

/** A cluster job serving an instance (Slurm: "123" or array task "123_4"). */
export interface JobInfo {
  id: string;
  /** Scheduler state when last observed (PENDING, RUNNING, COMPLETED, FAILED, ...). */
  state?: string;
  reason?: string;
  /** The scheduler's own output file of the job. */
  log?: string;
  /** Earlier jobs of this instance that ended without committing, with their final state. */
  history?: Array<{ id: string; state: string }>;
}

export interface RunRecord {
  version: 1;
  runId: string;
  experiment: string;
  file: string;
  status: RunStatus;
  startedAt: string;
  endedAt?: string;
  pid: number;
  host: string;
  store: string;
  argv?: string[];
  /** Executor name when not the default in-process one (e.g. "slurm"). */
  executor?: string;
  /** Identifies the plan (instance ids and plan keys): a restarted driver adopts only the same plan. */
  planDigest?: string;
  resolved: Record<string, unknown>;
  variants: Variant[];
  instances: InstanceRecord[];
}

/** Sortable, unique run id: UTC time to the millisecond plus a random suffix. */
export function newRunId(d = new Date()): string {
  const iso = d.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '').replace('Z', '');
  return `${iso}-${randomBytes(2).toString('hex')}`;
}

/** Keeps names usable as directory names. */
export function safeName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._@=,+-]/g, '_');
  // "", "." and ".." would put records beside or above the runs directory.
  return /^\.*$/.test(safe) ? safe.replace(/\./g, '_') || '_' : safe;
}

export class RunRecorder {
  readonly dir: string;
  readonly logsDir: string;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private events: string[] = [];

  constructor(
    readonly runsDir: string,
    readonly record: RunRecord,
  ) {
    this.dir = join(resolve(runsDir), safeName(record.experiment), record.runId);
    this.logsDir = join(this.dir, 'logs');
  }

  async init(): Promise<void> {
    try {
      await mkdir(this.logsDir, { recursive: true });
      await this.writeNow();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR' || code === 'EEXIST')
        throw new Error(
          `cannot write run records under ${resolve(this.runsDir)}: ${(e as NodeJS.ErrnoException).path ?? this.runsDir} is a file, not a directory (${code}): choose a directory with --runs DIR`,
        );
      if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw e;
      throw new Error(
        `cannot write run records under ${resolve(this.runsDir)} (${(e as Error).message}): choose a writable directory with --runs DIR`,
      );
    }
    const latest = join(this.dir, '..', 'latest');
    const tmp = `${latest}.${process.pid}.${randomBytes(3).toString('hex')}`;
    try {
      await symlink(this.record.runId, tmp);
      await rename(tmp, latest);
    } catch {
      // Filesystems without symlinks: `latest` is then found by listing (run ids sort by time).
      await unlink(tmp).catch(() => undefined);
    }
  }

  logFile(instanceId: string): string {
    return join(this.logsDir, `${safeName(instanceId)}.log`);
  }

  private byId: Map<string, InstanceRecord> | undefined;

  instance(id: string): InstanceRecord {
    this.byId ??= new Map(this.record.instances.map((i) => [i.id, i]));
    const r = this.byId.get(id);
    if (!r) throw new Error(`run record has no instance ${id}`);
    return r;
  }

  event(e: RunEvent): void {
    this.events.push(JSON.stringify(e));
    this.schedule();
  }

  /**
   * Batches record and journal writes (a burst of cache hits costs one write). run.json is
   * rewritten whole, so big plans rewrite it less often; the journal carries the detail.
   */
  schedule(): void {
    this.dirty = true;
    if (this.timer) return;
    const delay = this.record.instances.length > 200 ? 1000 : 100;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  /** Writes pending journal lines and, unless `journalOnly`, run.json. */
  async flush(journalOnly = false): Promise<void> {
    if (this.timer && !journalOnly) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const next = this.writing.then(async () => {
      if (this.events.length) {
        const lines = this.events.join('\n') + '\n';
        this.events = [];
        await appendFile(join(this.dir, 'events.jsonl'), lines);
      }
      if (this.dirty && !journalOnly) await this.writeNow();
    });
    this.writing = next.catch(() => undefined);
    await next;
  }

  private async writeNow(): Promise<void> {
    this.dirty = false;
    const file = join(this.dir, 'run.json');
    const tmp = `${file}.tmp.${process.pid}`;
    await writeFile(tmp, JSON.stringify(this.record, null, 2) + '\n');
    await rename(tmp, file);
  }
}

export function baseRecord(
  fields: Pick<RunRecord, 'experiment' | 'file' | 'store' | 'resolved' | 'variants' | 'instances'> & { argv?: string[] },
): RunRecord {
  return {
    version: 1,
    runId: newRunId(),
    status: 'running',
    startedAt: new Date().toISOString(),
    pid: process.pid,
    host: hostname(),
    ...fields,
  };
}

/** A new run record for a plan: every instance pending. */
export function planRecord(plan: Plan, storeRoot: string, argv?: string[]): RunRecord {
  const exp = plan.experiment;
  return baseRecord({
    experiment: exp.name,
    file: exp.file,
    store: storeRoot,
    argv,
    resolved: exp.resolved,
    variants: plan.variants,
    instances: plan.instances.map((i) => ({
      id: i.id,
      stage: i.stage,
      kind: i.kind,
      variant: i.variant,
      status: 'pending' as InstanceStatus,
    })),
  });
}

export async function readRun(dir: string): Promise<RunRecord> {
  const f = join(dir, 'run.json');
  let text: string;
  try {
    text = await readFile(f, 'utf8');
  } catch {
    throw new Error(`${f}: no run record there`);
  }
  try {
    return JSON.parse(text) as RunRecord;
  } catch (e) {
    throw new Error(`${f}: not valid JSON (${(e as Error).message})`);
  }
}

export async function readEvents(dir: string): Promise<RunEvent[]> {
  let text = '';
  try {
    text = await readFile(join(dir, 'events.jsonl'), 'utf8');
  } catch {
    return [];
  }
  const out: RunEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as RunEvent);
    } catch {
      /* a torn last line from a killed writer */
    }
  }
  return out;
}

export interface RunRef {
  experiment: string;
  runId: string;
  dir: string;
}

/** Every run dir under runsDir (skipping the store and `latest` links), newest first. */
export async function listRuns(runsDir: string, experiment?: string): Promise<RunRef[]> {
  const root = resolve(runsDir);
  const exps = experiment ? [safeName(experiment)] : (await readdir(root).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
  const out: RunRef[] = [];
  for (const exp of exps) {
    const ed = join(root, exp);
    for (const id of await readdir(ed).catch(() => [] as string[])) {
      if (id === 'latest' || id.includes('.')) continue;
      const st = await stat(join(ed, id, 'run.json')).catch(() => undefined);
      if (st) out.push({ experiment: exp, runId: id, dir: join(ed, id) });
    }
  }
  out.sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
  return out;
}

/** The run dir `runs/<experiment>/latest` points to, if any. */
export async function latestRun(runsDir: string, experiment: string): Promise<string | undefined> {
  const link = join(resolve(runsDir), safeName(experiment), 'latest');
  try {
    return join(link, '..', basename(await readlink(link)));
  } catch {
    return (await listRuns(runsDir, experiment))[0]?.dir;
  }
}

export async function removeIfExists(file: string): Promise<void> {
  await unlink(file).catch(() => undefined);
}

/** The recorded status, except that a "running" run whose process is gone (same host) was interrupted. */
export function effectiveStatus(rec: RunRecord): string {
  if (rec.status === 'running' && rec.host === hostname() && rec.pid !== process.pid && !pidAlive(rec.pid))
    return 'interrupted (process gone)';
  return rec.status;
}

/** Every key a run record or its journal mentions (the journal is ahead of run.json). */
export async function runKeys(dir: string): Promise<Set<string>> {
  const keys = new Set<string>();
  const rec = await readRun(dir).catch(() => undefined);
  for (const i of rec?.instances ?? []) if (i.key) keys.add(i.key);
  for (const e of await readEvents(dir)) if ('key' in e && typeof e.key === 'string') keys.add(e.key);
  return keys;
}
