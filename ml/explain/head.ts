// The model's pooling head on precomputed backbone taps, for the two things saliency needs beyond
// plain forward passes (which ONNX Runtime does faster):
//  - the gradient of each image's target logit with respect to the layer4 tap, through GAP + fc or
//    through the CA stream (the l4 block; earlier taps enter as constants), in tfjs;
//  - the target score from (modified) layer4 activations on, for Ablation-CAM, in plain TS: with the
//    token entering the l4 block fixed per image, logit_t = u·z + c where z is the attention-pooled
//    (or averaged) feature vector and u = Wᵀ fc_t folds the l4 projection into the classifier row.
// Taps are exchanged as NCHW float arrays (what ONNX Runtime returns); tfjs works in NHWC.
import * as tf from '@tensorflow/tfjs-core';
import { caProjections, TAPS, tapChannels, type ResNetArch, type TapName } from '../models/arch.js';
import { caHeadForward, type CaHeadParams } from '../models/ca-head.js';
import type { FloatTensor, PoolingHead } from './model-dir.js';

export type TapSet = Partial<Record<TapName, FloatTensor>>;

export interface Layer4Gradients {
  /** B×classes logits computed by the tfjs head (for parity checks with ONNX). */
  logits: Float32Array;
  /** ∂ logit_{target_b} / ∂ layer4 of image b, B×K×h×w (channel-major, like the tap). */
  grad: Float32Array;
}

function need(weights: Map<string, FloatTensor>, key: string, file: string): FloatTensor {
  const t = weights.get(key) ?? weights.get(`module.${key}`);
  if (!t) throw new Error(`${file}: missing weight "${key}" needed by the pooling head`);
  return t;
}

export class PoolingHeadRunner {
  readonly kind: PoolingHead;
  readonly heads: number;
  readonly arch: ResNetArch;
  readonly numClasses: number;
  private readonly fcW: FloatTensor;
  private readonly fcB: FloatTensor;
  /** ca-final: the block's optional projection; ca-stream: l4's projection. */
  private l4Proj?: { W: FloatTensor; b: FloatTensor };
  private readonly token?: FloatTensor;
  private params?: CaHeadParams;
  private readonly owned: tf.Tensor[] = [];

  constructor(kind: PoolingHead, heads: number, arch: ResNetArch, weights: Map<string, FloatTensor>, file = '<weights>') {
    this.kind = kind;
    this.heads = kind === 'gap' ? 1 : heads;
    this.arch = arch;
    this.fcW = need(weights, 'fc.weight', file);
    this.fcB = need(weights, 'fc.bias', file);
    this.numClasses = this.fcB.data.length;
    const C4 = tapChannels(arch).layer4;
    if (this.fcW.shape[1] !== C4) throw new Error(`${file}: fc.weight has ${this.fcW.shape[1]} inputs, ${arch.name} layer4 has ${C4} channels`);
    if (kind === 'gap') return;
    if (C4 % this.heads !== 0) throw new Error(`heads=${this.heads} does not divide the ${C4} layer4 channels of ${arch.name}`);
    this.token = need(weights, 'cls_token', file);
    const tensor = (t: FloatTensor, shape = t.shape) => {
      const x = tf.tensor(t.data, shape, 'float32');
      this.owned.push(x);
      return x;
    };
    const fcWeight = tensor(this.fcW) as tf.Tensor2D;
    const fcBias = tensor(this.fcB) as tf.Tensor1D;
    if (kind === 'ca-stream') {
      const blocks = caProjections(arch).map((p) => {
        const W = need(weights, `${p.block}.to_out.1.weight`, file);
        const b = need(weights, `${p.block}.to_out.1.bias`, file);
        if (p.tap === 'layer4') this.l4Proj = { W, b };
        return { tap: p.tap, name: p.block, weight: tensor(W) as tf.Tensor2D, bias: tensor(b) as tf.Tensor1D, dropout: 0 };
      });
      this.params = { kind, heads: this.heads, token: tensor(this.token), blocks, fcWeight, fcBias };
    } else {
      const Wt = weights.get('cls_surrogate.to_out.1.weight');
      const bt = weights.get('cls_surrogate.to_out.1.bias');
      if (Wt && bt) this.l4Proj = { W: Wt, b: bt };
      this.params = {
        kind,
        heads: this.heads,
        token: tensor(this.token),
        blocks: [{ tap: 'layer4', name: 'cls_surrogate', weight: Wt ? (tensor(Wt) as tf.Tensor2D) : undefined, bias: bt ? (tensor(bt) as tf.Tensor1D) : undefined, dropout: 0 }],
        fcWeight,
        fcBias,
      };
    }
  }

