// ConvNeXt (torchvision's definition and parameter names) as a Backbone.
//   features[0]      stem: Conv 4×4/4 (+bias) → LayerNorm2d
//   features[2i+1]   stage i: CNBlocks  x + γ ⊙ Linear(GELU(Linear(LN(dwconv7×7(x)))))  (channels-last inside)
//   features[2i+2]   downsample i (not after the last stage): LayerNorm2d → Conv 2×2/2 (+bias)
//   classifier       LayerNorm2d → Flatten → Linear
// All LayerNorms use ε = 1e-6; GELU is the exact (erf) one. Stochastic depth is the identity in
// eval, and training here never drops blocks (frozen and finetune runs start from pretrained nets).
// CA-Stream placement (the original's convnext_stream.py): blocks read the stem, the outputs of
// downsamples 1 … n−2 and the last stage; the block that would follow the last downsample is
// skipped by the original (its constructor fails on `Linear(…, None)` and the error is swallowed).
// ca-final: the original's CLS_KV block (deleted from its snapshot, rebuilt from its definition;
// no reference tensors exist for it) on the last stage, with the classifier on its output.
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
import { emitConv, emitLayerNormChannels, emitLinear, gelu, emitGelu, layerNorm } from './layers.js';
import { linearSpecs, type ParamSpec } from './params.js';

export const LN_EPS = 1e-6;

export { CONVNEXT_ARCHS, type ConvNeXtArch } from './convnext-archs.js';
import { type ConvNeXtArch } from './convnext-archs.js';

// ConvNeXt's own init (torchvision): trunc_normal(std 0.02) weights, zero biases, on every Conv and Linear.
const TRUNC = { normal: 0.02 } as const;
const ZERO = { constant: 0 } as const;

export class ConvNeXtBackbone implements Backbone {
  readonly family = 'convnext';
  readonly name: string;
  readonly classifierWeight = 'classifier.2.weight';
  /** The original's convnext_final: one CLS_KV block (module `cls_stream`) on the last stage. */
  readonly caFinalBlock = 'cls_stream';
  readonly caFinalKind = 'kv' as const;

  constructor(readonly arch: ConvNeXtArch) {
    this.name = arch.name;
    const last = arch.stages[arch.stages.length - 1];
    if (last[1] !== null || arch.stages.slice(0, -1).some((s) => s[1] === null))
      throw new Error(`${arch.name}: only the last stage has no downsample`);
  }

  private get lastWidth(): number {
    return this.arch.stages[this.arch.stages.length - 1][0];
  }

  params(numClasses: number): ParamSpec[] {
    const specs: ParamSpec[] = [];
    const bb = (name: string, role: ParamSpec['role'], fileShape: number[], init?: ParamSpec['init']): void => {
      specs.push({ name, role, group: 'backbone', fileShape, init });
    };
    const c0 = this.arch.stages[0][0];
    bb('features.0.0.weight', 'conv', [c0, 3, 4, 4], TRUNC);
    bb('features.0.0.bias', 'conv-bias', [c0], ZERO);
    bb('features.0.1.weight', 'ln-weight', [c0]);
    bb('features.0.1.bias', 'ln-bias', [c0]);
    this.arch.stages.forEach(([c, out, n], i) => {
      for (let j = 0; j < n; j++) {
        const p = `features.${2 * i + 1}.${j}`;
        bb(`${p}.layer_scale`, 'layer-scale', [c, 1, 1]);
        bb(`${p}.block.0.weight`, 'dwconv', [c, 1, 7, 7], TRUNC);
        bb(`${p}.block.0.bias`, 'conv-bias', [c], ZERO);
        bb(`${p}.block.2.weight`, 'ln-weight', [c]);
        bb(`${p}.block.2.bias`, 'ln-bias', [c]);
        for (const s of [
          ...linearSpecs(`${p}.block.3`, 4 * c, c, 'backbone', { weight: TRUNC, bias: ZERO }),
          ...linearSpecs(`${p}.block.5`, c, 4 * c, 'backbone', { weight: TRUNC, bias: ZERO }),
        ])
          specs.push(s);
      }
      if (out !== null) {
        const p = `features.${2 * i + 2}`;
        bb(`${p}.0.weight`, 'ln-weight', [c]);
        bb(`${p}.0.bias`, 'ln-bias', [c]);
        bb(`${p}.1.weight`, 'conv', [out, c, 2, 2], TRUNC);
        bb(`${p}.1.bias`, 'conv-bias', [out], ZERO);
      }
    });
    const cl = this.lastWidth;
    specs.push({ name: 'classifier.0.weight', role: 'ln-weight', group: 'fc', fileShape: [cl] });
    specs.push({ name: 'classifier.0.bias', role: 'ln-bias', group: 'fc', fileShape: [cl] });
    specs.push(...linearSpecs('classifier.2', numClasses, cl, 'fc', { weight: TRUNC, bias: ZERO }));
    return specs;
  }

