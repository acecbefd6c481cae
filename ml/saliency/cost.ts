// Forward passes one saliency map costs, per method, for `ca-pipe plan`'s estimates. Counted from
// the implementations (ml/saliency/*.ts), per image and method; the stage's shared forward (the
// taps every method reads, one per image) is counted by the caller once. A method missing here
// has an unknown cost: the plan says so instead of guessing.

export interface MapCostQuery {
  method: string;
  /** Channels of the target layer (layer4: 2048 on ResNet-50, 512 on ResNet-18). Undefined: unknown. */
  channels?: number;
  /** Square input side in pixels. */
  imageSize: number;
  /** RISE masks (the saliency stage's rise.masks). */
  riseMasks?: number;
  /** Opti-CAM's optimisation steps (the saliency stage's opticam.steps; the bound: it may stop early). */
  opticamSteps?: number;
}

export interface MapCost {
  /** Whole-network forward passes on images. */
  forwards: number;
  /**
   * Backward passes, counted as two forwards' work each: through the head to the target layer for
   * the gradient CAMs, through the whole network to the input for FullGrad and Opti-CAM.
   */
  backwards: number;
  /** Passes of only the network after the target layer (the head: cheap next to a forward). */
  tailForwards: number;
}

type Counter = (q: MapCostQuery) => MapCost | undefined;

const none: MapCost = { forwards: 0, backwards: 0, tailForwards: 0 };
/** Maps read from the shared taps forward: nothing of their own. */
const fromTaps: Counter = () => none;
/** One backward of the target score to the target layer; the gradient CAMs share the taps forward. */
const oneBackward: Counter = () => ({ forwards: 0, backwards: 1, tailForwards: 0 });

/** Per method: what one map costs beyond the shared taps forward. */
export const MAP_COSTS: Readonly<Record<string, Counter>> = {
  'ca-attention': fromTaps,
  eigencam: fromTaps,
  gradcam: oneBackward,
  gradcampp: oneBackward,
  xgradcam: oneBackward,
  layercam: oneBackward,
  // One masked image per channel (scorecam.ts; all-zero channels are skipped, so this is the bound).
  scorecam: (q) => (q.channels === undefined ? undefined : { forwards: q.channels, backwards: 0, tailForwards: 0 }),
  // One head pass per ablated channel plus the intact one (ablationcam.ts).
  ablationcam: (q) => (q.channels === undefined ? undefined : { forwards: 0, backwards: 0, tailForwards: q.channels + 1 }),
  // One forward per mask (rise.ts).
  rise: (q) => (q.riseMasks === undefined ? undefined : { forwards: q.riseMasks, backwards: 0, tailForwards: 0 }),
  hirescam: oneBackward,
  'gradcam-elementwise': oneBackward,
  eigengradcam: oneBackward,
  // Its own target (the similar classes' score difference): one more head backward (finercam.ts).
  finercam: oneBackward,
  // Gradient + the head's Hessian-vector product: a second-order head pass (shapleycam.ts).
  shapleycam: () => ({ forwards: 0, backwards: 1, tailForwards: 1 }),
  fem: fromTaps,
  kpcacam: fromTaps,
  // One whole-model forward with bias probes and its backward to the input (fullgrad.ts).
  fullgrad: () => ({ forwards: 1, backwards: 1, tailForwards: 0 }),
  // Per step one masked forward and its backward to the channel weights, plus the final map's forward (opticam.ts).
  opticam: (q) => {
    const t = q.opticamSteps ?? 50;
    return { forwards: t + 1, backwards: t, tailForwards: 0 };
  },
  random: () => none,
  center: () => none,
  ones: () => none,
};

/** What one map of `q.method` costs, or undefined ("cost unknown") for a method or setting not counted here. */
export function mapCost(q: MapCostQuery): MapCost | undefined {
  const counter = Object.prototype.hasOwnProperty.call(MAP_COSTS, q.method) ? MAP_COSTS[q.method] : undefined;
  return counter?.(q);
}
