// Eigen-CAM: first principal component of the activations; class-agnostic.
import { eigencam } from '../eigencam.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'eigencam',
    title: 'Eigen-CAM',
    needs: 'activations',
    inputs: [...FEATURE_INPUTS],
    resolution: 'feature',
    classSpecific: false,
    caOnly: false,
    seeded: false,
  },
  (i) => eigencam(i.A, i.K, i.h, i.w, i.eigen),
);
