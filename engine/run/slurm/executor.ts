// The Slurm executor. Design:
// - The driver (`ca-pipe run --executor slurm`) submits every instance that is not already cached
//   UP FRONT, upstream before downstream, with `--dependency=afterok:<upstream jobs>` and
//   `--kill-on-invalid-dep=yes` (so Slurm itself cancels the dependents of a failed job even when
//   no driver is watching). A downstream key is not known at submission time (it depends on the
//   upstream output digests), so jobs resolve themselves: each runs `ca-pipe exec --store DIR
//   --slurm-tasks FILE`, reads the plan file and its upstream completion records from the store,
//   finalises its key (early cutoff: an upstream that reproduced identical bytes makes this a
//   cache hit), takes the store's per-key lock, runs the stage, COMMITS into the store itself and
//   writes a completion record (slurm/job.ts, slurm/files.ts).
// - Instances of one stage with the same upstream jobs and resources go out as one job array.
// - The driver observes with `squeue -t all` (sacct when available for jobs squeue forgot), at most
//   once per poll interval, plus the completion records. A job that ended without a record (scancel,
//   TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...) is reported with its state and log and resubmitted up to
//   `retries` times together with its dependents (whose afterok can no longer be met). A stage that
//   failed by itself recorded its error: it is not retried, and its queued dependents are cancelled.
// - runs/<exp>/<run>/slurm/jobs.jsonl journals every submission (an intent line before sbatch, the
//   job id after). A restarted driver adopts the latest unfinished run of the same plan: records
//   settle what finished, queued or running jobs are watched again, nothing is submitted twice.
// - Interrupting the driver (Ctrl-C) leaves the jobs running; `ca-pipe cancel <run>` cancels them.
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Experiment, Plan, StageInstance } from '../../types.js';
import { finaliseKey } from '../../plan/index.js';
import { cliCommand } from '../child.js';
import { now, type InstanceStatus, type RunEvent, type RunEventInput, type RunStatus } from '../events.js';
import type { PlanExecutor } from '../executor.js';
import { RunRecorder, planRecord, effectiveStatus, latestRun, readRun, safeName, type RunRecord } from '../records.js';
import type { RunFailure, RunOptions, RunResult } from '../scheduler.js';
import { SlurmCommands, isTerminal, type JobState } from './commands.js';
import { RunFiles, type CompletionRecord } from './files.js';
import { checkResources, resourceArgs, type Resources } from './resources.js';

export interface SlurmExecutorOptions {
  /** Resubmissions of a job that died without committing (default 1). */
  retries?: number;
  /** Minimum interval between two squeue calls (default 1000 ms). */
  pollMs?: number;
  /** Resources of every stage (a stage's own `resources:` override them). */
  resources?: Resources;
  /** How a job starts the CLI (default: this installation's ca-pipe). */
  cli?: { file: string; args: string[] };
  commands?: SlurmCommands;
  /** Adopt the latest unfinished run of the same plan (default true). */
  adopt?: boolean;
}

/** One line of runs/<exp>/<run>/slurm/jobs.jsonl. */
export interface JournalLine {
  t: string;
  seq: number;
  name: string;
  /** Array task index -> instance id. */
  tasks: Record<string, string>;
  /** Absent on the intent line written just before sbatch. */
  job?: string;
  deps?: string[];
  /** Upstream array whose task i task i waits for (aftercorr). */
  corr?: string;
  /** Slurm output file pattern (%A/%a/%j as given to --output). */
  output?: string;
}

type Phase = 'todo' | 'queued' | 'done' | 'failed' | 'skipped';

interface Track {
  inst: StageInstance;
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
}

export function jobsJournal(runDir: string): string {
  return join(runDir, 'slurm', 'jobs.jsonl');
}

export function cancelMarker(runDir: string): string {
  return join(runDir, 'slurm', 'cancel-requested');
}

export async function readJournal(runDir: string): Promise<JournalLine[]> {
  const text = await readFile(jobsJournal(runDir), 'utf8').catch(() => '');
  const out: JournalLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as JournalLine);
    } catch {
      /* torn last line of a killed driver */
    }
  }
  return out;
}

/** Every job id a run submitted. */
export async function runJobIds(runDir: string): Promise<string[]> {
  return [...new Set((await readJournal(runDir)).flatMap((l) => (l.job ? [l.job] : [])))];
}

