// Grad-CAM: channel weights = mean gradient over positions (design §4).
import { gradcam } from '../gradient-cams.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'gradcam',
    title: 'Grad-CAM',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'G'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => gradcam(i.A, i.G, i.K, i.h, i.w),
);
