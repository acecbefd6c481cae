// Faithfulness and localisation scores of several methods' maps on one batch of images. The model
// enters only as the batched probability function (ONNX Runtime); every number comes from
// ml/metrics. Per-image values are returned whole (degenerate maps included, with their status) so
// the caller can aggregate and count them.
import { confidenceEval } from '../metrics/confidence.js';
import { insertionDeletion } from '../metrics/insdel.js';
import { classifyMap, saliencyToImage, type MapStatus } from '../metrics/maps.js';
import type { Protocol } from '../metrics/protocol.js';
import type { ScoreFn } from '../metrics/score.js';
import { roadEval, type RoadOrder, type RoadProtocol, type RoadResult } from '../metrics/road.js';
import { metricValues, type CoreMetricKey, type ImageEvidence, type RegionMetricKey } from '../metrics/table.js';

/** One image's scores: every metric of ml/metrics/table.ts (those needing a mask when it has one). */
export type ImageRow = {
  id: number;
  method: string;
  target: number;
  status: MapStatus;
  /** Target probability on the clean and the masked image. */
  p: number;
  o: number;
} & Record<CoreMetricKey, number> &
  Partial<Record<RegionMetricKey, number>>;

export interface CurveSums {
  insertion: number[];
  deletion: number[];
  /** Images summed (status ok, or constant for kept-constant methods). */
  n: number;
}

/** Per ROAD order: sums over images of the target probability and top-1 hits at each percentage. */
export type RoadSums = Partial<Record<RoadOrder, { prob: number[]; correct: number[] }>> & { n: number };

export interface BatchScores {
  rows: ImageRow[];
  curves: Record<string, CurveSums>;
  /** Present when ROAD ran. */
  road?: Record<string, RoadSums>;
  /** Per image: 1 when the label is the top-1 / within the top-5 class. */
  top1: number[];
  top5: number[];
  /** Per image: 1 when the clean image's scores hold a NaN or ±Inf (never counted as correct). */
  nonFinite: number[];
}

export interface ScoreBatchInput {
  images: Float32Array;
  size: number;
  ids: readonly number[];
  labels: readonly number[];
  /** Per method: n maps of h×w. */
  maps: Record<string, { h: number; w: number; data: Float32Array }>;
  /** Per image: object mask at size×size (0/1), or null. Omit for no localisation. */
  regions?: Array<Uint8Array | null>;
  protocol: Protocol;
  mean: readonly number[];
  std: readonly number[];
  score: ScoreFn;
  maxBatch: number;
  keepConstant: readonly string[];
  /** Run ROAD with this protocol (absent: not run). */
  road?: RoadProtocol;
  /** Per method: each image's sanity-check similarities (sanity.ts), to enter the rows. */
  sanity?: Record<string, { rank: ArrayLike<number>; ssim: ArrayLike<number> }>;
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void;
}

function rowIsFinite(probs: Float32Array, row: number, classes: number): boolean {
  for (let j = 0; j < classes; j++) if (!Number.isFinite(probs[row * classes + j])) return false;
  return true;
}

/** 1 when `label` ranks within the top k of the row (ties go to the lower class index). */
function topk(probs: Float32Array, row: number, classes: number, label: number, k: number): number {
  const v = probs[row * classes + label];
  let above = 0;
  for (let j = 0; j < classes; j++) if (probs[row * classes + j] > v || (probs[row * classes + j] === v && j < label)) above++;
  return above < k ? 1 : 0;
}

