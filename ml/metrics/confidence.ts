// Average Drop, Average Increase and Average Gain (design §5).
// Per-image values are kept (in percent, so their mean is the metric) for intervals and paired tests.
// Unlike the original, which averaged per-batch means (a short last batch weighed like a full one)
// and broke on a batch of one image, every image counts once.
import type { MapStatus } from './maps.js';
import { classifyMap, saliencyToImage } from './maps.js';
import type { MaskSpace } from './protocol.js';
import { argmaxRow, checkTarget, classesOf, type ScoredMaps } from './score.js';

export const CONFIDENCE_EPSILON = 2.220446049250313e-16;

export interface ConfidenceValues {
  /** 100·max(0, p − o)/(p + ε) per image. */
  drop: Float64Array;
  /** 100·1[o > p] per image (ties count 0). */
  increase: Float64Array;
  /** 100·max(0, o − p)/(1 − p + ε) per image. */
  gain: Float64Array;
  AD: number;
  AI: number;
  AG: number;
}

/** AD/AI/AG from p (target probability on each image) and o (on its masked image). */
export function confidenceMetrics(p: ArrayLike<number>, o: ArrayLike<number>, eps = CONFIDENCE_EPSILON): ConfidenceValues {
  if (p.length !== o.length) throw new Error(`confidenceMetrics: ${p.length} clean scores but ${o.length} masked scores`);
  const n = p.length;
  const drop = new Float64Array(n);
  const increase = new Float64Array(n);
  const gain = new Float64Array(n);
  let sd = 0;
  let si = 0;
  let sg = 0;
  for (let i = 0; i < n; i++) {
    const pi = p[i];
    const oi = o[i];
    drop[i] = (100 * Math.max(0, pi - oi)) / (pi + eps);
    increase[i] = oi > pi ? 100 : 0;
    gain[i] = (100 * Math.max(0, oi - pi)) / (1 - pi + eps);
    sd += drop[i];
    si += increase[i];
    sg += gain[i];
  }
  return { drop, increase, gain, AD: n ? sd / n : NaN, AI: n ? si / n : NaN, AG: n ? sg / n : NaN };
}

export interface MaskOptions {
  /** Number of images N in the batch (default 1); H·W = saliency.length / N. */
  images?: number;
  space?: MaskSpace;
  out?: Float32Array;
}

/**
 * Mask normalised NCHW images with per-image saliency maps S ∈ [0,1] at image resolution (N×H×W).
 * `pixel` space: normalise(denormalise(x)·S) = ((x·std + mean)·S − mean)/std (black where S = 0);
 * `normalised` space: x·S (mean colour where S = 0).
 */
export function maskImage(
  xNorm: Float32Array,
  saliency01: Float32Array,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
  opts: MaskOptions = {},
): Float32Array {
  const c = mean.length;
  const nImg = opts.images ?? 1;
  if (std.length !== c) throw new Error(`maskImage: mean has ${c} channels but std has ${std.length}`);
  if (!Number.isInteger(nImg) || nImg < 1) throw new Error(`maskImage: images must be a positive integer, got ${nImg}`);
  const plane = saliency01.length / nImg;
  if (c === 0 || !Number.isInteger(plane) || plane === 0 || xNorm.length !== nImg * c * plane)
    throw new Error(
      `maskImage: ${xNorm.length} image values do not match ${nImg} image(s) × ${c} channels × ${saliency01.length / nImg} saliency pixels`,
    );
  const out = opts.out ?? new Float32Array(xNorm.length);
  if (out.length !== xNorm.length) throw new Error(`maskImage: output buffer has ${out.length} values, expected ${xNorm.length}`);
  const pixel = (opts.space ?? 'pixel') === 'pixel';
  for (let i = 0; i < nImg; i++) {
    const sb = i * plane;
    for (let ch = 0; ch < c; ch++) {
      const xb = (i * c + ch) * plane;
      const m = mean[ch];
      const sd = std[ch];
      if (pixel) for (let j = 0; j < plane; j++) out[xb + j] = ((xNorm[xb + j] * sd + m) * saliency01[sb + j] - m) / sd;
      else for (let j = 0; j < plane; j++) out[xb + j] = xNorm[xb + j] * saliency01[sb + j];
    }
  }
  return out;
}

export interface ConfidenceEvalOptions extends ScoredMaps {
  /** Dataset normalisation (needed for the `pixel` mask space). */
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
}

export interface ConfidenceEvalResult extends ConfidenceValues {
  /** Target probability on the clean / masked image. */
  p: Float64Array;
  o: Float64Array;
  targets: Int32Array;
  statuses: MapStatus[];
}

/**
 * Score the clean and the masked images in batches and compute AD/AI/AG. Maps are classified
 * (`statuses`); the per-image values of degenerate maps are still computed — aggregate() decides.
 */
export async function confidenceEval(o: ConfidenceEvalOptions): Promise<ConfidenceEvalResult> {
  const { c, h, w } = o.dims;
  const plane = h * w;
  const chw = c * plane;
  const N = o.images.length / chw;
  if (!Number.isInteger(N) || N < 1) throw new Error(`confidenceEval: ${o.images.length} image values are not whole ${c}×${h}×${w} images`);
  const sz = o.saliencySize ?? { h, w };
  if (o.saliency.length !== N * sz.h * sz.w)
    throw new Error(`confidenceEval: saliency has ${o.saliency.length} values, expected ${N}×${sz.h}×${sz.w}`);
  const sal =
    sz.h === h && sz.w === w && !o.protocol.saliency.renormalise
      ? o.saliency
      : saliencyToImage(o.saliency, N, sz.h, sz.w, h, w, o.protocol);
  const rule = o.protocol.target;
  if (rule === 'gt' && (!o.targets || o.targets.length !== N))
    throw new Error(`confidenceEval: protocol "${o.protocol.name}" scores the ground truth, so ${N} targets are needed`);
  const maxBatch = Math.max(1, Math.floor(o.maxBatch ?? 32));
  const statuses: MapStatus[] = [];
  for (let i = 0; i < N; i++) statuses.push(classifyMap(sal, o.protocol.degenerate.constantRelTol, i * plane, plane));
  const targets = new Int32Array(N);
  const p = new Float64Array(N);
  const q = new Float64Array(N);
  const buf = new Float32Array(Math.min(maxBatch, N) * chw);
  let done = 0;
  for (const masked of [false, true]) {
    for (let b0 = 0; b0 < N; b0 += maxBatch) {
      o.signal?.throwIfAborted();
      const nb = Math.min(maxBatch, N - b0);
      const view = buf.subarray(0, nb * chw);
      const src = o.images.subarray(b0 * chw, (b0 + nb) * chw);
      if (masked)
        maskImage(src, sal.subarray(b0 * plane, (b0 + nb) * plane), o.mean, o.std, {
          images: nb,
          space: o.protocol.confidence.maskSpace,
          out: view,
        });
      else view.set(src);
      const probs = await o.score(view, nb);
      const k = classesOf(probs, nb);
      for (let r = 0; r < nb; r++) {
        const i = b0 + r;
        if (!masked) {
          targets[i] = rule === 'pred' ? argmaxRow(probs, r, k) : Number(o.targets![i]);
          checkTarget(targets[i], k, i);
          p[i] = probs[r * k + targets[i]];
        } else q[i] = probs[r * k + targets[i]];
      }
      done += nb;
      o.onProgress?.(done, 2 * N);
    }
  }
  return { ...confidenceMetrics(p, q, o.protocol.confidence.epsilon), p, o: q, targets, statuses };
}
