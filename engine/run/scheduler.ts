// The scheduler: runs a plan's instances in dependency order with bounded concurrency. Keys are
// finalised as upstream digests become known (an upstream that reproduces identical bytes keeps
// its downstream cached); each key is looked up, or locked and executed, or waited for when
// another process holds its lock.
import type { ExperimentInfo, VariantInput } from '../contract.js';
import type { Registry } from '../registry.js';
import { finaliseKey } from '../plan/index.js';
import type { Entry, HeldLock, Staging, Store } from '../store/index.js';
import type { Plan, StageInstance } from '../types.js';
import { countStatuses, type InstanceStatus, type RunEvent, type RunEventInput, type RunStatus, now } from './events.js';
import {
  isPlanExecutor,
  jobSpecFor,
  type Execution,
  type Executor,
  type JobSpec,
  type PlanExecutor,
  type ProgressUpdate,
} from './executor.js';
import { InProcessExecutor } from './inprocess.js';
import { runsPartsApart, submitSplit } from './split.js';
import { RunRecorder, planRecord, type InstanceRecord, type RunRecord } from './records.js';
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
  const run = await LocalRun.open(plan, opts, opts.executor ?? new InProcessExecutor(opts.registry));
  return run.drive();
}

type ProgressEvent = Extract<RunEvent, { type: 'progress' }>;

/**
 * The journal keeps at most one progress event per instance per second, always ending with the
 * latest state (the UI gets every event).
 */
class ProgressThrottle {
  private readonly journaled = new Map<string, { at: number; pending?: ProgressEvent; timer?: NodeJS.Timeout }>();

  constructor(private readonly write: (e: ProgressEvent) => void) {}

  add(e: ProgressEvent): void {
    const j = this.journaled.get(e.id) ?? { at: 0 };
    this.journaled.set(e.id, j);
    const wait = 1000 - (Date.now() - j.at);
    if (wait <= 0) {
      if (j.timer) clearTimeout(j.timer);
      j.timer = undefined;
      j.pending = undefined;
      j.at = Date.now();
      this.write(e);
      return;
    }
    j.pending = e;
    j.timer ??= setTimeout(() => {
      j.timer = undefined;
      if (j.pending) this.add(j.pending);
    }, wait);
  }

  flush(id: string): void {
    const j = this.journaled.get(id);
    if (!j) return;
    if (j.timer) clearTimeout(j.timer);
    if (j.pending) this.write(j.pending);
    this.journaled.delete(id);
  }
}

/** What one instance holds while it is processed: released however its processing ends. */
interface Hold {
  lock?: HeldLock;
  staging?: Staging;
  outDir?: string;
}

/**
 * One local run of a plan. Its steps: open (record, run-start), then drive { start ready instances
 * up to `jobs`, each looked up, waited for or executed; settle its downstream } and finish.
 */
class LocalRun {
  private readonly store: Store;
  private readonly signal: AbortSignal | undefined;
  private readonly jobs: number;
  private readonly exp: Plan['experiment'];
  private readonly byId: Map<string, StageInstance>;
  private readonly progress: ProgressThrottle;
  private readonly digests = new Map<string, string>();
  private readonly dirs = new Map<string, string>();
  private readonly executions = new Map<string, Execution>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly failures: RunFailure[] = [];
  private stopping = false;
  // Dependency counting: an instance becomes ready when its last upstream commits; a failed or
  // skipped upstream skips its whole downstream cone. Ready instances start in plan order.
  private readonly order: Map<string, number>;
  private readonly dependents = new Map<string, string[]>();
  private readonly unresolved = new Map<string, number>();
  private readonly ready: StageInstance[] = [];

  private constructor(
    private readonly plan: Plan,
    private readonly opts: RunOptions,
    private readonly executor: Executor,
    private readonly rec: RunRecorder,
  ) {
    this.store = opts.store;
    this.signal = opts.signal;
    this.jobs = Math.max(1, opts.jobs ?? 1);
    this.exp = plan.experiment;
    this.byId = new Map(plan.instances.map((i) => [i.id, i]));
    this.order = new Map(plan.instances.map((inst, i) => [inst.id, i]));
    this.progress = new ProgressThrottle((e) => rec.event(e));
  }

  static async open(plan: Plan, opts: RunOptions, executor: Executor): Promise<LocalRun> {
    const rec = new RunRecorder(opts.runsDir, planRecord(plan, opts.store.root, opts.argv));
    await rec.init();
    await opts.store.registerRunsDir(opts.runsDir);
    const run = new LocalRun(plan, opts, executor, rec);
    run.emit({
      type: 'run-start',
      runId: rec.record.runId,
      experiment: plan.experiment.name,
      runDir: rec.dir,
      instances: plan.instances.map((i) => ({ id: i.id, stage: i.stage, kind: i.kind, variantId: i.variant.id, alias: i.variant.alias })),
    });
    return run;
  }

  async drive(): Promise<RunResult> {
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.countDependencies();
    await this.schedule();
    for (const inst of this.plan.instances) {
      if (this.rec.instance(inst.id).status === 'pending')
        this.skip(inst, this.signal?.aborted ? 'run interrupted' : 'run stopped after a failure');
    }
    this.signal?.removeEventListener('abort', this.onAbort);
    return this.finish();
  }

