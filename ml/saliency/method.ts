// The shape of one saliency method: what it declares (its info) and a compute function that is
// typed by that declaration. A method receives its declared inputs as present (the registry checks
// them before the call), so no method needs a non-null assertion, and an input it reads without
// declaring is a compile error.
import type { EigenCamOptions } from './eigencam.js';
import type { FullGradInputs } from './fullgrad.js';
import type { KpcaOptions } from './kpcacam.js';
import type { Floats, ForwardFromLayer, ForwardProbs, LongRunOptions, SaliencyMap } from './types.js';

/** The two codes whose definitions differ for some methods (issue #16 item 4). */
export const SALIENCY_CONVENTIONS = ['ca-stream', 'pytorch-grad-cam'] as const;
export type SaliencyConvention = (typeof SALIENCY_CONVENTIONS)[number];

/** The most demanding thing a method asks of the model. */
export type SaliencyNeed = 'gradients' | 'forward' | 'activations' | 'dots' | 'none';

/**
 * Everything any method may need for ONE image. h×w is the target-layer grid for feature-level
 * methods and the requested size for baselines; H×W is the input image size.
 */
export interface SaliencyInputs extends LongRunOptions {
  A?: Floats;
  G?: Floats;
  /** ShapleyCAM: the Hessian-vector product (∂G/∂A)·A, K×h×w. */
  hvp?: Floats;
  /** Finer-CAM: the gradient of its contrastive target (see finercam.ts), K×h×w. */
  finerG?: Floats;
  /** FullGrad: the input gradient and every biased layer's output gradient (whole-model backward). */
  fullgrad?: FullGradInputs;
  /** Opti-CAM: this image's map from the batch-wide optimisation (opticam.ts), H×W. */
  opticam?: SaliencyMap;
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
  /** n×classes logits of images (Score-CAM's pytorch-grad-cam convention weights by logits). */
  forwardLogits?: ForwardProbs;
  /** Whose definition to follow, for the methods whose info lists `conventions` (default the first). */
  convention?: SaliencyConvention;
  /** Method knobs with documented defaults (see the method files). */
  gradcamppEps?: number;
  xgradcamEps?: number;
  ablationValue?: number;
  /** FEM's k of the k-sigma threshold (default 2). */
  femK?: number;
  kpca?: KpcaOptions;
}

/** The fields a method may declare as required (the rest are optional knobs). */
export type SaliencyInputField =
  | 'A'
  | 'G'
  | 'hvp'
  | 'finerG'
  | 'fullgrad'
  | 'opticam'
  | 'K'
  | 'h'
  | 'w'
  | 'dots'
  | 'heads'
  | 'image'
  | 'H'
  | 'W'
  | 'mean'
  | 'std'
  | 'forwardProbs'
  | 'forwardFromLayer'
  | 'target'
  | 'maxBatch'
  | 'seed'
  | 'rise';

/** What a method with declared inputs I receives: those present, every other field optional. */
export type MethodInputs<I extends SaliencyInputField> = Omit<SaliencyInputs, I> & { [F in I]-?: NonNullable<SaliencyInputs[F]> };

export interface SaliencyMethodInfo<N extends string = string, I extends SaliencyInputField = SaliencyInputField> {
  name: N;
  title: string;
  needs: SaliencyNeed;
  /** For needs 'forward': whole model on images, or the head from the target layer on. */
  forwardFrom?: 'input' | 'layer';
  /** Exactly the SaliencyInputs fields compute receives as present. */
  inputs: readonly I[];
  /** Resolution of the stored map: target-layer grid, input image, or whatever h×w is asked. */
  resolution: 'feature' | 'input' | 'any';
  /** Depends on the target class (false: same map for every class). */
  classSpecific: boolean;
  /** Only defined for CA-Stream models (needs the l4 block's dots). */
  caOnly: boolean;
  /** Uses the `seed` input (the map is a function of it). */
  seeded: boolean;
  /** Present when the method follows either code on request (`convention` input); the first is the default. */
  conventions?: readonly SaliencyConvention[];
}

/** A registered method: its info, and a compute that checks the declared inputs first. */
export interface SaliencyMethod<N extends string = string> {
  info: SaliencyMethodInfo<N>;
  compute(inp: SaliencyInputs): Promise<SaliencyMap>;
}

/** The target-layer activations and their shape, the inputs of every CAM. */
export const FEATURE_INPUTS = ['A', 'K', 'h', 'w'] as const;

/** The shared declaration of the gradient CAMs: the target layer's features and the target's gradient, one map per class. */
export const GRADIENT_CAM = {
  needs: 'gradients',
  inputs: [...FEATURE_INPUTS, 'G'],
  resolution: 'feature',
  classSpecific: true,
  caOnly: false,
  seeded: false,
} as const;

/** The shared declaration of the activation-only CAMs (no backward, the same map for every class). */
export const ACTIVATION_CAM = {
  needs: 'activations',
  inputs: [...FEATURE_INPUTS],
  resolution: 'feature',
  classSpecific: false,
  caOnly: false,
  seeded: false,
} as const;

export function missingInput(method: string, field: string): Error {
  return new Error(`saliency: method '${method}' needs input '${field}'`);
}

function hasInputs<I extends SaliencyInputField>(inp: SaliencyInputs, fields: readonly I[]): inp is MethodInputs<I> & SaliencyInputs {
  return fields.every((f) => inp[f] !== undefined);
}

export function defineSaliencyMethod<const N extends string, const I extends SaliencyInputField>(
  info: SaliencyMethodInfo<N, I>,
  compute: (inp: MethodInputs<I>) => SaliencyMap | Promise<SaliencyMap>,
): SaliencyMethod<N> {
  return {
    info,
    async compute(inp) {
      if (!hasInputs(inp, info.inputs))
        throw missingInput(
          info.name,
          info.inputs.find((f) => inp[f] === undefined)!,
        );
      return compute(inp);
    },
  };
}
