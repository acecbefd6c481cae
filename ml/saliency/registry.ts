// What each saliency method needs, so the saliency stage can compute only those inputs (taps,
// gradients, forward closures, CA dots) and dispatch by name.

import { ablationcam } from './ablationcam.js';
import { centerBaseline, onesBaseline, randomBaseline } from './baselines.js';
import { caAttention } from './ca-attention.js';
import { eigencam, type EigenCamOptions } from './eigencam.js';
import { gradcam, gradcampp, layercam, xgradcam } from './gradient-cams.js';
import { rise } from './rise.js';
import { scorecam } from './scorecam.js';
import type { Floats, ForwardFromLayer, ForwardProbs, LongRunOptions, SaliencyMap } from './types.js';

/** The most demanding thing a method asks of the model. */
export type SaliencyNeed = 'gradients' | 'forward' | 'activations' | 'dots' | 'none';

export type SaliencyMethodName =
  | 'gradcam'
  | 'gradcampp'
  | 'xgradcam'
  | 'layercam'
  | 'eigencam'
  | 'scorecam'
  | 'ablationcam'
  | 'rise'
  | 'ca-attention'
  | 'random'
  | 'center'
  | 'ones';

/** Every field a method may read from SaliencyInputs. */
export type SaliencyInputField =
  | 'A' | 'G' | 'K' | 'h' | 'w' | 'dots' | 'heads' | 'image' | 'H' | 'W' | 'mean' | 'std'
  | 'forwardProbs' | 'forwardFromLayer' | 'target' | 'maxBatch' | 'seed' | 'rise';

export interface SaliencyMethodInfo {
  name: SaliencyMethodName;
  title: string;
  needs: SaliencyNeed;
  /** For needs 'forward': whole model on images, or the head from the target layer on. */
  forwardFrom?: 'input' | 'layer';
  /** Exactly the SaliencyInputs fields computeSaliency will require. */
  inputs: readonly SaliencyInputField[];
  /** Resolution of the stored map: target-layer grid, input image, or whatever h×w is asked. */
  resolution: 'feature' | 'input' | 'any';
  /** Depends on the target class (false: same map for every class). */
  classSpecific: boolean;
  /** Only defined for CA-Stream models (needs the l4 block's dots). */
  caOnly: boolean;
  /** Uses the `seed` input (the map is a function of it). */
  seeded: boolean;
}

const FEAT = ['A', 'K', 'h', 'w'] as const;

export const SALIENCY_METHODS: Readonly<Record<SaliencyMethodName, SaliencyMethodInfo>> = {
  gradcam: {
    name: 'gradcam', title: 'Grad-CAM', needs: 'gradients', inputs: [...FEAT, 'G'],
    resolution: 'feature', classSpecific: true, caOnly: false, seeded: false,
  },
  gradcampp: {
    name: 'gradcampp', title: 'Grad-CAM++', needs: 'gradients', inputs: [...FEAT, 'G'],
    resolution: 'feature', classSpecific: true, caOnly: false, seeded: false,
  },
  xgradcam: {
    name: 'xgradcam', title: 'XGrad-CAM', needs: 'gradients', inputs: [...FEAT, 'G'],
    resolution: 'feature', classSpecific: true, caOnly: false, seeded: false,
  },
  layercam: {
    name: 'layercam', title: 'Layer-CAM', needs: 'gradients', inputs: [...FEAT, 'G'],
    resolution: 'feature', classSpecific: true, caOnly: false, seeded: false,
  },
  eigencam: {
    name: 'eigencam', title: 'Eigen-CAM', needs: 'activations', inputs: [...FEAT],
    resolution: 'feature', classSpecific: false, caOnly: false, seeded: false,
  },
  scorecam: {
    name: 'scorecam', title: 'Score-CAM', needs: 'forward', forwardFrom: 'input',
    inputs: [...FEAT, 'image', 'H', 'W', 'mean', 'std', 'forwardProbs', 'target', 'maxBatch'],
    resolution: 'feature', classSpecific: true, caOnly: false, seeded: false,
  },
  ablationcam: {
    name: 'ablationcam', title: 'Ablation-CAM', needs: 'forward', forwardFrom: 'layer',
    inputs: [...FEAT, 'forwardFromLayer', 'maxBatch'],
    resolution: 'feature', classSpecific: true, caOnly: false, seeded: false,
  },
  rise: {
    name: 'rise', title: 'RISE', needs: 'forward', forwardFrom: 'input',
    inputs: ['image', 'H', 'W', 'forwardProbs', 'target', 'maxBatch', 'seed', 'rise'],
    resolution: 'input', classSpecific: true, caOnly: false, seeded: true,
  },
  'ca-attention': {
    name: 'ca-attention', title: 'CA attention (l4)', needs: 'dots', inputs: ['dots', 'heads', 'h', 'w'],
    resolution: 'feature', classSpecific: false, caOnly: true, seeded: false,
  },
  random: {
    name: 'random', title: 'Random baseline', needs: 'none', inputs: ['h', 'w', 'seed'],
    resolution: 'any', classSpecific: false, caOnly: false, seeded: true,
  },
  center: {
    name: 'center', title: 'Centre Gaussian baseline', needs: 'none', inputs: ['h', 'w'],
    resolution: 'any', classSpecific: false, caOnly: false, seeded: false,
  },
  ones: {
    name: 'ones', title: 'All-ones baseline', needs: 'none', inputs: ['h', 'w'],
    resolution: 'any', classSpecific: false, caOnly: false, seeded: false,
  },
};

