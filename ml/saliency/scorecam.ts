// Score-CAM (Wang et al. 2020) the way CA-Stream computes it (design §4), minus its defects
// (seed-spec §7 #18: batch size 1 only, channel counts multiple of 128):
//   M_k = minmax(upsample_alignCorners(A_k))            (H×W, in [0, 1], ε in the denominator)
//   x_k = normalise(denormalise(x) ⊙ M_k)               (black outside the mask)
//   w_k = softmax probability of the target class on x_k (no softmax across channels,
//         unlike pytorch-grad-cam; no baseline subtraction)
//   cam = ReLU(Σ_k w_k A_k), min-max.
// The K masked images are forwarded in batches of at most maxBatch.
//
// convention 'pytorch-grad-cam' (ScoreCAM of pytorch-grad-cam 1.5.5) differs in three places:
//   M_k uses ε = 1e-8;  x_k = x ⊙ M_k on the NORMALISED tensor (masked areas become the mean
//   colour, not black);  w = softmax over channels of the target LOGITS s_k.
// Skipping all-zero channels stays exact there: they add nothing to Σ w_k A_k, and leaving their
// exp(s_k) out of the softmax's denominator only rescales every w_k by one positive factor, which
// ReLU commutes with and min-max removes.

import { axisTable, resizePlane } from '../metrics/upsample.js';
import { camPostProcess, weightedChannelSum } from './normalise.js';
import {
  checkLength,
  checkPositiveInt,
  DBL_EPSILON,
  throwIfAborted,
  type CamResult,
  type Floats,
  type ForwardProbs,
  type LongRunOptions,
} from './types.js';

/** Whose definition to follow: the original CA-Stream code (default) or pytorch-grad-cam. */
export type ScoreCamConvention = 'ca-stream' | 'pytorch-grad-cam';

export interface ScoreCamInput extends LongRunOptions {
  /** Target-layer activations, K×h×w. */
  A: Floats;
  K: number;
  h: number;
  w: number;
  /** The normalised input image, C×H×W (C = mean.length, normally 3). */
  image: Float32Array;
  H: number;
  W: number;
  mean: readonly number[];
  std: readonly number[];
  forwardProbs: ForwardProbs;
  target: number;
  maxBatch: number;
  convention?: ScoreCamConvention;
  /** n×classes logits (pytorch-grad-cam convention only; forwardProbs is not called then). */
  forwardLogits?: ForwardProbs;
}

export interface ScoreCamResult extends CamResult {
  weights: Float64Array;
  /** Channels actually forwarded; all-zero channels are skipped (their w_k cannot matter). */
  forwarded: number;
  forwardCalls: number;
}

/** Validates a forward output of n rows and returns the number of classes. */
export function checkProbs(probs: ArrayLike<number>, n: number, target: number, what: string): number {
  if (probs == null || typeof probs.length !== 'number') {
    throw new Error(`saliency: ${what} must return a Float32Array of n×classes probabilities`);
  }
  const classes = probs.length / n;
  if (!Number.isInteger(classes) || classes <= 0) {
    throw new Error(`saliency: ${what} returned ${probs.length} values for a batch of ${n} (not n×classes)`);
  }
  if (target >= classes) throw new Error(`saliency: target class ${target} out of range (${classes} classes)`);
  return classes;
}

export function checkTarget(target: number): void {
  if (!Number.isInteger(target) || target < 0) throw new Error(`saliency: target must be a class index ≥ 0, got ${target}`);
}

export function checkImage(image: Float32Array, C: number, H: number, W: number): void {
  checkPositiveInt('H', H);
  checkPositiveInt('W', W);
  checkLength('image', image, C * H * W, `C×H×W = ${C}×${H}×${W}`);
}

export function checkMeanStd(mean: readonly number[], std: readonly number[]): void {
  if (mean.length === 0 || mean.length !== std.length) {
    throw new Error(`saliency: mean (${mean.length} values) and std (${std.length}) must have one value per image channel`);
  }
  if (std.some((s) => !(s > 0))) throw new Error(`saliency: std values must be > 0, got [${std.join(', ')}]`);
}

