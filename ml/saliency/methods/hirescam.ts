// HiResCAM: Σ_k G_k ⊙ A_k, no averaging of the gradient (pytorch-grad-cam).
import { hirescam } from '../elementwise-cams.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'hirescam',
    title: 'HiResCAM',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'G'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => hirescam(i.A, i.G, i.K, i.h, i.w),
);
