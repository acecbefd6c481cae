// FEM: channel weight = fraction of positions above mean + k·std; class-agnostic.
import { fem } from '../fem.js';
import { defineSaliencyMethod, ACTIVATION_CAM } from '../method.js';

export default defineSaliencyMethod(
  {
    ...ACTIVATION_CAM,
    name: 'fem',
    title: 'FEM',
  },
  (i) => fem(i.A, i.K, i.h, i.w, { k: i.femK }),
);
