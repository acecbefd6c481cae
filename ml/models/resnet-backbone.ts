// ResNet v1.5 (torchvision; also ResNeXt and Wide ResNet) as a Backbone: readings stem (after
// conv1, bn1, relu, maxpool) and layer1..4; CA blocks base, l1..l4; ca-final block cls_surrogate.
import * as tf from '@tensorflow/tfjs-core';
import { CA_BLOCK_NAMES, EXPANSION, stageStride, tapChannels, tapSizes, TAPS, type ResNetArch, type TapName } from './arch.js';
import {
  chainProjections,
  type Backbone,
  type CaBlockSpec,
  type ForwardContext,
  type GraphEmitter,
  type Reading,
  type WeightGetter,
} from './backbone.js';
import { convBn, emitConvBn, emitLinear, type ConvBn } from './layers.js';
import { bnSpecs, linearSpecs, type ParamSpec } from './params.js';
import { linear } from './ca-head.js';

export interface BlockSpec {
  prefix: string; // e.g. layer2.0
  convs: ConvBn[]; // in order; the last one's output is added to the shortcut
  downsample?: ConvBn;
  /** [out, in/groups, k, k] of each conv, in `convs` order. */
  shapes: number[][];
  downsampleShape?: number[];
}

export interface ResNetLayout {
  stem: ConvBn;
  stages: BlockSpec[][]; // layer1..layer4
}

/** Blocks in forward order, following torchvision's _make_layer (v1.5: stride on the 3×3 conv). */
export function backboneSpec(arch: ResNetArch): ResNetLayout {
  const e = EXPANSION[arch.block];
  const groups = arch.groups ?? 1;
  const stages: BlockSpec[][] = [];
  let inplanes = arch.stemWidth;
  for (let s = 0; s < 4; s++) {
    const planes = arch.widths[s];
    // torchvision: width = planes·(width_per_group/64)·groups, the 3×3 conv's channel count.
    const width = Math.floor(planes * ((arch.widthPerGroup ?? 64) / 64)) * groups;
    const outC = planes * e;
    const blocks: BlockSpec[] = [];
    for (let i = 0; i < arch.layers[s]; i++) {
      const stride = i === 0 ? stageStride(arch, s) : 1;
      const p = `layer${s + 1}.${i}`;
      const basic = arch.block === 'basic';
      const convs: ConvBn[] = basic
        ? [
            { conv: `${p}.conv1.weight`, bn: `${p}.bn1`, stride, pad: 1 },
            { conv: `${p}.conv2.weight`, bn: `${p}.bn2`, stride: 1, pad: 1 },
          ]
        : [
            { conv: `${p}.conv1.weight`, bn: `${p}.bn1`, stride: 1, pad: 0 },
            { conv: `${p}.conv2.weight`, bn: `${p}.bn2`, stride, pad: 1, groups },
            { conv: `${p}.conv3.weight`, bn: `${p}.bn3`, stride: 1, pad: 0 },
          ];
      const shapes = basic
        ? [
            [planes, inplanes, 3, 3],
            [planes, planes, 3, 3],
          ]
        : [
            [width, inplanes, 1, 1],
            [width, width / groups, 3, 3],
            [outC, width, 1, 1],
          ];
      const needDown = i === 0 && (stride !== 1 || inplanes !== outC);
      blocks.push({
        prefix: p,
        convs,
        shapes,
        downsample: needDown ? { conv: `${p}.downsample.0.weight`, bn: `${p}.downsample.1`, stride, pad: 0 } : undefined,
        downsampleShape: needDown ? [outC, inplanes, 1, 1] : undefined,
      });
      inplanes = outC;
    }
    stages.push(blocks);
  }
  return { stem: { conv: 'conv1.weight', bn: 'bn1', stride: 2, pad: 3 }, stages };
}

