// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_:
// coef = maxNorm / (‖g‖ + 1e-6), clamped to ≤ 1, every gradient multiplied by coef.
import * as tf from '@tensorflow/tfjs-core';

export interface ClipResult {
  /** New gradient tensors (the caller disposes them and the inputs). */
  grads: Record<string, tf.Tensor>;
  /** Global norm before clipping (NaN/Infinity pass through, for the guards to report). */
  norm: number;
}

export function globalNorm(grads: Record<string, tf.Tensor>): number {
  const names = Object.keys(grads);
  if (names.length === 0) return 0;
  const sq = tf.tidy(() => tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))));
  const v = sq.dataSync()[0];
  sq.dispose();
  return Math.sqrt(v);
}

export function clipGradNorm(grads: Record<string, tf.Tensor>, maxNorm: number): ClipResult {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  const out: Record<string, tf.Tensor> = {};
  for (const [n, g] of Object.entries(grads)) out[n] = coef === 1 ? tf.clone(g) : tf.mul(g, coef);
  return { grads: out, norm };
}
