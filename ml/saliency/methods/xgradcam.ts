// XGrad-CAM: gradient weighted by the normalised activation.
import { xgradcam } from '../gradient-cams.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'xgradcam',
    title: 'XGrad-CAM',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'G'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => xgradcam(i.A, i.G, i.K, i.h, i.w, { eps: i.xgradcamEps }),
);
