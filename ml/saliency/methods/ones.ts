// Baseline: all ones (the whole image), the map that games Average Drop.
import { onesBaseline } from '../baselines.js';
import { defineSaliencyMethod } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'ones',
    title: 'All-ones baseline',
    needs: 'none',
    inputs: ['h', 'w'],
    resolution: 'any',
    classSpecific: false,
    caOnly: false,
    seeded: false,
  },
  (i) => onesBaseline(i.h, i.w),
);
