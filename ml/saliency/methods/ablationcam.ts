// Ablation-CAM: a channel's weight is the score drop when it is zeroed at the target layer.
import { ablationcam } from '../ablationcam.js';
import { defineSaliencyMethod, FEATURE_INPUTS } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'ablationcam',
    title: 'Ablation-CAM',
    needs: 'forward',
    forwardFrom: 'layer',
    inputs: [...FEATURE_INPUTS, 'forwardFromLayer', 'maxBatch'],
    resolution: 'feature',
    classSpecific: true,
    caOnly: false,
    seeded: false,
  },
  (i) =>
    ablationcam({
      A: i.A,
      K: i.K,
      h: i.h,
      w: i.w,
      forwardFromLayer: i.forwardFromLayer,
      score: i.score,
      maxBatch: i.maxBatch,
      ablationValue: i.ablationValue,
      onProgress: i.onProgress,
      signal: i.signal,
    }),
);
