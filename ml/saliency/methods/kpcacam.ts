// KPCA-CAM: first sigmoid-kernel principal component of the activations; class-agnostic.
import { kpcacam } from '../kpcacam.js';
import { defineSaliencyMethod, ACTIVATION_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...ACTIVATION_CAM,
    name: 'kpcacam',
    title: 'KPCA-CAM',
  },
  (i) => kpcacam(i.A, i.K, i.h, i.w, i.kpca),
);