  private emit(e: RunEventInput): void {
    const full = { ...e, t: now() } as RunEvent;
    if (full.type === 'progress') this.progress.add(full);
    else {
      if ('id' in full) this.progress.flush(full.id);
      this.rec.event(full);
    }
    this.opts.onEvent?.(full);
  }

  private readonly onAbort = (): void => {
    for (const ex of this.executions.values()) ex.cancel();
  };

  // ---- schedule: dependency order, bounded concurrency ----

  private countDependencies(): void {
    for (const inst of this.plan.instances) {
      const deps = [...new Set(depIds(inst))];
      this.unresolved.set(inst.id, deps.length);
      for (const d of deps) {
        if (!this.dependents.has(d)) this.dependents.set(d, []);
        this.dependents.get(d)!.push(inst.id);
      }
      if (deps.length === 0) this.pushReady(inst);
    }
  }

  private pushReady(inst: StageInstance): void {
    const at = this.order.get(inst.id)!;
    let lo = 0;
    let hi = this.ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.order.get(this.ready[mid].id)! < at) lo = mid + 1;
      else hi = mid;
    }
    this.ready.splice(lo, 0, inst);
  }

  private async schedule(): Promise<void> {
    const { ready, running } = this;
    while (ready.length || running.size) {
      while (!this.stopping && !this.signal?.aborted && running.size < this.jobs && ready.length) {
        const inst = ready.shift()!;
        running.set(
          inst.id,
          this.processInstance(inst).finally(() => {
            running.delete(inst.id);
            this.settle(inst.id);
          }),
        );
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
  }

  /** Passes a finished instance's outcome on to its dependents. */
  private settle(id: string): void {
    const status = this.rec.instance(id).status;
    for (const down of this.dependents.get(id) ?? []) {
      const inst = this.byId.get(down)!;
      if (this.rec.instance(down).status !== 'pending') continue;
      if (status === 'interrupted') {
        this.skip(inst, 'run interrupted');
        this.settle(down);
      } else if (status === 'failed' || status === 'skipped') {
        this.skip(inst, `upstream ${id} ${status}`);
        this.settle(down);
      } else {
        const n = this.unresolved.get(down)! - 1;
        this.unresolved.set(down, n);
        if (n === 0) this.pushReady(inst);
      }
    }
  }

  private skip(inst: StageInstance, reason: string): void {
    const r = this.rec.instance(inst.id);
    r.status = 'skipped';
    r.error = reason;
    this.emit({ type: 'instance-skipped', id: inst.id, reason });
  }

  // ---- one instance: cached, waited for, or executed ----

  private async processInstance(inst: StageInstance): Promise<void> {
    const r = this.rec.instance(inst.id);
    const hold: Hold = {};
    try {
      const key = finaliseKey(inst, this.digests);
      if (!key) throw new Error(`internal error: the key of ${inst.id} is not final although its inputs are committed`);
      inst.key = key;
      r.key = key;
      r.material = inst.material;
      const found = await this.lookup(inst, r, key, hold);
      if (found) this.adoptCached(inst, r, key, found.entry, found.by);
      else await this.execute(inst, r, key, hold);
    } catch (e) {
      this.settleError(inst, r, e, hold.outDir);
    } finally {
      this.executions.delete(inst.id);
      if (hold.staging) await this.store.discard(hold.staging).catch(() => undefined);
      if (hold.lock) await hold.lock.release();
    }
  }

  /** The committed entry of `key`, here or from another process; otherwise `hold` gets its lock. */
  private async lookup(
    inst: StageInstance,
    r: InstanceRecord,
    key: string,
    hold: Hold,
  ): Promise<{ entry: Entry; by: 'store' | 'other-process' } | undefined> {
    const { store } = this;
    const hit = await store.checkedLookup(key, this.opts.verifyHits ? 'full' : 'cheap');
    if (hit.damaged) this.emit({ type: 'instance-damaged', id: inst.id, key, why: hit.damaged.why, movedTo: hit.damaged.movedTo });
    if (hit.entry) return { entry: hit.entry, by: 'store' };
    if (store.readOnly) {
      throw new Error(
        `not in the store, and the store ${store.root} cannot record new results (${store.readOnly}): run with --store DIR on a writable directory to compute it`,
      );
    }
    const got = await store.acquire(key, {
      signal: this.signal,
      pollMs: this.opts.pollMs,
      onWait: (owner) => {
        r.status = 'waiting';
        this.emit({ type: 'instance-waiting', id: inst.id, key, owner: owner && { pid: owner.pid, host: owner.host } });
      },
    });
    if (got.entry) return { entry: got.entry, by: 'other-process' };
    hold.lock = got.lock;
    return undefined;
  }

  private adoptCached(inst: StageInstance, r: InstanceRecord, key: string, entry: Entry, by: 'store' | 'other-process'): void {
    this.digests.set(inst.id, entry.digest);
    this.dirs.set(inst.id, entry.dir);
    r.status = 'cached';
    r.digest = entry.digest;
    this.emit({ type: 'instance-cached', id: inst.id, key, by });
  }

  private async execute(inst: StageInstance, r: InstanceRecord, key: string, hold: Hold): Promise<void> {
    const { store, signal } = this;
    const attempt = await store.nextAttempt(key);
    const staging = await store.newStaging(key);
    hold.staging = staging;
    hold.outDir = staging.outDir;
    const spec = await this.jobSpec(inst, key, staging.outDir);
    const started = Date.now();
    r.status = 'running';
    r.start = new Date(started).toISOString();
    r.attempt = attempt;
    r.log = spec.logFile;
    this.emit({ type: 'instance-start', id: inst.id, key, attempt, log: spec.logFile });
    const observer = { progress: (p: ProgressUpdate) => this.emit({ type: 'progress', id: inst.id, ...p }) };
    const split = inst.parallel && runsPartsApart(this.executor) && this.opts.registry.get(inst.kind)?.split;
    const execution = split ? submitSplit(this.executor, spec, inst.parallel!.shards, observer) : this.executor.submit(spec, observer);
    this.executions.set(inst.id, execution);
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
    hold.staging = undefined;
    this.digests.set(inst.id, committed.digest);
    this.dirs.set(inst.id, committed.dir);
    r.status = 'executed';
    r.digest = committed.digest;
    r.end = now();
    r.provenance = result.provenance;
    this.emit({ type: 'instance-done', id: inst.id, key, digest: committed.digest, ms: Date.now() - started });
    // Journal the key before the lock goes: from then on only run records protect it from gc.
    await this.rec.flush(true);
  }

  private async jobSpec(inst: StageInstance, key: string, outDir: string): Promise<JobSpec> {
    const { inputs, variantInputs } = this.inputsOf(inst);
    const spec = jobSpecFor(inst, {
      key,
      inputs,
      variantInputs,
      outDir,
      scratchDir: await this.store.scratchDir(key),
      baseDir: this.exp.baseDir,
      logFile: this.rec.logFile(inst.id),
    });
    if (inst.scope === 'experiment') spec.experiment = await this.experimentInfo(inst);
    return spec;
  }

  private inputsOf(inst: StageInstance): { inputs: Record<string, string>; variantInputs: Record<string, VariantInput[]> } {
    const inputs: Record<string, string> = {};
    const variantInputs: Record<string, VariantInput[]> = {};
    for (const [name, dep] of Object.entries(inst.deps)) {
      if (Array.isArray(dep)) {
        // Entry i serves plan.variants[i]; a shared upstream instance repeats, carrying each
        // variant's own identity (its own `variant` is the first/empty one).
        variantInputs[name] = dep.map((id, i) => {
          const up = this.byId.get(id)!;
          const v = this.plan.variants[i] ?? up.variant;
          return { variantId: v.id, alias: v.alias, values: v.values, dir: this.dirs.get(id)!, key: up.key! };
        });
      } else inputs[name] = this.dirs.get(dep)!;
    }
    return { inputs, variantInputs };
  }

  /** Every instance upstream of `inst` (transitively), in plan order. */
  private experimentInfo(inst: StageInstance): Promise<ExperimentInfo> {
    return buildExperimentInfo(
      this.plan,
      inst,
      async (id) => {
        const r = this.rec.instance(id);
        const seconds = r.start && r.end ? (Date.parse(r.end) - Date.parse(r.start)) / 1000 : undefined;
        return { status: r.status, seconds, provenance: r.provenance, key: r.key };
      },
      this.store,
    );
  }

  /** An abort interrupts the instance; anything else fails it (and stops the run unless keepGoing). */
  private settleError(inst: StageInstance, r: InstanceRecord, e: unknown, outDir: string | undefined): void {
    const { signal } = this;
    r.end = now();
    if (signal?.aborted) {
      r.status = 'interrupted';
      r.error = `interrupted (${errorText(signal.reason ?? e)})`;
      this.emit({ type: 'instance-interrupted', id: inst.id, key: r.key, log: r.log });
      return;
    }
    const msg =
      describeSystemError(e, { scratchDir: r.key ? this.store.scratchPath(r.key) : undefined, outDir, stage: inst.id }) ?? errorText(e);
    r.status = 'failed';
    r.error = msg;
    this.failures.push({ id: inst.id, stage: inst.stage, error: msg, log: r.log });
    this.emit({ type: 'instance-failed', id: inst.id, key: r.key, error: msg, log: r.log });
    if (!this.opts.keepGoing) this.stopping = true;
  }

  // ---- finish ----

  private async finish(): Promise<RunResult> {
    const { rec, signal } = this;
    const counts = countStatuses(rec.record.instances);
    const status: RunStatus = signal?.aborted ? 'interrupted' : this.failures.length ? 'failed' : 'succeeded';
    rec.record.status = status;
    rec.record.endedAt = now();
    this.emit({ type: 'run-end', status, counts, runDir: rec.dir });
    await rec.flush();
    return { status, runDir: rec.dir, record: rec.record, failures: this.failures, counts };
  }
}
