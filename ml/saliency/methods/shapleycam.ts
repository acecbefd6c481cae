// ShapleyCAM: channel weights = mean of (gradient − ½ Hessian-vector product) (pytorch-grad-cam).
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';
import { shapleycam } from '../shapleycam.js';

export default defineSaliencyMethod(
  {
    name: 'shapleycam',
    title: 'ShapleyCAM',
    needs: 'gradients',
    inputs: [...FEATURE_INPUTS, 'G', 'hvp'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => shapleycam(i.A, i.G, i.hvp, i.K, i.h, i.w),
);
