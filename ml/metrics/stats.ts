// Bootstrap statistics over per-image values, deterministic given a seed.
import { aggregate, keptIndices, type Aggregate, type AggregateOptions, type MapStatus } from './maps.js';

import { mulberry32 } from '../random/mulberry32.js';

/** The bootstrap's resampling stream (mulberry32). */
export const seededRandom = mulberry32;

/** Linear-interpolated quantile of an ascending-sorted array (NumPy's default "linear" rule). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  B?: number;
  /** RNG seed (default 0). */
  seed?: number;
  /** Confidence level (default 0.95). */
  level?: number;
}

export interface MeanCI {
  mean: number;
  lo: number;
  hi: number;
  /** Number of finite values used (non-finite values are dropped and counted). */
  n: number;
  dropped: number;
  B: number;
  seed: number;
  level: number;
  method: 'percentile-bootstrap';
}

function finite(values: ArrayLike<number>): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) out.push(values[i]);
  return Float64Array.from(out);
}

function bootstrapMean(v: Float64Array, dropped: number, opts: BootstrapOptions): MeanCI {
  const B = opts.B ?? 1000;
  const seed = opts.seed ?? 0;
  const level = opts.level ?? 0.95;
  if (!Number.isInteger(B) || B < 1) throw new Error(`bootstrap: B must be a positive integer, got ${B}`);
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap: level must be in (0, 1), got ${level}`);
  const n = v.length;
  const base = { n, dropped, B, seed, level, method: 'percentile-bootstrap' as const };
  if (n === 0) return { mean: NaN, lo: NaN, hi: NaN, ...base };
  let s = 0;
  for (let i = 0; i < n; i++) s += v[i];
  const mean = s / n;
  const rnd = seededRandom(seed);
  const means = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += v[Math.floor(rnd() * n)];
    means[b] = acc / n;
  }
  means.sort();
  const a = (1 - level) / 2;
  return { mean, lo: quantileSorted(means, a), hi: quantileSorted(means, 1 - a), ...base };
}

/** Mean with a percentile-bootstrap confidence interval (non-finite values dropped and counted). */
export function meanWithCI(values: ArrayLike<number>, opts: BootstrapOptions = {}): MeanCI {
  const v = finite(values);
  return bootstrapMean(v, values.length - v.length, opts);
}

export interface PairedCI extends MeanCI {
  /** mean(a) and mean(b) over the same pairs. */
  meanA: number;
  meanB: number;
}

/**
 * Paired comparison: mean of a_i − b_i over images where both are finite, with a bootstrap interval
 * resampling images (pairs stay together). Positive = a larger.
 */
export function pairedDifference(a: ArrayLike<number>, b: ArrayLike<number>, opts: BootstrapOptions = {}): PairedCI {
  if (a.length !== b.length) throw new Error(`pairedDifference: ${a.length} values vs ${b.length} values (they must be paired per image)`);
  const d: number[] = [];
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) continue;
    d.push(a[i] - b[i]);
    sa += a[i];
    sb += b[i];
  }
  const r = bootstrapMean(Float64Array.from(d), a.length - d.length, opts);
  return { ...r, meanA: d.length ? sa / d.length : NaN, meanB: d.length ? sb / d.length : NaN };
}

export interface Summary extends MeanCI {
  excluded: Aggregate['excluded'];
}

/**
 * What a report row needs: the mean over images with usable maps (see aggregate), its bootstrap
 * interval, and how many images were left out and why.
 */
export function summarise(
  values: ArrayLike<number>,
  statuses: readonly MapStatus[],
  opts: AggregateOptions & BootstrapOptions = {},
): Summary {
  const agg = aggregate(values, statuses, opts);
  const kept = keptIndices(values, statuses, opts);
  const ci = meanWithCI(
    kept.map((i) => values[i]),
    opts,
  );
  return { ...ci, dropped: values.length - kept.length, excluded: agg.excluded };
}

export interface AdjustedCI extends MeanCI {
  /** Mean CA − GAP of the method and of the baseline over the images all four values cover. */
  methodDiff: number;
  baselineDiff: number;
}

/**
 * Baseline-adjusted paired difference: per image, (a_i − b_i) − (a0_i − b0_i), where a/b are the
 * method's scores under the two models and a0/b0 the baseline's (e.g. the random map). A gain
 * that the baseline map shows as well comes from the models (their calibration), not from the
 * explanation; what is left is the explanation's share. The bootstrap resamples images, so all
 * four values of an image stay together; images missing any of them are dropped and counted.
 */
export function adjustedDifference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  a0: ArrayLike<number>,
  b0: ArrayLike<number>,
  opts: BootstrapOptions = {},
): AdjustedCI {
  const n = a.length;
  if (b.length !== n || a0.length !== n || b0.length !== n)
    throw new Error(`adjustedDifference: ${n}, ${b.length}, ${a0.length} and ${b0.length} values (they must be paired per image)`);
  const method = new Float64Array(n);
  const baseline = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ok = Number.isFinite(a[i]) && Number.isFinite(b[i]) && Number.isFinite(a0[i]) && Number.isFinite(b0[i]);
    method[i] = ok ? a[i] - b[i] : NaN;
    baseline[i] = ok ? a0[i] - b0[i] : NaN;
  }
  const { meanA, meanB, ...r } = pairedDifference(method, baseline, opts);
  return { ...r, methodDiff: meanA, baselineDiff: meanB };
}
