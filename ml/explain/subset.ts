// Which images of a split the saliency stage explains and which get overlays. Splits are ordered by
// class, so taking the first N would explain (and show) one class only. Instead the order is a
// seeded round robin over classes: the classes in a seeded shuffled order, within each class its
// images in a seeded shuffled order, one image per class per round (a class that runs out drops
// out). Any prefix of that order covers min(N, classes) classes, and a shorter prefix (the overlay
// sample) is a subset of a longer one (the explained images). The order depends only on the ids,
// their labels and the seed — never on the model — so a GAP and a CA model given the same split and
// seed explain the same images, which the paired comparisons need.
import { Rng } from '../data/rng.js';

/** Stream tags, so these draws never coincide with another use of the same seed. */
const CLASS_ORDER_STREAM = 0x5e1ec7;
const WITHIN_CLASS_STREAM = 0x5e1ec8;

/**
 * The ids in class-balanced round-robin order (see the file header); labelOf gives an id's class.
 * Duplicate ids are an error (a split never repeats an image).
 */
export function balancedOrder(ids: readonly number[], labelOf: (id: number) => number, seed: number): number[] {
  if (!Number.isInteger(seed)) throw new Error(`subset: seed must be an integer, got ${seed}`);
  const byClass = new Map<number, number[]>();
  const seen = new Set<number>();
  for (const id of ids) {
    if (seen.has(id)) throw new Error(`subset: image id ${id} is listed twice`);
    seen.add(id);
    const label = labelOf(id);
    const members = byClass.get(label);
    if (members) members.push(id);
    else byClass.set(label, [id]);
  }
  // Sorting before shuffling makes the result independent of the order the split lists its ids in.
  const classes = new Rng(seed, CLASS_ORDER_STREAM).shuffle([...byClass.keys()].sort((a, b) => a - b));
  const queues = classes.map((c) => new Rng(seed, WITHIN_CLASS_STREAM, c).shuffle(byClass.get(c)!.sort((a, b) => a - b)));
  const out: number[] = [];
  for (let round = 0; out.length < seen.size; round++) for (const q of queues) if (round < q.length) out.push(q[round]);
  return out;
}

/** The first `limit` ids of the balanced order (all of them without a limit). */
export function balancedSubset(ids: readonly number[], labelOf: (id: number) => number, seed: number, limit?: number): number[] {
  const order = balancedOrder(ids, labelOf, seed);
  return limit === undefined ? order : order.slice(0, limit);
}
