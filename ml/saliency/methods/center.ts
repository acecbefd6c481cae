// Baseline: a centred Gaussian, the prior of photographed objects.
import { centerBaseline } from '../baselines.js';
import { defineSaliencyMethod } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'center',
    title: 'Centre Gaussian baseline',
    needs: 'none',
    inputs: ['h', 'w'],
    resolution: 'any',
    classSpecific: false,
    caOnly: false,
    seeded: false,
  },
  (i) => centerBaseline(i.h, i.w),
);
