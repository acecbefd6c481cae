// ResNet v1.5 (torchvision) in NHWC with torchvision parameter names, plus the gap / ca-stream /
// ca-final heads. Parameters live in tf.Variables in tfjs layout (conv filters HWIO).
import * as tf from '@tensorflow/tfjs-core';
import { caProjections, getArch, tapChannels, TAPS, type ResNetArch, type TapName } from './arch.js';
import { caHeadForward, linear, type CaHeadParams, type HeadOutput, type HeadRunOptions, type Taps } from './ca-head.js';
import { backboneSpec, hwioToOihw, initialValue, oihwToHwio, paramSpecs, tfShape, type BackboneSpec, type ConvBn, type HeadKind, type ParamSpec } from './params.js';
import { batchNormTrain } from './batchnorm.js';
import { Rng } from './rng.js';
import { matchWeights, type LoadReport, type TensorLike } from './weights.js';
import { BN_EPS } from './bn-eps.js';

export { BN_EPS };
export const BN_MOMENTUM = 0.1;

export type TrainMode = 'frozen' | 'finetune' | 'scratch';

export interface ModelOptions {
  arch: string | ResNetArch;
  head: HeadKind;
  /** Attention heads of the CA blocks (must divide every tap's channel count). Default 1. */
  heads?: number;
  numClasses: number;
  /** Seed of the random initialisation. Default 0. */
  seed?: number;
  /** CA dropout during training (after softmax and after projection; never on l4). Default 0. */
  dropout?: number;
  /** ca-final only: with the C4→C4 projection. Default false. */
  project?: boolean;
}

export interface BackboneOptions {
  /** BatchNorm with batch statistics (and running-stat updates). Default false (eval). */
  training?: boolean;
  /** Eval only: use BN folded into the convolutions (fast path). Default true. */
  fold?: boolean;
}

export interface ForwardOptions extends BackboneOptions, HeadRunOptions {}

export interface ForwardOutput {
  taps: Record<TapName, tf.Tensor4D>;
  /** Per-block pre-softmax scores [B, h, H, W] (empty for the gap head). */
  dots: Partial<Record<TapName, tf.Tensor4D>>;
  /** Final token (CA) or the pooled layer4 features (gap), [B, C]. */
  token: tf.Tensor2D;
  logits: tf.Tensor2D;
  /** torchvision forward: GAP of layer4, then fc. */
  logitsGap: tf.Tensor2D;
}

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

interface Folded {
  w: tf.Tensor4D;
  b: tf.Tensor1D;
}

function explicitPad(p: number): 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
  // torchvision padding p is symmetric; tfjs 'same' would put the odd pixel at the bottom/right.
  return p === 0 ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]];
}

export class ResNetModel {
  readonly arch: ResNetArch;
  readonly headKind: HeadKind;
  readonly heads: number;
  readonly numClasses: number;
  readonly dropout: number;
  readonly project: boolean;
  readonly specs: ParamSpec[];
  private readonly spec: BackboneSpec;
  private readonly vars = new Map<string, tf.Variable>();
  private folded: Map<string, Folded> | undefined;

  constructor(opts: ModelOptions) {
    this.arch = typeof opts.arch === 'string' ? getArch(opts.arch) : opts.arch;
    this.headKind = opts.head;
    if (!['gap', 'ca-stream', 'ca-final'].includes(opts.head)) throw new Error(`unknown head "${opts.head}" (known: gap, ca-stream, ca-final)`);
    this.heads = opts.heads ?? 1;
    this.numClasses = opts.numClasses;
    this.dropout = opts.dropout ?? 0;
    this.project = opts.project ?? false;
    if (!Number.isInteger(this.numClasses) || this.numClasses < 1) throw new Error(`numClasses must be a positive integer, got ${opts.numClasses}`);
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new Error(`dropout must be in [0, 1), got ${opts.dropout}`);
    if (this.headKind !== 'gap') {
      const ch = tapChannels(this.arch);
      const used = this.headKind === 'ca-stream' ? TAPS : (['layer4'] as const);
      for (const t of used) {
        if (!Number.isInteger(this.heads) || this.heads < 1 || ch[t] % this.heads !== 0) {
          throw new Error(`heads=${opts.heads} must divide the channel count of every CA tap (${t} has ${ch[t]})`);
        }
      }
    }
    this.spec = backboneSpec(this.arch);
    this.specs = paramSpecs(this.arch, { head: this.headKind, numClasses: this.numClasses, project: this.project });
    const rng = new Rng(opts.seed ?? 0);
    for (const s of this.specs) this.vars.set(s.name, tf.variable(this.toTf(s, initialValue(s, rng)), false));
  }

