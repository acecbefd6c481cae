// EigenGradCAM: Eigen-CAM's first principal component, of G ⊙ A instead of A (pytorch-grad-cam).
import { eigencam } from '../eigencam.js';
import { gradientTimesActivation } from '../elementwise-cams.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'eigengradcam',
    title: 'EigenGradCAM',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'G'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => eigencam(gradientTimesActivation(i.A, i.G, i.K, i.h, i.w), i.K, i.h, i.w, i.eigen),
);
