// HiResCAM: Σ_k G_k ⊙ A_k, no averaging of the gradient (pytorch-grad-cam).
import { hirescam } from '../elementwise-cams.js';
import { defineSaliencyMethod, GRADIENT_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...GRADIENT_CAM,
    name: 'hirescam',
    title: 'HiResCAM',
  },
  (i) => hirescam(i.A, i.G, i.K, i.h, i.w),
);
