// Forward passes the evaluate stage spends per image and per map (for `ca-pipe plan`). Counted from
// the implementations: AD/AI/AG score the clean and the masked image per map (confidence.ts scores
// the clean one again for every method); insertion + deletion score 2n + 1 images per map
// (insdel.ts: deletion's n + 1 states, insertion's first n; its last state is the clean image);
// localisation reads the maps only; accuracy scores each clean image once; ROAD (opt-in) scores one
// imputed image per order and percentage (road.ts; the imputations are CPU work, not forwards).
// The sanity check (opt-in) recomputes maps per cascade step: its cost is the methods', not counted.
import { stepCount, type Protocol } from './protocol.js';

/** Metric key → group whose forwards are shared by its members; undefined: not counted here. */
const GROUP: Readonly<Record<string, 'confidence' | 'insdel' | 'maps' | 'road'>> = {
  AD: 'confidence',
  AI: 'confidence',
  AG: 'confidence',
  insertion: 'insdel',
  deletion: 'insdel',
  pointing: 'maps',
  energy: 'maps',
  road_morf: 'road',
  road_lerf: 'road',
  road: 'road',
};

export interface EvaluateCost {
  /** Forwards per image, whatever the methods (accuracy's clean forward). */
  perImage: number;
  /** Forwards per image and method. */
  perMap: number;
  /** How perMap is made up: "insertion/deletion" → 57, "AD/AI/AG" → 2. */
  byGroup: Record<string, number>;
  /** Metric keys with no count: the estimate leaves them out and says so. */
  unknown: string[];
}

/** `roadImages`: the imputed images ROAD scores per map (orders × percentages). */
export function evaluateCost(protocol: Protocol, imageSize: number, metrics: readonly string[], roadImages = 0): EvaluateCost {
  const groups = new Set<string>();
  const unknown: string[] = [];
  for (const m of metrics) {
    const g = Object.prototype.hasOwnProperty.call(GROUP, m) ? GROUP[m] : undefined;
    if (g) groups.add(g);
    else unknown.push(m);
  }
  const n = stepCount(protocol, imageSize, imageSize);
  const byGroup: Record<string, number> = {};
  if (groups.has('insdel')) byGroup['insertion/deletion'] = 2 * n + 1;
  if (groups.has('confidence')) byGroup['AD/AI/AG'] = 2;
  if (groups.has('road')) byGroup.ROAD = roadImages;
  const perMap = Object.values(byGroup).reduce((a, b) => a + b, 0);
  return { perImage: 1, perMap, byGroup, unknown };
}