/** Final states of a job killed from outside: the stage did not fail by itself. */
const KILLED = new Set(['CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']);

function depIds(inst: StageInstance): string[] {
  return [...new Set(Object.values(inst.deps).flatMap((d) => (Array.isArray(d) ? d : [d])))];
}

export function planDigest(plan: Plan): string {
  return createHash('sha256')
    .update(plan.instances.map((i) => `${i.id} ${i.planKey ?? i.key ?? ''}`).join('\n'))
    .digest('hex');
}

function logName(output: string, job: string): string {
  const [a, t] = job.split('_');
  return output.replace(/%A/g, a!).replace(/%a/g, t ?? '').replace(/%j/g, a!);
}

/** afterok on whole jobs or tasks, aftercorr on an array; Slurm cancels jobs whose dependency fails. */
export function dependencyArgs(deps: string[], corr?: string): string[] {
  const parts = [...(deps.length ? [`afterok:${deps.join(':')}`] : []), ...(corr ? [`aftercorr:${corr}`] : [])];
  return parts.length ? [`--dependency=${parts.join(',')}`, '--kill-on-invalid-dep=yes'] : [];
}

export class SlurmExecutor implements PlanExecutor {
  readonly name = 'slurm';
  readonly wholePlan = true as const;
  readonly commands: SlurmCommands;
  constructor(private readonly o: SlurmExecutorOptions = {}) {
    this.commands = o.commands ?? new SlurmCommands();
  }

  /** Checks every stage's resources against the cluster (sinfo); throws a located ConfigError. */
  async validate(exp: Experiment, stages: string[]): Promise<Map<string, Resources>> {
    const { names } = await this.commands.partitions();
    return checkResources(exp, stages, this.o.resources ?? {}, names);
  }