  readings(): Reading[] {
    const st = this.arch.stages;
    const n = st.length;
    const r: Reading[] = [{ tap: 'features.0', channels: st[0][0] }];
    for (let i = 0; i < n - 2; i++) r.push({ tap: `features.${2 * i + 2}`, channels: st[i][1]! });
    r.push({ tap: `features.${2 * n - 1}`, channels: st[n - 1][0] });
    return r;
  }

  caStream(): CaBlockSpec[] {
    return chainProjections(this.readings(), (i) => `cls_stream.${i}`);
  }

  readingSizes(size: number): Record<string, number> {
    const out: Record<string, number> = {};
    let s = convOut(size, 4, 4, 0);
    out['features.0'] = s;
    this.arch.stages.forEach((_, i) => {
      out[`features.${2 * i + 1}`] = s;
      if (i < this.arch.stages.length - 1) {
        s = convOut(s, 2, 2, 0);
        out[`features.${2 * i + 2}`] = s;
      }
    });
    return out;
  }

  forward(ctx: ForwardContext, x: tf.Tensor4D): Record<string, tf.Tensor4D> {
    const p = (n: string) => ctx.param(n);
    // Every convolution here has a bias: FullGrad observes each output (ctx.biasOutput).
    const observe = (y: tf.Tensor4D, prefix: string) =>
      ctx.biasOutput ? ctx.biasOutput(prefix, y, p(`${prefix}.bias`) as tf.Tensor1D) : y;
    const conv = (h: tf.Tensor4D, prefix: string, k: number) =>
      observe(tf.add(tf.conv2d(h, p(`${prefix}.weight`) as tf.Tensor4D, k, 'valid'), p(`${prefix}.bias`)) as tf.Tensor4D, prefix);
    const ln = (h: tf.Tensor4D, prefix: string) => layerNorm(h, p(`${prefix}.weight`), p(`${prefix}.bias`), LN_EPS);
    const all: Record<string, tf.Tensor4D> = {};
    let h = ln(conv(x, 'features.0.0', 4), 'features.0.1');
    all['features.0'] = h;
    this.arch.stages.forEach(([c, out, n], i) => {
      for (let j = 0; j < n; j++) {
        const b = `features.${2 * i + 1}.${j}.block`;
        const [B, H, W] = h.shape;
        let y = tf.add(
          tf.depthwiseConv2d(h, p(`${b}.0.weight`) as tf.Tensor4D, 1, [
            [0, 0],
            [3, 3],
            [3, 3],
            [0, 0],
          ]),
          p(`${b}.0.bias`),
        ) as tf.Tensor4D;
        y = observe(y, `${b}.0`);
        let t = tf.reshape(ln(y, `${b}.2`), [B * H * W, c]) as tf.Tensor2D;
        t = linear(t, p(`${b}.3.weight`) as tf.Tensor2D, p(`${b}.3.bias`) as tf.Tensor1D);
        t = linear(gelu(t), p(`${b}.5.weight`) as tf.Tensor2D, p(`${b}.5.bias`) as tf.Tensor1D);
        y = tf.reshape(tf.mul(t, p(`features.${2 * i + 1}.${j}.layer_scale`)), [B, H, W, c]);
        h = tf.add(h, y) as tf.Tensor4D;
      }
      all[`features.${2 * i + 1}`] = h;
      if (out !== null) {
        const d = `features.${2 * i + 2}`;
        h = conv(ln(h, `${d}.0`), `${d}.1`, 2);
        all[d] = h;
      }
    });
    const taps: Record<string, tf.Tensor4D> = {};
    for (const r of this.readings()) taps[r.tap] = all[r.tap];
    return taps;
  }

