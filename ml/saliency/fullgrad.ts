// FullGrad (Srinivas & Fleuret 2019) as pytorch-grad-cam's FullGrad computes it, on one image:
//   input term   |x ⊙ ∂y/∂x| per colour channel (x the NORMALISED input), each channel scaled;
//   bias terms   for every conv / BatchNorm layer with a bias b (BN: β − μ·γ/√(σ²+ε)) and the
//                gradient g = ∂y/∂(layer output): |b_c·g_c| per channel c, each channel scaled,
//                resized to the input size and summed over channels;
//   map          the sum of all terms, scaled once more.
// "Scaled" is pytorch-grad-cam's scale_cam_image: (v − min)/(1e-7 + max(v − min)) per plane at the
// plane's own resolution, then a bilinear resize (cv2 INTER_LINEAR: half-pixel centres, clamped
// edges — ml/metrics/upsample's default rule). Resizing is linear and its weights sum to 1, so a
// layer's channel maps are scaled and summed at the layer's resolution and resized once: the same
// numbers, C_l times fewer resizes (26 000 channels for ResNet-50).
// The final scaling is the common min-max of every method here (ε = 2.2e-16; pytorch-grad-cam's
// 1e-7 shifts values by < 1e-7 relative). The map is at input resolution. y is the target logit.
import { axisTable, resizePlane } from '../metrics/upsample.js';
import { minMaxNormalise } from './normalise.js';
import { checkLength, checkPositiveInt, type SaliencyMap } from './types.js';

/** ε of pytorch-grad-cam's per-plane scale_cam_image. */
const PLANE_EPS = 1e-7;

/** One biased layer of one image: its bias and the gradient of y with respect to its output (C×h×w). */
export interface BiasGradient {
  layer: string;
  bias: Float32Array;
  grad: Float32Array;
  h: number;
  w: number;
}

export interface FullGradInputs {
  /** ∂y/∂x of the normalised image, C×H×W. */
  inputGrad: Float32Array;
  layers: BiasGradient[];
}

/** Adds Σ_planes scale(|s_c·v_c|) (each plane h×w) into acc (h×w, float64). s = undefined means 1. */
function addScaledPlanes(
  acc: Float64Array,
  v: Float32Array,
  scale: ArrayLike<number> | undefined,
  planes: number,
  hw: number,
  what: string,
): void {
  checkLength(what, v, planes * hw, `${planes}×${hw}`);
  for (let c = 0; c < planes; c++) {
    const s = scale ? Math.abs(scale[c]) : 1;
    const o = c * hw;
    let lo = Infinity;
    let hi = -Infinity;
    for (let p = 0; p < hw; p++) {
      const a = s * Math.abs(v[o + p]);
      if (a < lo) lo = a;
      if (a > hi) hi = a;
    }
    const denom = PLANE_EPS + (hi - lo);
    for (let p = 0; p < hw; p++) acc[p] += (s * Math.abs(v[o + p]) - lo) / denom;
  }
}

export function fullgrad(image: Float32Array, C: number, H: number, W: number, inp: FullGradInputs): SaliencyMap {
  checkPositiveInt('H', H);
  checkPositiveInt('W', W);
  checkPositiveInt('C', C);
  const HW = H * W;
  checkLength('image', image, C * HW, `C×H×W = ${C}×${H}×${W}`);
  checkLength('FullGrad input gradient', inp.inputGrad, C * HW, `C×H×W = ${C}×${H}×${W}`);
  const total = new Float64Array(HW);
  const xg = new Float32Array(C * HW);
  for (let i = 0; i < xg.length; i++) xg[i] = image[i] * inp.inputGrad[i];
  addScaledPlanes(total, xg, undefined, C, HW, 'FullGrad input term');
  const resized = new Float64Array(HW);
  for (const l of inp.layers) {
    checkPositiveInt(`${l.layer} h`, l.h);
    checkPositiveInt(`${l.layer} w`, l.w);
    const hw = l.h * l.w;
    const acc = new Float64Array(hw);
    addScaledPlanes(acc, l.grad, l.bias, l.bias.length, hw, `FullGrad gradient of ${l.layer}`);
    resizePlane(acc, 0, l.w, axisTable(l.h, H), axisTable(l.w, W), resized, 0);
    for (let p = 0; p < HW; p++) total[p] += resized[p];
  }
  return minMaxNormalise(total, H, W, false);
}