export async function scoreBatch(o: ScoreBatchInput): Promise<BatchScores> {
  const n = o.ids.length;
  const H = o.size;
  const dims = { c: 3, h: H, w: H };
  const clean = await o.score(o.images, n);
  const classes = clean.length / n;
  const top1: number[] = [];
  const top5: number[] = [];
  const nonFinite: number[] = [];
  for (let i = 0; i < n; i++) {
    // Every comparison with NaN is false, so a NaN row would rank the label first.
    const finite = rowIsFinite(clean, i, classes);
    top1.push(finite ? topk(clean, i, classes, o.labels[i], 1) : 0);
    top5.push(finite ? topk(clean, i, classes, o.labels[i], 5) : 0);
    nonFinite.push(finite ? 0 : 1);
  }
  const rows: ImageRow[] = [];
  const curves: Record<string, CurveSums> = {};
  const methods = Object.keys(o.maps);
  const roadSums: Record<string, RoadSums> = {};
  let step = 0;
  for (const m of methods) {
    o.signal?.throwIfAborted();
    const { h, w, data } = o.maps[m];
    const common = {
      images: o.images,
      dims,
      saliency: data,
      saliencySize: { h, w },
      targets: o.labels,
      protocol: o.protocol,
      mean: o.mean,
      std: o.std,
      score: o.score,
      maxBatch: o.maxBatch,
      signal: o.signal,
    };
    const conf = await confidenceEval(common);
    const insdel = await insertionDeletion(common);
    const keep = o.keepConstant.includes(m);
    const pts = insdel.steps + 1;
    const sums: CurveSums = { insertion: new Array(pts).fill(0), deletion: new Array(pts).fill(0), n: 0 };
    const up = o.regions || o.road ? saliencyToImage(data, n, h, w, H, H, o.protocol) : undefined;
    let road: RoadResult | undefined;
    if (o.road) {
      road = await roadEval({
        images: o.images,
        dims,
        saliency: up!,
        ids: o.ids,
        targets: conf.targets,
        labels: o.labels,
        std: o.std,
        score: o.score,
        maxBatch: o.maxBatch,
        road: o.road,
        signal: o.signal,
      });
      roadSums[m] = { n: 0 };
      for (const which of o.road.orders)
        roadSums[m][which] = { prob: new Array(o.road.percentages.length).fill(0), correct: new Array(o.road.percentages.length).fill(0) };
    }
    for (let i = 0; i < n; i++) {
      const status = conf.statuses[i];
      const evidence: ImageEvidence = {
        drop: conf.drop[i],
        increase: conf.increase[i],
        gain: conf.gain[i],
        insertion: insdel.insertion.auc[i],
        deletion: insdel.deletion.auc[i],
        map: data.subarray(i * h * w, (i + 1) * h * w),
        h,
        w,
      };
      const mask = o.regions?.[i];
      if (up && mask) {
        const map = up.subarray(i * H * H, (i + 1) * H * H);
        const st = classifyMap(map, o.protocol.degenerate.constantRelTol);
        evidence.region = { map, status: st, mask, size: H, keepConstant: keep, tolerance: o.protocol.localisation.tolerance };
      }
      if (road) evidence.road = { morf: road.mean.morf?.[i], lerf: road.mean.lerf?.[i] };
      const sane = o.sanity?.[m];
      if (sane) evidence.sanity = { rank: sane.rank[i], ssim: sane.ssim[i] };
      const row = {
        id: o.ids[i],
        method: m,
        target: conf.targets[i],
        status,
        ...(metricValues(evidence) as Record<CoreMetricKey, number>),
        p: conf.p[i],
        o: conf.o[i],
      };
      rows.push(row);
      if (status === 'ok' || (status === 'constant' && keep)) {
        for (let t = 0; t < pts; t++) {
          sums.insertion[t] += insdel.insertion.curves[i * pts + t];
          sums.deletion[t] += insdel.deletion.curves[i * pts + t];
        }
        sums.n++;
        if (road && o.road) {
          const P = o.road.percentages.length;
          for (const which of o.road.orders)
            for (let t = 0; t < P; t++) {
              roadSums[m][which]!.prob[t] += road.prob[which]![i * P + t];
              roadSums[m][which]!.correct[t] += road.correct[which]![i * P + t];
            }
          roadSums[m].n++;
        }
      }
    }
    curves[m] = sums;
    o.onProgress?.(++step / methods.length);
  }
  return { rows, curves, top1, top5, nonFinite, ...(o.road ? { road: roadSums } : {}) };
}