  classify(ctx: Pick<ForwardContext, 'param'>, token: tf.Tensor2D): tf.Tensor2D {
    const p = (n: string) => ctx.param(n);
    // The original views the token as B×C×1×1, so classifier[0] (LayerNorm2d) normalises the token itself.
    const t = layerNorm(token, p('classifier.0.weight'), p('classifier.0.bias'), LN_EPS);
    return linear(t, p('classifier.2.weight') as tf.Tensor2D, p('classifier.2.bias') as tf.Tensor1D);
  }

  emitOnnx(g: GraphEmitter, w: WeightGetter, input: string): void {
    const wanted = new Set(this.readings().map((r) => r.tap));
    const name = (tap: string) => (wanted.has(tap) ? `tap.${tap}` : undefined);
    let h = emitConv(g, w, input, 'features.0.0', 4, 0);
    h = emitLayerNormChannels(g, w, h, 'features.0.1', LN_EPS, name('features.0'));
    this.arch.stages.forEach(([c, out, n], i) => {
      for (let j = 0; j < n; j++) {
        const p = `features.${2 * i + 1}.${j}`;
        const last = j === n - 1;
        const y = emitConv(g, w, h, `${p}.block.0`, 1, 3, c);
        // Channels-last for the LayerNorm and the two Linears (MatMul on the last axis).
        let t = g.node('Transpose', [y], { perm: [0, 2, 3, 1] });
        const lnw = w(`${p}.block.2.weight`);
        const lnb = w(`${p}.block.2.bias`);
        t = g.node(
          'LayerNormalization',
          [t, g.float(`${p}.block.2.weight`, lnw.shape, lnw.data), g.float(`${p}.block.2.bias`, lnb.shape, lnb.data)],
          { axis: -1, epsilon: { float: LN_EPS } },
        );
        t = emitMatMulBias(g, w, t, `${p}.block.3`);
        t = emitGelu(g, t);
        // γ ⊙ (W₂t + b₂) = (γ ⊙ W₂)t + γ ⊙ b₂: the layer scale goes into the second Linear.
        t = emitMatMulBias(g, w, t, `${p}.block.5`, w(`${p}.layer_scale`).data);
        const back = g.node('Transpose', [t], { perm: [0, 3, 1, 2] });
        h = g.node('Add', [h, back], {}, last ? name(`features.${2 * i + 1}`) : undefined);
      }
      if (out !== null) {
        const d = `features.${2 * i + 2}`;
        h = emitConv(g, w, emitLayerNormChannels(g, w, h, `${d}.0`, LN_EPS), `${d}.1`, 2, 0, 1, name(d));
      }
    });
  }

  emitClassifier(g: GraphEmitter, w: WeightGetter, token: string, out: string): string {
    const lnw = w('classifier.0.weight');
    const lnb = w('classifier.0.bias');
    const t = g.node(
      'LayerNormalization',
      [token, g.float('classifier.0.weight', lnw.shape, lnw.data), g.float('classifier.0.bias', lnb.shape, lnb.data)],
      { axis: -1, epsilon: { float: LN_EPS } },
    );
    return emitLinear(g, w, t, 'classifier.2', out);
  }
}

/** x·Wᵀ + b on the last axis of a rank-4 tensor; `scale` (per output) folded into W and b in float64. */
function emitMatMulBias(g: GraphEmitter, w: WeightGetter, x: string, prefix: string, scale?: Float32Array): string {
  const W = w(`${prefix}.weight`);
  const b = w(`${prefix}.bias`);
  const [out, inp] = W.shape;
  const wt = new Float32Array(inp * out); // [in, out] for MatMul
  const bs = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const s = scale ? scale[o] : 1;
    for (let i = 0; i < inp; i++) wt[i * out + o] = W.data[o * inp + i] * s;
    bs[o] = b.data[o] * s;
  }
  const tag = scale ? ':scaled' : '';
  const y = g.node('MatMul', [x, g.float(`${prefix}.weight:t${tag}`, [inp, out], wt)]);
  return g.node('Add', [y, g.float(`${prefix}.bias${tag}`, [out], bs)]);
}
