// One driver of one Slurm run (see executor.ts for the design). Its steps, in order: open (a new
// run, or adopt the latest unfinished run of the same plan), recover (what an earlier driver left:
// journaled jobs, completion records), settle (records, visible cache hits, jobs to watch again),
// then loop { submit a wave of ready instances, poll the queue and the records } and finish.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Plan, StageInstance } from '../../types.js';
import { finaliseKey } from '../../plan/index.js';
import { countStatuses, now, type RunEvent, type RunEventInput, type RunStatus } from '../events.js';
import { depIds } from '../experiment-info.js';
import { RunRecorder, planRecord, effectiveStatus, latestRun, readRun, safeName, type RunRecord } from '../records.js';
import type { RunFailure, RunOptions, RunResult } from '../scheduler.js';
import { isTerminal, type JobState, type SlurmCommands } from './commands.js';
import { RunFiles, type CompletionRecord } from './files.js';
import { appendJournal, cancelMarker, readJournal, type JournalLine } from './journal.js';
import { resourceArgs, type Resources } from './resources.js';
import { partId, partLabel } from './parts.js';
import type { ShardPart } from '../../contract.js';
import type { JobInfo } from '../records.js';

export interface DriverSettings {
  retries: number;
  pollMs: number;
  cli: { file: string; args: string[] };
  commands: SlurmCommands;
  adopt: boolean;
  /** Checked resources per stage. */
  resources: Map<string, Resources>;
}

type Phase = 'todo' | 'queued' | 'done' | 'failed' | 'skipped';

interface Track {
  /** The instance id, or a part id (parts.ts) for one part of a split instance. */
  id: string;
  inst: StageInstance;
  /** Set on the part tracks of a split instance; the instance's own track is then its merge. */
  part?: ShardPart;
  /** Part tracks a merge waits for. */
  parts?: string[];
  /** Images a part reported done (summed into the instance's progress). */
  partDone?: number;
  partTotal?: number;
  phase: Phase;
  /** Current job ("123" or "123_4"). */
  job?: string;
  slurmLog?: string;
  /** Deaths counted against `retries`. */
  deaths: number;
  started: boolean;
  /** Polls that found the job finished without a record / missing from squeue. */
  strange: number;
  /** Last progress seen, so an unchanged one is not journaled again. */
  progress?: string;
  /** Why it was skipped (a merge skipped below its part tells the part's reason). */
  reason?: string;
}

/** Instances of one stage submitted as one job (an array when more than one). */
interface SubmitGroup {
  stage: string;
  deps: string[];
  /** Upstream array whose task i task i waits on (aftercorr), with the task indices. */
  corr?: string;
  members: Track[];
  index: string[];
}

/** Final states of a job killed from outside: the stage did not fail by itself. */
const KILLED = new Set(['CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']);

const killed = (state: string): boolean => KILLED.has(state.split(' ')[0]!);

function uniqueDeps(inst: StageInstance): string[] {
  return [...new Set(depIds(inst))];
}

/** "4 shard parts: 1 done, 2 running, 1 pending": a split's array tasks by state. */
export function splitSummary(split: { shards: number; parts: Record<string, JobInfo & { done?: boolean }> } | undefined): string {
  if (!split) return '';
  const by = new Map<string, number>();
  for (let i = 1; i <= split.shards; i++) {
    const p = split.parts[`${i}/${split.shards}`];
    const state = p?.done ? 'done' : (p?.state ?? 'todo').split(' ')[0]!.toLowerCase();
    by.set(state, (by.get(state) ?? 0) + 1);
  }
  return `${split.shards} shard parts: ${[...by].map(([k, n]) => `${n} ${k}`).join(', ')}`;
}

export function planDigest(plan: Plan): string {
  // The split enters: a restarted driver adopts only jobs of the same parts.
  return createHash('sha256')
    .update(plan.instances.map((i) => `${i.id} ${i.planKey ?? i.key ?? ''}${i.parallel ? ` shards ${i.parallel.shards}` : ''}`).join('\n'))
    .digest('hex');
}

