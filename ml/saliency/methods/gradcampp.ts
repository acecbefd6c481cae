// Grad-CAM++: second-order channel weights (design §4).
import { gradcampp } from '../gradient-cams.js';
import { defineSaliencyMethod, GRADIENT_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...GRADIENT_CAM,
    name: 'gradcampp',
    title: 'Grad-CAM++',
    conventions: ['ca-stream', 'pytorch-grad-cam'],
  },
  (i) => gradcampp(i.A, i.G, i.K, i.h, i.w, { eps: i.gradcamppEps, convention: i.convention }),
);
