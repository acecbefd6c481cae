// Executors run one stage instance. The scheduler owns keys, locks and commits; an executor only
// turns a JobSpec into the stage writing its outputs to spec.outDir.
import type { ExperimentInfo, VariantInput } from '../contract.js';

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