function logName(output: string, job: string): string {
  const [a, t] = job.split('_');
  return output
    .replace(/%A/g, a!)
    .replace(/%a/g, t ?? '')
    .replace(/%j/g, a!);
}

/** afterok on whole jobs or tasks, aftercorr on an array; Slurm cancels jobs whose dependency fails. */
export function dependencyArgs(deps: string[], corr?: string): string[] {
  const parts = [...(deps.length ? [`afterok:${deps.join(':')}`] : []), ...(corr ? [`aftercorr:${corr}`] : [])];
  return parts.length ? [`--dependency=${parts.join(',')}`, '--kill-on-invalid-dep=yes'] : [];
}

/** The latest unfinished run of this very plan, when a restarted driver may take it over. */
async function adoptable(plan: Plan, opts: RunOptions, digest: string): Promise<RunRecord | undefined> {
  const exp = plan.experiment;
  const dir = await latestRun(opts.runsDir, exp.name);
  if (!dir) return undefined;
  const prev = await readRun(dir).catch(() => undefined);
  const cancelledBefore = !!(await stat(cancelMarker(dir)).catch(() => undefined));
  if (
    !prev ||
    prev.executor !== 'slurm' ||
    prev.planDigest !== digest ||
    prev.status === 'succeeded' ||
    prev.status === 'failed' ||
    cancelledBefore
  )
    return undefined;
  if (effectiveStatus(prev) === 'running' && prev.pid !== process.pid) {
    throw new Error(
      `run ${prev.runId} of ${exp.name} is still driven by process ${prev.pid} on ${prev.host}: stop that one first (its jobs keep running), or cancel it with \`ca-pipe cancel ${dir}\``,
    );
  }
  return prev;
}

export class SlurmRun {
  private readonly tracks: Map<string, Track>;
  private readonly order: Track[];
  private readonly dependents = new Map<string, string[]>();
  private readonly failures: RunFailure[] = [];
  private readonly digests = new Map<string, string>();
  private readonly slurmDir: string;
  private seq = 0;
  private snapshot = new Map<string, JobState>();
  /** Instance id -> the job an earlier driver journaled for it. */
  private latestJob = new Map<string, { job: string; output?: string }>();
  private stopping = false;
  private cancelled = false;

  private constructor(
    plan: Plan,
    private readonly opts: RunOptions,
    private readonly s: DriverSettings,
    private readonly record: RunRecord,
    private readonly rec: RunRecorder,
    private readonly files: RunFiles,
    private readonly adopted: boolean,
  ) {
    this.slurmDir = join(rec.dir, 'slurm');
    // Deaths an earlier driver of this run already counted stay counted.
    const deathsBefore = (t: Track): number => (adopted ? (this.jobInfo(t)?.history?.length ?? 0) : 0);
    this.tracks = new Map();
    this.order = [];
    const add = (t: Track): void => {
      t.deaths = deathsBefore(t);
      this.tracks.set(t.id, t);
      this.order.push(t);
    };
    for (const i of plan.instances) {
      const n = i.parallel && opts.registry.get(i.kind)?.split ? i.parallel.shards : 1;
      const parts = Array.from({ length: n > 1 ? n : 0 }, (_, index) => ({ index, count: n }));
      for (const part of parts) add({ id: partId(i.id, part), inst: i, part, phase: 'todo', deaths: 0, started: false, strange: 0 });
      add({
        id: i.id,
        inst: i,
        phase: 'todo',
        deaths: 0,
        started: false,
        strange: 0,
        ...(parts.length ? { parts: parts.map((p) => partId(i.id, p)) } : {}),
      });
      if (parts.length) rec.instance(i.id).split = { shards: n, parts: rec.instance(i.id).split?.parts ?? {} };
    }
    for (const t of this.order) for (const d of this.depsOf(t)) this.dependents.set(d, [...(this.dependents.get(d) ?? []), t.id]);
  }