export async function scorecam(input: ScoreCamInput): Promise<ScoreCamResult> {
  const { A, K, h, w, image, H, W, mean, std, forwardProbs, target, maxBatch } = input;
  checkPositiveInt('K', K);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  checkPositiveInt('maxBatch', maxBatch);
  checkTarget(target);
  checkMeanStd(mean, std);
  const C = mean.length;
  const hw = h * w;
  const HW = H * W;
  checkLength('activations A', A, K * hw, `K×h×w = ${K}×${h}×${w}`);
  checkImage(image, C, H, W);
  const convention = input.convention ?? 'ca-stream';
  if (convention !== 'ca-stream' && convention !== 'pytorch-grad-cam')
    throw new Error(`saliency: scorecam convention must be 'ca-stream' or 'pytorch-grad-cam', got '${String(convention)}'`);
  const pgc = convention === 'pytorch-grad-cam';
  if (pgc && !input.forwardLogits) throw new Error("saliency: scorecam with convention 'pytorch-grad-cam' needs input 'forwardLogits'");
  const forward = pgc ? input.forwardLogits! : forwardProbs;
  const maskEps = pgc ? 1e-8 : DBL_EPSILON;

  // normalise(pixels·m) = (pixels/std)·m − mean/std: precompute pixels/std once.
  const pixelsOverStd = new Float32Array(C * HW);
  for (let c = 0; c < C; c++) {
    for (let i = 0, o = c * HW; i < HW; i++) pixelsOverStd[o + i] = (image[o + i] * std[c] + mean[c]) / std[c];
  }

  const channels: number[] = [];
  for (let k = 0; k < K; k++) {
    let nonzero = false;
    for (let p = 0, off = k * hw; p < hw && !nonzero; p++) nonzero = A[off + p] !== 0;
    if (nonzero) channels.push(k);
  }

  const rows = axisTable(h, H, { alignCorners: true });
  const cols = axisTable(w, W, { alignCorners: true });
  const mask = new Float64Array(HW);
  const weights = new Float64Array(K);
  let forwardCalls = 0;
  for (let start = 0; start < channels.length; start += maxBatch) {
    throwIfAborted(input.signal);
    const chunk = channels.slice(start, start + maxBatch);
    const batch = new Float32Array(chunk.length * C * HW);
    chunk.forEach((k, b) => {
      resizePlane(A, k * hw, w, rows, cols, mask, 0);
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < HW; i++) {
        if (mask[i] < lo) lo = mask[i];
        if (mask[i] > hi) hi = mask[i];
      }
      const denom = hi - lo + maskEps;
      for (let i = 0; i < HW; i++) mask[i] = (mask[i] - lo) / denom;
      for (let c = 0; c < C; c++) {
        const src = c * HW;
        const dst = (b * C + c) * HW;
        if (pgc) for (let i = 0; i < HW; i++) batch[dst + i] = image[src + i] * mask[i];
        else {
          const offset = mean[c] / std[c];
          for (let i = 0; i < HW; i++) batch[dst + i] = pixelsOverStd[src + i] * mask[i] - offset;
        }
      }
    });
    const probs = await forward(batch, chunk.length);
    forwardCalls++;
    const classes = checkProbs(probs, chunk.length, target, pgc ? 'forwardLogits' : 'forwardProbs');
    chunk.forEach((k, b) => {
      weights[k] = probs[b * classes + target];
    });
    input.onProgress?.(Math.min(start + maxBatch, channels.length), channels.length);
  }
  if (pgc) softmaxInPlace(weights, channels);
  const cam = weightedChannelSum(A, weights, K, hw);
  return { ...camPostProcess(cam, h, w), weights, forwarded: channels.length, forwardCalls };
}

/** Softmax over the listed entries of v (the others stay 0), shifted by the maximum for stability. */
function softmaxInPlace(v: Float64Array, idx: readonly number[]): void {
  if (idx.length === 0) return;
  let mx = -Infinity;
  for (const k of idx) mx = Math.max(mx, v[k]);
  let z = 0;
  for (const k of idx) z += v[k] = Math.exp(v[k] - mx);
  for (const k of idx) v[k] /= z;
}
