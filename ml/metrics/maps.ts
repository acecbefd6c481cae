// Degenerate-map detection, aggregation that never silently averages degenerate maps, and the
// protocol's rule for bringing a saliency map to image resolution.
import type { Protocol } from './protocol.js';
import { minMaxNormalise, resizeBilinear } from './upsample.js';

/** `nan`: some value is NaN or ±Infinity; `constant`: no ranking information (all-zero maps included). */
export type MapStatus = 'ok' | 'constant' | 'nan';

/** Classify one map (a slice of `data` from `offset`, `size` values). */
export function classifyMap(data: ArrayLike<number>, relTol = 1e-6, offset = 0, size = data.length - offset): MapStatus {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = offset; i < offset + size; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) return 'nan';
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (size === 0) return 'constant';
  return hi - lo <= relTol * Math.max(Math.abs(lo), Math.abs(hi)) ? 'constant' : 'ok';
}

/** Classify `count` consecutive maps of `size` values each. */
export function classifyMaps(data: ArrayLike<number>, count: number, size: number, relTol = 1e-6): MapStatus[] {
  if (data.length !== count * size) throw new Error(`classifyMaps: ${data.length} values are not ${count} maps of ${size}`);
  const out: MapStatus[] = [];
  for (let i = 0; i < count; i++) out.push(classifyMap(data, relTol, i * size, size));
  return out;
}

export interface Aggregate {
  mean: number;
  /** Number of values that entered the mean. */
  n: number;
  /** Values left out, by reason. `nonFinite` counts values of ok maps that were NaN anyway (e.g. empty mask). */
  excluded: { constant: number; nan: number; nonFinite: number };
}

export interface AggregateOptions {
  /**
   * Keep constant maps in the mean (default false). Baselines such as the all-ones map are constant by
   * design; reports that show them should pass true for those rows, and the count is still returned.
   */
  includeConstant?: boolean;
}

/** Mean of per-image values with degenerate maps left out and counted. */
export function aggregate(values: ArrayLike<number>, statuses: readonly MapStatus[], opts: AggregateOptions = {}): Aggregate {
  if (values.length !== statuses.length) throw new Error(`aggregate: ${values.length} values but ${statuses.length} map statuses`);
  const excluded = { constant: 0, nan: 0, nonFinite: 0 };
  let sum = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const s = statuses[i];
    if (s === 'nan') {
      excluded.nan++;
      continue;
    }
    if (s === 'constant' && !opts.includeConstant) {
      excluded.constant++;
      continue;
    }
    const v = values[i];
    if (!Number.isFinite(v)) {
      excluded.nonFinite++;
      continue;
    }
    sum += v;
    n++;
  }
  return { mean: n > 0 ? sum / n : NaN, n, excluded };
}

/** Indices of the values `aggregate` would keep (for bootstrap intervals over the same set). */
export function keptIndices(values: ArrayLike<number>, statuses: readonly MapStatus[], opts: AggregateOptions = {}): number[] {
  const keep: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const s = statuses[i];
    if (s === 'nan' || (s === 'constant' && !opts.includeConstant) || !Number.isFinite(values[i])) continue;
    keep.push(i);
  }
  return keep;
}

/**
 * Bring `count` maps of h×w to H×W following the protocol (bilinear with its alignCorners rule, then
 * optional min-max). Maps already at H×W are copied unchanged (and re-normalised if asked).
 */
export function saliencyToImage(
  maps: Float32Array,
  count: number,
  h: number,
  w: number,
  H: number,
  W: number,
  protocol: Protocol,
): Float32Array {
  if (maps.length !== count * h * w) throw new Error(`saliency maps: ${maps.length} values, expected ${count}×${h}×${w}`);
  const up =
    h === H && w === W
      ? Float32Array.from(maps)
      : resizeBilinear(maps, h, w, H, W, { planes: count, alignCorners: protocol.saliency.upsample.alignCorners });
  return protocol.saliency.renormalise ? minMaxNormalise(up, H * W, protocol.saliency.epsilon, up) : up;
}
