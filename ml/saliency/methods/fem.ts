// FEM: channel weight = fraction of positions above mean + k·std; class-agnostic.
import { fem } from '../fem.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'fem',
    title: 'FEM',
    needs: 'activations',
    inputs: [...FEATURE_INPUTS],
    resolution: 'feature',
    classSpecific: false,
    caOnly: false,
    seeded: false,
  },
  (i) => fem(i.A, i.K, i.h, i.w, { k: i.femK }),
);
