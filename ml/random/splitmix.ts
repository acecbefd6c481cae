// splitmix32: the mixing step behind the seeding of xoshiro.ts and the parameter-initialisation
// stream (init.ts). One definition: both streams' outputs are pinned by cached results.

/** One splitmix32 step from state x: spreads seed material so nearby seeds give unrelated streams. */
export function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