  /** What a track waits for: the instance's upstream, and for a merge its parts. */
  private depsOf(t: Track): string[] {
    return t.part ? uniqueDeps(t.inst) : [...uniqueDeps(t.inst), ...(t.parts ?? [])];
  }

  /** Whether another track of the same instance (a part, or the merge's parts) already started it. */
  private startSeen(t: Track): boolean {
    return this.order.some((x) => x !== t && x.inst === t.inst && x.started && (x.part || !t.part));
  }

  /** Where a track's job is recorded in run.json: the instance's `job`, or its part's entry under `split`. */
  private jobInfo(t: Track): (JobInfo & { done?: boolean }) | undefined {
    const ir = this.rec.instance(t.inst.id);
    return t.part ? ir.split?.parts[partLabel(t.part)] : ir.job;
  }

  private setJobInfo(t: Track, info: Partial<JobInfo> & { done?: boolean }): void {
    const ir = this.rec.instance(t.inst.id);
    const cur = this.jobInfo(t);
    const next = { ...cur, ...info } as JobInfo;
    if (t.part) ir.split!.parts[partLabel(t.part)] = next;
    else ir.job = next;
  }

  /** A new run, or the latest unfinished run of this very plan (a restarted driver). */
  static async open(plan: Plan, opts: RunOptions, s: DriverSettings): Promise<SlurmRun> {
    const exp = plan.experiment;
    const { store } = opts;
    const digest = planDigest(plan);
    const adopted = s.adopt ? await adoptable(plan, opts, digest) : undefined;
    const record = adopted ?? planRecord(plan, store.root, opts.argv);
    Object.assign(record, { status: 'running', pid: process.pid, host: hostname(), executor: 'slurm', planDigest: digest });
    delete record.endedAt;
    const rec = new RunRecorder(opts.runsDir, record);
    await rec.init();
    await store.registerRunsDir(opts.runsDir);
    await mkdir(join(rec.dir, 'slurm'), { recursive: true });
    const files = new RunFiles(store.root, record.runId);
    if (!adopted || !(await stat(files.planFile).catch(() => undefined))) {
      await files.init({
        runId: record.runId,
        experiment: { name: exp.name, file: exp.file, baseDir: exp.baseDir, resolved: exp.resolved },
        variants: plan.variants,
        instances: plan.instances,
        logsDir: rec.logsDir,
      });
    }
    const run = new SlurmRun(plan, opts, s, record, rec, files, !!adopted);
    run.emit({
      type: 'run-start',
      runId: record.runId,
      experiment: exp.name,
      runDir: rec.dir,
      instances: plan.instances.map((i) => ({ id: i.id, stage: i.stage, kind: i.kind, variantId: i.variant.id, alias: i.variant.alias })),
    });
    return run;
  }

  async drive(): Promise<RunResult> {
    await this.recover();
    await this.settleKnown();
    try {
      await this.loop();
    } catch (e) {
      // The jobs live on: record the run as interrupted so that a restart adopts it.
      this.record.status = 'interrupted';
      this.record.endedAt = now();
      this.rec.schedule();
      await this.rec.flush().catch(() => undefined);
      throw e;
    }
    return this.finish();
  }

  private emit(e: RunEventInput): void {
    const full = { ...e, t: now() } as RunEvent;
    this.rec.event(full);
    this.opts.onEvent?.(full);
  }

  // ---- recover and settle: what an earlier driver of this run left ----

