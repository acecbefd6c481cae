// RISE: random low-resolution masks weighted by the target's probability, at input resolution.
import { defineSaliencyMethod, missingInput } from '../method.js';
import { rise } from '../rise.js';

export default defineSaliencyMethod(
  {
    name: 'rise',
    title: 'RISE',
    needs: 'forward',
    forwardFrom: 'input',
    inputs: ['image', 'H', 'W', 'forwardProbs', 'target', 'maxBatch', 'seed', 'rise'],
    resolution: 'input',
    classSpecific: true,
    caOnly: false,
    seeded: true,
  },
  (i) => {
    // mean/std are needed only for pixel-space masking, so they cannot be declared inputs.
    const pixelSpace = i.rise.pixelSpace ?? false;
    if (pixelSpace && !i.mean) throw missingInput('rise', 'mean');
    if (pixelSpace && !i.std) throw missingInput('rise', 'std');
    return rise({
      image: i.image,
      H: i.H,
      W: i.W,
      C: i.mean?.length,
      forwardProbs: i.forwardProbs,
      target: i.target,
      numMasks: i.rise.numMasks,
      cells: i.rise.cells,
      p1: i.rise.p1,
      seed: i.seed,
      maxBatch: i.maxBatch,
      mean: pixelSpace ? i.mean : undefined,
      std: pixelSpace ? i.std : undefined,
      onProgress: i.onProgress,
      signal: i.signal,
    });
  },
);