  /** Taps the head reads. */
  tapsNeeded(): TapName[] {
    return this.kind === 'ca-stream' ? [...TAPS] : ['layer4'];
  }

  private nhwc(t: FloatTensor | undefined, name: TapName): tf.Tensor4D {
    if (!t) throw new Error(`pooling head (${this.kind}) needs tap "${name}"`);
    if (t.shape.length !== 4) throw new Error(`tap "${name}" must be NCHW, got shape [${t.shape.join(', ')}]`);
    return tf.transpose(tf.tensor4d(t.data, t.shape as [number, number, number, number]), [0, 2, 3, 1]);
  }

  private logitsOf(taps: Partial<Record<TapName, tf.Tensor4D>>, layer4: tf.Tensor4D): tf.Tensor2D {
    if (this.kind === 'gap') {
      const pooled = tf.mean(layer4, [1, 2]) as tf.Tensor2D;
      const W = tf.tensor2d(this.fcW.data, this.fcW.shape as [number, number]);
      return tf.add(tf.matMul(pooled, W, false, true), tf.tensor1d(this.fcB.data)) as tf.Tensor2D;
    }
    return caHeadForward(this.params!, { ...taps, layer4 }, { tapGrad: true }).logits;
  }

  /**
   * Gradient of each image's target logit with respect to its layer4 tap (one backward pass on the
   * sum over the batch; images do not interact in an eval-mode head).
   */
  layer4Gradients(taps: TapSet, targets: ArrayLike<number>): Layer4Gradients {
    const l4 = taps.layer4;
    if (!l4) throw new Error('layer4Gradients needs tap "layer4"');
    const B = l4.shape[0];
    if (targets.length !== B) throw new Error(`layer4Gradients: ${targets.length} targets for a batch of ${B}`);
    for (let i = 0; i < B; i++) {
      const t = targets[i];
      if (!Number.isInteger(t) || t < 0 || t >= this.numClasses) throw new Error(`target class ${t} of image ${i} is outside the model's ${this.numClasses} classes`);
    }
    const out = tf.tidy(() => {
      const tfTaps: Partial<Record<TapName, tf.Tensor4D>> = {};
      for (const name of this.tapsNeeded()) if (name !== 'layer4') tfTaps[name] = this.nhwc(taps[name], name);
      const x = this.nhwc(l4, 'layer4');
      const onehot = tf.cast(tf.oneHot(tf.tensor1d(Array.from(targets), 'int32'), this.numClasses), 'float32');
      const f = (a: tf.Tensor) => tf.sum(tf.mul(this.logitsOf(tfTaps, a as tf.Tensor4D), onehot)) as tf.Scalar;
      const g = tf.grad(f)(x);
      return { logits: this.logitsOf(tfTaps, x), grad: tf.transpose(g, [0, 3, 1, 2]) };
    });
    const res = { logits: out.logits.dataSync() as Float32Array, grad: out.grad.dataSync() as Float32Array };
    tf.dispose([out.logits, out.grad]);
    return { logits: Float32Array.from(res.logits), grad: Float32Array.from(res.grad) };
  }