  private async recover(): Promise<void> {
    const lines = this.adopted ? await readJournal(this.rec.dir) : [];
    for (const n of await readdir(join(this.files.dir, 'tasks')).catch(() => [] as string[]))
      this.seq = Math.max(this.seq, Number.parseInt(n, 10) + 1 || 0);
    for (const l of lines) this.seq = Math.max(this.seq, l.seq + 1);
    if (lines.length) {
      this.snapshot = await this.s.commands.queue();
      await this.recoverIntents(lines);
    }
    for (const l of lines) {
      if (!l.job) continue;
      const array = l.output?.includes('%a');
      for (const [idx, id] of Object.entries(l.tasks)) this.latestJob.set(id, { job: array ? `${l.job}_${idx}` : l.job, output: l.output });
    }
  }

  /** An intent without its job id: the driver died inside sbatch. The job name finds it. */
  private async recoverIntents(lines: JournalLine[]): Promise<void> {
    const withJob = new Set(lines.filter((l) => l.job).map((l) => l.seq));
    for (const l of lines) {
      if (l.job || withJob.has(l.seq)) continue;
      const hit = [...this.snapshot.values()].find((s) => s.name === l.name);
      if (hit) {
        l.job = hit.id.split('_')[0];
        await appendJournal(this.rec.dir, { ...l, job: l.job });
      }
    }
  }

  /** Records, cache hits the driver can see, and jobs to adopt. */
  private async settleKnown(): Promise<void> {
    const doneRecords = await this.files.readAllDone();
    for (const t of this.order) {
      const r = doneRecords.get(t.id);
      if (r && r.status !== 'failed' && (r.digest || t.part)) {
        this.settleDone(t, r);
        continue;
      }
      if (await this.settleCached(t)) continue;
      const prev = this.latestJob.get(t.id);
      const st = prev && this.snapshot.get(prev.job);
      if (prev && st) {
        // Still queued or running, or finished: the poll reads its fate.
        t.phase = 'queued';
        t.job = prev.job;
        t.slurmLog = prev.output && logName(prev.output, prev.job);
        this.setJobInfo(t, { id: prev.job, state: st.state, reason: st.reason, log: t.slurmLog });
      } else if (!t.part) this.rec.instance(t.inst.id).status = 'pending';
    }
  }

  /** With every upstream done the key is final: a store hit needs no job. */
  private async settleCached(t: Track): Promise<boolean> {
    if (!this.depsOf(t).every((d) => this.tracks.get(d)!.phase === 'done')) return false;
    const key = finaliseKey(t.inst, this.digests);
    // A part of an instance already in the store has nothing to compute.
    const entry = key ? (await this.opts.store.checkedLookup(key)).entry : undefined;
    if (!key || !entry) return false;
    const cr: CompletionRecord = { instance: t.id, status: 'cached', key, digest: entry.digest, dir: entry.dir };
    await this.files.writeDone(cr);
    this.settleDone(t, cr);
    return true;
  }

  // ---- outcomes of one instance ----

  private settleDone(t: Track, r: CompletionRecord): void {
    const ir = this.rec.instance(t.inst.id);
    t.phase = 'done';
    if (t.part) {
      // A part commits nothing: its shards wait in the scratch directory for the merge.
      this.setJobInfo(t, { ...(t.job && this.jobInfo(t)?.id === t.job ? { state: 'COMPLETED' } : {}), done: true });
      if (t.partTotal !== undefined) t.partDone = t.partTotal;
      return;
    }
    this.digests.set(t.inst.id, r.digest!);
    t.inst.key = r.key;
    ir.key = r.key;
    ir.digest = r.digest;
    ir.material = t.inst.material;
    if (r.status === 'executed') {
      if (!t.started && !this.startSeen(t))
        this.emit({ type: 'instance-start', id: t.inst.id, key: r.key!, attempt: r.attempt ?? 1, log: this.rec.logFile(t.inst.id) });
      ir.status = 'executed';
      ir.start = r.start;
      ir.end = r.end;
      ir.attempt = r.attempt;
      ir.log = this.rec.logFile(t.inst.id);
      ir.provenance = r.provenance;
      this.emit({ type: 'instance-done', id: t.inst.id, key: r.key!, digest: r.digest!, ms: Math.round((r.seconds ?? 0) * 1000) });
    } else {
      ir.status = 'cached';
      this.emit({ type: 'instance-cached', id: t.inst.id, key: r.key!, by: r.job ? 'other-process' : 'store' });
    }
    if (ir.job && t.job === ir.job.id) ir.job.state = 'COMPLETED';
  }

