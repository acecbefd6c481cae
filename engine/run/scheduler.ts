// The scheduler: runs a plan's instances in dependency order with bounded concurrency. Keys are
// finalised as upstream digests become known (an upstream that reproduces identical bytes keeps
// its downstream cached); each key is looked up, or locked and executed, or waited for when
// another process holds its lock.
import type { ExperimentInfo, VariantInput } from '../contract.js';
import type { Registry } from '../registry.js';
import { finaliseKey } from '../plan/index.js';
import type { HeldLock, Staging, Store } from '../store/index.js';
import type { Plan, StageInstance } from '../types.js';
import { type InstanceStatus, type RunEvent, type RunEventInput, type RunStatus, now } from './events.js';
import { isPlanExecutor, jobSpecFor, type Execution, type Executor, type PlanExecutor } from './executor.js';
import { InProcessExecutor } from './inprocess.js';
import { RunRecorder, planRecord, type RunRecord } from './records.js';
import { buildExperimentInfo, depIds } from './experiment-info.js';
import { describeSystemError } from './system-errors.js';

export interface RunOptions {
  store: Store;
  runsDir: string;
  registry: Registry;
  /** Instances executing at once (default 1: ML stages use every core themselves). */
  jobs?: number;
  /** Keep running independent branches after a failure. */
  keepGoing?: boolean;
  /** Default: in-process. A PlanExecutor (Slurm) takes the whole plan over. */
  executor?: Executor | PlanExecutor;
  signal?: AbortSignal;
  onEvent?: (e: RunEvent) => void;
  argv?: string[];
  /** Poll interval while waiting for a key another process holds. */
  pollMs?: number;
  /** Rehash every file of a cache hit (default: compare sizes, mtimes and inodes only). */
  verifyHits?: boolean;
}

export interface RunFailure {
  id: string;
  stage: string;
  error: string;
  log?: string;
}

