import type { StageKind } from '../contract.js';

/** The stage kinds known to the engine (built with createRegistry in engine/registry.ts). */
export interface Registry {
  get(kind: string): StageKind | undefined;
  kinds(): string[];
}