/** Every conv+BN pair in forward order with its weight shape. */
function allConvBn(layout: ResNetLayout, arch: ResNetArch): Array<{ cb: ConvBn; shape: number[] }> {
  const list = [{ cb: layout.stem, shape: [arch.stemWidth, 3, 7, 7] }];
  for (const blocks of layout.stages) {
    for (const b of blocks) {
      b.convs.forEach((cb, i) => list.push({ cb, shape: b.shapes[i] }));
      if (b.downsample) list.push({ cb: b.downsample, shape: b.downsampleShape! });
    }
  }
  return list;
}

export class ResNetBackbone implements Backbone {
  readonly family = 'resnet';
  readonly name: string;
  readonly classifierWeight = 'fc.weight';
  readonly linearClassifier = { weight: 'fc.weight', bias: 'fc.bias' };
  readonly caFinalBlock = 'cls_surrogate';
  private readonly layout: ResNetLayout;

  constructor(readonly arch: ResNetArch) {
    this.name = arch.name;
    this.layout = backboneSpec(arch);
  }

  params(numClasses: number): ParamSpec[] {
    const specs: ParamSpec[] = [];
    for (const { cb, shape } of allConvBn(this.layout, this.arch)) {
      specs.push({ name: cb.conv, role: 'conv', group: 'backbone', fileShape: shape }, ...bnSpecs(cb.bn, shape[0]));
    }
    specs.push(...linearSpecs('fc', numClasses, tapChannels(this.arch).layer4, 'fc'));
    return specs;
  }

  readings(): Reading[] {
    const ch = tapChannels(this.arch);
    return TAPS.map((tap) => ({ tap, channels: ch[tap] }));
  }

  caStream(): CaBlockSpec[] {
    const r = this.readings();
    // ResNet-50: 64→256→512→1024→2048→2048; BasicBlock nets: 64→64→128→256→512→512.
    return chainProjections(r, (_, tap) => CA_BLOCK_NAMES[tap as TapName]);
  }

  readingSizes(size: number): Record<string, number> {
    return tapSizes(size, this.arch);
  }

  forward(ctx: ForwardContext, x: tf.Tensor4D): Record<string, tf.Tensor4D> {
    let h = convBn(ctx, x, this.layout.stem, 'relu');
    h = tf.maxPool(h, 3, 2, 1);
    const taps: Record<string, tf.Tensor4D> = { stem: h };
    this.layout.stages.forEach((blocks, s) => {
      for (const b of blocks) {
        // The shortcut first, so the block's last BN can take it as its fused residual.
        const shortcut = b.downsample ? convBn(ctx, h, b.downsample, 'linear') : h;
        let y = h;
        b.convs.forEach((cb, i) => {
          y = convBn(ctx, y, cb, 'relu', i === b.convs.length - 1 ? shortcut : undefined);
        });
        h = y;
      }
      taps[TAPS[s + 1]] = h;
    });
    return taps;
  }

  classify(ctx: Pick<ForwardContext, 'param'>, token: tf.Tensor2D): tf.Tensor2D {
    return linear(token, ctx.param('fc.weight') as tf.Tensor2D, ctx.param('fc.bias') as tf.Tensor1D);
  }

  emitOnnx(g: GraphEmitter, w: WeightGetter, input: string): void {
    let x = emitConvBn(g, w, input, this.layout.stem, 'relu');
    x = g.node('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, 'tap.stem');
    this.layout.stages.forEach((blocks, s) => {
      blocks.forEach((b, j) => {
        let y = x;
        b.convs.forEach((cb, i) => {
          y = emitConvBn(g, w, y, cb, i < b.convs.length - 1 ? 'relu' : 'linear');
        });
        const idn = b.downsample ? emitConvBn(g, w, x, b.downsample, 'linear') : x;
        const last = j === blocks.length - 1;
        x = g.node('Relu', [g.node('Add', [y, idn])], {}, last ? `tap.layer${s + 1}` : undefined);
      });
    });
  }

  emitClassifier(g: GraphEmitter, w: WeightGetter, token: string, out: string): string {
    return emitLinear(g, w, token, 'fc', out);
  }
}
