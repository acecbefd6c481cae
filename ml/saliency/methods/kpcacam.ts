// KPCA-CAM: first sigmoid-kernel principal component of the activations; class-agnostic.
import { kpcacam } from '../kpcacam.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'kpcacam',
    title: 'KPCA-CAM',
    needs: 'activations',
    inputs: [...FEATURE_INPUTS],
    resolution: 'feature',
    classSpecific: false,
    caOnly: false,
    seeded: false,
  },
  (i) => kpcacam(i.A, i.K, i.h, i.w, i.kpca),
);
