// FullGrad: input-gradient and every conv/BN bias-gradient term, summed at input resolution (pytorch-grad-cam).
import { fullgrad } from '../fullgrad.js';
import { defineSaliencyMethod } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'fullgrad',
    title: 'FullGrad',
    needs: 'gradients',
    inputs: ['image', 'H', 'W', 'mean', 'fullgrad'],
    resolution: 'input',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) => fullgrad(i.image, i.mean.length, i.H, i.W, i.fullgrad),
);
