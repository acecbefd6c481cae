// Grad-CAM: channel weights = mean gradient over positions (design §4).
import { gradcam } from '../gradient-cams.js';
import { defineSaliencyMethod, GRADIENT_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...GRADIENT_CAM,
    name: 'gradcam',
    title: 'Grad-CAM',
  },
  (i) => gradcam(i.A, i.G, i.K, i.h, i.w),
);
