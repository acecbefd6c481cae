// Finer-CAM: Grad-CAM of the target's logit contrasted with its most similar classes (pytorch-grad-cam).
import { gradcam } from '../gradient-cams.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'finercam',
    title: 'Finer-CAM',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'finerG'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => gradcam(i.A, i.finerG, i.K, i.h, i.w),
);
