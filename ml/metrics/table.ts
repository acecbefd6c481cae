// The metrics, one line each: the evaluate stage computes every row of this table per image, the
// evaluation summary, the report's columns, its paired comparisons and its summary tables all read
// it. Adding a metric = one line here (its value may call a module of its own).
import { energyPointingGame, pointingGame } from './localisation.js';
import type { MapStatus } from './maps.js';

/** What is known about one image's map once the batch computations are done. */
export interface ImageEvidence {
  /** Per-image Average Drop / Increase (0|100) / Gain terms, in percent (design §5). */
  drop: number;
  increase: number;
  gain: number;
  /** Insertion and deletion AUCs, fractions in [0, 1]. */
  insertion: number;
  deletion: number;
  /** The stored map (h×w, feature resolution unless the method says otherwise). */
  map: Float32Array;
  h: number;
  w: number;
  /** Present when the index has an object mask for the image. */
  region?: RegionEvidence;
  /** Present when the evaluation runs ROAD (road.ts): mean target probability over the percentages. */
  road?: { morf?: number; lerf?: number };
  /** Present when the evaluation runs the sanity check: similarity to the fully randomised model's map. */
  sanity?: { rank: number; ssim: number };
}

export interface RegionEvidence {
  /** The map upsampled to the image (size×size) and its status there. */
  map: Float32Array;
  status: MapStatus;
  mask: Uint8Array;
  size: number;
  /** The method's constant maps are kept (baselines that are constant by design). */
  keepConstant: boolean;
  /** Pointing-game tolerance in pixels. */
  tolerance: number;
}

export interface MetricDef {
  /** Field name in per_image.jsonl and evaluation.json. */
  key: string;
  /** Column label (the direction arrow is added from `direction`). */
  label: string;
  direction: 'higher' | 'lower';
  /** Factor from the stored value to the reported one (AUCs are fractions, the paper shows ×100). */
  scale: number;
  /** Needs an object mask: computed only when the index has one for the image. */
  needsRegion: boolean;
  /** Computed only when the evaluation asks for it (its evidence field is then present). */
  optIn?: 'road' | 'sanity';
  /** Shown in summary.md and the sweep headline (the full HTML table shows every metric). */
  inSummary: boolean;
  /** NaN = no usable value for this image (left out of the mean and counted). */
  value(e: ImageEvidence): number;
}

/** In the paper's column order. */
export const METRICS = [
  { key: 'AD', label: 'AD', direction: 'lower', scale: 1, needsRegion: false, inSummary: true, value: (e) => e.drop },
  { key: 'AG', label: 'AG', direction: 'higher', scale: 1, needsRegion: false, inSummary: true, value: (e) => e.gain },
  { key: 'AI', label: 'AI', direction: 'higher', scale: 1, needsRegion: false, inSummary: true, value: (e) => e.increase },
  { key: 'insertion', label: 'I', direction: 'higher', scale: 100, needsRegion: false, inSummary: true, value: (e) => e.insertion },
  { key: 'deletion', label: 'D', direction: 'lower', scale: 100, needsRegion: false, inSummary: true, value: (e) => e.deletion },
  { key: 'pointing', label: 'PG', direction: 'higher', scale: 100, needsRegion: true, inSummary: false, value: pointing },
  { key: 'energy', label: 'EPG', direction: 'higher', scale: 100, needsRegion: true, inSummary: true, value: energy },
  // ROAD (Rong et al. 2022), mean target probability over the percentages after removing the most
  // (MoRF) or the least (LeRF) relevant pixels; combined = (LeRF − MoRF)/2 as pytorch-grad-cam's ROADCombined.
  {
    key: 'road_morf',
    label: 'ROAD-MoRF',
    direction: 'lower',
    scale: 100,
    needsRegion: false,
    optIn: 'road',
    inSummary: false,
    value: (e) => e.road?.morf ?? NaN,
  },
  {
    key: 'road_lerf',
    label: 'ROAD-LeRF',
    direction: 'higher',
    scale: 100,
    needsRegion: false,
    optIn: 'road',
    inSummary: false,
    value: (e) => e.road?.lerf ?? NaN,
  },
  { key: 'road', label: 'ROAD', direction: 'higher', scale: 100, needsRegion: false, optIn: 'road', inSummary: false, value: roadCombined },
  // Model-randomisation sanity check (Adebayo et al. 2018): Spearman ρ and SSIM between the map of
  // the trained model and that of the fully randomised one (every cascade step is in evaluation.json).
  // Lower = the map depends more on the weights (the check is passed as they approach 0).
  {
    key: 'sanity_rank',
    label: 'MPRT-ρ',
    direction: 'lower',
    scale: 1,
    needsRegion: false,
    optIn: 'sanity',
    inSummary: false,
    value: (e) => e.sanity?.rank ?? NaN,
  },
  {
    key: 'sanity_ssim',
    label: 'MPRT-SSIM',
    direction: 'lower',
    scale: 1,
    needsRegion: false,
    optIn: 'sanity',
    inSummary: false,
    value: (e) => e.sanity?.ssim ?? NaN,
  },
] as const satisfies readonly MetricDef[];

export type MetricKey = (typeof METRICS)[number]['key'];
/** Metrics every scored image has (the others need an object mask). */
export type CoreMetricKey = Exclude<Extract<(typeof METRICS)[number], { needsRegion: false }>, { optIn: string }>['key'];
export type RegionMetricKey = Exclude<MetricKey, CoreMetricKey>;

/** A metric's column label with its direction: AD↓, EPG↑. */
export function metricLabel(m: Pick<MetricDef, 'label' | 'direction'>): string {
  return `${m.label}${m.direction === 'higher' ? '↑' : '↓'}`;
}

/** The reporting scale of a metric key (1 for keys not in the table). */
export function metricScale(key: string, table: readonly MetricDef[] = METRICS): number {
  return table.find((m) => m.key === key)?.scale ?? 1;
}

/** The metrics that apply to an image: all of them with an object mask, the core ones without. */
export function metricValues(e: ImageEvidence, table: readonly MetricDef[] = METRICS): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of table) if ((!m.needsRegion || e.region) && (!m.optIn || e[m.optIn])) out[m.key] = m.value(e);
  return out;
}

/** Core = every scored image has it: no object mask needed, not opt-in. */
export function isCoreMetric(m: Pick<MetricDef, 'needsRegion' | 'optIn'>): boolean {
  return !m.needsRegion && !m.optIn;
}

function roadCombined(e: ImageEvidence): number {
  const r = e.road;
  return r && r.morf !== undefined && r.lerf !== undefined ? (r.lerf - r.morf) / 2 : NaN;
}

function pointing(e: ImageEvidence): number {
  const r = e.region;
  if (!r || r.status !== 'ok') return NaN;
  return pointingGame(r.map, { mask: r.mask }, r.size, r.size, r.tolerance).hit;
}

// A kept constant map (a baseline) has a meaningful energy share (the object's area) but no maximum.
function energy(e: ImageEvidence): number {
  const r = e.region;
  if (!r || !(r.status === 'ok' || (r.status === 'constant' && r.keepConstant))) return NaN;
  return energyPointingGame(r.map, { mask: r.mask }, r.size, r.size);
}
