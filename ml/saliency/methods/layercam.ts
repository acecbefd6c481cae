// Layer-CAM: per-position weights ReLU(gradient).
import { layercam } from '../gradient-cams.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'layercam',
    title: 'Layer-CAM',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'G'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => layercam(i.A, i.G, i.K, i.h, i.w),
);
