// What a consuming stage may check at plan time about an `index` input (its planFacts), so a
// dataset that cannot work is reported before any stage runs. Types and plain checks only: the
// CLI loads this with the stage table.
import type { PlannedInput } from '../engine/contract.js';

/** The index stage's planFacts (ml/data/build-index.ts indexFacts). */
export interface PlannedIndex {
  classes: number;
  classNames?: string[];
  train: number;
  val: number;
}

/** The facts of an input that is an index stage, else undefined (another kind, or unknown). */
export function plannedIndex(input: PlannedInput | undefined): PlannedIndex | undefined {
  if (!input || input.kind !== 'index' || typeof input.facts?.classes !== 'number') return undefined;
  return input.facts as unknown as PlannedIndex;
}

export function describeInput(name: string, input: PlannedInput): string {
  return `its input "${name}" (index stage "${input.stage}")`;
}
