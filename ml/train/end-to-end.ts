// Training tasks where the whole network runs in tfjs: `scratch` (random init) and `finetune`
// (from init weights). BatchNorm uses batch statistics and updates its running statistics.
import * as tf from '@tensorflow/tfjs-core';
import type { TensorToWrite } from '../io/safetensors.js';
import type { CaPipeModel } from '../models/model.js';
import { clipGradNorm } from './clip.js';
import type { Ema } from './ema.js';
import type { EvalResult, StepPosition, StepResult, TrainTask } from './loop.js';
import { batchLoss, countCorrect, evalBatch, prepareBatch, type ObjectiveConfig } from './objective.js';
import type { Optimizer } from './optim.js';
import type { BatchSource, SourceBatch } from './sources.js';

export interface WeightsTaskBase {
  model: CaPipeModel;
  /** Variables the optimizer updates (and the EMA averages). */
  trainable: Record<string, tf.Variable>;
  optimizer: Optimizer;
  ema: Ema | null;
  /** Update the EMA every N optimizer steps. */
  emaEvery: number;
  clipGradNorm: number | null;
  objective: ObjectiveConfig;
}

/** Put the EMA average in place of the trained weights; returns the function that undoes it. */
export function swapInEma(trainable: Record<string, tf.Variable>, ema: Ema | null): () => void {
  if (!ema) return () => undefined;
  const saved: Record<string, tf.Tensor> = {};
  const avg = ema.weights();
  for (const [n, v] of Object.entries(trainable)) {
    saved[n] = tf.clone(v);
    v.assign(avg[n]);
  }
  return () => {
    for (const [n, v] of Object.entries(trainable)) {
      v.assign(saved[n]);
      saved[n].dispose();
    }
  };
}

/** The model's state dict (file layout) as tensors to write, EMA weights swapped in when on. */
export function exportModelWeights(base: WeightsTaskBase): Record<string, TensorToWrite> {
  const restore = swapInEma(base.trainable, base.ema);
  try {
    const out: Record<string, TensorToWrite> = {};
    for (const [n, a] of base.model.stateDict()) out[n] = { dtype: 'F32', shape: a.shape, data: a.data };
    return out;
  } finally {
    restore();
  }
}

/** Clip, step the optimizer, update the EMA; disposes the gradients. */
export function applyGradients(base: WeightsTaskBase, grads: Record<string, tf.Tensor>, pos: StepPosition): void {
  let g = grads;
  if (base.clipGradNorm !== null) {
    const c = clipGradNorm(grads, base.clipGradNorm);
    tf.dispose(Object.values(grads));
    g = c.grads;
  }
  base.optimizer.lr = pos.lr;
  base.optimizer.step(g);
  tf.dispose(Object.values(g));
  if (base.ema && (pos.iteration + 1) % base.emaEvery === 0) base.ema.update(base.trainable);
}

export interface EndToEndOptions extends WeightsTaskBase {
  train: BatchSource;
  val: BatchSource;
  /** Square input side. */
  size: number;
  /** Seed of per-batch dropout masks. */
  seed: number;
}

export function createEndToEndTask(o: EndToEndOptions): TrainTask {
  const { model, size } = o;
  const stateVars = Object.fromEntries(model.variables());
  const varList = Object.values(o.trainable);

  async function step(batch: SourceBatch, pos: StepPosition): Promise<StepResult> {
    const n = batch.n;
    const prep = prepareBatch(o.objective, batch.x, [n, size, size, 3], batch.labels, pos.epoch, pos.iter);
    let logits: tf.Tensor2D | null = null;
    const x = tf.tensor4d(prep.images!, [n, size, size, 3]);
    try {
      const { value, grads } = tf.variableGrads(() => {
        const out = model.forward(x, { training: true, seed: dropoutSeed(o.seed, pos) });
        logits = tf.keep(out.logits);
        return batchLoss(o.objective, out.logits, prep);
      }, varList);
      const loss = value.dataSync()[0];
      value.dispose();
      const correct = countCorrect(logits!, prep.accLabels);
      applyGradients(o, grads, pos);
      return { loss, correct, n };
    } finally {
      x.dispose();
      (logits as tf.Tensor | null)?.dispose();
    }
  }

  async function evaluate(): Promise<EvalResult> {
    model.invalidateFolded();
    const restore = swapInEma(o.trainable, o.ema);
    try {
      let lossSum = 0;
      let correct = 0;
      let count = 0;
      for await (const b of o.val.batches(0)) {
        const x = tf.tensor4d(b.x!, [b.n, size, size, 3]);
        const logits = tf.tidy(() => model.forward(x, { training: false }).logits);
        const r = evalBatch(logits, b.labels);
        tf.dispose([x, logits]);
        lossSum += r.lossSum;
        correct += r.correct;
        count += b.n;
      }
      return { loss: count ? lossSum / count : NaN, acc: count ? correct / count : NaN, n: count };
    } finally {
      restore();
      model.invalidateFolded();
    }
  }

  return {
    stateVars,
    optimizer: o.optimizer,
    ema: o.ema,
    train: o.train,
    step,
    evaluate,
    exportWeights: () => exportModelWeights(o),
  };
}

/** Dropout masks per (seed, epoch, batch): a resumed run draws the same masks. */
export function dropoutSeed(seed: number, pos: { epoch: number; iter: number }): number {
  return ((seed * 1000003) ^ (pos.epoch * 7919) ^ (pos.iter * 104729)) >>> 0;
}
