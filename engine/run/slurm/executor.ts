// The Slurm executor. Design:
// - The driver (`ca-pipe run --executor slurm`, driver.ts) submits every instance that is not already cached
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
// - runs/<exp>/<run>/slurm/jobs.jsonl (journal.ts) journals every submission (an intent line before sbatch, the
//   job id after). A restarted driver adopts the latest unfinished run of the same plan: records
//   settle what finished, queued or running jobs are watched again, nothing is submitted twice.
// - Interrupting the driver (Ctrl-C) leaves the jobs running; `ca-pipe cancel <run>` cancels them.
import type { Experiment, Plan } from '../../types.js';
import { cliCommand } from '../child.js';
import type { PlanExecutor } from '../executor.js';
import type { RunOptions, RunResult } from '../scheduler.js';
import { SlurmCommands } from './commands.js';
import { SlurmRun } from './driver.js';
import { checkResources, type Resources } from './resources.js';

export { dependencyArgs, planDigest } from './driver.js';
export { cancelMarker, jobsJournal, readJournal, runJobIds, type JournalLine } from './journal.js';

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
    const { store } = opts;
    const resources = await this.validate(plan.experiment, [...new Set(plan.instances.map((i) => i.stage))]);
    if (store.readOnly)
      throw new Error(`the store ${store.root} is read-only (${store.readOnly}): Slurm jobs commit into it, so it must be writable`);
    const run = await SlurmRun.open(plan, opts, {
      retries: this.o.retries ?? 1,
      pollMs: Math.max(100, this.o.pollMs ?? opts.pollMs ?? 1000),
      cli: this.o.cli ?? cliCommand(),
      commands: this.commands,
      adopt: this.o.adopt !== false,
      resources,
    });
    return run.drive();
  }
}
