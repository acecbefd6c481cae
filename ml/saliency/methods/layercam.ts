// Layer-CAM: per-position weights ReLU(gradient).
import { layercam } from '../gradient-cams.js';
import { defineSaliencyMethod, GRADIENT_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...GRADIENT_CAM,
    name: 'layercam',
    title: 'Layer-CAM',
  },
  (i) => layercam(i.A, i.G, i.K, i.h, i.w),
);
