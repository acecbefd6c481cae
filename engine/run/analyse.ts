// What would a run do? For each instance: cached or to-run, and why (for `plan` and `why`).
import { explainKeyDiff, finaliseKey } from '../plan/index.js';
import type { Store } from '../store/index.js';
import type { KeyMaterial, Plan, StageInstance } from '../types.js';
import { listRuns, readRun, type InstanceRecord } from './records.js';
import { depIds } from './experiment-info.js';

export interface InstanceAnalysis {
  id: string;
  stage: string;
  alias: string;
  status: 'cached' | 'to-run';
  /** Final key when all upstream digests are known. */
  key?: string;
  reasons: string[];
  /** Key differences against the last recorded run of this instance. */
  changes: string[];
  previous?: { runId: string; key?: string; status: string };
}

/** The most recent record (newest run first) of each instance id that has key material. */
export async function previousRecords(runsDir: string, experiment: string, maxRuns = 50): Promise<Map<string, PrevRecord>> {
  const found = new Map<string, PrevRecord>();
  for (const ref of (await listRuns(runsDir, experiment)).slice(0, maxRuns)) {
    let rec;
    try {
      rec = await readRun(ref.dir);
    } catch {
      continue;
    }
    for (const i of rec.instances) if (i.material && !found.has(i.id)) found.set(i.id, { ...i, runId: rec.runId });
  }
  return found;
}

type PrevRecord = InstanceRecord & { runId: string };

/**
 * The earlier record to compare an instance with: the same instance id, else (a swept value
 * changed, so the variant id did too) the record of the same stage whose variant values differ
 * from this instance's in the fewest places.
 */
export function matchPrevious(inst: StageInstance, prev: Map<string, PrevRecord>): PrevRecord | undefined {
  const exact = prev.get(inst.id);
  if (exact) return exact;
  let best: PrevRecord | undefined;
  let bestScore = Infinity;
  const mine = inst.variant.values;
  for (const r of prev.values()) {
    if (r.stage !== inst.stage) continue;
    const theirs = r.variant?.values ?? {};
    const keys = new Set([...Object.keys(mine), ...Object.keys(theirs)]);
    let score = 0;
    for (const k of keys) if (JSON.stringify(mine[k]) !== JSON.stringify(theirs[k])) score++;
    if (score < bestScore || (score === bestScore && best && r.runId > best.runId)) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}

export async function analysePlan(plan: Plan, store: Store, runsDir: string): Promise<InstanceAnalysis[]> {
  const prev = await previousRecords(runsDir, plan.experiment.name);
  const digests = new Map<string, string>();
  const toRun = new Set<string>();
  const out: InstanceAnalysis[] = [];
  for (const inst of plan.instances) {
    const key = finaliseKey(inst, digests);
    const p = matchPrevious(inst, prev);
    const a: InstanceAnalysis = {
      id: inst.id,
      stage: inst.stage,
      alias: inst.variant.alias,
      status: 'to-run',
      key,
      reasons: [],
      changes: [],
      previous: p && { runId: p.runId, key: p.key, status: p.status },
    };
    if (p?.material) {
      a.changes = explainKeyDiff(p.material as KeyMaterial, inst.material);
      // Without a final key the inputs are not known yet: only params/external/version compare.
      if (!key) a.changes = a.changes.filter((c) => !c.startsWith('input ') && !c.startsWith('no change'));
    }
    if (key) {
      const entry = await store.lookup(key);
      if (entry) {
        a.status = 'cached';
        digests.set(inst.id, entry.digest);
        a.reasons.push(p && p.key !== key ? 'cached (an identical computation is in the store)' : 'cached: key unchanged');
        out.push(a);
        continue;
      }
      if (!p) a.reasons.push('never run');
      else if (p.key === key)
        a.reasons.push(
          p.status === 'executed' || p.status === 'cached'
            ? 'same key as last run but its entry is gone from the store (gc?)'
            : `same key, last attempt ${p.status}`,
        );
      else a.reasons.push(p.id === inst.id ? 'new key' : `new key (new variant; compared with ${p.id})`);
    } else {
      const ups = depIds(inst).filter((d) => toRun.has(d));
      a.reasons.push(`upstream changed: ${ups.join(', ') || 'an upstream stage'} will run first`);
      if (!p) a.reasons.push('never run');
    }
    toRun.add(inst.id);
    out.push(a);
  }
  return out;
}