export interface RunResult {
  status: RunStatus;
  runDir: string;
  record: RunRecord;
  failures: RunFailure[];
  counts: Record<InstanceStatus, number>;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function runPlan(plan: Plan, opts: RunOptions): Promise<RunResult> {
  if (isPlanExecutor(opts.executor)) return opts.executor.runPlan(plan, opts);
  const { store } = opts;
  const jobs = Math.max(1, opts.jobs ?? 1);
  const executor = opts.executor ?? new InProcessExecutor(opts.registry);
  const exp = plan.experiment;
  const byId = new Map(plan.instances.map((i) => [i.id, i]));
  const rec = new RunRecorder(opts.runsDir, planRecord(plan, store.root, opts.argv));
  await rec.init();
  await store.registerRunsDir(opts.runsDir);
  // The journal keeps at most one progress event per instance per second, always ending with the
  // latest state (the UI gets every event).
  type ProgressEvent = Extract<RunEvent, { type: 'progress' }>;
  const journaled = new Map<string, { at: number; pending?: ProgressEvent; timer?: NodeJS.Timeout }>();
  const journalProgress = (e: ProgressEvent): void => {
    const j = journaled.get(e.id) ?? { at: 0 };
    journaled.set(e.id, j);
    const wait = 1000 - (Date.now() - j.at);
    if (wait <= 0) {
      if (j.timer) clearTimeout(j.timer);
      j.timer = undefined;
      j.pending = undefined;
      j.at = Date.now();
      rec.event(e);
      return;
    }
    j.pending = e;
    j.timer ??= setTimeout(() => {
      j.timer = undefined;
      if (j.pending) journalProgress(j.pending);
    }, wait);
  };
  const flushProgress = (id: string): void => {
    const j = journaled.get(id);
    if (!j) return;
    if (j.timer) clearTimeout(j.timer);
    if (j.pending) rec.event(j.pending);
    journaled.delete(id);
  };
  const emit = (e: RunEventInput): void => {
    const full = { ...e, t: now() } as RunEvent;
    if (full.type === 'progress') journalProgress(full);
    else {
      if ('id' in full) flushProgress(full.id);
      rec.event(full);
    }
    opts.onEvent?.(full);
  };
  emit({
    type: 'run-start',
    runId: rec.record.runId,
    experiment: exp.name,
    runDir: rec.dir,
    instances: plan.instances.map((i) => ({ id: i.id, stage: i.stage, kind: i.kind, variantId: i.variant.id, alias: i.variant.alias })),
  });

  const digests = new Map<string, string>();
  const dirs = new Map<string, string>();
  const executions = new Map<string, Execution>();
  const failures: RunFailure[] = [];
  let stopping = false;
  const signal = opts.signal;
  const onAbort = (): void => {
    for (const ex of executions.values()) ex.cancel();
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  const inputsOf = (inst: StageInstance): { inputs: Record<string, string>; variantInputs: Record<string, VariantInput[]> } => {
    const inputs: Record<string, string> = {};
    const variantInputs: Record<string, VariantInput[]> = {};
    for (const [name, dep] of Object.entries(inst.deps)) {
      if (Array.isArray(dep)) {
        // Entry i serves plan.variants[i]; a shared upstream instance repeats, carrying each
        // variant's own identity (its own `variant` is the first/empty one).
        variantInputs[name] = dep.map((id, i) => {
          const up = byId.get(id)!;
          const v = plan.variants[i] ?? up.variant;
          return { variantId: v.id, alias: v.alias, values: v.values, dir: dirs.get(id)!, key: up.key! };
        });
      } else inputs[name] = dirs.get(dep)!;
    }
    return { inputs, variantInputs };
  };

  /** Every instance upstream of `inst` (transitively), in plan order. */
  const experimentInfo = (inst: StageInstance): Promise<ExperimentInfo> =>
    buildExperimentInfo(
      plan,
      inst,
      async (id) => {
        const r = rec.instance(id);
        const seconds = r.start && r.end ? (Date.parse(r.end) - Date.parse(r.start)) / 1000 : undefined;
        return { status: r.status, seconds, provenance: r.provenance, key: r.key };
      },
      store,
    );

  const processInstance = async (inst: StageInstance): Promise<void> => {
    const r = rec.instance(inst.id);
    let lock: HeldLock | undefined;
    let staging: Staging | undefined;
    let outDir: string | undefined;
    try {
      const key = finaliseKey(inst, digests);
      if (!key) throw new Error(`internal error: the key of ${inst.id} is not final although its inputs are committed`);
      inst.key = key;
      r.key = key;
      r.material = inst.material;
      const hit = await store.checkedLookup(key, opts.verifyHits ? 'full' : 'cheap');
      if (hit.damaged) emit({ type: 'instance-damaged', id: inst.id, key, why: hit.damaged.why, movedTo: hit.damaged.movedTo });
      let entry = hit.entry;
      let by: 'store' | 'other-process' = 'store';
      if (!entry && store.readOnly) {
        throw new Error(
          `not in the store, and the store ${store.root} cannot record new results (${store.readOnly}): run with --store DIR on a writable directory to compute it`,
        );
      }
      if (!entry) {
        const got = await store.acquire(key, {
          signal,
          pollMs: opts.pollMs,
          onWait: (owner) => {
            r.status = 'waiting';
            emit({ type: 'instance-waiting', id: inst.id, key, owner: owner && { pid: owner.pid, host: owner.host } });
          },
        });
        if (got.entry) {
          entry = got.entry;
          by = 'other-process';
        } else lock = got.lock;
      }
      if (entry) {
        digests.set(inst.id, entry.digest);
        dirs.set(inst.id, entry.dir);
        r.status = 'cached';
        r.digest = entry.digest;
        emit({ type: 'instance-cached', id: inst.id, key, by });
        return;
      }
      const attempt = await store.nextAttempt(key);
      staging = await store.newStaging(key);
      outDir = staging.outDir;
      const { inputs, variantInputs } = inputsOf(inst);
      const spec = jobSpecFor(inst, {
        key,
        inputs,
        variantInputs,
        outDir: staging.outDir,
        scratchDir: await store.scratchDir(key),
        baseDir: exp.baseDir,
        logFile: rec.logFile(inst.id),
      });
      if (inst.scope === 'experiment') spec.experiment = await experimentInfo(inst);
      const started = Date.now();
      r.status = 'running';
      r.start = new Date(started).toISOString();
      r.attempt = attempt;
      r.log = spec.logFile;
      emit({ type: 'instance-start', id: inst.id, key, attempt, log: spec.logFile });
      const execution = executor.submit(spec, { progress: (p) => emit({ type: 'progress', id: inst.id, ...p }) });
      executions.set(inst.id, execution);
      if (signal?.aborted) execution.cancel();
      const result = await execution.done;
      signal?.throwIfAborted();
      const seconds = (Date.now() - started) / 1000;
      const committed = await store.commit(staging, {
        stage: inst.stage,
        instance: inst.id,
        kind: inst.kind,
        material: inst.material,
        provenance: result.provenance,
        seconds,
      });
      staging = undefined;
      digests.set(inst.id, committed.digest);
      dirs.set(inst.id, committed.dir);
      r.status = 'executed';
      r.digest = committed.digest;
      r.end = now();
      r.provenance = result.provenance;
      emit({ type: 'instance-done', id: inst.id, key, digest: committed.digest, ms: Date.now() - started });
      // Journal the key before the lock goes: from then on only run records protect it from gc.
      await rec.flush(true);
    } catch (e) {
      r.end = now();
      if (signal?.aborted) {
        r.status = 'interrupted';
        r.error = `interrupted (${errorText(signal.reason ?? e)})`;
        emit({ type: 'instance-interrupted', id: inst.id, key: r.key, log: r.log });
      } else {
        const msg =
          describeSystemError(e, { scratchDir: r.key ? store.scratchPath(r.key) : undefined, outDir, stage: inst.id }) ?? errorText(e);
        r.status = 'failed';
        r.error = msg;
        failures.push({ id: inst.id, stage: inst.stage, error: msg, log: r.log });
        emit({ type: 'instance-failed', id: inst.id, key: r.key, error: msg, log: r.log });
        if (!opts.keepGoing) stopping = true;
      }
    } finally {
      executions.delete(inst.id);
      if (staging) await store.discard(staging).catch(() => undefined);
      if (lock) await lock.release();
    }
  };

  const running = new Map<string, Promise<void>>();
  const skip = (inst: StageInstance, reason: string): void => {
    const r = rec.instance(inst.id);
    r.status = 'skipped';
    r.error = reason;
    emit({ type: 'instance-skipped', id: inst.id, reason });
  };

  // Dependency counting: an instance becomes ready when its last upstream commits; a failed or
  // skipped upstream skips its whole downstream cone. Ready instances start in plan order.
  const order = new Map(plan.instances.map((inst, i) => [inst.id, i]));
  const dependents = new Map<string, string[]>();
  const unresolved = new Map<string, number>();
  const ready: StageInstance[] = [];
  const pushReady = (inst: StageInstance): void => {
    const at = order.get(inst.id)!;
    let lo = 0;
    let hi = ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (order.get(ready[mid].id)! < at) lo = mid + 1;
      else hi = mid;
    }
    ready.splice(lo, 0, inst);
  };
  for (const inst of plan.instances) {
    const deps = [...new Set(depIds(inst))];
    unresolved.set(inst.id, deps.length);
    for (const d of deps) {
      if (!dependents.has(d)) dependents.set(d, []);
      dependents.get(d)!.push(inst.id);
    }
    if (deps.length === 0) pushReady(inst);
  }
  const settle = (id: string): void => {
    const status = rec.instance(id).status;
    for (const down of dependents.get(id) ?? []) {
      const inst = byId.get(down)!;
      if (rec.instance(down).status !== 'pending') continue;
      if (status === 'interrupted') {
        skip(inst, 'run interrupted');
        settle(down);
      } else if (status === 'failed' || status === 'skipped') {
        skip(inst, `upstream ${id} ${status}`);
        settle(down);
      } else {
        const n = unresolved.get(down)! - 1;
        unresolved.set(down, n);
        if (n === 0) pushReady(inst);
      }
    }
  };
  while (ready.length || running.size) {
    while (!stopping && !signal?.aborted && running.size < jobs && ready.length) {
      const inst = ready.shift()!;
      running.set(
        inst.id,
        processInstance(inst).finally(() => {
          running.delete(inst.id);
          settle(inst.id);
        }),
      );
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  for (const inst of plan.instances) {
    if (rec.instance(inst.id).status === 'pending') skip(inst, signal?.aborted ? 'run interrupted' : 'run stopped after a failure');
  }
  signal?.removeEventListener('abort', onAbort);

  const counts: Record<InstanceStatus, number> = {
    pending: 0,
    waiting: 0,
    running: 0,
    cached: 0,
    executed: 0,
    failed: 0,
    interrupted: 0,
    skipped: 0,
  };
  for (const i of rec.record.instances) counts[i.status]++;
  const status: RunStatus = signal?.aborted ? 'interrupted' : failures.length ? 'failed' : 'succeeded';
  rec.record.status = status;
  rec.record.endedAt = now();
  emit({ type: 'run-end', status, counts, runDir: rec.dir });
  await rec.flush();
  return { status, runDir: rec.dir, record: rec.record, failures, counts };
}
