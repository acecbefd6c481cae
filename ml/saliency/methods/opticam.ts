// Opti-CAM: channel weights optimised per image so the masked image keeps the target logit
// (official code's defaults). The optimisation runs over the whole batch at once (opticam.ts);
// the stage hands each image its result.
import { defineSaliencyMethod } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'opticam',
    title: 'Opti-CAM',
    needs: 'gradients',
    inputs: ['opticam'],
    resolution: 'input',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => i.opticam,
);
