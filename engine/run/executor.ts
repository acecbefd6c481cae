// Executors run one stage instance. The scheduler owns keys, locks and commits; an executor only
// turns a JobSpec into the stage writing its outputs to spec.outDir. Cluster executors instead take
// the whole plan (PlanExecutor): they submit every instance up front with dependencies, and their
// jobs finalise keys and commit themselves (see slurm/executor.ts).
import type { ExperimentInfo, ShardPart, VariantInput } from '../contract.js';
import type { Plan, StageInstance } from '../types.js';
import type { RunOptions, RunResult } from './scheduler.js';

/** Everything needed to run one instance, serializable (child processes read it from the store). */
export interface JobSpec {
  key: string;
  instanceId: string;
  stage: string;
  kind: string;
  variantId: string;
  alias: string;
  params: Record<string, unknown>;
  inputs: Record<string, string>;
  variantInputs: Record<string, VariantInput[]>;
  outDir: string;
  scratchDir: string;
  baseDir: string;
  logFile: string;
  /** For `scope: experiment` instances: what the run knows about the experiment (not keyed). */
  experiment?: ExperimentInfo;
  /** Compute only this part of the shards into scratchDir and write no output (StageKind.split). */
  part?: ShardPart;
}

/** The JobSpec of a plan instance: its identity and params, plus where this execution reads and writes. */
export function jobSpecFor(
  inst: StageInstance,
  where: Pick<JobSpec, 'key' | 'inputs' | 'variantInputs' | 'outDir' | 'scratchDir' | 'baseDir' | 'logFile'>,
): JobSpec {
  return {
    key: where.key,
    instanceId: inst.id,
    stage: inst.stage,
    kind: inst.kind,
    variantId: inst.variant.id,
    alias: inst.variant.alias,
    params: inst.params,
    inputs: where.inputs,
    variantInputs: where.variantInputs,
    outDir: where.outDir,
    scratchDir: where.scratchDir,
    baseDir: where.baseDir,
    logFile: where.logFile,
  };
}

export interface ProgressUpdate {
  done: number;
  total?: number;
  unit?: string;
  message?: string;
}

export interface JobObserver {
  progress(p: ProgressUpdate): void;
}

export interface JobResult {
  provenance: Record<string, unknown>;
}

export interface Execution {
  /** Resolves when the stage finished successfully; rejects with its error otherwise. */
  done: Promise<JobResult>;
  cancel(): void;
}

export interface Executor {
  readonly name: string;
  submit(job: JobSpec, observer: JobObserver): Execution;
}

/** An executor that drives a whole plan itself (a cluster scheduler with job dependencies). */
export interface PlanExecutor {
  readonly name: string;
  readonly wholePlan: true;
  runPlan(plan: Plan, opts: RunOptions): Promise<RunResult>;
}

export function isPlanExecutor(e: Executor | PlanExecutor | undefined): e is PlanExecutor {
  return !!e && (e as PlanExecutor).wholePlan === true;
}
