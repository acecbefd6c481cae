// Ablation-CAM (Desai & Ramaswamy 2020): w_k = (y − y_k) / y, where y is the target score with the
// activations intact and y_k the score with channel k replaced by `ablationValue` (0 for post-ReLU
// layer4 features; pytorch-grad-cam uses min − 1e7 when activations can be negative). The forward
// runs from the target layer on, so the caller supplies forwardFromLayer.
//
// Division by y: min-max is invariant to a positive scale, so only y's sign matters to the map;
// y = 0 leaves the weights undefined and the map is reported degenerate.

import { camPostProcess, weightedChannelSum } from './normalise.js';
import {
  checkLength,
  checkPositiveInt,
  throwIfAborted,
  type CamResult,
  type Floats,
  type ForwardFromLayer,
  type LongRunOptions,
} from './types.js';

export interface AblationCamInput extends LongRunOptions {
  A: Floats;
  K: number;
  h: number;
  w: number;
  /** n×K×h×w activations → n target scores (normally the target logit). */
  forwardFromLayer: ForwardFromLayer;
  /** y on the intact activations, if already known; otherwise it is computed in the first batch. */
  score?: number;
  maxBatch: number;
  ablationValue?: number;
}

export interface AblationCamResult extends CamResult {
  weights: Float64Array;
  score: number;
  /** Channels actually forwarded: a channel already equal to ablationValue everywhere has y_k = y. */
  forwarded: number;
  forwardCalls: number;
}

export async function ablationcam(input: AblationCamInput): Promise<AblationCamResult> {
  const { A, K, h, w, forwardFromLayer, maxBatch } = input;
  checkPositiveInt('K', K);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  checkPositiveInt('maxBatch', maxBatch);
  const hw = h * w;
  const n = K * hw;
  checkLength('activations A', A, n, `K×h×w = ${K}×${h}×${w}`);
  const value = input.ablationValue ?? 0;

  // Work items: -1 = intact activations (only when y is not given), k = channel k ablated.
  const items: number[] = [];
  if (input.score === undefined) items.push(-1);
  for (let k = 0; k < K; k++) {
    let changes = false;
    for (let p = 0, off = k * hw; p < hw && !changes; p++) changes = A[off + p] !== value;
    if (changes) items.push(k);
  }

  let y = input.score ?? NaN;
  const ablated = new Float64Array(K);
  const done = new Uint8Array(K);
  let forwardCalls = 0;
  for (let start = 0; start < items.length; start += maxBatch) {
    throwIfAborted(input.signal);
    const chunk = items.slice(start, start + maxBatch);
    const batch = new Float32Array(chunk.length * n);
    chunk.forEach((k, b) => {
      batch.set(A, b * n);
      if (k >= 0) batch.fill(value, b * n + k * hw, b * n + (k + 1) * hw);
    });
    const scores = await forwardFromLayer(batch, chunk.length);
    forwardCalls++;
    if (scores.length !== chunk.length) {
      throw new Error(`saliency: forwardFromLayer returned ${scores.length} scores for a batch of ${chunk.length}`);
    }
    chunk.forEach((k, b) => {
      if (k < 0) y = scores[b];
      else {
        ablated[k] = scores[b];
        done[k] = 1;
      }
    });
    input.onProgress?.(Math.min(start + maxBatch, items.length), items.length);
  }

  const weights = new Float64Array(K);
  if (y === 0 || !Number.isFinite(y)) {
    return {
      map: new Float32Array(hw),
      h,
      w,
      degenerate: true,
      reason: y === 0 ? 'zero-score' : 'non-finite',
      weights,
      score: y,
      forwarded: items.filter((k) => k >= 0).length,
      forwardCalls,
    };
  }
  for (let k = 0; k < K; k++) weights[k] = done[k] ? (y - ablated[k]) / y : 0;
  const cam = weightedChannelSum(A, weights, K, hw);
  return {
    ...camPostProcess(cam, h, w),
    weights,
    score: y,
    forwarded: items.filter((k) => k >= 0).length,
    forwardCalls,
  };
}
