// Files shared between the Slurm driver and its jobs, all inside the store (which a cluster keeps
// on a shared filesystem):
//   slurm/<run-id>/plan.json          the plan's instances, written once per run
//   slurm/<run-id>/tasks/<n>.json     one per submission: array task index -> instance id
//   slurm/<run-id>/done/<id>.json     completion record, written by whoever settled the instance
//   slurm/<run-id>/job.sh             `exec "$@"`: sbatch needs a script; argv go to it unchanged
import { chmod, mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { StageInstance, Variant } from '../../types.js';
import { safeName } from '../records.js';

export interface SlurmPlanFile {
  runId: string;
  experiment: { name: string; file: string; baseDir: string; resolved: Record<string, unknown> };
  variants: Variant[];
  instances: StageInstance[];
  /** Directory of the per-instance stage logs (the run's logs/). */
  logsDir: string;
}

export interface TasksFile {
  plan: string;
  /** Array task index (SLURM_ARRAY_TASK_ID; "0" for a plain job) -> instance id. */
  tasks: Record<string, string>;
}

export interface CompletionRecord {
  instance: string;
  status: 'executed' | 'cached' | 'failed';
  key?: string;
  digest?: string;
  /** The committed output directory. */
  dir?: string;
  error?: string;
  provenance?: Record<string, unknown>;
  start?: string;
  end?: string;
  seconds?: number;
  /** "123" or "123_4"; absent for instances the driver found cached. */
  job?: string;
  attempt?: number;
}

export class RunFiles {
  readonly dir: string;
  constructor(
    storeRoot: string,
    readonly runId: string,
  ) {
    this.dir = join(storeRoot, 'slurm', runId);
  }
  get planFile(): string {
    return join(this.dir, 'plan.json');
  }
  get script(): string {
    return join(this.dir, 'job.sh');
  }
  get doneDir(): string {
    return join(this.dir, 'done');
  }
  tasksFile(n: number): string {
    return join(this.dir, 'tasks', `${n}.json`);
  }
  doneFile(instanceId: string): string {
    return join(this.doneDir, `${safeName(instanceId)}.json`);
  }

  async init(plan: SlurmPlanFile): Promise<void> {
    await mkdir(join(this.dir, 'tasks'), { recursive: true });
    await mkdir(this.doneDir, { recursive: true });
    await atomicWrite(this.planFile, JSON.stringify(plan) + '\n');
    await writeFile(
      this.script,
      '#!/bin/sh\n# ca-pipe Slurm job: runs its arguments as they are (no shell words are built from user values).\nexec "$@"\n',
    );
    await chmod(this.script, 0o755);
  }

  async writeTasks(n: number, t: TasksFile): Promise<string> {
    const f = this.tasksFile(n);
    await atomicWrite(f, JSON.stringify(t) + '\n');
    return f;
  }

  async writeDone(r: CompletionRecord): Promise<void> {
    await mkdir(this.doneDir, { recursive: true });
    await atomicWrite(this.doneFile(r.instance), JSON.stringify(r, null, 2) + '\n');
  }

  /** Forgets a failed attempt's record before the instance is submitted again. */
  async removeDone(instanceId: string): Promise<void> {
    await unlink(this.doneFile(instanceId)).catch(() => undefined);
  }

  async readDone(instanceId: string): Promise<CompletionRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.doneFile(instanceId), 'utf8')) as CompletionRecord;
    } catch {
      return undefined;
    }
  }

  /** Every completion record, by instance id. */
  async readAllDone(): Promise<Map<string, CompletionRecord>> {
    const out = new Map<string, CompletionRecord>();
    for (const name of await readdir(this.doneDir).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      try {
        const r = JSON.parse(await readFile(join(this.doneDir, name), 'utf8')) as CompletionRecord;
        out.set(r.instance, r);
      } catch {
        /* being written: seen at the next look */
      }
    }
    return out;
  }
}

export async function atomicWrite(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp.${process.pid}.${randomBytes(3).toString('hex')}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
