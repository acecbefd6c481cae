// The scheduler: runs a plan's instances in dependency order with bounded concurrency. Keys are
// finalised as upstream digests become known (an upstream that reproduces identical bytes keeps
// its downstream cached); each key is looked up, or locked and executed, or waited for when
// another process holds its lock.
import type { VariantInput } from '../contract.js';
import type { Registry } from '../registry.js';
import { finaliseKey } from '../plan/index.js';
import type { HeldLock, Staging, Store } from '../store/index.js';
import type { Plan, StageInstance } from '../types.js';
import { type InstanceStatus, type RunEvent, type RunEventInput, type RunStatus, now } from './events.js';
import type { Execution, Executor, JobSpec } from './executor.js';
import { InProcessExecutor } from './inprocess.js';
import { RunRecorder, baseRecord, type RunRecord } from './records.js';

export interface RunOptions {
  store: Store;
  runsDir: string;
  registry: Registry;
  /** Instances executing at once (default 1: ML stages use every core themselves). */
  jobs?: number;
  /** Keep running independent branches after a failure. */
  keepGoing?: boolean;
  executor?: Executor;
  signal?: AbortSignal;
  onEvent?: (e: RunEvent) => void;
  argv?: string[];
  /** Poll interval while waiting for a key another process holds. */
  pollMs?: number;
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

function depIds(inst: StageInstance): string[] {
  return Object.values(inst.deps).flatMap((d) => (Array.isArray(d) ? d : [d]));
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function runPlan(plan: Plan, opts: RunOptions): Promise<RunResult> {
  const { store } = opts;
  const jobs = Math.max(1, opts.jobs ?? 1);
  const executor = opts.executor ?? new InProcessExecutor(opts.registry);
  const exp = plan.experiment;
  const byId = new Map(plan.instances.map((i) => [i.id, i]));
  const rec = new RunRecorder(
    opts.runsDir,
    baseRecord({
      experiment: exp.name,
      file: exp.file,
      store: store.root,
      argv: opts.argv,
      resolved: exp.resolved,
      variants: plan.variants,
      instances: plan.instances.map((i) => ({ id: i.id, stage: i.stage, kind: i.kind, variant: i.variant, status: 'pending' as InstanceStatus })),
    }),
  );
  await rec.init();
  // The journal keeps at most one progress event per instance per second (the UI gets them all).
  const journaledProgress = new Map<string, number>();
  const emit = (e: RunEventInput): void => {
    const full = { ...e, t: now() } as RunEvent;
    if (full.type === 'progress') {
      const last = journaledProgress.get(full.id) ?? 0;
      if (Date.now() - last >= 1000 || (full.total !== undefined && full.done >= full.total)) {
        journaledProgress.set(full.id, Date.now());
        rec.event(full);
      }
    } else rec.event(full);
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
        variantInputs[name] = dep.map((id) => {
          const up = byId.get(id)!;
          return { variantId: up.variant.id, alias: up.variant.alias, values: up.variant.values, dir: dirs.get(id)!, key: up.key! };
        });
      } else inputs[name] = dirs.get(dep)!;
    }
    return { inputs, variantInputs };
  };

  const processInstance = async (inst: StageInstance): Promise<void> => {
    const r = rec.instance(inst.id);
    let lock: HeldLock | undefined;
    let staging: Staging | undefined;
    try {
      const key = finaliseKey(inst, digests);
      if (!key) throw new Error(`internal error: the key of ${inst.id} is not final although its inputs are committed`);
      inst.key = key;
      r.key = key;
      r.material = inst.material;
      let entry = await store.lookup(key);
      let by: 'store' | 'other-process' = 'store';
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
      const { inputs, variantInputs } = inputsOf(inst);
      const spec: JobSpec = {
        key,
        instanceId: inst.id,
        stage: inst.stage,
        kind: inst.kind,
        variantId: inst.variant.id,
        alias: inst.variant.alias,
        params: inst.params,
        inputs,
        variantInputs,
        outDir: staging.outDir,
        scratchDir: await store.scratchDir(key),
        baseDir: exp.baseDir,
        logFile: rec.logFile(inst.id),
      };
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
      const committed = await store.commit(staging, { stage: inst.stage, instance: inst.id, kind: inst.kind, material: inst.material });
      staging = undefined;
      digests.set(inst.id, committed.digest);
      dirs.set(inst.id, committed.dir);
      r.status = 'executed';
      r.digest = committed.digest;
      r.end = now();
      r.provenance = result.provenance;
      emit({ type: 'instance-done', id: inst.id, key, digest: committed.digest, ms: Date.now() - started });
      // Record the key before the lock goes: from then on only run records protect it from gc.
      await rec.flush();
    } catch (e) {
      const msg = signal?.aborted ? `interrupted (${errorText(e)})` : errorText(e);
      r.status = 'failed';
      r.error = msg;
      r.end = now();
      failures.push({ id: inst.id, stage: inst.stage, error: msg, log: r.log });
      emit({ type: 'instance-failed', id: inst.id, key: r.key, error: msg, log: r.log });
      if (!opts.keepGoing) stopping = true;
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
  for (;;) {
    for (const inst of plan.instances) {
      const r = rec.instance(inst.id);
      if (r.status !== 'pending' || running.has(inst.id)) continue;
      const deps = depIds(inst);
      const bad = deps.find((d) => {
        const s = rec.instance(d).status;
        return s === 'failed' || s === 'skipped';
      });
      if (bad) {
        skip(inst, `upstream ${bad} ${rec.instance(bad).status}`);
        continue;
      }
      if (stopping || signal?.aborted || running.size >= jobs) continue;
      if (deps.every((d) => digests.has(d))) {
        running.set(
          inst.id,
          processInstance(inst).finally(() => running.delete(inst.id)),
        );
      }
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  for (const inst of plan.instances) {
    if (rec.instance(inst.id).status === 'pending') skip(inst, signal?.aborted ? 'run interrupted' : 'run stopped after a failure');
  }
  signal?.removeEventListener('abort', onAbort);

  const counts: Record<InstanceStatus, number> = { pending: 0, waiting: 0, running: 0, cached: 0, executed: 0, failed: 0, skipped: 0 };
  for (const i of rec.record.instances) counts[i.status]++;
  const status: RunStatus = signal?.aborted ? 'interrupted' : failures.length ? 'failed' : 'succeeded';
  rec.record.status = status;
  rec.record.endedAt = now();
  emit({ type: 'run-end', status, counts, runDir: rec.dir });
  await rec.flush();
  return { status, runDir: rec.dir, record: rec.record, failures, counts };
}
