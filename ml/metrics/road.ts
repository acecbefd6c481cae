// ROAD, RemOve And Debias (Rong, Leemann et al., ICML 2022; xai-anchors §6.7), without retraining:
// for each fraction p, remove pixels in the map's order and fill them by noisy linear imputation
// (imputation.ts), then score the unchanged model. Follows the official code (tleemann/road_evaluation,
// road/imputed_dataset.py, road/utils.py):
// - the map is min-max rescaled, s' = (s − min)/(max − min + 1e-5), and one fixed field of
//   1e-4·N(0,1) jitter is added to break ties (one field per (order, p), shared by every image,
//   as the official dataset object draws it once);
// - MoRF at p removes the first ⌊HW·p⌋ pixels of the descending order (p = fraction removed);
//   LeRF at p removes the pixels after the first ⌊HW·p⌋ (p = fraction KEPT): the official asymmetry;
// - the imputation noise is σ = 0.01 in [0,1] pixel units (applied here as 0.01/std on normalised
//   pixels, which is the same thing for a linear imputer);
// - official percentages [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9] (experiments/cifar10/*_params.json).
// Per image it returns the target probability and whether the label is the top-1 class at each p.
import { noisyLinearImpute, IMPUTATION_TOLERANCE } from './imputation.js';
import { argmaxRow, checkTarget, classesOf, type ImageDims, type ScoreFn } from './score.js';
import { Rng } from '../random/xoshiro.js';

export type RoadOrder = 'morf' | 'lerf';

export interface RoadProtocol {
  percentages: number[];
  orders: RoadOrder[];
  /** Imputation noise σ in [0,1] pixel units. */
  noise: number;
  /** Tie-breaking jitter added to the rescaled map. */
  jitter: number;
  /** ε of the min-max rescaling. */
  rescaleEpsilon: number;
  /** Seeds the jitter fields and the imputation noise. */
  seed: number;
  /** Relative residual of the sparse solve. */
  tolerance: number;
  /** How p is read per order (recorded for readers: the official asymmetry). */
  fraction: { morf: 'removed'; lerf: 'kept' };
}

export const ROAD_DEFAULTS: RoadProtocol = {
  percentages: [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9],
  orders: ['morf', 'lerf'],
  noise: 0.01,
  jitter: 1e-4,
  rescaleEpsilon: 1e-5,
  seed: 0,
  tolerance: IMPUTATION_TOLERANCE,
  fraction: { morf: 'removed', lerf: 'kept' },
};

const ORDER_KEY: Record<RoadOrder, number> = { morf: 0, lerf: 1 };

/** The jitter field of one (order, percentage index), shared by every image. */
export function roadJitter(plane: number, order: RoadOrder, pi: number, r: Pick<RoadProtocol, 'jitter' | 'seed'>): Float64Array {
  const rng = new Rng(r.seed, 0x20ad, ORDER_KEY[order], pi);
  const out = new Float64Array(plane);
  for (let j = 0; j < plane; j++) out[j] = r.jitter * rng.normal();
  return out;
}

/** Pixel indices by decreasing rescaled-and-jittered saliency (stable: ties by raster index). */
export function roadOrder(map: ArrayLike<number>, jitter: ArrayLike<number>, eps: number): Int32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let j = 0; j < map.length; j++) {
    lo = Math.min(lo, map[j]);
    hi = Math.max(hi, map[j]);
  }
  const v = new Float64Array(map.length);
  for (let j = 0; j < map.length; j++) v[j] = (map[j] - lo) / (hi - lo + eps) + jitter[j];
  const idx = Int32Array.from({ length: map.length }, (_, j) => j);
  return idx.sort((a, b) => v[b] - v[a] || a - b);
}

/** 1 = kept, 0 = removed, for order `order` at fraction p of the official code. */
export function roadKeep(order: Int32Array, p: number, which: RoadOrder): Uint8Array {
  const n = order.length;
  const cut = Math.floor(n * p);
  const keep = new Uint8Array(n).fill(1);
  if (which === 'morf') for (let k = 0; k < cut; k++) keep[order[k]] = 0;
  else for (let k = cut; k < n; k++) keep[order[k]] = 0;
  return keep;
}

