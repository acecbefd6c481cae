// ShapleyCAM (Cai et al. 2025) as pytorch-grad-cam computes it: the channel weight is the mean over
// positions of g − ½·(H·A), where g = ∂y/∂A and H·A the Hessian-vector product of y with respect
// to the target-layer activations, in the direction of the activations themselves (a second-order
// Taylor term of the Shapley value). Then Σ_k w_k A_k, ReLU and min-max, like Grad-CAM.
// Through GAP and a Linear classifier y is linear in A, H = 0 and ShapleyCAM is Grad-CAM.
import { camPostProcess, weightedChannelSum } from './normalise.js';
import { checkLength, checkPositiveInt, type CamResult, type Floats } from './types.js';

export function shapleycam(A: Floats, G: Floats, hvp: Floats, K: number, h: number, w: number): CamResult {
  checkPositiveInt('K', K);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  const hw = h * w;
  const shape = `K×h×w = ${K}×${h}×${w}`;
  checkLength('activations A', A, K * hw, shape);
  checkLength('gradients G', G, K * hw, shape);
  checkLength('Hessian-vector product hvp', hvp, K * hw, shape);
  const weights = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let p = 0, o = k * hw; p < hw; p++) s += G[o + p] - 0.5 * hvp[o + p];
    weights[k] = s / hw;
  }
  return { ...camPostProcess(weightedChannelSum(A, weights, K, hw), h, w), weights };
}
