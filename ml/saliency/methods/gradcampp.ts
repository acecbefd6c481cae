// Grad-CAM++: second-order channel weights (design §4).
import { gradcampp } from '../gradient-cams.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'gradcampp',
    title: 'Grad-CAM++',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'G'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
    conventions: ['ca-stream', 'pytorch-grad-cam'],
  },
  (i) => gradcampp(i.A, i.G, i.K, i.h, i.w, { eps: i.gradcamppEps, convention: i.convention }),
);
