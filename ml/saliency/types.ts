// Shared types of the saliency methods. Everything is plain typed arrays so the methods stay
// independent of tfjs / onnxruntime: the stage adapter computes activations, gradients and
// forward passes with whichever engine it likes and hands the numbers over.

/** Any flat numeric buffer a caller may hold activations in. */
export type Floats = Float32Array | Float64Array;

/** `sys.float_info.epsilon`, the ε of CA-Stream's min-max (design §4). */
export const DBL_EPSILON = 2.220446049250313e-16;

/** constant: nothing left after ReLU + min-max; zero-score: Ablation-CAM's y = 0. */
export type DegenerateReason = 'constant' | 'non-finite' | 'zero-score';

/** One saliency map for one image. */
export interface SaliencyMap {
  /** h×w values in [0, 1], row-major. */
  map: Float32Array;
  h: number;
  w: number;
  /**
   * true when the map carries no ranking information: the (ReLU'd) map was constant, so min-max
   * returned all zeros, or it contained NaN/±Infinity. Reports count these images.
   */
  degenerate: boolean;
  reason?: DegenerateReason;
}

/** A CAM-family result: the map plus the per-channel weights that produced it (diagnostics). */
export interface CamResult extends SaliencyMap {
  /** w_k per channel (absent for Layer-CAM / Eigen-CAM, whose weights are per position). */
  weights?: Float64Array;
}

/** Forward pass on a batch of images (NCHW, normalised): n×classes softmax probabilities. */
export type ForwardProbs = (batch: Float32Array, n: number) => Promise<Float32Array>;

/** Forward from the target layer on a batch of n activations (n×K×h×w): n target scores. */
export type ForwardFromLayer = (batch: Float32Array, n: number) => Promise<Float32Array>;

/** Options shared by the methods that need many forward passes. */
export interface LongRunOptions {
  /** Called after each forward batch with the number of items done out of total. */
  onProgress?: (done: number, total: number) => void;
  /** Checked between batches; an aborted signal rejects with its reason. */
  signal?: AbortSignal;
}

export function checkLength(name: string, arr: ArrayLike<number>, expected: number, shape: string): void {
  if (arr.length !== expected) {
    throw new Error(`saliency: ${name} has ${arr.length} values, expected ${expected} (${shape})`);
  }
}

export function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`saliency: ${name} must be a positive integer, got ${v}`);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('saliency: aborted');
}
