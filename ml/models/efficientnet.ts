// EfficientNet B0–B7 (torchvision's definition and parameter names) as a Backbone.
//   features[0]    stem: Conv 3×3/2 → BN → SiLU
//   features[1..7] stages of MBConv blocks: [expand 1×1 → BN → SiLU] → depthwise k×k → BN → SiLU →
//                  squeeze-excitation (GAP → 1×1 → SiLU → 1×1 → sigmoid, × input) → project 1×1 → BN
//                  (+ input when stride 1 and in = out)
//   features[8]    head: Conv 1×1 to 4·C_last → BN → SiLU
//   classifier     Dropout → Linear
// Widths follow `_make_divisible(c·width, 8)`, depths `ceil(n·depth)`. CA-Stream (the original's
// efficientnet_stream.py): one block after each of features[0..8]; ca-final: one on features[8].
import * as tf from '@tensorflow/tfjs-core';
import {
  chainProjections,
  convOut,
  type Backbone,
  type CaBlockSpec,
  type ForwardContext,
  type GraphEmitter,
  type Reading,
  type WeightGetter,
} from './backbone.js';
import { linear } from './ca-head.js';
import { convBn, emitActivation, emitConv, emitConvBn, emitLinear, type ConvBn } from './layers.js';
import { bnSpecs, linearSpecs, type ParamSpec } from './params.js';

/** torchvision's B-series base setting: (expand ratio, kernel, stride, in, out, layers). */
export { EFFICIENTNET_ARCHS, type EfficientNetArch } from './efficientnet-archs.js';
import { BASE, type EfficientNetArch } from './efficientnet-archs.js';

/** torchvision / TF `_make_divisible`: round to a multiple of `d`, never more than 10 % down. */
export function makeDivisible(v: number, d = 8): number {
  let n = Math.max(d, Math.floor((v + d / 2) / d) * d);
  if (n < 0.9 * v) n += d;
  return n;
}

interface MBConv {
  prefix: string; // features.<s>.<j>
  inC: number;
  outC: number;
  expanded: number;
  kernel: number;
  stride: number;
  squeeze: number;
  residual: boolean;
  /** block.<k> indices of the parts (the expand conv exists only when expanded ≠ in). */
  expand?: ConvBn;
  dw: ConvBn;
  se: string;
  project: ConvBn;
}

export class EfficientNetBackbone implements Backbone {
  readonly family = 'efficientnet';
  readonly name: string;
  readonly classifierWeight = 'classifier.1.weight';
  readonly linearClassifier = { weight: 'classifier.1.weight', bias: 'classifier.1.bias' };
  /** The original's efficientnet_final: one block, module `ca_stream`, on features[8] (projection optional). */
  readonly caFinalBlock = 'ca_stream';
  private readonly stages: MBConv[][];
  private readonly stem: ConvBn;
  private readonly head: ConvBn;
  private readonly stemC: number;
  private readonly headC: number;

  constructor(readonly arch: EfficientNetArch) {
    this.name = arch.name;
    const bn = { eps: arch.bnEps, momentum: arch.bnMomentum };
    const ch = (c: number) => makeDivisible(c * arch.width);
    this.stemC = ch(BASE[0][3]);
    this.stem = { conv: 'features.0.0.weight', bn: 'features.0.1', stride: 2, pad: 1, ...bn };
    this.stages = BASE.map(([e, k, s, inC0, outC0, n], si) => {
      const blocks: MBConv[] = [];
      const layers = Math.ceil(n * arch.depth);
      for (let j = 0; j < layers; j++) {
        const inC = j === 0 ? ch(inC0) : ch(outC0);
        const outC = ch(outC0);
        const stride = j === 0 ? s : 1;
        const expanded = makeDivisible(inC * e);
        const prefix = `features.${si + 1}.${j}`;
        const part = (k0: number) => `${prefix}.block.${expanded !== inC ? k0 + 1 : k0}`;
        blocks.push({
          prefix,
          inC,
          outC,
          expanded,
          kernel: k,
          stride,
          squeeze: Math.max(1, Math.floor(inC / 4)),
          residual: stride === 1 && inC === outC,
          expand:
            expanded !== inC ? { conv: `${prefix}.block.0.0.weight`, bn: `${prefix}.block.0.1`, stride: 1, pad: 0, ...bn } : undefined,
          dw: { conv: `${part(0)}.0.weight`, bn: `${part(0)}.1`, stride, pad: (k - 1) / 2, depthwise: true, ...bn },
          se: part(1),
          project: { conv: `${part(2)}.0.weight`, bn: `${part(2)}.1`, stride: 1, pad: 0, ...bn },
        });
      }
      return blocks;
    });
    const lastC = ch(BASE[BASE.length - 1][4]);
    this.headC = 4 * lastC;
    this.head = { conv: 'features.8.0.weight', bn: 'features.8.1', stride: 1, pad: 0, ...bn };
  }