  private toTf(s: ParamSpec, data: Float32Array): tf.Tensor {
    return tf.tensor(s.role === 'conv' ? oihwToHwio(data, s.fileShape) : data, tfShape(s), 'float32');
  }

  /** The variable holding a parameter (tfjs layout). */
  param(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`model has no parameter "${name}"`);
    return v;
  }

  /** All parameters and buffers by official name (tfjs layout). */
  variables(): Map<string, tf.Variable> {
    return new Map(this.vars);
  }

  /** Load weights by torchvision / official names (file layout). Strict by default. */
  loadWeights(tensors: Map<string, TensorLike>, opts: { strict?: boolean; file?: string } = {}): LoadReport {
    const { values, report } = matchWeights(this.specs, tensors, { ...opts, model: `${this.arch.name}/${this.headKind}` });
    const bySpec = new Map(this.specs.map((s) => [s.name, s]));
    for (const [name, data] of values) {
      const t = this.toTf(bySpec.get(name)!, data);
      this.param(name).assign(t);
      t.dispose();
    }
    this.invalidateFolded();
    return report;
  }

  /** Parameters and BN buffers by official name, in file layout (OIHW convolutions). */
  stateDict(): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>();
    for (const s of this.specs) {
      const data = this.param(s.name).dataSync() as Float32Array;
      out.set(s.name, { shape: [...s.fileShape], data: s.role === 'conv' ? hwioToOihw(data, s.fileShape) : Float32Array.from(data) });
    }
    return out;
  }

  /**
   * Named variables an optimizer should update. frozen: the CA token and projections (gap head:
   * the classifier); finetune / scratch: every parameter except BN running statistics.
   * Also sets each variable's `trainable` flag to match, so tf.variableGrads / optimizer.minimize
   * without an explicit list see the same set.
   */
  trainableVariables(mode: TrainMode): Map<string, tf.Variable> {
    if (mode !== 'frozen' && mode !== 'finetune' && mode !== 'scratch') throw new Error(`unknown training mode "${mode}"`);
    const out = new Map<string, tf.Variable>();
    for (const s of this.specs) {
      const take =
        mode === 'frozen'
          ? this.headKind === 'gap'
            ? s.group === 'fc'
            : s.group === 'ca'
          : s.role !== 'bn-mean' && s.role !== 'bn-var';
      if (take) out.set(s.name, this.param(s.name));
      this.param(s.name).trainable = take;
    }
    return out;
  }

  /** Drop the cached folded weights (after changing conv or BN parameters by hand). */
  invalidateFolded(): void {
    if (this.folded) for (const f of this.folded.values()) tf.dispose([f.w, f.b]);
    this.folded = undefined;
  }

  private allConvBn(): ConvBn[] {
    const list = [this.spec.stem];
    for (const blocks of this.spec.stages) for (const b of blocks) list.push(...b.convs, ...(b.downsample ? [b.downsample] : []));
    return list;
  }

  /**
   * Fold every BatchNorm (eval statistics, eps 1e-5) into the preceding convolution:
   * w' = w·γ/√(σ²+ε) per output channel, b' = β − μ·γ/√(σ²+ε). Cached until the weights change.
   */
  foldBatchNorm(): Map<string, Folded> {
    if (this.folded) return this.folded;
    const folded = new Map<string, Folded>();
    for (const cb of this.allConvBn()) {
      const f = tf.tidy(() => {
        const scale = tf.div(this.param(`${cb.bn}.weight`), tf.sqrt(tf.add(this.param(`${cb.bn}.running_var`), BN_EPS)));
        const w = tf.mul(this.param(cb.conv), scale) as tf.Tensor4D;
        const b = tf.sub(this.param(`${cb.bn}.bias`), tf.mul(this.param(`${cb.bn}.running_mean`), scale)) as tf.Tensor1D;
        return { w: tf.keep(w), b: tf.keep(b) };
      });
      folded.set(cb.conv, f);
    }
    this.folded = folded;
    return folded;
  }

  /** conv → BN → (+ residual) → ReLU?; training mode uses batch statistics through one fused op. */
  private convBn(x: tf.Tensor4D, cb: ConvBn, relu: boolean, o: Required<BackboneOptions>, residual?: tf.Tensor4D): tf.Tensor4D {
    const pad = explicitPad(cb.pad);
    const finish = (y: tf.Tensor4D) => {
      const s = residual ? (tf.add(y, residual) as tf.Tensor4D) : y;
      return relu ? tf.relu(s) : s;
    };
    if (!o.training && o.fold) {
      const f = this.foldBatchNorm().get(cb.conv)!;
      const activation = relu && !residual ? 'relu' : 'linear';
      const y = tf.fused.conv2d({ x, filter: f.w, strides: cb.stride, pad, bias: f.b, activation });
      return residual ? finish(y) : y;
    }
    const y = tf.conv2d(x, this.param(cb.conv) as tf.Tensor4D, cb.stride, pad);
    const gamma = this.param(`${cb.bn}.weight`);
    const beta = this.param(`${cb.bn}.bias`);
    if (o.training) {
      const bn = batchNormTrain(y, gamma, beta, { epsilon: BN_EPS, relu, residual });
      this.updateRunningStats(cb, bn.mean, bn.variance, y.size / y.shape[3]);
      return bn.out;
    }
    const mean = this.param(`${cb.bn}.running_mean`);
    const variance = this.param(`${cb.bn}.running_var`);
    return finish(tf.add(tf.mul(tf.sub(y, mean), tf.div(gamma, tf.sqrt(tf.add(variance, BN_EPS)))), beta) as tf.Tensor4D);
  }

  private updateRunningStats(cb: ConvBn, mean: tf.Tensor, variance: tf.Tensor, count: number): void {
    // PyTorch: running = (1 − m)·running + m·batch, with the unbiased batch variance. Done on the C
    // values in JS: as tf ops it was ~10 tiny kernels per BN layer, pure dispatch overhead.
    const rm = this.param(`${cb.bn}.running_mean`);
    const rv = this.param(`${cb.bn}.running_var`);
    const unbias = count > 1 ? count / (count - 1) : 1;
    const [bm, bv, om, ov] = [mean, variance, rm, rv].map((t) => t.dataSync() as Float32Array);
    const nm = new Float32Array(bm.length);
    const nv = new Float32Array(bm.length);
    for (let c = 0; c < bm.length; c++) {
      nm[c] = (1 - BN_MOMENTUM) * om[c] + BN_MOMENTUM * bm[c];
      nv[c] = (1 - BN_MOMENTUM) * ov[c] + BN_MOMENTUM * unbias * bv[c];
    }
    for (const [v, data] of [[rm, nm], [rv, nv]] as const) {
      const t = tf.tensor1d(data);
      v.assign(t);
      t.dispose();
    }
    this.invalidateFolded();
  }

  /** Backbone taps for an NHWC batch: stem (conv1, bn1, relu, maxpool) and layer1..4. */
  backbone(x: tf.Tensor4D, opts: BackboneOptions = {}): Record<TapName, tf.Tensor4D> {
    if (x.rank !== 4 || x.shape[3] !== 3) throw new Error(`backbone input must be NHWC with 3 channels, got shape [${x.shape}]`);
    const o = { training: opts.training ?? false, fold: opts.fold ?? true };
    let h = this.convBn(x, this.spec.stem, true, o);
    h = tf.maxPool(h, 3, 2, 1);
    const taps = { stem: h } as Record<TapName, tf.Tensor4D>;
    this.spec.stages.forEach((blocks, s) => {
      for (const b of blocks) {
        // The shortcut first, so the block's last BN can take it as its fused residual.
        const shortcut = b.downsample ? this.convBn(h, b.downsample, false, o) : h;
        let y = h;
        b.convs.forEach((cb, i) => {
          const last = i === b.convs.length - 1;
          y = this.convBn(y, cb, true, o, last ? shortcut : undefined);
        });
        h = y;
      }
      taps[TAPS[s + 1]] = h;
    });
    return taps;
  }

  /** The CA head's parameters as tensors (the model's variables), for caHeadForward. */
  headParams(): CaHeadParams {
    if (this.headKind === 'gap') throw new Error('the gap head has no CA parameters');
    const fcWeight = this.param('fc.weight') as tf.Tensor as tf.Tensor2D;
    const fcBias = this.param('fc.bias') as tf.Tensor as tf.Tensor1D;
    if (this.headKind === 'ca-stream') {
      return {
        kind: 'ca-stream',
        heads: this.heads,
        token: this.param('cls_token'),
        blocks: caProjections(this.arch).map((p) => ({
          tap: p.tap,
          name: p.block,
          weight: this.param(`${p.block}.to_out.1.weight`) as tf.Tensor as tf.Tensor2D,
          bias: this.param(`${p.block}.to_out.1.bias`) as tf.Tensor as tf.Tensor1D,
          dropout: p.tap === 'layer4' ? 0 : this.dropout,
        })),
        fcWeight,
        fcBias,
      };
    }
    return {
      kind: 'ca-final',
      heads: this.heads,
      token: this.param('cls_token'),
      blocks: [
        {
          tap: 'layer4',
          name: 'cls_surrogate',
          weight: this.project ? (this.param('cls_surrogate.to_out.1.weight') as tf.Tensor as tf.Tensor2D) : undefined,
          bias: this.project ? (this.param('cls_surrogate.to_out.1.bias') as tf.Tensor as tf.Tensor1D) : undefined,
          dropout: this.dropout,
        },
      ],
      fcWeight,
      fcBias,
    };
  }

  /** GAP + fc on layer4 (torchvision's forward). */
  gapLogits(layer4: tf.Tensor4D): { token: tf.Tensor2D; logits: tf.Tensor2D } {
    const token = tf.mean(layer4, [1, 2]) as tf.Tensor2D;
    return { token, logits: linear(token, this.param('fc.weight') as tf.Tensor as tf.Tensor2D, this.param('fc.bias') as tf.Tensor as tf.Tensor1D) };
  }

  /** Head on precomputed taps (only layer4 needed for gap and ca-final; a bare tensor means layer4). */
  head(tapsOrLayer4: Taps | tf.Tensor4D, opts: HeadRunOptions = {}): HeadOutput {
    const taps: Taps = tapsOrLayer4 instanceof tf.Tensor ? { layer4: tapsOrLayer4 } : tapsOrLayer4;
    if (this.headKind === 'gap') {
      if (!taps.layer4) throw new Error('gap head needs tap "layer4"');
      return { ...this.gapLogits(taps.layer4), dots: {} };
    }
    return caHeadForward(this.headParams(), taps, opts);
  }

  /** Backbone then head; also the GAP logits for comparison. */
  forward(x: tf.Tensor4D, opts: ForwardOptions = {}): ForwardOutput {
    const taps = this.backbone(x, opts);
    const h = this.head(taps, opts);
    const logitsGap = this.headKind === 'gap' ? h.logits : this.gapLogits(taps.layer4).logits;
    return { taps, dots: h.dots, token: h.token, logits: h.logits, logitsGap };
  }

  dispose(): void {
    this.invalidateFolded();
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

export function createModel(opts: ModelOptions): ResNetModel {
  return new ResNetModel(opts);
}
