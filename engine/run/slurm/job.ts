// The inside of a Slurm job: `ca-pipe exec --store DIR --slurm-tasks FILE`. The job resolves its
// own instance when it starts (its upstream jobs have finished, so their completion records hold
// the output digests), finalises its key, takes the store's cache and lock, runs the stage, commits
// into the store itself and leaves a completion record for the driver.
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExperimentInfo, VariantInput } from '../../contract.js';
import { finaliseKey } from '../../plan/index.js';
import type { Registry } from '../../registry.js';
import type { HeldLock, Staging, Store } from '../../store/index.js';
import type { StageInstance } from '../../types.js';
import { jobSpecFor, type ProgressUpdate } from '../executor.js';
import { runJob } from '../inprocess.js';
import { safeName } from '../records.js';
import { buildExperimentInfo, depIds } from '../experiment-info.js';
import { parsePartId } from './parts.js';
import { RunFiles, atomicWrite, type CompletionRecord, type SlurmPlanFile, type TasksFile } from './files.js';

async function readJson<T>(file: string, what: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${file}: cannot read the ${what} (${(e as Error).message})`);
  }
}

/** This task's Slurm id as the driver tracks it ("123" or "123_4"). */
function slurmJobId(): string | undefined {
  const array = process.env.SLURM_ARRAY_JOB_ID;
  const task = process.env.SLURM_ARRAY_TASK_ID;
  if (array && task !== undefined) return `${array}_${task}`;
  return process.env.SLURM_JOB_ID;
}

/** Progress goes to a small file the driver reads when it polls (at most one write a second). */
function progressWriter(file: string): (p: ProgressUpdate) => void {
  let last = 0;
  let latest: ProgressUpdate | undefined;
  let timer: NodeJS.Timeout | undefined;
  const write = (): void => {
    timer = undefined;
    last = Date.now();
    if (latest) void atomicWrite(file, JSON.stringify(latest)).catch(() => undefined);
  };
  return (p) => {
    latest = { ...p };
    if (Date.now() - last >= 1000) write();
    else timer ??= setTimeout(write, 1000 - (Date.now() - last));
  };
}

export async function execSlurmTask(
  store: Store,
  tasksFile: string,
  registry: Registry,
  signal: AbortSignal,
  taskIndex = process.env.SLURM_ARRAY_TASK_ID ?? '0',
): Promise<CompletionRecord> {
  const tasks = await readJson<TasksFile>(tasksFile, 'task list');
  const id = tasks.tasks[taskIndex];
  if (!id) throw new Error(`${tasksFile}: no task ${taskIndex} (tasks: ${Object.keys(tasks.tasks).join(', ')})`);
  const plan = await readJson<SlurmPlanFile>(tasks.plan, 'plan');
  const files = new RunFiles(store.root, plan.runId);
  const byId = new Map(plan.instances.map((i) => [i.id, i]));
  // A part of a split instance computes shards into the instance's scratch and commits nothing.
  const split = parsePartId(id);
  const inst = byId.get(split?.instance ?? id);
  if (!inst) throw new Error(`${tasks.plan}: no instance ${split?.instance ?? id}`);
  const job = slurmJobId();
  const start = new Date().toISOString();
  const base: CompletionRecord = { instance: id, status: 'failed', job, start };

  // Upstream outputs: every dependency has a completion record by now (afterok).
  const digests = new Map<string, string>();
  const dirs = new Map<string, string>();
  const upstream = new Map<string, CompletionRecord>();
  for (const dep of new Set(depIds(inst))) {
    const r = await files.readDone(dep);
    if (!r || r.status === 'failed' || !r.digest || !r.dir) {
      throw new Error(`upstream ${dep} of ${id} has no successful completion record in ${files.doneDir}`);
    }
    digests.set(dep, r.digest);
    dirs.set(dep, r.dir);
    upstream.set(dep, r);
  }
  const key = finaliseKey(inst, digests);
  if (!key) throw new Error(`internal error: the key of ${id} is not final although its inputs are committed`);
  const settle = async (r: Omit<CompletionRecord, 'instance' | 'job' | 'start'>): Promise<CompletionRecord> => {
    const rec = { ...base, ...r, key, end: new Date().toISOString() };
    await files.writeDone(rec);
    return rec;
  };

  let lock: HeldLock | undefined;
  let staging: Staging | undefined;
  try {
    // A hit edited after commit is quarantined here and recomputed (run/scheduler.ts does the same).
    let entry = (await store.checkedLookup(key)).entry;
    // Parts run side by side, so they take no lock: each writes only its own shards, atomically.
    if (!entry && !split) {
      const got = await store.acquire(key, { signal });
      if (got.entry) entry = got.entry;
      else lock = got.lock;
    }
    if (entry) return await settle({ status: 'cached', digest: entry.digest, dir: entry.dir });

    const attempt = await store.nextAttempt(key);
    staging = await store.newStaging(key);
    const inputs: Record<string, string> = {};
    const variantInputs: Record<string, VariantInput[]> = {};
    for (const [name, dep] of Object.entries(inst.deps)) {
      if (Array.isArray(dep)) {
        variantInputs[name] = dep.map((d, i) => {
          const v = plan.variants[i] ?? byId.get(d)!.variant;
          return { variantId: v.id, alias: v.alias, values: v.values, dir: dirs.get(d)!, key: upstream.get(d)!.key! };
        });
      } else inputs[name] = dirs.get(dep)!;
    }
    const spec = jobSpecFor(inst, {
      key,
      inputs,
      variantInputs,
      outDir: staging.outDir,
      scratchDir: await store.scratchDir(key),
      baseDir: plan.experiment.baseDir,
      logFile: join(plan.logsDir, `${safeName(id)}.log`),
    });
    if (inst.scope === 'experiment') spec.experiment = await experimentInfo(plan, inst, files, store);
    if (split) spec.part = split.part;
    await mkdir(join(files.dir, 'progress'), { recursive: true });
    const t0 = Date.now();
    const provenance = await runJob(
      spec,
      registry,
      { progress: progressWriter(join(files.dir, 'progress', `${safeName(id)}.json`)) },
      signal,
    );
    signal.throwIfAborted();
    const full = { executor: 'slurm', ...(job ? { slurmJob: job } : {}), ...provenance };
    const seconds = (Date.now() - t0) / 1000;
    if (split) return await settle({ status: 'executed', provenance: full, seconds, attempt });
    const committed = await store.commit(staging, {
      stage: inst.stage,
      instance: id,
      kind: inst.kind,
      material: inst.material,
      provenance: full,
      seconds,
    });
    staging = undefined;
    return await settle({ status: 'executed', digest: committed.digest, dir: committed.dir, provenance: full, seconds, attempt });
  } catch (e) {
    // A job killed by Slurm (scancel, time limit) leaves no record: the driver sees the Slurm
    // state and retries. Only the stage's own failure is recorded, and not retried.
    if (!signal.aborted) await settle({ status: 'failed', error: e instanceof Error ? e.message : String(e) });
    throw e;
  } finally {
    if (staging) await store.discard(staging).catch(() => undefined);
    if (lock) await lock.release();
  }
}

/** What a `scope: experiment` stage is told: its upstream cone with this run's statuses. */
function experimentInfo(plan: SlurmPlanFile, inst: StageInstance, files: RunFiles, store: Store): Promise<ExperimentInfo> {
  return buildExperimentInfo(
    plan,
    inst,
    async (id) => {
      const r = await files.readDone(id);
      return r ? { status: r.status, seconds: r.seconds, provenance: r.provenance, key: r.key } : undefined;
    },
    store,
  );
}
