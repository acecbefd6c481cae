// A split instance (`parallel: { shards: N }`) is driven as N part tracks and the instance itself,
// its merge. Part ids name the instance and the part, so that the task files, completion records
// and the journal (all keyed by id) hold parts like any instance, and a restarted driver finds them.
import type { ShardPart } from '../../contract.js';

const PART = /^(.+)#part-(\d+)-of-(\d+)$/;

/** "<instance>#part-<i>-of-<n>", 1-based like every part a user reads. */
export function partId(instanceId: string, part: ShardPart): string {
  return `${instanceId}#part-${part.index + 1}-of-${part.count}`;
}

/** The instance and part an id names, or undefined for a plain instance id. */
export function parsePartId(id: string): { instance: string; part: ShardPart } | undefined {
  const m = PART.exec(id);
  if (!m) return undefined;
  const index = Number(m[2]) - 1;
  const count = Number(m[3]);
  return index >= 0 && index < count ? { instance: m[1]!, part: { index, count } } : undefined;
}

/** "2/4": how a part is shown to users. */
export function partLabel(part: ShardPart): string {
  return `${part.index + 1}/${part.count}`;
}