  private skip(t: Track, reason: string): void {
    t.phase = 'skipped';
    t.reason = reason;
    // The instance is reported once, by its merge track (which is skipped with its parts).
    if (t.part) return;
    const ir = this.rec.instance(t.inst.id);
    if (ir.status === 'failed') return; // one of its own parts failed: already reported
    ir.status = 'skipped';
    ir.error = reason;
    this.emit({ type: 'instance-skipped', id: t.inst.id, reason });
  }

  private async fail(t: Track, error: string): Promise<void> {
    t.phase = 'failed';
    const ir = this.rec.instance(t.inst.id);
    ir.status = 'failed';
    ir.error = error;
    ir.end = now();
    ir.log = this.rec.logFile(t.inst.id);
    this.failures.push({ id: t.inst.id, stage: t.inst.stage, error, log: ir.log });
    this.emit({ type: 'instance-failed', id: t.inst.id, key: ir.key, error, log: ir.log });
    const down = this.cone(t.id).filter((d) => d.phase === 'queued' || d.phase === 'todo');
    await this.cancelJobs(down);
    for (const d of down) this.skip(d, `cancelled: upstream ${t.inst.id} failed${t.job ? ` (job ${t.job})` : ''}`);
    if (!this.opts.keepGoing) this.stopping = true;
  }

  /** A job ended without committing: retry it (with its dependents), or fail it. */
  private async died(t: Track, st: JobState): Promise<void> {
    const state = st.reason && st.reason !== 'None' ? `${st.state} (${st.reason})` : st.state;
    this.setJobInfo(t, { history: [...(this.jobInfo(t)?.history ?? []), { id: t.job!, state }] });
    const upstreamDone = this.depsOf(t).every((d) => this.tracks.get(d)!.phase === 'done');
    const what = `${t.part ? `shard part ${partLabel(t.part)}: ` : ''}job ${t.job} ended ${state} without committing its output (Slurm log ${t.slurmLog}, stage log ${this.rec.logFile(t.inst.id)})`;
    const retries = this.s.retries;
    if (upstreamDone) t.deaths++;
    if (upstreamDone && t.deaths > retries) {
      await this.fail(t, `${what} (retried ${retries} time(s))`);
      return;
    }
    if (upstreamDone)
      this.emit({ type: 'progress', id: t.inst.id, done: 0, message: `${what}: resubmitting (retry ${t.deaths}/${retries})` });
    // Its dependents wait on a job that will never succeed: they go again with it.
    const down = this.cone(t.id).filter((d) => d.phase === 'queued');
    await this.cancelJobs(down);
    for (const d of [t, ...down]) {
      d.phase = 'todo';
      d.job = undefined;
      d.started = false;
      if (!d.part) this.rec.instance(d.inst.id).status = 'pending';
    }
  }

  /** Downstream cone of an instance, in plan order. */
  private cone(id: string): Track[] {
    const seen = new Set<string>();
    const visit = (x: string): void => {
      for (const d of this.dependents.get(x) ?? []) {
        if (seen.has(d)) continue;
        seen.add(d);
        visit(d);
      }
    };
    visit(id);
    return this.order.filter((t) => seen.has(t.id));
  }

  /** Cancels the queued jobs of `ts` (one scancel for all). */
  private async cancelJobs(ts: Track[]): Promise<void> {
    const ids = ts.filter((t) => t.phase === 'queued' && t.job).map((t) => t.job!);
    if (ids.length) await this.s.commands.cancel(ids).catch(() => undefined);
  }

  // ---- submit ----

