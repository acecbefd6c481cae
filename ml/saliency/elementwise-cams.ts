// Gradient CAMs that weight every position of every channel separately (no channel weight), as
// pytorch-grad-cam defines them. A and G are one image's K×h×w target-layer activations and
// gradients; the common ReLU + min-max follows.
import { camPostProcess } from './normalise.js';
import { checkLength, checkPositiveInt, type CamResult, type Floats } from './types.js';

function checkShapes(A: Floats, G: Floats, K: number, h: number, w: number): number {
  checkPositiveInt('K', K);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  checkLength('activations A', A, K * h * w, `K×h×w = ${K}×${h}×${w}`);
  checkLength('gradients G', G, K * h * w, `K×h×w = ${K}×${h}×${w}`);
  return h * w;
}

/**
 * HiResCAM (Draelos & Carin 2020): cam(p) = Σ_k G_k(p)·A_k(p). Through GAP + a Linear classifier
 * G is constant per channel, so HiResCAM equals Grad-CAM there; through the CA head it does not.
 */
export function hirescam(A: Floats, G: Floats, K: number, h: number, w: number): CamResult {
  const hw = checkShapes(A, G, K, h, w);
  const cam = new Float64Array(hw);
  for (let k = 0; k < K; k++) for (let p = 0, o = k * hw; p < hw; p++) cam[p] += G[o + p] * A[o + p];
  return camPostProcess(cam, h, w);
}

/** Grad-CAM element-wise (Pillai et al. 2021, as pytorch-grad-cam): cam(p) = Σ_k ReLU(G_k(p)·A_k(p)). */
export function gradcamElementwise(A: Floats, G: Floats, K: number, h: number, w: number): CamResult {
  const hw = checkShapes(A, G, K, h, w);
  const cam = new Float64Array(hw);
  for (let k = 0; k < K; k++) {
    for (let p = 0, o = k * hw; p < hw; p++) {
      const v = G[o + p] * A[o + p];
      if (v > 0) cam[p] += v;
    }
  }
  return camPostProcess(cam, h, w);
}

/** G ⊙ A as a new K×h×w array (the input of EigenGradCAM's projection). */
export function gradientTimesActivation(A: Floats, G: Floats, K: number, h: number, w: number): Float64Array {
  checkShapes(A, G, K, h, w);
  const out = new Float64Array(A.length);
  for (let i = 0; i < out.length; i++) out[i] = G[i] * A[i];
  return out;
}