export function isSaliencyMethod(name: string): name is SaliencyMethodName {
  return Object.prototype.hasOwnProperty.call(SALIENCY_METHODS, name);
}

/**
 * Everything any method may need for ONE image. h×w is the target-layer grid for feature-level
 * methods and the requested size for baselines; H×W is the input image size.
 */
export interface SaliencyInputs extends LongRunOptions {
  A?: Floats;
  G?: Floats;
  K?: number;
  h?: number;
  w?: number;
  dots?: Floats;
  heads?: number;
  image?: Float32Array;
  H?: number;
  W?: number;
  mean?: readonly number[];
  std?: readonly number[];
  forwardProbs?: ForwardProbs;
  forwardFromLayer?: ForwardFromLayer;
  target?: number;
  maxBatch?: number;
  seed?: number;
  /** Target score on the intact activations, if known (saves Ablation-CAM one forward). */
  score?: number;
  rise?: { numMasks: number; cells: number; p1: number; pixelSpace?: boolean };
  eigen?: EigenCamOptions;
  /** Method knobs with documented defaults (see the method files). */
  gradcamppEps?: number;
  xgradcamEps?: number;
  ablationValue?: number;
}

function need<T>(method: string, field: string, v: T | undefined): T {
  if (v === undefined) throw new Error(`saliency: method '${method}' needs input '${field}'`);
  return v;
}

/** Compute one image's map with the named method; extra fields of the result are diagnostics. */
export async function computeSaliency(method: string, inp: SaliencyInputs): Promise<SaliencyMap> {
  if (!isSaliencyMethod(method)) {
    throw new Error(`saliency: unknown method '${method}' (known: ${Object.keys(SALIENCY_METHODS).join(', ')})`);
  }
  for (const f of SALIENCY_METHODS[method].inputs) need(method, f, inp[f]);
  const m = method;
  switch (m) {
    case 'gradcam':
      return gradcam(inp.A!, inp.G!, inp.K!, inp.h!, inp.w!);
    case 'gradcampp':
      return gradcampp(inp.A!, inp.G!, inp.K!, inp.h!, inp.w!, { eps: inp.gradcamppEps });
    case 'xgradcam':
      return xgradcam(inp.A!, inp.G!, inp.K!, inp.h!, inp.w!, { eps: inp.xgradcamEps });
    case 'layercam':
      return layercam(inp.A!, inp.G!, inp.K!, inp.h!, inp.w!);
    case 'eigencam':
      return eigencam(inp.A!, inp.K!, inp.h!, inp.w!, inp.eigen);
    case 'scorecam':
      return scorecam({
        A: inp.A!, K: inp.K!, h: inp.h!, w: inp.w!, image: inp.image!, H: inp.H!, W: inp.W!,
        mean: inp.mean!, std: inp.std!, forwardProbs: inp.forwardProbs!, target: inp.target!,
        maxBatch: inp.maxBatch!, onProgress: inp.onProgress, signal: inp.signal,
      });
    case 'ablationcam':
      return ablationcam({
        A: inp.A!, K: inp.K!, h: inp.h!, w: inp.w!, forwardFromLayer: inp.forwardFromLayer!,
        score: inp.score, maxBatch: inp.maxBatch!, ablationValue: inp.ablationValue, onProgress: inp.onProgress, signal: inp.signal,
      });
    case 'rise': {
      const r = inp.rise!;
      const pixelSpace = r.pixelSpace ?? false;
      return rise({
        image: inp.image!, H: inp.H!, W: inp.W!, C: inp.mean?.length, forwardProbs: inp.forwardProbs!,
        target: inp.target!, numMasks: r.numMasks, cells: r.cells, p1: r.p1, seed: inp.seed!,
        maxBatch: inp.maxBatch!,
        mean: pixelSpace ? need(m, 'mean', inp.mean) : undefined,
        std: pixelSpace ? need(m, 'std', inp.std) : undefined,
        onProgress: inp.onProgress, signal: inp.signal,
      });
    }
    case 'ca-attention':
      return caAttention(inp.dots!, inp.heads!, inp.h!, inp.w!);
    case 'random':
      return randomBaseline(inp.h!, inp.w!, inp.seed!);
    case 'center':
      return centerBaseline(inp.h!, inp.w!);
    case 'ones':
      return onesBaseline(inp.h!, inp.w!);
  }
}