  /** Submits every instance whose upstream is done or queued, until none is left. */
  private async submitWave(): Promise<void> {
    if (this.stopping) return;
    for (;;) {
      const ready = this.readyTracks();
      if (!ready.length) return;
      for (const g of this.groups(ready)) {
        if (g.corr && g.members.length === 1) await this.submit(g.stage, [...g.deps, `${g.corr}_${g.index[0]}`].sort(), g.members);
        else await this.submit(g.stage, g.deps, g.members, g.corr ? { array: g.corr, index: g.index } : undefined);
      }
    }
  }

  /** Instances to submit now; those below a failed or skipped upstream are skipped. */
  private readyTracks(): Track[] {
    const ready: Track[] = [];
    for (const t of this.order) {
      if (t.phase !== 'todo') continue;
      const deps = this.depsOf(t).map((d) => this.tracks.get(d)!);
      const bad = deps.find((d) => d.phase === 'failed' || d.phase === 'skipped');
      if (bad && bad.inst === t.inst) this.skip(t, bad.reason ?? `shard part ${partLabel(bad.part!)} ${bad.phase}`);
      else if (bad) this.skip(t, `upstream ${bad.inst.id} ${bad.phase}`);
      else if (deps.every((d) => d.phase === 'done' || d.phase === 'queued')) ready.push(t);
    }
    return ready;
  }

  /**
   * Same stage and same upstream jobs: one array. Same stage where each instance waits on its own
   * task of one upstream array (per-variant chains): one array whose task i waits on task i
   * (aftercorr).
   */
  private groups(ready: Track[]): SubmitGroup[] {
    const groups = new Map<string, SubmitGroup>();
    for (const t of ready) {
      const deps = [
        ...new Set(
          this.depsOf(t)
            .map((d) => this.tracks.get(d)!)
            .filter((d) => d.phase === 'queued')
            .map((d) => d.job!),
        ),
      ].sort();
      const onTasks = deps.filter((d) => d.includes('_'));
      if (onTasks.length === 1) {
        const [array, index] = onTasks[0]!.split('_') as [string, string];
        const rest = deps.filter((d) => d !== onTasks[0]);
        const gk = `corr\u0000${t.inst.stage}\u0000${rest.join(',')}\u0000${array}`;
        const g = groups.get(gk);
        if (!g) {
          groups.set(gk, { stage: t.inst.stage, deps: rest, corr: array, members: [t], index: [index] });
          continue;
        }
        if (!g.index.includes(index)) {
          g.members.push(t);
          g.index.push(index);
          continue;
        }
      }
      const gk = `ok\u0000${t.inst.stage}\u0000${deps.join(',')}`;
      if (!groups.has(gk)) groups.set(gk, { stage: t.inst.stage, deps, members: [], index: [] });
      groups.get(gk)!.members.push(t);
    }
    return [...groups.values()];
  }

  private async submit(stage: string, deps: string[], members: Track[], corr?: { array: string; index: string[] }): Promise<void> {
    const { files, rec, s } = this;
    const n = this.seq++;
    const name = `cp-${this.record.runId.slice(-4)}-${n}-${stage}`;
    const tasks: Record<string, string> = {};
    const index = corr?.index ?? members.map((_, i) => String(i));
    members.forEach((t, i) => (tasks[index[i]!] = t.id));
    const array = members.length > 1;
    const output = join(this.slurmDir, `${safeName(stage)}-${array ? '%A_%a' : '%j'}.out`);
    for (const t of members) await files.removeDone(t.id);
    const tasksFile = await files.writeTasks(n, { plan: files.planFile, tasks });
    const args = [
      `--job-name=${name}`,
      `--output=${output}`,
      `--chdir=${process.cwd()}`, // like a local run: relative paths a stage uses resolve the same way
      ...(array ? [`--array=${corr ? index.join(',') : `0-${members.length - 1}`}`] : []),
      ...dependencyArgs(deps, corr?.array),
      ...resourceArgs(s.resources.get(stage) ?? {}),
      files.script,
      s.cli.file,
      ...s.cli.args,
      'exec',
      '--store',
      this.opts.store.root,
      '--slurm-tasks',
      tasksFile,
    ];
    await appendJournal(rec.dir, { seq: n, name, tasks, deps, corr: corr?.array, output });
    let job: string;
    try {
      job = await s.commands.sbatch(args);
    } catch (e) {
      for (const t of members) await this.fail(t, (e as Error).message);
      return;
    }
    await appendJournal(rec.dir, { seq: n, name, tasks, deps, corr: corr?.array, output, job });
    members.forEach((t, i) => {
      t.phase = 'queued';
      t.job = array ? `${job}_${index[i]}` : job;
      t.slurmLog = logName(output, t.job);
      t.started = false;
      t.strange = 0;
      this.setJobInfo(t, { id: t.job, state: 'PENDING', reason: undefined, log: t.slurmLog });
    });
    rec.schedule();
  }

