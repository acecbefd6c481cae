// Grad-CAM element-wise: Σ_k ReLU(G_k ⊙ A_k) (pytorch-grad-cam's GradCAMElementWise).
import { gradcamElementwise } from '../elementwise-cams.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'gradcam-elementwise',
    title: 'Grad-CAM element-wise',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'G'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => gradcamElementwise(i.A, i.G, i.K, i.h, i.w),
);
