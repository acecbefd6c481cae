// Plan-time cost of every instance (`ca-pipe plan`): each kind's `cost` sees its inputs' planFacts
// and costs, in plan order, and the total time is estimated from a rate the user gives or a run
// measured. Nothing runs; a kind without `cost` is left out, a count that fails is "unknown".
import type { PlanFacts, PlannedInput, StageCost } from '../contract.js';
import type { Registry } from '../registry.js';
import type { Plan, StageInstance } from '../types.js';

export async function planCosts(plan: Plan, registry: Registry): Promise<Map<string, StageCost>> {
  const byId = new Map(plan.instances.map((i) => [i.id, i]));
  const facts = new Map<string, PlanFacts | undefined>();
  const costs = new Map<string, StageCost>();
  const factsOf = async (inst: StageInstance): Promise<PlanFacts | undefined> => {
    if (!facts.has(inst.id)) {
      const kind = registry.get(inst.kind);
      facts.set(inst.id, kind?.planFacts ? await kind.planFacts(inst.params, plan.experiment.baseDir).catch(() => undefined) : undefined);
    }
    return facts.get(inst.id);
  };
  for (const inst of plan.instances) {
    const kind = registry.get(inst.kind);
    if (!kind?.cost) continue;
    const inputs: Record<string, PlannedInput> = {};
    for (const [name, dep] of Object.entries(inst.deps)) {
      if (Array.isArray(dep)) continue;
      const up = byId.get(dep)!;
      inputs[name] = { stage: up.stage, kind: up.kind, facts: await factsOf(up), cost: costs.get(up.id) };
    }
    try {
      costs.set(inst.id, await kind.cost(inst.params, inputs));
    } catch (e) {
      costs.set(inst.id, { detail: [], unknown: [`cost unknown (${(e as Error).message})`] });
    }
  }
  return costs;
}

/** Where a rate of forward passes per second came from. */
export interface Rate {
  forwardsPerSecond: number;
  source: string;
}

/** Seconds the counted work takes at `rate` (a backward counted as two forwards), or undefined when not counted. */
export function estimateSeconds(c: StageCost, rate: Rate): number | undefined {
  if (c.forwards === undefined) return undefined;
  return (c.forwards + 2 * (c.backwards ?? 0)) / rate.forwardsPerSecond;
}

/** "3.2 h", "46.1 node-days": the unit a user plans with. */
export function formatEstimate(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 2 * 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} node-days`;
}

/** "1,234,567 forwards (+6 backwards)": the count of one instance. */
export function formatCost(c: StageCost): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const parts = [c.images !== undefined ? `${n(c.images)} img` : undefined];
  if (c.forwards !== undefined) {
    let f = `${n(c.forwards)} forwards`;
    if (c.backwards) f += ` + ${n(c.backwards)} backwards`;
    if (c.tailForwards) f += ` + ${n(c.tailForwards)} head passes`;
    parts.push(f);
  } else parts.push('forwards unknown');
  return parts.filter(Boolean).join(', ');
}
