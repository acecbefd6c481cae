// The events a run emits: fed to the UI renderers and appended to the run's events.jsonl.

export type InstanceStatus = 'pending' | 'waiting' | 'running' | 'cached' | 'executed' | 'failed' | 'interrupted' | 'skipped';
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'interrupted';

export interface InstanceSummary {
  id: string;
  stage: string;
  kind: string;
  variantId: string;
  alias: string;
}

export type RunEvent =
  | { type: 'run-start'; t: string; runId: string; experiment: string; runDir: string; instances: InstanceSummary[] }
  | { type: 'instance-cached'; t: string; id: string; key: string; by?: 'store' | 'other-process' }
  | { type: 'instance-waiting'; t: string; id: string; key: string; owner?: { pid: number; host: string } }
  | { type: 'instance-start'; t: string; id: string; key: string; attempt: number; log: string }
  | { type: 'progress'; t: string; id: string; done: number; total?: number; unit?: string; message?: string }
  | { type: 'instance-done'; t: string; id: string; key: string; digest: string; ms: number }
  | { type: 'instance-failed'; t: string; id: string; key?: string; error: string; log?: string }
  /** Stopped by Ctrl-C / SIGTERM: not a failure; the same command resumes it. */
  | { type: 'instance-interrupted'; t: string; id: string; key?: string; log?: string }
  /** A cache hit that no longer matched what was committed: quarantined, and recomputed. */
  | { type: 'instance-damaged'; t: string; id: string; key: string; why: string; movedTo?: string }
  | { type: 'instance-skipped'; t: string; id: string; reason: string }
  | { type: 'run-end'; t: string; status: RunStatus; counts: Record<InstanceStatus, number>; runDir: string };

/** Omit that distributes over the union, so each event keeps its own fields. */
export type RunEventInput = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, 't'> : never) : never;

export function now(): string {
  return new Date().toISOString();
}

/** How many instances are in each status (every status present, zeros included: run-end's shape). */
export function countStatuses(instances: readonly { status: InstanceStatus }[]): Record<InstanceStatus, number> {
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
  for (const i of instances) counts[i.status]++;
  return counts;
}
