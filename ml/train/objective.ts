// The training objective of one batch: optional mixup/cutmix on the images, then the criterion
// (cross-entropy with label smoothing, or BCE on one-hot / mixed targets). The per-batch
// randomness comes from Rng(seed, epoch, batch), never from a running stream, so resuming in the
// middle of an epoch needs no RNG state.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../data/rng.js';
import { argmaxRows, bceWithLogits, crossEntropy, softTargetCrossEntropy, topkCorrect } from './losses.js';
import { mixBatch, smoothedOneHot } from './mixup.js';

export type Criterion = 'ce' | 'bce';

export interface ObjectiveConfig {
  criterion: Criterion;
  labelSmoothing: number;
  mixup: number;
  cutmix: number;
  mixSwitchProb: number;
  classes: number;
  seed: number;
}

export interface PreparedBatch {
  /** Images after mixing (NHWC), or the input unchanged. */
  images?: Float32Array;
  /** Soft targets [B·K] when the batch was mixed or the criterion needs them. */
  targets: Float32Array | null;
  /** Labels used for accuracy (argmax of mixed targets). */
  accLabels: Int32Array;
  labels: Int32Array;
}

/** Stream tag of the mixup draws, so they never coincide with the loader's augmentation streams. */
const MIX_STREAM = 0x6d69;

export function batchRng(seed: number, epoch: number, batch: number, stream: number): Rng {
  return new Rng(seed, epoch, batch, stream);
}

/** Mix an NHWC image batch when mixup/cutmix are on; build the targets the criterion needs. */
export function prepareBatch(
  cfg: ObjectiveConfig,
  images: Float32Array | undefined,
  shape: [number, number, number, number] | null,
  labels: Int32Array,
  epoch: number,
  batch: number,
): PreparedBatch {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= cfg.classes)
      throw new Error(`label ${labels[i]} at batch ${batch} index ${i} is outside the head's ${cfg.classes} classes`);
  }
  if ((cfg.mixup > 0 || cfg.cutmix > 0) && images && shape) {
    const rng = batchRng(cfg.seed, epoch, batch, MIX_STREAM);
    const m = mixBatch(
      images,
      shape,
      labels,
      { mixup: cfg.mixup, cutmix: cfg.cutmix, switchProb: cfg.mixSwitchProb, labelSmoothing: cfg.labelSmoothing, classes: cfg.classes },
      () => rng.float(),
    );
    return { images: m.images, targets: m.targets, accLabels: argmaxRows(m.targets, cfg.classes), labels };
  }
  const targets = cfg.criterion === 'bce' ? smoothedOneHot(labels, cfg.classes, cfg.labelSmoothing) : null;
  return { images, targets, accLabels: labels, labels };
}

/** The scalar loss of a batch's logits (call inside the gradient function). */
export function batchLoss(cfg: ObjectiveConfig, logits: tf.Tensor2D, prep: PreparedBatch): tf.Scalar {
  if (cfg.criterion === 'bce') return bceWithLogits(logits, tf.tensor2d(prep.targets!, logits.shape));
  if (prep.targets) return softTargetCrossEntropy(logits, tf.tensor2d(prep.targets, logits.shape));
  return crossEntropy(logits, prep.labels, cfg.labelSmoothing);
}

/** Validation loss (plain cross-entropy, as the original evaluator) and top-1 hits of a batch. */
export function evalBatch(logits: tf.Tensor2D, labels: Int32Array): { lossSum: number; correct: number } {
  const loss = tf.tidy(() => tf.mul(crossEntropy(logits, labels), labels.length));
  const lossSum = loss.dataSync()[0];
  loss.dispose();
  const [correct] = topkCorrect(logits.dataSync() as Float32Array, logits.shape[1], labels, [1]);
  return { lossSum, correct };
}

export function countCorrect(logits: tf.Tensor2D, labels: Int32Array): number {
  return topkCorrect(logits.dataSync() as Float32Array, logits.shape[1], labels, [1])[0];
}
