// What a `scope: experiment` stage (the report) is told about the run: the instances upstream of
// it with their statuses. Cached upstream entries carry the provenance recorded when they were
// produced. Shared by the local scheduler and the Slurm job runner, which learn statuses from
// different places (the run record; completion files on the shared filesystem).
import type { ExperimentInfo } from '../contract.js';
import type { Store } from '../store/index.js';
import type { StageInstance, Variant } from '../types.js';
import { toolVersion } from './tool-version.js';

/** An upstream instance's outcome as this run knows it; undefined = not finished (left out). */
export interface UpstreamOutcome {
  /** Only 'cached' and 'executed' outcomes enter the info; other statuses are skipped. */
  status: string;
  seconds?: number;
  provenance?: Record<string, unknown>;
  key?: string;
}

/** Ids of the instances `inst` reads directly. */
export function depIds(inst: StageInstance): string[] {
  return Object.values(inst.deps).flatMap((d) => (Array.isArray(d) ? d : [d]));
}

/** Every instance `inst` depends on, directly or not, in plan order. */
export function upstreamCone(instances: StageInstance[], inst: StageInstance): StageInstance[] {
  const byId = new Map(instances.map((i) => [i.id, i]));
  const seen = new Set<string>();
  const visit = (id: string): void => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const d of depIds(byId.get(id)!)) visit(d);
  };
  for (const d of depIds(inst)) visit(d);
  return instances.filter((i) => seen.has(i.id));
}

export async function buildExperimentInfo(
  plan: { experiment: { name: string; file: string; resolved: Record<string, unknown> }; variants: Variant[]; instances: StageInstance[] },
  inst: StageInstance,
  outcome: (id: string) => Promise<UpstreamOutcome | undefined>,
  store: Store,
): Promise<ExperimentInfo> {
  const instances: ExperimentInfo['instances'] = [];
  for (const up of upstreamCone(plan.instances, inst)) {
    const r = await outcome(up.id);
    if (!r || (r.status !== 'cached' && r.status !== 'executed')) continue;
    const row: ExperimentInfo['instances'][number] = {
      id: up.id,
      stage: up.stage,
      kind: up.kind,
      variant: up.variant.alias,
      status: r.status,
    };
    if (r.status === 'executed') {
      if (r.seconds !== undefined) row.seconds = r.seconds;
      if (r.provenance) row.provenance = r.provenance;
    } else if (r.key) {
      const meta = await store.meta(r.key).catch(() => undefined);
      if (meta?.provenance) row.provenance = meta.provenance;
    }
    instances.push(row);
  }
  return {
    name: plan.experiment.name,
    file: plan.experiment.file,
    resolved: plan.experiment.resolved,
    variants: plan.variants.map((v) => ({ id: v.id, alias: v.alias, values: v.values })),
    instances,
    toolVersion: toolVersion(),
  };
}
