// Grad-CAM element-wise: Σ_k ReLU(G_k ⊙ A_k) (pytorch-grad-cam's GradCAMElementWise).
import { gradcamElementwise } from '../elementwise-cams.js';
import { defineSaliencyMethod, GRADIENT_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...GRADIENT_CAM,
    name: 'gradcam-elementwise',
    title: 'Grad-CAM element-wise',
  },
  (i) => gradcamElementwise(i.A, i.G, i.K, i.h, i.w),
);
