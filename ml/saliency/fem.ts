// FEM, the Feature Explanation Method (Fuad et al. 2020), as pytorch-grad-cam computes it: a
// channel's weight is the fraction of its positions above a k-sigma threshold,
//   τ_k = mean_p A_k + k·std_p A_k   (population std, numpy's default ddof = 0),
//   w_k = |{p : A_k(p) > τ_k}| / hw,   cam = Σ_k w_k A_k, then ReLU + min-max.
// No gradients and no target: FEM is class-agnostic.
import { camPostProcess, weightedChannelSum } from './normalise.js';
import { checkLength, checkPositiveInt, type CamResult, type Floats } from './types.js';

export interface FemOptions {
  /** The k of the k-sigma rule; pytorch-grad-cam's default is 2. */
  k?: number;
}

export function fem(A: Floats, K: number, h: number, w: number, opts: FemOptions = {}): CamResult {
  checkPositiveInt('K', K);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  const hw = h * w;
  checkLength('activations A', A, K * hw, `K×h×w = ${K}×${h}×${w}`);
  const sigmas = opts.k ?? 2;
  if (!Number.isFinite(sigmas)) throw new Error(`saliency: fem k must be a finite number, got ${sigmas}`);
  const weights = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    const o = k * hw;
    let mean = 0;
    for (let p = 0; p < hw; p++) mean += A[o + p];
    mean /= hw;
    let v = 0;
    for (let p = 0; p < hw; p++) v += (A[o + p] - mean) ** 2;
    const tau = mean + sigmas * Math.sqrt(v / hw);
    let above = 0;
    for (let p = 0; p < hw; p++) if (A[o + p] > tau) above++;
    weights[k] = above / hw;
  }
  return { ...camPostProcess(weightedChannelSum(A, weights, K, hw), h, w), weights };
}
