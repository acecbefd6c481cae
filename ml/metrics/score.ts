// The model enters the metrics only as an async batch score function.

/**
 * Class probabilities for a batch: `batch` holds exactly `n` NCHW images (length n·C·H·W); the result
 * holds n rows of numClasses softmax probabilities. The function must not modify `batch` and must not
 * keep it after its promise resolves (the buffer is reused).
 */
import type { Protocol } from './protocol.js';
export type ScoreFn = (batch: Float32Array, n: number) => Promise<Float32Array>;

export interface ImageDims {
  c: number;
  h: number;
  w: number;
}

/** Number of classes implied by a score result, with a clear error for malformed results. */
export function classesOf(probs: Float32Array, n: number): number {
  if (n <= 0 || probs.length === 0 || probs.length % n !== 0)
    throw new Error(`score function returned ${probs.length} values for ${n} images (expected n × numClasses)`);
  return probs.length / n;
}

export function argmaxRow(probs: Float32Array, row: number, k: number): number {
  let best = 0;
  let bv = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = probs[row * k + j];
    if (v > bv) {
      bv = v;
      best = j;
    }
  }
  return best;
}

export function checkTarget(t: number, k: number, i: number): void {
  if (!Number.isInteger(t) || t < 0 || t >= k) throw new Error(`target of image ${i} is ${t}, outside the model's ${k} classes`);
}

/**
 * Row-wise softmax of n rows of logits (numerically stable, computed in float64), for wrapping a
 * model that returns logits into a ScoreFn. Writes into `out` (may be `logits` itself).
 */
export function softmaxRows(logits: Float32Array, n: number, out: Float32Array = new Float32Array(logits.length)): Float32Array {
  const k = classesOf(logits, n);
  if (out.length !== logits.length) throw new Error(`softmaxRows: output buffer has ${out.length} values, expected ${logits.length}`);
  for (let r = 0; r < n; r++) {
    const b = r * k;
    let m = -Infinity;
    for (let j = 0; j < k; j++) if (logits[b + j] > m) m = logits[b + j];
    let z = 0;
    for (let j = 0; j < k; j++) z += Math.exp(logits[b + j] - m);
    for (let j = 0; j < k; j++) out[b + j] = Math.exp(logits[b + j] - m) / z;
  }
  return out;
}

/** What a saliency metric is given: images, their maps, the targets, the protocol and the model. */
export interface ScoredMaps {
  /** N normalised NCHW images. */
  images: Float32Array;
  dims: ImageDims;
  /** N saliency maps: H×W each, or `saliencySize` each (then upsampled by the protocol's rule). */
  saliency: Float32Array;
  saliencySize?: { h: number; w: number };
  /** Ground-truth classes; required when the protocol's target rule is `gt` (for `pred` the clean image's argmax is used). */
  targets?: ArrayLike<number>;
  protocol: Protocol;
  score: ScoreFn;
  /** Images per score call (default 32). */
  maxBatch?: number;
  /** Called after each scored batch with (evaluations done, total evaluations). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}
