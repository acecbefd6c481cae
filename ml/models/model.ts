// A model = a Backbone (any family, see backbones.ts) + a head (gap / ca-stream / ca-final), its
// parameters held in tf.Variables in tfjs layout under their torchvision / official names.
import * as tf from '@tensorflow/tfjs-core';
import type { ResNetArch } from './arch.js';
import { lastReading, type Backbone, type ForwardContext } from './backbone.js';
import { getBackbone } from './backbones.js';
import { caHeadForward, type CaHeadParams, type CaKvParams, type HeadOutput, type HeadRunOptions, type Taps } from './ca-head.js';
import { BN_MOMENTUM } from './layers.js';
import { initialValue, paramSpecs, tfShape, toFileLayout, toTfLayout, type HeadKind, type ParamSpec } from './params.js';
import { Rng } from './rng.js';
import { matchWeights, type LoadReport, type TensorLike } from './weights.js';

export { BN_EPS, BN_MOMENTUM } from './layers.js';

export type TrainMode = 'frozen' | 'finetune' | 'scratch';

export interface ModelOptions {
  arch: string | ResNetArch | Backbone;
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
  /** Eval only: observe every biased conv / BN output (see ForwardContext.biasOutput; FullGrad). */
  biasOutput?: ForwardContext['biasOutput'];
}

export interface ForwardOptions extends BackboneOptions, HeadRunOptions {}

export interface ForwardOutput {
  /** Every reading of the backbone (NHWC), by tap name. */
  taps: Record<string, tf.Tensor4D>;
  /** Per-block pre-softmax scores [B, h, H, W] (empty for the gap head). */
  dots: Partial<Record<string, tf.Tensor4D>>;
  /** Final token (CA) or the pooled last feature map (gap), [B, C]. */
  token: tf.Tensor2D;
  logits: tf.Tensor2D;
  /** torchvision forward: GAP of the last reading, then the classifier. */
  logitsGap: tf.Tensor2D;
}

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

export class CaPipeModel {
  /** The backbone definition (any family). */
  readonly arch: Backbone;
  readonly headKind: HeadKind;
  readonly heads: number;
  readonly numClasses: number;
  readonly dropout: number;
  readonly project: boolean;
  readonly specs: ParamSpec[];
  private readonly vars = new Map<string, tf.Variable>();
  /** Tensors derived from the weights (folded BatchNorm), dropped whenever the weights change. */
  private memoised = new Map<string, tf.Tensor[]>();

  constructor(opts: ModelOptions) {
    this.arch = getBackbone(opts.arch);
    this.headKind = opts.head;
    if (!['gap', 'ca-stream', 'ca-final'].includes(opts.head))
      throw new Error(`unknown head "${opts.head}" (known: gap, ca-stream, ca-final)`);
    this.heads = opts.heads ?? 1;
    this.numClasses = opts.numClasses;
    this.dropout = opts.dropout ?? 0;
    this.project = opts.project ?? false;
    if (!Number.isInteger(this.numClasses) || this.numClasses < 1)
      throw new Error(`numClasses must be a positive integer, got ${opts.numClasses}`);
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new Error(`dropout must be in [0, 1), got ${opts.dropout}`);
    if (this.headKind !== 'gap') {
      const used =
        this.headKind === 'ca-stream' ? this.arch.caStream().map((b) => ({ tap: b.tap, channels: b.inDim })) : [lastReading(this.arch)];
      for (const { tap, channels } of used) {
        if (!Number.isInteger(this.heads) || this.heads < 1 || channels % this.heads !== 0) {
          throw new Error(`heads=${opts.heads} must divide the channel count of every CA tap (${tap} has ${channels})`);
        }
      }
    }
    this.specs = paramSpecs(this.arch, { head: this.headKind, numClasses: this.numClasses, project: this.project });
    const rng = new Rng(opts.seed ?? 0);
    for (const s of this.specs) this.vars.set(s.name, tf.variable(this.toTf(s, initialValue(s, rng)), false));
  }

