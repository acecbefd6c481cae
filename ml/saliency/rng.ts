// The seeded uniform generator for the random baseline and RISE masks: the maps must be
// reproducible from (seed) alone so the stage's cache key fully determines them. It is the same
// mulberry32 the bootstrap uses; this wrapper only insists on an integer seed.
import { mulberry32 as stream } from '../random/mulberry32.js';

export function mulberry32(seed: number): () => number {
  if (!Number.isInteger(seed)) throw new Error(`saliency: seed must be an integer, got ${seed}`);
  return stream(seed);
}
