// EigenGradCAM: Eigen-CAM's first principal component, of G ⊙ A instead of A (pytorch-grad-cam).
import { eigencam } from '../eigencam.js';
import { gradientTimesActivation } from '../elementwise-cams.js';
import { defineSaliencyMethod, GRADIENT_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...GRADIENT_CAM,
    name: 'eigengradcam',
    title: 'EigenGradCAM',
  },
  (i) => eigencam(gradientTimesActivation(i.A, i.G, i.K, i.h, i.w), i.K, i.h, i.w, i.eigen),
);
