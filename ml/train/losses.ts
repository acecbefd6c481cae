// Classification losses (tfjs ops, differentiable) and accuracy counts (plain arrays).
import * as tf from '@tensorflow/tfjs-core';

export type Labels = Int32Array | number[];

function checkLabels(labels: Labels, batch: number, classes: number, fn: string): void {
  if (labels.length !== batch) throw new Error(`${fn}: ${labels.length} labels for a batch of ${batch}`);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new Error(`${fn}: label ${y} at batch index ${i} is outside [0, ${classes})`);
  }
}

/**
 * Mean cross-entropy of logits [B, K] against integer labels, with torch's label smoothing:
 * targets (1 − ε)·onehot + ε/K, i.e. loss = (1 − ε)·NLL + ε·mean_k(−log p_k).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: Labels, labelSmoothing = 0): tf.Scalar {
  const [b, k] = logits.shape;
  checkLabels(labels, b, k, 'crossEntropy');
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
    throw new Error(`crossEntropy: label smoothing must be in [0, 1], got ${labelSmoothing}`);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    const onehot = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), k);
    const nll = tf.neg(tf.sum(tf.mul(logp, onehot), 1));
    if (labelSmoothing === 0) return tf.mean(nll) as tf.Scalar;
    const uniform = tf.neg(tf.mean(logp, 1));
    return tf.mean(tf.add(tf.mul(nll, 1 - labelSmoothing), tf.mul(uniform, labelSmoothing))) as tf.Scalar;
  });
}

/** Mean over the batch of −Σ_k t_k·log softmax(x)_k, for soft targets [B, K] (mixup/cutmix). */
export function softTargetCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  if (logits.shape[0] !== targets.shape[0] || logits.shape[1] !== targets.shape[1]) {
    throw new Error(`softTargetCrossEntropy: logits [${logits.shape}] and targets [${targets.shape}] differ in shape`);
  }
  return tf.tidy(() => tf.mean(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1))) as tf.Scalar);
}

/**
 * Mean binary cross-entropy on logits, in the overflow-free form
 * max(x, 0) − x·y + log(1 + exp(−|x|)).
 */
export function bceWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  if (logits.shape.join() !== targets.shape.join()) {
    throw new Error(`bceWithLogits: logits [${logits.shape}] and targets [${targets.shape}] differ in shape`);
  }
  return tf.tidy(() => {
    const x = logits;
    const l = tf.add(tf.sub(tf.relu(x), tf.mul(x, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
    return tf.mean(l) as tf.Scalar;
  });
}

/**
 * Number of rows whose label is among the top-k logits, for each k. Ties are broken like a stable
 * descending sort (the lower class index ranks first), so a constant output is not "always right".
 */
export function topkCorrect(logits: Float32Array | number[], classes: number, labels: Labels, ks: number[] = [1, 5]): number[] {
  const b = labels.length;
  if (logits.length !== b * classes) throw new Error(`topkCorrect: ${logits.length} logits for ${b} labels × ${classes} classes`);
  checkLabels(labels, b, classes, 'topkCorrect');
  const hits = ks.map(() => 0);
  for (let i = 0; i < b; i++) {
    const y = labels[i];
    const row = i * classes;
    const target = logits[row + y];
    let rank = 0;
    for (let c = 0; c < classes; c++) {
      const v = logits[row + c];
      if (v > target || (v === target && c < y) || Number.isNaN(target)) rank++;
    }
    ks.forEach((k, j) => {
      if (rank < k) hits[j]++;
    });
  }
  return hits;
}

/** Hard labels from soft targets [B·K] (argmax, first index on ties) — for accuracy under mixup. */
export function argmaxRows(values: Float32Array | number[], classes: number): Int32Array {
  const b = values.length / classes;
  if (!Number.isInteger(b)) throw new Error(`argmaxRows: ${values.length} values is not a multiple of ${classes} classes`);
  const out = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (values[i * classes + c] > values[i * classes + best]) best = c;
    out[i] = best;
  }
  return out;
}