  /**
   * The (unscaled) token entering the layer4 block, per image: B×C4. ca-final: the learnt token;
   * ca-stream: the output of l3's projection, computed from the earlier taps.
   */
  l4Tokens(taps: TapSet, B: number): Float32Array {
    const C4 = tapChannels(this.arch).layer4;
    if (this.kind === 'gap') throw new Error('the gap head has no CA token');
    if (this.kind === 'ca-final') {
      const out = new Float32Array(B * C4);
      for (let b = 0; b < B; b++) out.set(this.token!.data, b * C4);
      return out;
    }
    const t = tf.tidy(() => {
      const tfTaps: Partial<Record<TapName, tf.Tensor4D>> = {};
      for (const name of ['stem', 'layer1', 'layer2', 'layer3'] as const) tfTaps[name] = this.nhwc(taps[name], name);
      return caHeadForward({ ...this.params!, blocks: this.params!.blocks.slice(0, -1) }, tfTaps, { tapGrad: false }).token;
    });
    const data = Float32Array.from(t.dataSync() as Float32Array);
    t.dispose();
    return data;
  }

  /**
   * A scorer for one image and target: (n layer4 variants, n×K×h×w) → n target logits, with the
   * CA token (if any) fixed to that image's. Used by Ablation-CAM.
   */
  layer4Scorer(target: number, token: Float32Array | undefined, K: number, h: number, w: number): (batch: Float32Array, n: number) => Promise<Float32Array> {
    const hw = h * w;
    const fcRow = this.fcW.data.subarray(target * K, (target + 1) * K);
    // u = Wᵀ fc_t, c = fc_t·b + fcb_t (or u = fc_t without a projection / for GAP).
    const u = new Float64Array(K);
    let c = this.fcB.data[target];
    if (this.kind !== 'gap' && this.l4Proj) {
      const { W, b } = this.l4Proj;
      for (let i = 0; i < K; i++) {
        const f = fcRow[i];
        c += f * b.data[i];
        for (let k = 0, o = i * K; k < K; k++) u[k] += f * W.data[o + k];
      }
    } else for (let k = 0; k < K; k++) u[k] = fcRow[k];
    const heads = this.heads;
    const d = K / heads;
    const scale = 1 / Math.sqrt(K);
    if (this.kind !== 'gap' && (!token || token.length !== K)) throw new Error(`layer4Scorer: a CA head needs the image's ${K}-wide l4 token`);
    const dots = new Float64Array(hw);
    return async (batch, n) => {
      if (batch.length !== n * K * hw) throw new Error(`layer4Scorer: ${batch.length} values for ${n}×${K}×${h}×${w}`);
      const out = new Float32Array(n);
      for (let s = 0; s < n; s++) {
        const A = batch.subarray(s * K * hw, (s + 1) * K * hw);
        let y = c;
        if (this.kind === 'gap') {
          for (let k = 0; k < K; k++) {
            let m = 0;
            for (let p = 0, o = k * hw; p < hw; p++) m += A[o + p];
            y += (u[k] * m) / hw;
          }
        } else {
          for (let g = 0; g < heads; g++) {
            dots.fill(0);
            for (let k = g * d; k < (g + 1) * d; k++) {
              const q = token![k] * scale;
              for (let p = 0, o = k * hw; p < hw; p++) dots[p] += A[o + p] * q;
            }
            let mx = -Infinity;
            for (let p = 0; p < hw; p++) if (dots[p] > mx) mx = dots[p];
            let z = 0;
            for (let p = 0; p < hw; p++) z += dots[p] = Math.exp(dots[p] - mx);
            for (let p = 0; p < hw; p++) dots[p] /= z;
            for (let k = g * d; k < (g + 1) * d; k++) {
              let zk = 0;
              for (let p = 0, o = k * hw; p < hw; p++) zk += A[o + p] * dots[p];
              y += u[k] * zk;
            }
          }
        }
        out[s] = y;
      }
      return out;
    };
  }

  dispose(): void {
    tf.dispose(this.owned);
    this.owned.length = 0;
  }
}
