// Moving named weights between tf.Variables and plain arrays (checkpoints, EMA evaluation).
import * as tf from '@tensorflow/tfjs-core';
import type { ArrayTensor } from './checkpoint.js';

/** Copy named tensors out to Float32Arrays with their shapes. */
export function toArrays(tensors: Record<string, tf.Tensor>): Record<string, ArrayTensor> {
  const out: Record<string, ArrayTensor> = {};
  for (const [n, t] of Object.entries(tensors)) {
    if (t.dtype !== 'float32') throw new Error(`weight '${n}' is ${t.dtype}; only float32 weights are checkpointed`);
    out[n] = { shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) };
  }
  return out;
}

/**
 * Assign arrays to variables by name. Every variable must be present with its exact shape (a
 * silently skipped weight would train from random init); `source` names the origin in errors.
 */
export function assignArrays(vars: Record<string, tf.Variable>, arrays: Record<string, ArrayTensor>, source: string): void {
  const missing = Object.keys(vars).filter((n) => !(n in arrays));
  if (missing.length) throw new Error(`${source}: missing weights ${missing.join(', ')}`);
  const extra = Object.keys(arrays).filter((n) => !(n in vars));
  if (extra.length) throw new Error(`${source}: weights not in the model: ${extra.join(', ')}`);
  for (const [n, v] of Object.entries(vars)) {
    const a = arrays[n];
    if (a.shape.length !== v.shape.length || a.shape.some((d, i) => d !== v.shape[i])) {
      throw new Error(`${source}: weight '${n}' has shape [${a.shape}], the model expects [${v.shape}]`);
    }
  }
  for (const [n, v] of Object.entries(vars)) {
    const t = tf.tensor(arrays[n].data, arrays[n].shape, 'float32');
    v.assign(t);
    t.dispose();
  }
}