  // ---- poll ----

  private async poll(): Promise<void> {
    this.snapshot = await this.s.commands.queue();
    const records = await this.files.readAllDone();
    const missing = this.order
      .filter(
        (t) =>
          t.phase === 'queued' &&
          records.get(t.id)?.status !== 'executed' &&
          records.get(t.id)?.status !== 'cached' &&
          !this.snapshot.has(t.job!),
      )
      .map((t) => t.job!);
    const acct = missing.length ? await this.s.commands.accounting(missing) : undefined;
    for (const t of this.order) {
      if (t.phase !== 'queued') continue;
      const r = records.get(t.id);
      const st = this.snapshot.get(t.job!) ?? acct?.get(t.job!);
      if (r) await this.observeRecord(t, r, st);
      else await this.observeJob(t, st, records);
    }
    await this.readProgress();
  }

  /** The job wrote its completion record. */
  private async observeRecord(t: Track, r: CompletionRecord, st: JobState | undefined): Promise<void> {
    if (r.status !== 'failed') {
      this.settleDone(t, r);
      return;
    }
    // Killed by Slurm, the stage's child processes may die first and the stage reports their
    // death as its failure: Slurm's final state decides whether that was a kill.
    if (st && !isTerminal(st.state)) return;
    if (st && killed(st.state)) {
      await this.died(t, st);
      return;
    }
    this.setJobInfo(t, { state: st?.state ?? 'FAILED' });
    await this.fail(
      t,
      `job ${r.job ?? t.job} FAILED (Slurm log ${t.slurmLog}, stage log ${this.rec.logFile(t.inst.id)}): ${r.error ?? 'no message'}`,
    );
  }

  /** No record yet: follow the job's Slurm state. */
  private async observeJob(t: Track, st: JobState | undefined, records: Map<string, CompletionRecord>): Promise<void> {
    if (!st) {
      // Forgotten by squeue (MinJobAge) with no accounting to ask: give the record a moment.
      if (++t.strange >= 3) await this.died(t, { id: t.job!, state: 'UNKNOWN', reason: 'no longer listed by squeue', name: '' });
      return;
    }
    const ir = this.rec.instance(t.inst.id);
    this.setJobInfo(t, { state: st.state, reason: st.reason });
    if (st.state === 'RUNNING' && !t.started) {
      t.started = true;
      // The instance starts with its first part (a merge after its parts adds no start event).
      if (!this.startSeen(t)) {
        ir.status = 'running';
        ir.start = now();
        ir.log = this.rec.logFile(t.inst.id);
        this.emit({ type: 'instance-start', id: t.inst.id, key: ir.key ?? '', attempt: t.deaths + 1, log: ir.log });
      }
    }
    if (!isTerminal(st.state)) {
      if (this.stopping && st.state === 'PENDING') {
        await this.s.commands.cancel([t.job!]).catch(() => undefined);
        this.skip(t, 'run stopped after a failure');
      }
      return;
    }
    // Finished: a record is written before the job exits, so wait briefly for a slow filesystem.
    const late = await this.files.readDone(t.id);
    if (late && !(late.status === 'failed' && killed(st.state))) {
      records.set(t.id, late);
      if (late.status === 'failed')
        await this.fail(
          t,
          `job ${t.job} ${st.state} (Slurm log ${t.slurmLog}, stage log ${this.rec.logFile(t.inst.id)}): ${late.error ?? 'no message'}`,
        );
      else this.settleDone(t, late);
      return;
    }
    if (st.state === 'COMPLETED' && ++t.strange < 3) return;
    await this.died(t, st);
  }

