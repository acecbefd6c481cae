// The model's pooling head on precomputed backbone taps, for the two things saliency needs beyond
// plain forward passes (which ONNX Runtime does faster). "layer4" below means the backbone's last
// feature map (the ResNets' layer4, ConvNeXt's and EfficientNet's features[-1]): the CAM target.
//  - the gradient of each image's target logit with respect to that tap, through GAP + classifier
//    or through the CA stream (its last block; earlier taps enter as constants), in tfjs;
//  - the target score from (modified) last-tap activations on, for Ablation-CAM: with the token
//    entering the last block fixed per image, the pooled vector z feeds the projection and the
//    classifier. A Linear classifier folds into logit_t = u·z + c (u = Wᵀ fc_t) in plain TS;
//    ConvNeXt's (LayerNorm first) is applied as it is, in tfjs.
// Taps are exchanged as NCHW float arrays (what ONNX Runtime returns); tfjs works in NHWC.
import * as tf from '@tensorflow/tfjs-core';
import type { ResNetArch } from '../models/arch.js';
import { lastReading, type Backbone } from '../models/backbone.js';
import { getBackbone } from '../models/backbones.js';
import { kvParams } from '../models/model.js';
import { caHeadForward, type CaHeadParams } from '../models/ca-head.js';
import { withSecondOrderGradients } from '../backend/second-order.js';
import type { FloatTensor, PoolingHead } from './model-dir.js';