export interface RoadInput {
  /** N normalised NCHW images. */
  images: Float32Array;
  dims: ImageDims;
  /** N maps at image resolution (H×W each). */
  saliency: Float32Array;
  /** Image ids: the imputation noise stream of an image depends on its id only (shards do not matter). */
  ids: readonly number[];
  /** Classes scored (the evaluate protocol's target) and labels (for accuracy). */
  targets: ArrayLike<number>;
  labels: ArrayLike<number>;
  std: ArrayLike<number>;
  score: ScoreFn;
  maxBatch: number;
  road: RoadProtocol;
  signal?: AbortSignal;
}

export interface RoadResult {
  /** Per order: N×P target probabilities and top-1 hits (1/0), image-major. */
  prob: Partial<Record<RoadOrder, Float64Array>>;
  correct: Partial<Record<RoadOrder, Uint8Array>>;
  /** Per order: each image's mean target probability over the percentages. */
  mean: Partial<Record<RoadOrder, Float64Array>>;
}

export async function roadEval(o: RoadInput): Promise<RoadResult> {
  const { c, h, w } = o.dims;
  const plane = h * w;
  const chw = c * plane;
  const N = o.images.length / chw;
  const P = o.road.percentages.length;
  if (!Number.isInteger(N) || o.saliency.length !== N * plane)
    throw new Error(`roadEval: ${o.images.length} image values and ${o.saliency.length} map values do not match N×${c}×${h}×${w}`);
  if (o.ids.length !== N || o.targets.length !== N || o.labels.length !== N)
    throw new Error(`roadEval: ${N} images need ${N} ids, targets and labels`);
  for (const p of o.road.percentages) if (!(p > 0 && p < 1)) throw new Error(`roadEval: percentages must lie in (0, 1), got ${p}`);
  const noise = Array.from(o.std, (s) => o.road.noise / s);
  const res: RoadResult = { prob: {}, correct: {}, mean: {} };
  const maxBatch = Math.max(1, Math.floor(o.maxBatch));
  for (const which of o.road.orders) {
    const prob = new Float64Array(N * P);
    const correct = new Uint8Array(N * P);
    for (let pi = 0; pi < P; pi++) {
      const jitter = roadJitter(plane, which, pi, o.road);
      const p = o.road.percentages[pi];
      for (let b0 = 0; b0 < N; b0 += maxBatch) {
        o.signal?.throwIfAborted();
        const nb = Math.min(maxBatch, N - b0);
        const batch = new Float32Array(nb * chw);
        for (let r = 0; r < nb; r++) {
          const i = b0 + r;
          const order = roadOrder(o.saliency.subarray(i * plane, (i + 1) * plane), jitter, o.road.rescaleEpsilon);
          const rng = new Rng(o.road.seed, 0x20ad, ORDER_KEY[which], pi, o.ids[i]);
          const imputed = noisyLinearImpute(o.images.subarray(i * chw, (i + 1) * chw), roadKeep(order, p, which), h, w, {
            noise,
            normal: () => rng.normal(),
            tol: o.road.tolerance,
          });
          batch.set(imputed, r * chw);
        }
        const probs = await o.score(batch, nb);
        const k = classesOf(probs, nb);
        for (let r = 0; r < nb; r++) {
          const i = b0 + r;
          const t = Number(o.targets[i]);
          checkTarget(t, k, i);
          prob[i * P + pi] = probs[r * k + t];
          correct[i * P + pi] = argmaxRow(probs, r, k) === Number(o.labels[i]) ? 1 : 0;
        }
      }
    }
    const mean = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let pi = 0; pi < P; pi++) s += prob[i * P + pi];
      mean[i] = s / P;
    }
    res.prob[which] = prob;
    res.correct[which] = correct;
    res.mean[which] = mean;
  }
  return res;
}
