// Score-CAM: each channel masks the image; its weight is the target's probability (design §4).
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';
import { scorecam } from '../scorecam.js';

export default defineSaliencyMethod(
  {
    name: 'scorecam',
    title: 'Score-CAM',
    needs: 'forward',
    forwardFrom: 'input',
    inputs: [...FEATURE_INPUTS, 'image', 'H', 'W', 'mean', 'std', 'forwardProbs', 'target', 'maxBatch'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) =>
    scorecam({
      A: i.A,
      K: i.K,
      h: i.h,
      w: i.w,
      image: i.image,
      H: i.H,
      W: i.W,
      mean: i.mean,
      std: i.std,
      forwardProbs: i.forwardProbs,
      target: i.target,
      maxBatch: i.maxBatch,
      onProgress: i.onProgress,
      signal: i.signal,
    }),
);