  params(numClasses: number): ParamSpec[] {
    const specs: ParamSpec[] = [];
    const conv = (cb: ConvBn, shape: number[]) =>
      specs.push(
        { name: cb.conv, role: cb.depthwise ? 'dwconv' : 'conv', group: 'backbone', fileShape: shape },
        ...bnSpecs(cb.bn, shape[0]),
      );
    conv(this.stem, [this.stemC, 3, 3, 3]);
    for (const blocks of this.stages) {
      for (const b of blocks) {
        if (b.expand) conv(b.expand, [b.expanded, b.inC, 1, 1]);
        conv(b.dw, [b.expanded, 1, b.kernel, b.kernel]);
        specs.push(
          { name: `${b.se}.fc1.weight`, role: 'conv', group: 'backbone', fileShape: [b.squeeze, b.expanded, 1, 1] },
          { name: `${b.se}.fc1.bias`, role: 'conv-bias', group: 'backbone', fileShape: [b.squeeze] },
          { name: `${b.se}.fc2.weight`, role: 'conv', group: 'backbone', fileShape: [b.expanded, b.squeeze, 1, 1] },
          { name: `${b.se}.fc2.bias`, role: 'conv-bias', group: 'backbone', fileShape: [b.expanded] },
        );
        conv(b.project, [b.outC, b.expanded, 1, 1]);
      }
    }
    conv(this.head, [this.headC, this.stages.at(-1)!.at(-1)!.outC, 1, 1]);
    // torchvision: Linear weights U(±1/√out_features), zero bias.
    const bound = 1 / Math.sqrt(numClasses);
    specs.push(...linearSpecs('classifier.1', numClasses, this.headC, 'fc', { weight: { uniform: bound }, bias: { constant: 0 } }));
    return specs;
  }

  readings(): Reading[] {
    return [
      { tap: 'features.0', channels: this.stemC },
      ...this.stages.map((blocks, s) => ({ tap: `features.${s + 1}`, channels: blocks.at(-1)!.outC })),
      { tap: 'features.8', channels: this.headC },
    ];
  }

  caStream(): CaBlockSpec[] {
    return chainProjections(this.readings(), (i) => `cls_stream.${i}`);
  }

  readingSizes(size: number): Record<string, number> {
    let s = convOut(size, 3, 2, 1);
    const out: Record<string, number> = { 'features.0': s };
    this.stages.forEach((blocks, i) => {
      for (const b of blocks) s = convOut(s, b.kernel, b.stride, b.dw.pad);
      out[`features.${i + 1}`] = s;
    });
    out['features.8'] = s;
    return out;
  }

  forward(ctx: ForwardContext, x: tf.Tensor4D): Record<string, tf.Tensor4D> {
    const p = (n: string) => ctx.param(n);
    let h = convBn(ctx, x, this.stem, 'silu');
    const taps: Record<string, tf.Tensor4D> = { 'features.0': h };
    this.stages.forEach((blocks, s) => {
      for (const b of blocks) {
        let y = b.expand ? convBn(ctx, h, b.expand, 'silu') : h;
        y = convBn(ctx, y, b.dw, 'silu');
        const pooled = tf.mean(y, [1, 2], true) as tf.Tensor4D;
        const fc = (t: tf.Tensor4D, n: string) => {
          const y = tf.add(tf.conv2d(t, p(`${b.se}.${n}.weight`) as tf.Tensor4D, 1, 'valid'), p(`${b.se}.${n}.bias`)) as tf.Tensor4D;
          // The squeeze-excitation convolutions have biases: FullGrad observes them (1×1 outputs).
          return ctx.biasOutput ? ctx.biasOutput(`${b.se}.${n}`, y, p(`${b.se}.${n}.bias`) as tf.Tensor1D) : y;
        };
        const z = fc(pooled, 'fc1');
        y = tf.mul(y, tf.sigmoid(fc(tf.mul(z, tf.sigmoid(z)) as tf.Tensor4D, 'fc2'))) as tf.Tensor4D;
        // Stochastic depth is the identity in eval; training here never drops blocks.
        h = convBn(ctx, y, b.project, 'linear', b.residual ? h : undefined);
      }
      taps[`features.${s + 1}`] = h;
    });
    taps['features.8'] = convBn(ctx, h, this.head, 'silu');
    return taps;
  }

  classify(ctx: Pick<ForwardContext, 'param'>, token: tf.Tensor2D): tf.Tensor2D {
    return linear(token, ctx.param('classifier.1.weight') as tf.Tensor2D, ctx.param('classifier.1.bias') as tf.Tensor1D);
  }

  emitOnnx(g: GraphEmitter, w: WeightGetter, input: string): void {
    let h = emitConvBn(g, w, input, this.stem, 'silu', 'tap.features.0');
    this.stages.forEach((blocks, s) => {
      blocks.forEach((b, j) => {
        let y = b.expand ? emitConvBn(g, w, h, b.expand, 'silu') : h;
        y = emitConvBn(g, w, y, b.dw, 'silu');
        const pooled = g.node('GlobalAveragePool', [y]);
        const z = emitActivation(g, emitConv(g, w, pooled, `${b.se}.fc1`, 1, 0), 'silu');
        y = g.node('Mul', [y, g.node('Sigmoid', [emitConv(g, w, z, `${b.se}.fc2`, 1, 0)])]);
        const out = j === blocks.length - 1 ? `tap.features.${s + 1}` : undefined;
        h = b.residual
          ? g.node('Add', [emitConvBn(g, w, y, b.project, 'linear'), h], {}, out)
          : emitConvBn(g, w, y, b.project, 'linear', out);
      });
    });
    emitConvBn(g, w, h, this.head, 'silu', 'tap.features.8');
  }

  emitClassifier(g: GraphEmitter, w: WeightGetter, token: string, out: string): string {
    return emitLinear(g, w, token, 'classifier.1', out);
  }
}