  private toTf(s: ParamSpec, data: Float32Array): tf.Tensor {
    return tf.tensor(toTfLayout(s, data), tfShape(s), 'float32');
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
      out.set(s.name, { shape: [...s.fileShape], data: toFileLayout(s, data) });
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
        mode === 'frozen' ? (this.headKind === 'gap' ? s.group === 'fc' : s.group === 'ca') : s.role !== 'bn-mean' && s.role !== 'bn-var';
      if (take) out.set(s.name, this.param(s.name));
      this.param(s.name).trainable = take;
    }
    return out;
  }

  /** Drop the cached folded weights (after changing conv or BN parameters by hand). */
  invalidateFolded(): void {
    for (const ts of this.memoised.values()) tf.dispose(ts);
    this.memoised.clear();
  }

  private context(opts: BackboneOptions): ForwardContext {
    return {
      param: (name) => this.param(name),
      training: opts.training ?? false,
      fold: opts.fold ?? true,
      ...(opts.biasOutput && { biasOutput: opts.biasOutput }),
      memo: (key, make) => {
        let ts = this.memoised.get(key);
        if (!ts) {
          ts = make().map((t) => tf.keep(t));
          this.memoised.set(key, ts);
        }
        return ts;
      },
      updateRunningStats: (bn, mean, variance, count, momentum) =>
        this.updateRunningStats(bn, mean, variance, count, momentum ?? BN_MOMENTUM),
    };
  }

  private updateRunningStats(bnPrefix: string, mean: tf.Tensor, variance: tf.Tensor, count: number, momentum: number): void {
    // PyTorch: running = (1 − m)·running + m·batch, with the unbiased batch variance. Done on the C
    // values in JS: as tf ops it was ~10 tiny kernels per BN layer, pure dispatch overhead.
    const rm = this.param(`${bnPrefix}.running_mean`);
    const rv = this.param(`${bnPrefix}.running_var`);
    const unbias = count > 1 ? count / (count - 1) : 1;
    const [bm, bv, om, ov] = [mean, variance, rm, rv].map((t) => t.dataSync() as Float32Array);
    const nm = new Float32Array(bm.length);
    const nv = new Float32Array(bm.length);
    for (let c = 0; c < bm.length; c++) {
      nm[c] = (1 - momentum) * om[c] + momentum * bm[c];
      nv[c] = (1 - momentum) * ov[c] + momentum * unbias * bv[c];
    }
    for (const [v, data] of [
      [rm, nm],
      [rv, nv],
    ] as const) {
      const t = tf.tensor1d(data);
      v.assign(t);
      t.dispose();
    }
    this.invalidateFolded();
  }

  /** The last reading's tap name (GAP, ca-final and CAMs read it). */
  get lastTap(): string {
    return lastReading(this.arch).tap;
  }

  /** Backbone readings for an NHWC batch (ResNet: stem and layer1..4). */
  backbone(x: tf.Tensor4D, opts: BackboneOptions = {}): Record<string, tf.Tensor4D> {
    if (x.rank !== 4 || x.shape[3] !== 3) throw new Error(`backbone input must be NHWC with 3 channels, got shape [${x.shape}]`);
    return this.arch.forward(this.context(opts), x);
  }

  /** The CA head's parameters as tensors (the model's variables), for caHeadForward. */
  headParams(): CaHeadParams {
    if (this.headKind === 'gap') throw new Error('the gap head has no CA parameters');
    const p2 = (n: string) => this.param(n) as tf.Tensor as tf.Tensor2D;
    const p1 = (n: string) => this.param(n) as tf.Tensor as tf.Tensor1D;
    const classify = (token: tf.Tensor2D) => this.arch.classify({ param: (n) => this.param(n) }, token);
    const last = this.lastTap;
    if (this.headKind === 'ca-stream') {
      return {
        kind: 'ca-stream',
        heads: this.heads,
        token: this.param('cls_token'),
        blocks: this.arch.caStream().map((p) => ({
          tap: p.tap,
          name: p.block,
          weight: p2(`${p.block}.to_out.1.weight`),
          bias: p1(`${p.block}.to_out.1.bias`),
          // The original: no dropout in the block on the last feature map.
          dropout: p.tap === last ? 0 : this.dropout,
        })),
        classify,
      };
    }
    const block = this.arch.caFinalBlock!;
    return {
      kind: 'ca-final',
      heads: this.heads,
      token: this.param('cls_token'),
      blocks: [
        {
          tap: last,
          name: block,
          weight: this.project ? p2(`${block}.to_out.1.weight`) : undefined,
          bias: this.project ? p1(`${block}.to_out.1.bias`) : undefined,
          dropout: this.dropout,
          kv: this.arch.caFinalKind === 'kv' ? kvParams((n) => this.param(n), block) : undefined,
        },
      ],
      classify,
    };
  }

  /** GAP then the classifier on the last reading (torchvision's forward). */
  gapLogits(last: tf.Tensor4D): { token: tf.Tensor2D; logits: tf.Tensor2D } {
    const token = tf.mean(last, [1, 2]) as tf.Tensor2D;
    return { token, logits: this.arch.classify({ param: (n) => this.param(n) }, token) };
  }

  /** Head on precomputed taps (gap and ca-final need only the last reading; a bare tensor means that one). */
  head(tapsOrLast: Taps | tf.Tensor4D, opts: HeadRunOptions = {}): HeadOutput {
    const taps: Taps = tapsOrLast instanceof tf.Tensor ? { [this.lastTap]: tapsOrLast } : tapsOrLast;
    if (this.headKind === 'gap') {
      const last = taps[this.lastTap];
      if (!last) throw new Error(`gap head needs tap "${this.lastTap}"`);
      return { ...this.gapLogits(last), dots: {} };
    }
    return caHeadForward(this.headParams(), taps, opts);
  }

  /** Backbone then head; also the GAP logits for comparison. */
  forward(x: tf.Tensor4D, opts: ForwardOptions = {}): ForwardOutput {
    const taps = this.backbone(x, opts);
    const h = this.head(taps, opts);
    const logitsGap = this.headKind === 'gap' ? h.logits : this.gapLogits(taps[this.lastTap]).logits;
    return { taps, dots: h.dots, token: h.token, logits: h.logits, logitsGap };
  }

  dispose(): void {
    this.invalidateFolded();
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

/** A CLS_KV block's tensors by the original's module names. */
export function kvParams(get: (name: string) => tf.Tensor, block: string): CaKvParams {
  return {
    wk: get(`${block}.to_k.1.weight`) as tf.Tensor2D,
    bk: get(`${block}.to_k.1.bias`) as tf.Tensor1D,
    wv: get(`${block}.to_v.1.weight`) as tf.Tensor2D,
    bv: get(`${block}.to_v.1.bias`) as tf.Tensor1D,
    lnWeight: get(`${block}.to_out.weight`) as tf.Tensor1D,
    lnBias: get(`${block}.to_out.bias`) as tf.Tensor1D,
  };
}

export function createModel(opts: ModelOptions): CaPipeModel {
  return new CaPipeModel(opts);
}
