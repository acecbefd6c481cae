// Training-mode BatchNorm with optional fused residual add and ReLU:
//   y = relu?( γ·(x − μ)/√(σ² + ε) + β (+ residual) ),  μ, σ² (biased) over all axes but the last.
// On wasm / cpu this is one fused kernel with a hand-written gradient (ml/backend/batchnorm-kernels);
// elsewhere, and as the reference the tests compare against, the same maths in plain tf ops.
import * as tf from '@tensorflow/tfjs-core';
import { BN_TRAIN, batchNormKernelAvailable, type BnTrainAttrs } from '../backend/batchnorm-kernels.js';

export interface BatchNormTrainOptions {
  epsilon: number;
  relu?: boolean;
  /** Added after the affine transform, before the ReLU (a ResNet block's shortcut). */
  residual?: tf.Tensor;
}

export interface BatchNormTrainResult<T extends tf.Tensor> {
  out: T;
  /** Batch mean per channel. */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel (what normalises; unbias it for running statistics). */
  variance: tf.Tensor1D;
}

/** The composition of tf ops (differentiated by autodiff). */
export function batchNormTrainComposite<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  opts: BatchNormTrainOptions,
): BatchNormTrainResult<T> {
  const axes = [...Array(x.rank - 1).keys()];
  const { mean, variance } = tf.moments(x, axes);
  let out = tf.add(tf.mul(tf.sub(x, mean), tf.div(gamma, tf.sqrt(tf.add(variance, opts.epsilon)))), beta);
  if (opts.residual) out = tf.add(out, opts.residual);
  if (opts.relu) out = tf.relu(out);
  return { out: out as T, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

let fusion = true;

/** Use the fused kernel when available (default) or always the tf-ops composition (tests, benchmarks). */
export function setBatchNormFusion(enabled: boolean): void {
  fusion = enabled;
}

/** Training-mode BatchNorm (+ residual, + ReLU); fused where the backend allows. */
export function batchNormTrain<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  opts: BatchNormTrainOptions,
): BatchNormTrainResult<T> {
  if (!fusion || !batchNormKernelAvailable() || x.dtype !== 'float32') return batchNormTrainComposite(x, gamma, beta, opts);
  const attrs: BnTrainAttrs = { epsilon: opts.epsilon, relu: opts.relu ?? false, residual: opts.residual !== undefined };
  const inputs: Record<string, tf.Tensor> = { x, gamma, beta };
  if (opts.residual) inputs.residual = opts.residual;
  const [out, mean, variance] = tf.engine().runKernel(BN_TRAIN, inputs as any, attrs as any) as tf.Tensor[];
  return { out: out as T, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