export type TapSet = Partial<Record<string, FloatTensor>>;

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
  readonly arch: Backbone;
  /** The last feature map's tap name (ResNet: layer4). */
  readonly lastTap: string;
  readonly numClasses: number;
  /** The classifier's parameters as tfjs tensors, by name, for Backbone.classify. */
  private readonly classifier = new Map<string, tf.Tensor>();
  /** A Linear classifier's weight and bias (ResNet fc, EfficientNet classifier.1); absent for ConvNeXt. */
  private readonly fcW?: FloatTensor;
  private readonly fcB?: FloatTensor;
  /** ca-final: the block's optional projection; ca-stream: l4's projection. */
  private l4Proj?: { W: FloatTensor; b: FloatTensor };
  private readonly token?: FloatTensor;
  private params?: CaHeadParams;
  /** ca-final is ConvNeXt's CLS_KV block (keys ≠ values ≠ features): no closed-form scorer. */
  private kv = false;
  private readonly owned: tf.Tensor[] = [];

  constructor(
    kind: PoolingHead,
    heads: number,
    archLike: Backbone | ResNetArch | string,
    weights: Map<string, FloatTensor>,
    file = '<weights>',
  ) {
    this.kind = kind;
    this.heads = kind === 'gap' ? 1 : heads;
    const arch = getBackbone(archLike);
    this.arch = arch;
    const last = lastReading(arch);
    this.lastTap = last.tap;
    const tensor = (t: FloatTensor, shape = t.shape) => {
      const x = tf.tensor(t.data, shape, 'float32');
      this.owned.push(x);
      return x;
    };
    const clsW = need(weights, arch.classifierWeight, file);
    this.numClasses = clsW.shape[0];
    const C4 = last.channels;
    if (clsW.shape[1] !== C4)
      throw new Error(
        `${file}: ${arch.classifierWeight} has ${clsW.shape[1]} inputs, ${arch.name}'s last feature map (${last.tap}) has ${C4} channels`,
      );
    for (const spec of arch.params(this.numClasses).filter((sp) => sp.group === 'fc'))
      this.classifier.set(spec.name, tensor(need(weights, spec.name, file), spec.fileShape));
    if (arch.linearClassifier) {
      this.fcW = need(weights, arch.linearClassifier.weight, file);
      this.fcB = need(weights, arch.linearClassifier.bias, file);
    }
    if (kind === 'gap') return;
    if (C4 % this.heads !== 0) throw new Error(`heads=${this.heads} does not divide the ${C4} channels of ${arch.name}'s last feature map`);
    this.token = need(weights, 'cls_token', file);
    const classify = (q: tf.Tensor2D) => this.classify(q);
    if (kind === 'ca-stream') {
      const blocks = arch.caStream().map((p) => {
        const W = need(weights, `${p.block}.to_out.1.weight`, file);
        const b = need(weights, `${p.block}.to_out.1.bias`, file);
        if (p.tap === last.tap) this.l4Proj = { W, b };
        return { tap: p.tap, name: p.block, weight: tensor(W) as tf.Tensor2D, bias: tensor(b) as tf.Tensor1D, dropout: 0 };
      });
      this.params = { kind, heads: this.heads, token: tensor(this.token), blocks, classify };
    } else {
      const block = arch.caFinalBlock;
      if (!block) throw new Error(`${arch.name}: the ${arch.family} family has no ca-final variant`);
      const Wt = weights.get(`${block}.to_out.1.weight`);
      const bt = weights.get(`${block}.to_out.1.bias`);
      if (Wt && bt) this.l4Proj = { W: Wt, b: bt };
      this.kv = arch.caFinalKind === 'kv';
      const kv = this.kv ? kvParams((n) => tensor(need(weights, n, file)), block) : undefined;
      this.params = {
        kind,
        heads: this.heads,
        token: tensor(this.token),
        blocks: [
          {
            tap: last.tap,
            name: block,
            weight: Wt ? (tensor(Wt) as tf.Tensor2D) : undefined,
            bias: bt ? (tensor(bt) as tf.Tensor1D) : undefined,
            dropout: 0,
            kv,
          },
        ],
        classify,
      };
    }
  }

  /** The backbone's classifier on pooled features or a token [B, C]. */
  private classify(token: tf.Tensor2D): tf.Tensor2D {
    return this.arch.classify({ param: (n) => this.classifier.get(n)! }, token);
  }

  /** Taps the head reads. */
  tapsNeeded(): string[] {
    return this.kind === 'ca-stream' ? this.arch.caStream().map((b) => b.tap) : [this.lastTap];
  }

  private nhwc(t: FloatTensor | undefined, name: string): tf.Tensor4D {
    if (!t) throw new Error(`pooling head (${this.kind}) needs tap "${name}"`);
    if (t.shape.length !== 4) throw new Error(`tap "${name}" must be NCHW, got shape [${t.shape.join(', ')}]`);
    return tf.transpose(tf.tensor4d(t.data, t.shape as [number, number, number, number]), [0, 2, 3, 1]);
  }

  /** naive: plain-autodiff attention, whose backward is itself differentiable (the fast block's custom gradient is not). */
  private logitsOf(taps: Partial<Record<string, tf.Tensor4D>>, layer4: tf.Tensor4D, naive = false): tf.Tensor2D {
    if (this.kind === 'gap') return this.classify(tf.mean(layer4, [1, 2]) as tf.Tensor2D);
    return caHeadForward(this.params!, { ...taps, [this.lastTap]: layer4 }, { tapGrad: true, naive }).logits;
  }

  private checkTargets(B: number, targets: ArrayLike<number>, what: string): void {
    if (targets.length !== B) throw new Error(`${what}: ${targets.length} targets for a batch of ${B}`);
    for (let i = 0; i < B; i++) {
      const t = targets[i];
      if (!Number.isInteger(t) || t < 0 || t >= this.numClasses)
        throw new Error(`target class ${t} of image ${i} is outside the model's ${this.numClasses} classes`);
    }
  }

  /** The earlier taps the head reads (constants here) and the last one, as NHWC tensors. */
  private tfTaps(taps: TapSet, what: string): { rest: Partial<Record<string, tf.Tensor4D>>; x: tf.Tensor4D; B: number } {
    const l4 = taps[this.lastTap];
    if (!l4) throw new Error(`${what} needs tap "${this.lastTap}"`);
    const rest: Partial<Record<string, tf.Tensor4D>> = {};
    for (const name of this.tapsNeeded()) if (name !== this.lastTap) rest[name] = this.nhwc(taps[name], name);
    return { rest, x: this.nhwc(l4, this.lastTap), B: l4.shape[0] };
  }

  private static nchw(t: tf.Tensor): Float32Array {
    return Float32Array.from(tf.transpose(t, [0, 3, 1, 2]).dataSync() as Float32Array);
  }

  /**
   * ShapleyCAM's second-order term: with g(A) = ∂ logit_t / ∂A through the head, the
   * Hessian-vector product (∂g/∂A)·A per image, B×K×h×w — what pytorch-grad-cam's
   * autograd.grad(grads, activations, grad_outputs=activations) computes (A is the target layer's
   * output, so only the head lies between A and the logit). Also returns g itself.
   */
  layer4Hvp(taps: TapSet, targets: ArrayLike<number>): { grad: Float32Array; hvp: Float32Array } {
    return withSecondOrderGradients(() => this.hvpOf(taps, targets));
  }

  private hvpOf(taps: TapSet, targets: ArrayLike<number>): { grad: Float32Array; hvp: Float32Array } {
    return tf.tidy(() => {
      const { rest, x, B } = this.tfTaps(taps, 'layer4Hvp');
      this.checkTargets(B, targets, 'layer4Hvp');
      const onehot = tf.cast(tf.oneHot(tf.tensor1d(Array.from(targets), 'int32'), this.numClasses), 'float32');
      const score = (a: tf.Tensor) => tf.sum(tf.mul(this.logitsOf(rest, a as tf.Tensor4D, true), onehot)) as tf.Scalar;
      const g = tf.grad(score);
      const grad = g(x);
      // A linear classifier on GAP makes the logit linear in A: the Hessian is exactly 0 (and tfjs
      // cannot differentiate a gradient that does not depend on its input).
      if (this.kind === 'gap' && this.arch.linearClassifier)
        return { grad: PoolingHeadRunner.nchw(grad), hvp: new Float32Array(grad.size) };
      // v = A as a constant: a fresh tensor, so the outer gradient does not also flow through it.
      const v = this.nhwc(taps[this.lastTap], this.lastTap);
      const hvp = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(g(a), v)) as tf.Scalar)(x);
      return { grad: PoolingHeadRunner.nchw(grad), hvp: PoolingHeadRunner.nchw(hvp) };
    });
  }

  /**
   * Gradient with respect to the last tap of Finer-CAM's target per image (pytorch-grad-cam's
   * FinerWeightedTarget, softmax weights not detached): Σ_j p_j (y_t − α y_j) / (Σ_j p_j + 1e-9)
   * over the comparison classes `comparisons[b]`, p = softmax(logits).
   */
  layer4FinerGradients(taps: TapSet, targets: ArrayLike<number>, comparisons: readonly (readonly number[])[], alpha: number): Float32Array {
    return tf.tidy(() => {
      const { rest, x, B } = this.tfTaps(taps, 'layer4FinerGradients');
      this.checkTargets(B, targets, 'layer4FinerGradients');
      if (comparisons.length !== B) throw new Error(`layer4FinerGradients: ${comparisons.length} comparison lists for a batch of ${B}`);
      const C = this.numClasses;
      const main = new Float32Array(B * C);
      const comp = new Float32Array(B * C);
      for (let b = 0; b < B; b++) {
        main[b * C + targets[b]] = 1;
        for (const j of comparisons[b]) {
          if (!Number.isInteger(j) || j < 0 || j >= C)
            throw new Error(`Finer-CAM: comparison class ${j} of image ${b} is outside the ${C} classes`);
          comp[b * C + j] = 1;
        }
      }
      const M = tf.tensor2d(main, [B, C]);
      const Cm = tf.tensor2d(comp, [B, C]);
      const score = (a: tf.Tensor) => {
        const L = this.logitsOf(rest, a as tf.Tensor4D);
        const p = tf.mul(tf.softmax(L), Cm);
        const yt = tf.sum(tf.mul(L, M), 1, true);
        const num = tf.sum(tf.mul(p, tf.sub(yt, tf.mul(L, alpha))), 1);
        return tf.sum(tf.div(num, tf.add(tf.sum(p, 1), 1e-9))) as tf.Scalar;
      };
      return PoolingHeadRunner.nchw(tf.grad(score)(x));
    });
  }

  /** B×classes logits of the head on the given taps (tfjs; for the Finer-CAM class ranking and tests). */
  logits(taps: TapSet): Float32Array {
    return tf.tidy(() => {
      const { rest, x } = this.tfTaps(taps, 'logits');
      return Float32Array.from(this.logitsOf(rest, x).dataSync() as Float32Array);
    });
  }

  /**
   * Gradient of each image's target logit with respect to its layer4 tap (one backward pass on the
   * sum over the batch; images do not interact in an eval-mode head).
   */
  layer4Gradients(taps: TapSet, targets: ArrayLike<number>): Layer4Gradients {
    const l4 = taps[this.lastTap];
    if (!l4) throw new Error(`layer4Gradients needs tap "${this.lastTap}"`);
    const B = l4.shape[0];
    if (targets.length !== B) throw new Error(`layer4Gradients: ${targets.length} targets for a batch of ${B}`);
    for (let i = 0; i < B; i++) {
      const t = targets[i];
      if (!Number.isInteger(t) || t < 0 || t >= this.numClasses)
        throw new Error(`target class ${t} of image ${i} is outside the model's ${this.numClasses} classes`);
    }
    const out = tf.tidy(() => {
      const tfTaps: Partial<Record<string, tf.Tensor4D>> = {};
      for (const name of this.tapsNeeded()) if (name !== this.lastTap) tfTaps[name] = this.nhwc(taps[name], name);
      const x = this.nhwc(l4, this.lastTap);
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
    const C4 = lastReading(this.arch).channels;
    if (this.kind === 'gap') throw new Error('the gap head has no CA token');
    if (this.kind === 'ca-final') {
      const out = new Float32Array(B * C4);
      for (let b = 0; b < B; b++) out.set(this.token!.data, b * C4);
      return out;
    }
    const t = tf.tidy(() => {
      const tfTaps: Partial<Record<string, tf.Tensor4D>> = {};
      for (const name of this.tapsNeeded().slice(0, -1)) tfTaps[name] = this.nhwc(taps[name], name);
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
  layer4Scorer(
    target: number,
    token: Float32Array | undefined,
    K: number,
    h: number,
    w: number,
  ): (batch: Float32Array, n: number) => Promise<Float32Array> {
    if (this.kv)
      throw new Error(`layer4Scorer: Ablation-CAM is not available for ${this.arch.name}'s CLS_KV ca-final head (use ca-stream or gap)`);
    const hw = h * w;
    // u = Wᵀ fc_t, c = fc_t·b + fcb_t (or u = fc_t without a projection / for GAP).
    const u = new Float64Array(K);
    let c = 0;
    const folded = this.fcW !== undefined;
    if (this.fcW && this.fcB) {
      const fcRow = this.fcW.data.subarray(target * K, (target + 1) * K);
      c = this.fcB.data[target];
      if (this.kind !== 'gap' && this.l4Proj) {
        const { W, b } = this.l4Proj;
        for (let i = 0; i < K; i++) {
          const f = fcRow[i];
          c += f * b.data[i];
          for (let k = 0, o = i * K; k < K; k++) u[k] += f * W.data[o + k];
        }
      } else for (let k = 0; k < K; k++) u[k] = fcRow[k];
    }
    /** Non-linear classifier: pooled vectors (n×K) → projection → classifier, in tfjs. */
    const unfolded = (z: Float32Array, n: number): Float32Array =>
      tf.tidy(() => {
        let q = tf.tensor2d(z, [n, K]);
        if (this.kind !== 'gap' && this.l4Proj) {
          const { W, b } = this.l4Proj;
          q = tf.add(tf.matMul(q, tf.tensor2d(W.data, W.shape as [number, number]), false, true), tf.tensor1d(b.data)) as tf.Tensor2D;
        }
        const logits = this.classify(q);
        return Float32Array.from(tf.gather(logits, [target], 1).dataSync() as Float32Array);
      });
    const heads = this.heads;
    const d = K / heads;
    const scale = 1 / Math.sqrt(K);
    if (this.kind !== 'gap' && (!token || token.length !== K))
      throw new Error(`layer4Scorer: a CA head needs the image's ${K}-wide l4 token`);
    const dots = new Float64Array(hw);
    return async (batch, n) => {
      if (batch.length !== n * K * hw) throw new Error(`layer4Scorer: ${batch.length} values for ${n}×${K}×${h}×${w}`);
      const out = new Float32Array(n);
      const pooled = folded ? undefined : new Float32Array(n * K);
      for (let s = 0; s < n; s++) {
        const A = batch.subarray(s * K * hw, (s + 1) * K * hw);
        let y = c;
        if (this.kind === 'gap') {
          for (let k = 0; k < K; k++) {
            let m = 0;
            for (let p = 0, o = k * hw; p < hw; p++) m += A[o + p];
            if (pooled) pooled[s * K + k] = m / hw;
            else y += (u[k] * m) / hw;
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
              if (pooled) pooled[s * K + k] = zk;
              else y += u[k] * zk;
            }
          }
        }
        out[s] = y;
      }
      return pooled ? unfolded(pooled, n) : out;
    };
  }

  dispose(): void {
    tf.dispose(this.owned);
    this.owned.length = 0;
  }
}
