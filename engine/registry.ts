// The set of stage kinds the engine can plan and run.
import type { StageKind } from './contract.js';
import type { Registry } from './config/registry-type.js';

export type { Registry };

export function createRegistry(kinds: StageKind[]): Registry {
  const byName = new Map<string, StageKind>();
  for (const k of kinds) {
    if (!k.kind || typeof k.kind !== 'string') throw new Error('createRegistry: a stage kind has no name');
    if (byName.has(k.kind)) throw new Error(`createRegistry: stage kind "${k.kind}" is registered twice`);
    if (!Number.isInteger(k.version) || k.version < 0) throw new Error(`createRegistry: stage kind "${k.kind}" needs an integer version`);
    byName.set(k.kind, k);
  }
  return {
    get: (kind) => byName.get(kind),
    kinds: () => [...byName.keys()].sort(),
  };
}