  /** Progress the jobs wrote (at most once a second each). */
  private async readProgress(): Promise<void> {
    for (const t of this.order) {
      if (t.phase !== 'queued' || !t.started) continue;
      const text = await readFile(join(this.files.dir, 'progress', `${safeName(t.id)}.json`), 'utf8').catch(() => undefined);
      if (!text || text === t.progress) continue;
      try {
        const p = JSON.parse(text) as { done: number; total?: number };
        t.progress = text;
        if (t.part) this.partProgress(t, p);
        else this.emit({ type: 'progress', id: t.inst.id, ...p });
      } catch {
        /* torn read: the next poll sees it whole */
      }
    }
  }

  /** The parts' images summed, with their tasks by state, as the instance's progress. */
  private partProgress(t: Track, p: { done: number; total?: number }): void {
    t.partDone = p.done;
    t.partTotal = p.total;
    const parts = this.order.filter((x) => x.inst === t.inst && x.part);
    const done = parts.reduce((a, x) => a + (x.partDone ?? 0), 0);
    const total = parts.find((x) => x.partTotal !== undefined)?.partTotal;
    this.emit({
      type: 'progress',
      id: t.inst.id,
      done,
      ...(total !== undefined ? { total } : {}),
      message: splitSummary(this.rec.instance(t.inst.id).split),
    });
  }

  // ---- the loop and the end ----

  private async loop(): Promise<void> {
    const signal = this.opts.signal;
    let pollFailures = 0;
    for (;;) {
      if (await this.cancelRequested()) return;
      await this.submitWave();
      if (this.stopping) for (const t of this.order) if (t.phase === 'todo') this.skip(t, 'run stopped after a failure');
      if (!this.order.some((t) => t.phase === 'queued')) return;
      await this.rec.flush();
      await sleep(this.s.pollMs, undefined, { signal }).catch(() => undefined);
      if (signal?.aborted) return;
      // A slurmctld restart or a slow filesystem is survived; a cluster gone for good is not.
      try {
        await this.poll();
        pollFailures = 0;
      } catch (e) {
        if (++pollFailures >= 30) throw e;
        const id = this.order.find((t) => t.phase === 'queued')!.inst.id;
        this.emit({ type: 'progress', id, done: 0, message: `cannot read the queue (${(e as Error).message}); trying again` });
      }
    }
  }

  /** `ca-pipe cancel` left its marker: cancel every job and skip what has not finished. */
  private async cancelRequested(): Promise<boolean> {
    if (!(await stat(cancelMarker(this.rec.dir)).catch(() => undefined))) return false;
    this.cancelled = true;
    await this.cancelJobs(this.order);
    for (const t of this.order) if (t.phase === 'queued' || t.phase === 'todo') this.skip(t, 'cancelled by `ca-pipe cancel`');
    return true;
  }

  private async finish(): Promise<RunResult> {
    const { record, rec } = this;
    const counts = countStatuses(record.instances);
    const status: RunStatus = this.opts.signal?.aborted || this.cancelled ? 'interrupted' : this.failures.length ? 'failed' : 'succeeded';
    record.status = status;
    record.endedAt = now();
    this.emit({ type: 'run-end', status, counts, runDir: rec.dir });
    await rec.flush();
    return { status, runDir: rec.dir, record, failures: this.failures, counts };
  }
}
