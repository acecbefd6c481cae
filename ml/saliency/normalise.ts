// The common CAM post-processing of design §4: ReLU, then per-image min-max to [0, 1] with
// (x − min) / (max − min + ε), done at feature resolution (as CA-Stream does, before upsampling).

import { DBL_EPSILON, type Floats, type SaliencyMap } from './types.js';

/**
 * Min-max one map to [0, 1]. A constant map becomes all zeros and is flagged degenerate, as is a
 * map with NaN/Infinity (then also all zeros, so downstream metrics never see NaN).
 * `relu` applies max(0, ·) first.
 */
export function minMaxNormalise(values: Floats, h: number, w: number, relu = false, eps = DBL_EPSILON): SaliencyMap {
  const n = h * w;
  const out = new Float32Array(n);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = relu && values[i] < 0 ? 0 : values[i];
    if (!Number.isFinite(v)) return { map: out, h, w, degenerate: true, reason: 'non-finite' };
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const range = hi - lo;
  // A range at or below ε cannot reach 1 after division by (range + ε): no usable ranking left.
  if (!(range > eps)) return { map: out, h, w, degenerate: true, reason: 'constant' };
  const denom = range + eps;
  for (let i = 0; i < n; i++) {
    const v = relu && values[i] < 0 ? 0 : values[i];
    out[i] = (v - lo) / denom;
  }
  return { map: out, h, w, degenerate: false };
}

/** ReLU then min-max: the post-processing every CAM method shares. */
export function camPostProcess(cam: Floats, h: number, w: number, eps = DBL_EPSILON): SaliencyMap {
  return minMaxNormalise(cam, h, w, true, eps);
}

/** Σ_k w_k A_k at every position (A channel-major K×h×w), accumulated in float64. */
export function weightedChannelSum(A: Floats, weights: ArrayLike<number>, K: number, hw: number): Float64Array {
  const cam = new Float64Array(hw);
  for (let k = 0; k < K; k++) {
    const wk = weights[k];
    if (wk === 0) continue;
    const off = k * hw;
    for (let p = 0; p < hw; p++) cam[p] += wk * A[off + p];
  }
  return cam;
}
