// Eigen-CAM: first principal component of the activations; class-agnostic.
import { eigencam } from '../eigencam.js';
import { defineSaliencyMethod, ACTIVATION_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...ACTIVATION_CAM,
    name: 'eigencam',
    title: 'Eigen-CAM',
  },
  (i) => eigencam(i.A, i.K, i.h, i.w, i.eigen),
);
