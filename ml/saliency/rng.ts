// A tiny seeded uniform generator (mulberry32) for the random baseline and RISE masks: the maps
// must be reproducible from (seed) alone so the stage's cache key fully determines them.

export function mulberry32(seed: number): () => number {
  if (!Number.isInteger(seed)) throw new Error(`saliency: seed must be an integer, got ${seed}`);
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
