// CA heads on top of backbone taps. Usable without a backbone: frozen-mode training and gradient
// saliency feed taps computed elsewhere (ONNX Runtime) as constants.
import * as tf from '@tensorflow/tfjs-core';
import { matMulT } from '../backend/gradients.js';
import { attentionPool, attentionPoolNaive } from './attention.js';
import { lastReading, type Backbone } from './backbone.js';
import { layerNorm } from './layers.js';

export interface CaBlockParams {
  /** Tap the block reads. */
  tap: string;
  /** Official module name: base, l1..l4 / cls_stream.<k> (ca-stream) or cls_surrogate (ca-final). */
  name: string;
  /** Projection to the next width, PyTorch layout [out, in]; absent = identity (ca-final without projection). */
  weight?: tf.Tensor2D;
  bias?: tf.Tensor1D;
  /** Dropout after the softmax and after the projection during training (the original: 0 on l4). */
  dropout: number;
  /** CLS_KV (ConvNeXt's ca-final): keys / values as Linear maps of the features, LayerNorm output. */
  kv?: CaKvParams;
}

export interface CaKvParams {
  wk: tf.Tensor2D;
  bk: tf.Tensor1D;
  wv: tf.Tensor2D;
  bv: tf.Tensor1D;
  lnWeight: tf.Tensor1D;
  lnBias: tf.Tensor1D;
}

/**
 * CLS_KV on F [B, H, W, C] with an unprojected query q [B, C] (one head, as the original builds it):
 * dots = (F W_kᵀ + b_k) q / √C, a = softmax_N(dots), z = aᵀ(F W_vᵀ + b_v), out = LayerNorm(z).
 */
export function kvBlock(F: tf.Tensor4D, q: tf.Tensor2D, p: CaKvParams): { dots: tf.Tensor3D; z: tf.Tensor2D } {
  const [B, H, W, C] = F.shape;
  const flat = tf.reshape(F, [B * H * W, C]) as tf.Tensor2D;
  const K = tf.reshape(linear(flat, p.wk, p.bk), [B, H * W, C]);
  const V = tf.reshape(linear(flat, p.wv, p.bv), [B, H * W, C]);
  const dots = tf.reshape(tf.mul(tf.matMul(tf.reshape(q, [B, 1, C]), K, false, true), 1 / Math.sqrt(C)), [B, 1, H * W]) as tf.Tensor3D;
  const a = tf.softmax(dots);
  const z = tf.reshape(tf.matMul(a, V), [B, C]) as tf.Tensor2D;
  return { dots, z: layerNorm(z, p.lnWeight, p.lnBias, 1e-5) };
}

export interface CaHeadParams {
  kind: 'ca-stream' | 'ca-final';
  heads: number;
  /** Initial token, [1, 1, C0]. */
  token: tf.Tensor;
  blocks: CaBlockParams[];
  /** A plain Linear classifier, [K, C_last] and [K] (ResNet's fc, EfficientNet's classifier.1) … */
  fcWeight?: tf.Tensor2D;
  fcBias?: tf.Tensor1D;
  /** … or the backbone's own classifier on the final token (ConvNeXt: LayerNorm, then Linear). */
  classify?: (token: tf.Tensor2D) => tf.Tensor2D;
}

export type Taps = Partial<Record<string, tf.Tensor4D>>;

export interface HeadOutput {
  logits: tf.Tensor2D;
  /** Final token q5 (ca-stream) / pooled token (ca-final), [B, C]. */
  token: tf.Tensor2D;
  /** Each block's pre-softmax scores, [B, h, H, W], by the tap it reads. */
  dots: Partial<Record<string, tf.Tensor4D>>;
}

export interface HeadRunOptions {
  /** Apply dropout (training). Default false. */
  training?: boolean;
  /** Gradients with respect to the taps wanted (see attention.ts). Default true. */
  tapGrad?: boolean;
  /** Seed for dropout masks; when absent tfjs's global RNG is used. */
  seed?: number;
  /** Use the plain-autodiff reference block instead of the hand-written gradient (tests, debugging). */
  naive?: boolean;
}

/** y = x Wᵀ + b with W in PyTorch layout [out, in] (see matMulT for why the transpose is explicit). */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const y = matMulT(x, w, false, true);
  return (b ? tf.add(y, b) : y) as tf.Tensor2D;
}

function keepMask(shape: number[], p: number, seed: number | undefined): tf.Tensor {
  return tf.div(tf.cast(tf.greaterEqual(tf.randomUniform(shape, 0, 1, 'float32', seed), p), 'float32'), 1 - p);
}

/** Run the CA blocks over the taps, then the classifier on the final token. */
export function caHeadForward(params: CaHeadParams, taps: Taps, opts: HeadRunOptions = {}): HeadOutput {
  const first = taps[params.blocks[0].tap];
  if (!first) throw new Error(`CA head needs tap "${params.blocks[0].tap}"`);
  const B = first.shape[0];
  const c0 = params.token.size;
  let q = tf.broadcastTo(tf.reshape(params.token, [1, c0]), [B, c0]) as tf.Tensor2D;
  const dots: HeadOutput['dots'] = {};
  let seed = opts.seed;
  const nextSeed = () => (seed === undefined ? undefined : seed++);
  for (const blk of params.blocks) {
    const F = taps[blk.tap];
    if (!F) throw new Error(`CA head needs tap "${blk.tap}"`);
    if (F.shape[0] !== B) throw new Error(`tap "${blk.tap}" has batch ${F.shape[0]}, expected ${B}`);
    const [, H, W, C] = F.shape;
    if (q.shape[1] !== C) throw new Error(`CA block ${blk.name}: token width ${q.shape[1]} does not match tap "${blk.tap}" channels ${C}`);
    const drop = opts.training && blk.dropout > 0 ? blk.dropout : 0;
    const dropMask = drop > 0 ? (keepMask([B, params.heads, H * W], drop, nextSeed()) as tf.Tensor3D) : undefined;
    if (blk.kv) {
      if (params.heads !== 1) throw new Error(`CA block ${blk.name} (CLS_KV) has one head, got heads=${params.heads}`);
      const r = kvBlock(F, q, blk.kv);
      dots[blk.tap] = tf.reshape(r.dots, [B, 1, H, W]) as tf.Tensor4D;
      q = r.z;
      continue;
    }
    const r = opts.naive
      ? attentionPoolNaive(F, q, params.heads, dropMask)
      : attentionPool(F, q, params.heads, { tapGrad: opts.tapGrad, dropMask });
    dots[blk.tap] = tf.reshape(r.dots, [B, params.heads, H, W]) as tf.Tensor4D;
    q = blk.weight ? linear(r.z, blk.weight, blk.bias) : r.z;
    if (drop > 0) q = tf.mul(q, keepMask(q.shape, drop, nextSeed())) as tf.Tensor2D;
  }
  let logits: tf.Tensor2D;
  if (params.classify) logits = params.classify(q);
  else if (params.fcWeight) logits = linear(q, params.fcWeight, params.fcBias);
  else throw new Error('CA head parameters need a classifier (classify, or fcWeight and fcBias)');
  return { logits, token: q, dots };
}

/** Taps a head reads, in order. */
export function headTaps(kind: 'ca-stream' | 'ca-final', backbone: Backbone): string[] {
  return kind === 'ca-stream' ? backbone.caStream().map((b) => b.tap) : [lastReading(backbone).tap];
}
