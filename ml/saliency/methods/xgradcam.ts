// XGrad-CAM: gradient weighted by the normalised activation.
import { xgradcam } from '../gradient-cams.js';
import { defineSaliencyMethod, GRADIENT_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...GRADIENT_CAM,
    name: 'xgradcam',
    title: 'XGrad-CAM',
  },
  (i) => xgradcam(i.A, i.G, i.K, i.h, i.w, { eps: i.xgradcamEps }),
);