  async runPlan(plan: Plan, opts: RunOptions): Promise<RunResult> {
    const exp = plan.experiment;
    const { store } = opts;
    const cmds = this.commands;
    const retries = this.o.retries ?? 1;
    const pollMs = Math.max(100, this.o.pollMs ?? opts.pollMs ?? 1000);
    const cli = this.o.cli ?? cliCommand();
    const resources = await this.validate(exp, [...new Set(plan.instances.map((i) => i.stage))]);
    if (store.readOnly) throw new Error(`the store ${store.root} is read-only (${store.readOnly}): Slurm jobs commit into it, so it must be writable`);

    // A new run, or the latest unfinished run of this very plan (a restarted driver).
    const digest = planDigest(plan);
    let adopted: RunRecord | undefined;
    if (this.o.adopt !== false) {
      const dir = await latestRun(opts.runsDir, exp.name);
      const prev = dir ? await readRun(dir).catch(() => undefined) : undefined;
      const cancelledBefore = dir ? !!(await stat(cancelMarker(dir)).catch(() => undefined)) : false;
      if (prev && prev.executor === 'slurm' && prev.planDigest === digest && prev.status !== 'succeeded' && prev.status !== 'failed' && !cancelledBefore) {
        const st = effectiveStatus(prev);
        if (st === 'running' && prev.pid !== process.pid) {
          throw new Error(`run ${prev.runId} of ${exp.name} is still driven by process ${prev.pid} on ${prev.host}: stop that one first (its jobs keep running), or cancel it with \`ca-pipe cancel ${dir}\``);
        }
        adopted = prev;
      }
    }
    const record = adopted ?? planRecord(plan, store.root, opts.argv);
    Object.assign(record, { status: 'running', pid: process.pid, host: hostname(), executor: 'slurm', planDigest: digest });
    delete record.endedAt;
    const rec = new RunRecorder(opts.runsDir, record);
    await rec.init();
    await store.registerRunsDir(opts.runsDir);
    const slurmDir = join(rec.dir, 'slurm');
    await mkdir(slurmDir, { recursive: true });
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

    const emit = (e: RunEventInput): void => {
      const full = { ...e, t: now() } as RunEvent;
      rec.event(full);
      opts.onEvent?.(full);
    };
    emit({
      type: 'run-start',
      runId: record.runId,
      experiment: exp.name,
      runDir: rec.dir,
      instances: plan.instances.map((i) => ({ id: i.id, stage: i.stage, kind: i.kind, variantId: i.variant.id, alias: i.variant.alias })),
    });

    // Deaths an earlier driver of this run already counted stay counted.
    const deathsBefore = (id: string): number => (adopted ? (rec.instance(id).job?.history?.length ?? 0) : 0);
    const tracks = new Map<string, Track>(plan.instances.map((i) => [i.id, { inst: i, phase: 'todo' as Phase, deaths: deathsBefore(i.id), started: false, strange: 0 }]));
    const order = plan.instances.map((i) => tracks.get(i.id)!);
    const dependents = new Map<string, string[]>();
    for (const i of plan.instances) for (const d of depIds(i)) dependents.set(d, [...(dependents.get(d) ?? []), i.id]);
    const failures: RunFailure[] = [];
    const digests = new Map<string, string>();

    const settleDone = (t: Track, r: CompletionRecord): void => {
      const ir = rec.instance(t.inst.id);
      t.phase = 'done';
      digests.set(t.inst.id, r.digest!);
      t.inst.key = r.key;
      ir.key = r.key;
      ir.digest = r.digest;
      ir.material = t.inst.material;
      if (r.status === 'executed') {
        if (!t.started) emit({ type: 'instance-start', id: t.inst.id, key: r.key!, attempt: r.attempt ?? 1, log: rec.logFile(t.inst.id) });
        ir.status = 'executed';
        ir.start = r.start;
        ir.end = r.end;
        ir.attempt = r.attempt;
        ir.log = rec.logFile(t.inst.id);
        ir.provenance = r.provenance;
        emit({ type: 'instance-done', id: t.inst.id, key: r.key!, digest: r.digest!, ms: Math.round((r.seconds ?? 0) * 1000) });
      } else {
        ir.status = 'cached';
        emit({ type: 'instance-cached', id: t.inst.id, key: r.key!, by: r.job ? 'other-process' : 'store' });
      }
      if (ir.job && t.job === ir.job.id) ir.job.state = 'COMPLETED';
    };

    /** Downstream cone of an instance, in plan order. */
    const cone = (id: string): Track[] => {
      const seen = new Set<string>();
      const visit = (x: string): void => {
        for (const d of dependents.get(x) ?? []) {
          if (seen.has(d)) continue;
          seen.add(d);
          visit(d);
        }
      };
      visit(id);
      return order.filter((t) => seen.has(t.inst.id));
    };

    const skip = (t: Track, reason: string): void => {
      t.phase = 'skipped';
      const ir = rec.instance(t.inst.id);
      ir.status = 'skipped';
      ir.error = reason;
      emit({ type: 'instance-skipped', id: t.inst.id, reason });
    };

    /** Cancels the queued jobs of `ts` (one scancel for all). */
    const cancelJobs = async (ts: Track[]): Promise<void> => {
      const ids = ts.filter((t) => t.phase === 'queued' && t.job).map((t) => t.job!);
      if (ids.length) await cmds.cancel(ids).catch(() => undefined);
    };

    let stopping = false;
    const fail = async (t: Track, error: string): Promise<void> => {
      t.phase = 'failed';
      const ir = rec.instance(t.inst.id);
      ir.status = 'failed';
      ir.error = error;
      ir.end = now();
      ir.log = rec.logFile(t.inst.id);
      failures.push({ id: t.inst.id, stage: t.inst.stage, error, log: ir.log });
      emit({ type: 'instance-failed', id: t.inst.id, key: ir.key, error, log: ir.log });
      const down = cone(t.inst.id).filter((d) => d.phase === 'queued' || d.phase === 'todo');
      await cancelJobs(down);
      for (const d of down) skip(d, `cancelled: upstream ${t.inst.id} failed${t.job ? ` (job ${t.job})` : ''}`);
      if (!opts.keepGoing) stopping = true;
    };

    const journal = async (l: Omit<JournalLine, 't'>): Promise<void> => {
      await appendFile(jobsJournal(rec.dir), JSON.stringify({ t: now(), ...l }) + '\n');
    };

    // What an earlier driver of this run left: completion records and journaled jobs.
    const doneRecords = await files.readAllDone();
    const lines = adopted ? await readJournal(rec.dir) : [];
    let seq = 0;
    for (const n of await readdir(join(files.dir, 'tasks')).catch(() => [] as string[])) seq = Math.max(seq, Number.parseInt(n, 10) + 1 || 0);
    for (const l of lines) seq = Math.max(seq, l.seq + 1);
    let snapshot = new Map<string, JobState>();
    if (lines.length) {
      snapshot = await cmds.queue();
      // An intent without its job id: the driver died inside sbatch. The job name finds it.
      const withJob = new Set(lines.filter((l) => l.job).map((l) => l.seq));
      for (const l of lines) {
        if (l.job || withJob.has(l.seq)) continue;
        const hit = [...snapshot.values()].find((s) => s.name === l.name);
        if (hit) {
          l.job = hit.id.split('_')[0];
          await journal({ ...l, job: l.job });
        }
      }
    }
    const latestJob = new Map<string, { job: string; output?: string }>();
    for (const l of lines) {
      if (!l.job) continue;
      const array = l.output?.includes('%a');
      for (const [idx, id] of Object.entries(l.tasks)) latestJob.set(id, { job: array ? `${l.job}_${idx}` : l.job, output: l.output });
    }

    // Settle what is known: records, cache hits the driver can see, and jobs to adopt.
    for (const t of order) {
      const r = doneRecords.get(t.inst.id);
      if (r && r.status !== 'failed' && r.digest) {
        settleDone(t, r);
        continue;
      }
      if (depIds(t.inst).every((d) => tracks.get(d)!.phase === 'done')) {
        const key = finaliseKey(t.inst, digests);
        const entry = key ? (await store.checkedLookup(key)).entry : undefined;
        if (key && entry) {
          const cr: CompletionRecord = { instance: t.inst.id, status: 'cached', key, digest: entry.digest, dir: entry.dir };
          await files.writeDone(cr);
          settleDone(t, cr);
          continue;
        }
      }
      const prev = latestJob.get(t.inst.id);
      const st = prev && snapshot.get(prev.job);
      if (prev && st) {
        // Still queued or running, or finished: the poll below reads its fate.
        t.phase = 'queued';
        t.job = prev.job;
        t.slurmLog = prev.output && logName(prev.output, prev.job);
        const ir = rec.instance(t.inst.id);
        ir.job = { ...ir.job, id: prev.job, state: st.state, reason: st.reason, log: t.slurmLog };
      } else rec.instance(t.inst.id).status = 'pending';
    }

    const submitWave = async (): Promise<void> => {
      if (stopping) return;
      for (;;) {
        const ready: Track[] = [];
        for (const t of order) {
          if (t.phase !== 'todo') continue;
          const deps = depIds(t.inst).map((d) => tracks.get(d)!);
          const bad = deps.find((d) => d.phase === 'failed' || d.phase === 'skipped');
          if (bad) skip(t, `upstream ${bad.inst.id} ${bad.phase}`);
          else if (deps.every((d) => d.phase === 'done' || d.phase === 'queued')) ready.push(t);
        }
        if (!ready.length) return;
        // Same stage and same upstream jobs: one array. Same stage where each instance waits on
        // its own task of one upstream array (per-variant chains): one array whose task i waits
        // on task i (aftercorr).
        const groups = new Map<string, { stage: string; deps: string[]; corr?: string; members: Track[]; index: string[] }>();
        for (const t of ready) {
          const deps = [...new Set(depIds(t.inst).map((d) => tracks.get(d)!).filter((d) => d.phase === 'queued').map((d) => d.job!))].sort();
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
        for (const g of groups.values()) {
          if (g.corr && g.members.length === 1) await submit(g.stage, [...g.deps, `${g.corr}_${g.index[0]}`].sort(), g.members);
          else await submit(g.stage, g.deps, g.members, g.corr ? { array: g.corr, index: g.index } : undefined);
        }
      }
    };

    const submit = async (stage: string, deps: string[], members: Track[], corr?: { array: string; index: string[] }): Promise<void> => {
      const n = seq++;
      const name = `cp-${record.runId.slice(-4)}-${n}-${stage}`;
      const tasks: Record<string, string> = {};
      const index = corr?.index ?? members.map((_, i) => String(i));
      members.forEach((t, i) => (tasks[index[i]!] = t.inst.id));
      const array = members.length > 1;
      const output = join(slurmDir, `${safeName(stage)}-${array ? '%A_%a' : '%j'}.out`);
      for (const t of members) await files.removeDone(t.inst.id);
      const tasksFile = await files.writeTasks(n, { plan: files.planFile, tasks });
      const args = [
        `--job-name=${name}`,
        `--output=${output}`,
        `--chdir=${process.cwd()}`, // like a local run: relative paths a stage uses resolve the same way
        ...(array ? [`--array=${corr ? index.join(',') : `0-${members.length - 1}`}`] : []),
        ...dependencyArgs(deps, corr?.array),
        ...resourceArgs(resources.get(stage) ?? {}),
        files.script,
        cli.file,
        ...cli.args,
        'exec',
        '--store',
        store.root,
        '--slurm-tasks',
        tasksFile,
      ];
      await journal({ seq: n, name, tasks, deps, corr: corr?.array, output });
      let job: string;
      try {
        job = await cmds.sbatch(args);
      } catch (e) {
        for (const t of members) await fail(t, (e as Error).message);
        return;
      }
      await journal({ seq: n, name, tasks, deps, corr: corr?.array, output, job });
      members.forEach((t, i) => {
        t.phase = 'queued';
        t.job = array ? `${job}_${index[i]}` : job;
        t.slurmLog = logName(output, t.job);
        t.started = false;
        t.strange = 0;
        const ir = rec.instance(t.inst.id);
        ir.job = { ...ir.job, id: t.job, state: 'PENDING', log: t.slurmLog };
      });
      rec.schedule();
    };

    /** A job ended without committing: retry it (with its dependents), or fail it. */
    const died = async (t: Track, st: JobState): Promise<void> => {
      const ir = rec.instance(t.inst.id);
      const state = st.reason && st.reason !== 'None' ? `${st.state} (${st.reason})` : st.state;
      ir.job = { ...ir.job!, history: [...(ir.job?.history ?? []), { id: t.job!, state }] };
      const upstreamDone = depIds(t.inst).every((d) => tracks.get(d)!.phase === 'done');
      const what = `job ${t.job} ended ${state} without committing its output (Slurm log ${t.slurmLog}, stage log ${rec.logFile(t.inst.id)})`;
      if (upstreamDone) t.deaths++;
      if (upstreamDone && t.deaths > retries) {
        await fail(t, `${what} (retried ${retries} time(s))`);
        return;
      }
      if (upstreamDone) emit({ type: 'progress', id: t.inst.id, done: 0, message: `${what}: resubmitting (retry ${t.deaths}/${retries})` });
      // Its dependents wait on a job that will never succeed: they go again with it.
      const down = cone(t.inst.id).filter((d) => d.phase === 'queued');
      await cancelJobs(down);
      for (const d of [t, ...down]) {
        d.phase = 'todo';
        d.job = undefined;
        rec.instance(d.inst.id).status = 'pending';
      }
    };

    const poll = async (): Promise<void> => {
      snapshot = await cmds.queue();
      const records = await files.readAllDone();
      const missing = order.filter((t) => t.phase === 'queued' && records.get(t.inst.id)?.status !== 'executed' && records.get(t.inst.id)?.status !== 'cached' && !snapshot.has(t.job!)).map((t) => t.job!);
      const acct = missing.length ? await cmds.accounting(missing) : undefined;
      for (const t of order) {
        if (t.phase !== 'queued') continue;
        const ir = rec.instance(t.inst.id);
        const r = records.get(t.inst.id);
        if (r) {
          if (r.status === 'failed') {
            // Killed by Slurm, the stage's child processes may die first and the stage reports
            // their death as its failure: Slurm's final state decides whether that was a kill.
            const now = snapshot.get(t.job!) ?? acct?.get(t.job!);
            if (now && !isTerminal(now.state)) continue;
            if (now && KILLED.has(now.state.split(' ')[0]!)) {
              await died(t, now);
              continue;
            }
            if (ir.job) ir.job.state = now?.state ?? 'FAILED';
            await fail(t, `job ${r.job ?? t.job} FAILED (Slurm log ${t.slurmLog}, stage log ${rec.logFile(t.inst.id)}): ${r.error ?? 'no message'}`);
          } else settleDone(t, r);
          continue;
        }
        const st = snapshot.get(t.job!) ?? acct?.get(t.job!);
        if (!st) {
          // Forgotten by squeue (MinJobAge) with no accounting to ask: give the record a moment.
          if (++t.strange >= 3) await died(t, { id: t.job!, state: 'UNKNOWN', reason: 'no longer listed by squeue', name: '' });
          continue;
        }
        if (ir.job) {
          ir.job.state = st.state;
          ir.job.reason = st.reason;
        }
        if (st.state === 'RUNNING' && !t.started) {
          t.started = true;
          ir.status = 'running';
          ir.start = now();
          ir.log = rec.logFile(t.inst.id);
          emit({ type: 'instance-start', id: t.inst.id, key: ir.key ?? '', attempt: t.deaths + 1, log: ir.log });
        }
        if (!isTerminal(st.state)) {
          if (stopping && st.state === 'PENDING') {
            await cmds.cancel([t.job!]).catch(() => undefined);
            skip(t, 'run stopped after a failure');
          }
          continue;
        }
        // Finished: a record is written before the job exits, so wait briefly for a slow filesystem.
        const late = await files.readDone(t.inst.id);
        if (late && !(late.status === 'failed' && KILLED.has(st.state.split(' ')[0]!))) {
          records.set(t.inst.id, late);
          if (late.status === 'failed') await fail(t, `job ${t.job} ${st.state} (Slurm log ${t.slurmLog}, stage log ${rec.logFile(t.inst.id)}): ${late.error ?? 'no message'}`);
          else settleDone(t, late);
          continue;
        }
        if (st.state === 'COMPLETED' && ++t.strange < 3) continue;
        await died(t, st);
      }
      // Progress the jobs wrote (at most once a second each).
      for (const t of order) {
        if (t.phase !== 'queued' || !t.started) continue;
        const text = await readFile(join(files.dir, 'progress', `${safeName(t.inst.id)}.json`), 'utf8').catch(() => undefined);
        if (!text || text === t.progress) continue;
        try {
          emit({ type: 'progress', id: t.inst.id, ...(JSON.parse(text) as { done: number }) });
          t.progress = text;
        } catch {
          /* torn read: the next poll sees it whole */
        }
      }
    };

    const signal = opts.signal;
    let cancelled = false;
    let pollFailures = 0;
    try {
      for (;;) {
        if (await stat(cancelMarker(rec.dir)).catch(() => undefined)) {
          cancelled = true;
          await cancelJobs(order);
          for (const t of order) if (t.phase === 'queued' || t.phase === 'todo') skip(t, 'cancelled by `ca-pipe cancel`');
          break;
        }
        await submitWave();
        if (stopping) for (const t of order) if (t.phase === 'todo') skip(t, 'run stopped after a failure');
        if (!order.some((t) => t.phase === 'queued')) break;
        await rec.flush();
        await sleep(pollMs, undefined, { signal }).catch(() => undefined);
        if (signal?.aborted) break;
        // A slurmctld restart or a slow filesystem is survived; a cluster gone for good is not.
        try {
          await poll();
          pollFailures = 0;
        } catch (e) {
          if (++pollFailures >= 30) throw e;
          emit({ type: 'progress', id: order.find((t) => t.phase === 'queued')!.inst.id, done: 0, message: `cannot read the queue (${(e as Error).message}); trying again` });
        }
      }
    } catch (e) {
      // The jobs live on: record the run as interrupted so that a restart adopts it.
      record.status = 'interrupted';
      record.endedAt = now();
      rec.schedule();
      await rec.flush().catch(() => undefined);
      throw e;
    }

    const counts: Record<InstanceStatus, number> = { pending: 0, waiting: 0, running: 0, cached: 0, executed: 0, failed: 0, interrupted: 0, skipped: 0 };
    for (const i of record.instances) counts[i.status]++;
    const status: RunStatus = signal?.aborted || cancelled ? 'interrupted' : failures.length ? 'failed' : 'succeeded';
    record.status = status;
    record.endedAt = now();
    emit({ type: 'run-end', status, counts, runDir: rec.dir });
    await rec.flush();
    return { status, runDir: rec.dir, record, failures, counts };
  }
}
