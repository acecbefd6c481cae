// Localisation metrics on maps at image resolution.
//
// Pointing game (Zhang et al. 2016/2018, as in TorchRay): the map's maximum is a hit if some object
// pixel lies within `tolerance` pixels of it (Euclidean distance to the nearest mask pixel ≤ tolerance,
// i.e. the disc around the maximum intersects the object). When several pixels share the maximum,
// the first in raster order is used. Energy-based pointing game (Wang et al. 2020, Score-CAM): the share
// of the saliency mass that falls inside the object (mask, or the union of its boxes).
// Degenerate maps (constant, NaN) yield NaN here; classifyMap/aggregate count and exclude them.
import { classifyMap } from './maps.js';

/** A box in pixel coordinates with inclusive corners (x0 ≤ x ≤ x1, y0 ≤ y ≤ y1), clipped to the image. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** An object region: a binary mask (H×W, nonzero = object) or a list of boxes. */
export type Region = { mask: ArrayLike<number> } | { boxes: readonly Box[] };

/** Rasterise boxes (union) into an H×W mask. */
export function boxesToMask(boxes: readonly Box[], h: number, w: number): Uint8Array {
  const m = new Uint8Array(h * w);
  for (const b of boxes) {
    for (const [k, v] of Object.entries(b))
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`boxesToMask: box field ${k} must be a finite number, got ${v}`);
    const x0 = Math.max(0, Math.ceil(Math.min(b.x0, b.x1)));
    const x1 = Math.min(w - 1, Math.floor(Math.max(b.x0, b.x1)));
    const y0 = Math.max(0, Math.ceil(Math.min(b.y0, b.y1)));
    const y1 = Math.min(h - 1, Math.floor(Math.max(b.y0, b.y1)));
    for (let y = y0; y <= y1; y++) m.fill(1, y * w + x0, x1 >= x0 ? y * w + x1 + 1 : y * w + x0);
  }
  return m;
}

function regionMask(region: Region, h: number, w: number): ArrayLike<number> {
  if ('mask' in region) {
    if (region.mask.length !== h * w) throw new Error(`localisation: mask has ${region.mask.length} values, expected ${h}×${w}`);
    return region.mask;
  }
  return boxesToMask(region.boxes, h, w);
}

/** Position of the map's maximum (first in raster order), or -1 for an empty or NaN map. */
export function argmaxIndex(map: ArrayLike<number>): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (Number.isNaN(v)) return -1;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

export interface PointingResult {
  /** 1 hit, 0 miss, NaN when undefined (degenerate map or empty object region). */
  hit: number;
  /** Row and column of the maximum used. */
  y: number;
  x: number;
}

/** Pointing game for one H×W map against one object region. */
export function pointingGame(map: ArrayLike<number>, region: Region, h: number, w: number, tolerance = 15): PointingResult {
  if (map.length !== h * w) throw new Error(`pointingGame: map has ${map.length} values, expected ${h}×${w}`);
  if (!(tolerance >= 0)) throw new Error(`pointingGame: tolerance must be ≥ 0, got ${tolerance}`);
  const mask = regionMask(region, h, w);
  let any = false;
  for (let i = 0; i < mask.length && !any; i++) any = mask[i] !== 0;
  const am = classifyMap(map) === 'ok' ? argmaxIndex(map) : -1;
  if (am < 0 || !any) return { hit: NaN, y: am < 0 ? -1 : Math.floor(am / w), x: am < 0 ? -1 : am % w };
  const py = Math.floor(am / w);
  const px = am % w;
  const r = Math.floor(tolerance);
  const t2 = tolerance * tolerance;
  for (let y = Math.max(0, py - r); y <= Math.min(h - 1, py + r); y++) {
    const dy2 = (y - py) * (y - py);
    for (let x = Math.max(0, px - r); x <= Math.min(w - 1, px + r); x++) {
      if (mask[y * w + x] !== 0 && dy2 + (x - px) * (x - px) <= t2) return { hit: 1, y: py, x: px };
    }
  }
  return { hit: 0, y: py, x: px };
}

/**
 * Energy-based pointing game: Σ_inside S / Σ S for one H×W map (negative saliency clamped to 0 so the
 * ratio stays a share). NaN for a degenerate map (zero total mass, NaN values) or an empty region.
 */
export function energyPointingGame(map: ArrayLike<number>, region: Region, h: number, w: number): number {
  if (map.length !== h * w) throw new Error(`energyPointingGame: map has ${map.length} values, expected ${h}×${w}`);
  const mask = regionMask(region, h, w);
  let inside = 0;
  let total = 0;
  let any = false;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (!Number.isFinite(v)) return NaN;
    const e = v > 0 ? v : 0;
    total += e;
    if (mask[i] !== 0) {
      inside += e;
      any = true;
    }
  }
  return any && total > 0 ? inside / total : NaN;
}

export interface ClassBalancedMean {
  /** Mean over classes of the per-class mean (the pointing game's usual accuracy). */
  mean: number;
  /** Classes with at least one usable value. */
  classes: number;
  /** Values used / left out (non-finite: degenerate maps or empty regions). */
  n: number;
  excluded: number;
}

/** Per-class mean of per-image values (e.g. pointing-game hits), then the mean over classes. */
export function classBalancedMean(values: ArrayLike<number>, classes: ArrayLike<number>): ClassBalancedMean {
  if (values.length !== classes.length) throw new Error(`classBalancedMean: ${values.length} values but ${classes.length} class labels`);
  const sums = new Map<number, { s: number; n: number }>();
  let excluded = 0;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      excluded++;
      continue;
    }
    const e = sums.get(classes[i]) ?? { s: 0, n: 0 };
    e.s += values[i];
    e.n++;
    sums.set(classes[i], e);
  }
  let total = 0;
  for (const e of sums.values()) total += e.s / e.n;
  return { mean: sums.size ? total / sums.size : NaN, classes: sums.size, n: values.length - excluded, excluded };
}
