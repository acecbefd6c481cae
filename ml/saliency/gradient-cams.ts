// Gradient-based CAMs on one image's target-layer activations A and gradients G = ∂y/∂A
// (both channel-major K×h×w). y is whatever score the caller differentiated — design §4 says the
// pre-softmax logit of the target class; through a GAP model the gradient arrives via GAP, through
// a CA model via block l4. These functions only see the numbers.

import { camPostProcess, weightedChannelSum } from './normalise.js';
import { checkLength, checkPositiveInt, DBL_EPSILON, type CamResult, type Floats } from './types.js';

function checkShapes(A: Floats, G: Floats, K: number, h: number, w: number): number {
  checkPositiveInt('K', K);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  const n = K * h * w;
  checkLength('activations A', A, n, `K×h×w = ${K}×${h}×${w}`);
  checkLength('gradients G', G, n, `K×h×w = ${K}×${h}×${w}`);
  return h * w;
}

function fromWeights(A: Floats, weights: Float64Array, K: number, h: number, w: number): CamResult {
  const cam = weightedChannelSum(A, weights, K, h * w);
  return { ...camPostProcess(cam, h, w), weights };
}

/** Grad-CAM (Selvaraju et al. 2017): w_k = mean over positions of G_k. */
export function gradcam(A: Floats, G: Floats, K: number, h: number, w: number): CamResult {
  const hw = checkShapes(A, G, K, h, w);
  const weights = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let p = 0, off = k * hw; p < hw; p++) s += G[off + p];
    weights[k] = s / hw;
  }
  return fromWeights(A, weights, K, h, w);
}

/** ε in α's denominator under each convention (issue #16 item 4). */
export const GRADCAMPP_EPS = { 'ca-stream': DBL_EPSILON, 'pytorch-grad-cam': 1e-6 } as const;

export type GradCamPPConvention = keyof typeof GRADCAMPP_EPS;

export interface GradCamPPOptions {
  /** ε in α's denominator; overrides the convention's (CA-Stream: sys.float_info.epsilon, pytorch-grad-cam: 1e-6). */
  eps?: number;
  /**
   * The only difference between the two codes is that ε: through GAP, 2g² is ≈ 1e-8, so
   * pytorch-grad-cam's 1e-6 dominates α there and the maps differ visibly. Default 'ca-stream'.
   */
  convention?: GradCamPPConvention;
}

/**
 * Grad-CAM++ (Chattopadhay et al. 2018), closed form of their eq. 19, exactly as CA-Stream and
 * pytorch-grad-cam compute it:
 *   α_k(p) = g² / (2g² + (Σ_q A_k(q))·g³ + ε),  α = 0 where g = 0,   w_k = Σ_p α_k(p)·ReLU(g_k(p)).
 * Eq. 19 assumes the explained output is Y = exp(S) with S piecewise linear in A (a ReLU net), so
 * ∂ⁿY/∂Aⁿ = exp(S)·gⁿ with g = ∂S/∂A. exp(S) cancels inside α and multiplies every w_k by the same
 * positive constant, which the final min-max removes — so feeding raw-logit gradients g (what the
 * caller provides) yields exactly the exp-output Grad-CAM++ map, not an approximation of it.
 */
export function gradcampp(A: Floats, G: Floats, K: number, h: number, w: number, opts: GradCamPPOptions = {}): CamResult {
  const hw = checkShapes(A, G, K, h, w);
  const convention = opts.convention ?? 'ca-stream';
  if (!Object.prototype.hasOwnProperty.call(GRADCAMPP_EPS, convention))
    throw new Error(`saliency: gradcampp convention must be 'ca-stream' or 'pytorch-grad-cam', got '${String(convention)}'`);
  const eps = opts.eps ?? GRADCAMPP_EPS[convention];
  const weights = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    const off = k * hw;
    let sumA = 0;
    for (let p = 0; p < hw; p++) sumA += A[off + p];
    let wk = 0;
    for (let p = 0; p < hw; p++) {
      const g = G[off + p];
      if (g <= 0) continue; // α·ReLU(g) is 0 for g ≤ 0 (and α is defined 0 at g = 0)
      const g2 = g * g;
      const alpha = g2 / (2 * g2 + sumA * g2 * g + eps);
      wk += alpha * g;
    }
    weights[k] = wk;
  }
  return fromWeights(A, weights, K, h, w);
}

export interface XGradCamOptions {
  /** ε added to Σ A_k; 1e-7 as in pytorch-grad-cam (CA-Stream has no XGrad-CAM). */
  eps?: number;
}

/** XGrad-CAM (Fu et al. 2020): w_k = Σ_p G_k(p)·A_k(p) / (Σ_p A_k(p) + ε). */
export function xgradcam(A: Floats, G: Floats, K: number, h: number, w: number, opts: XGradCamOptions = {}): CamResult {
  const hw = checkShapes(A, G, K, h, w);
  const eps = opts.eps ?? 1e-7;
  const weights = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    const off = k * hw;
    let sumA = 0;
    let sumGA = 0;
    for (let p = 0; p < hw; p++) {
      sumA += A[off + p];
      sumGA += G[off + p] * A[off + p];
    }
    weights[k] = sumGA / (sumA + eps);
  }
  return fromWeights(A, weights, K, h, w);
}

/** Layer-CAM (Jiang et al. 2021): cam(p) = Σ_k ReLU(G_k(p))·A_k(p) — a weight per position. */
export function layercam(A: Floats, G: Floats, K: number, h: number, w: number): CamResult {
  const hw = checkShapes(A, G, K, h, w);
  const cam = new Float64Array(hw);
  for (let k = 0; k < K; k++) {
    const off = k * hw;
    for (let p = 0; p < hw; p++) {
      const g = G[off + p];
      if (g > 0) cam[p] += g * A[off + p];
    }
  }
  return camPostProcess(cam, h, w);
}

export type GradientCamName = 'gradcam' | 'gradcampp' | 'xgradcam' | 'layercam';

const GRADIENT_CAMS: Record<GradientCamName, (A: Floats, G: Floats, K: number, h: number, w: number) => CamResult> = {
  gradcam,
  gradcampp: (A, G, K, h, w) => gradcampp(A, G, K, h, w),
  xgradcam: (A, G, K, h, w) => xgradcam(A, G, K, h, w),
  layercam,
};

export function gradientCam(method: GradientCamName, A: Floats, G: Floats, K: number, h: number, w: number): CamResult {
  const fn = GRADIENT_CAMS[method];
  if (!fn) throw new Error(`saliency: unknown gradient CAM method '${String(method)}'`);
  return fn(A, G, K, h, w);
}

/** The same method on B images stored back to back (B×K×h×w); one result per image. */
export function gradientCamBatch(method: GradientCamName, A: Floats, G: Floats, B: number, K: number, h: number, w: number): CamResult[] {
  checkPositiveInt('B', B);
  const n = K * h * w;
  checkLength('activations A', A, B * n, `B×K×h×w = ${B}×${K}×${h}×${w}`);
  checkLength('gradients G', G, B * n, `B×K×h×w = ${B}×${K}×${h}×${w}`);
  const out: CamResult[] = [];
  for (let b = 0; b < B; b++) {
    out.push(gradientCam(method, A.subarray(b * n, (b + 1) * n), G.subarray(b * n, (b + 1) * n), K, h, w));
  }
  return out;
}
