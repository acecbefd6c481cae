// Score-CAM: each channel masks the image; its weight is the target's probability (design §4), or
// under the pytorch-grad-cam convention a softmax across channels of the target logits.
import { defineSaliencyMethod, FEATURE_INPUTS, missingInput } from '../method.js';
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
    conventions: ['ca-stream', 'pytorch-grad-cam'],
  },
  (i) => {
    // Logits are needed only under the pytorch-grad-cam convention, so they cannot be a declared input.
    if (i.convention === 'pytorch-grad-cam' && !i.forwardLogits) throw missingInput('scorecam', 'forwardLogits');
    return scorecam({
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
      convention: i.convention,
      forwardLogits: i.forwardLogits,
      onProgress: i.onProgress,
      signal: i.signal,
    });
  },
);
