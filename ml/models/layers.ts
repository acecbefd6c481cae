// Building blocks the backbone modules share, on tfjs (NHWC) and as ONNX emission (NCHW).
import * as tf from '@tensorflow/tfjs-core';
import { batchNormTrain } from './batchnorm.js';
import type { ForwardContext, GraphEmitter, WeightGetter } from './backbone.js';

import { BN_EPS } from './bn-eps.js';
export { BN_EPS };
export const BN_MOMENTUM = 0.1;

export type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

export function explicitPad(p: number): 'valid' | Pad4 {
  // torchvision padding p is symmetric; tfjs 'same' would put the odd pixel at the bottom/right.
  return p === 0
    ? 'valid'
    : [
        [0, 0],
        [p, p],
        [p, p],
        [0, 0],
      ];
}

/** A convolution followed by its BatchNorm, as a backbone applies them. */
export interface ConvBn {
  conv: string; // parameter name of the conv weight
  bn: string; // BN module prefix
  stride: number;
  pad: number;
  /** Depthwise (groups = channels). */
  depthwise?: boolean;
  /** Grouped convolution (ResNeXt); default 1. */
  groups?: number;
  /** BatchNorm ε; default 1e-5 (torchvision's). */
  eps?: number;
  /** BatchNorm running-statistics momentum; default 0.1 (torchvision's). */
  momentum?: number;
}

export type Activation = 'relu' | 'silu' | 'linear';

/** w' = w·γ/√(σ²+ε) per output channel, b' = β − μ·γ/√(σ²+ε) (tfjs layout: output channel last, or C for depthwise). */
function foldedTf(ctx: ForwardContext, cb: ConvBn): [tf.Tensor4D, tf.Tensor1D] {
  const [w, b] = ctx.memo(`fold:${cb.conv}`, () =>
    tf.tidy(() => {
      const scale = tf.div(ctx.param(`${cb.bn}.weight`), tf.sqrt(tf.add(ctx.param(`${cb.bn}.running_var`), cb.eps ?? BN_EPS)));
      const filt = ctx.param(cb.conv);
      const w = cb.depthwise ? tf.mul(filt, tf.reshape(scale, [1, 1, -1, 1])) : tf.mul(filt, scale);
      const b = tf.sub(ctx.param(`${cb.bn}.bias`), tf.mul(ctx.param(`${cb.bn}.running_mean`), scale));
      return [w, b];
    }),
  );
  return [w as tf.Tensor4D, b as tf.Tensor1D];
}

function conv(x: tf.Tensor4D, filter: tf.Tensor4D, cb: ConvBn): tf.Tensor4D {
  const pad = explicitPad(cb.pad);
  if (cb.depthwise) return tf.depthwiseConv2d(x, filter, cb.stride, pad);
  const groups = cb.groups ?? 1;
  if (groups === 1) return tf.conv2d(x, filter, cb.stride, pad);
  // tfjs has no grouped convolution: one convolution per group (HWIO filter split on O), concatenated.
  const xs = tf.split(x, groups, 3);
  const fs = tf.split(filter, groups, 3);
  return tf.concat(
    xs.map((xi, i) => tf.conv2d(xi as tf.Tensor4D, fs[i] as tf.Tensor4D, cb.stride, pad)),
    3,
  ) as tf.Tensor4D;
}

function activate(y: tf.Tensor4D, act: Activation): tf.Tensor4D {
  if (act === 'relu') return tf.relu(y);
  if (act === 'silu') return tf.mul(y, tf.sigmoid(y));
  return y;
}

/** conv → BN → (+ residual) → activation; training mode uses batch statistics. */
export function convBn(ctx: ForwardContext, x: tf.Tensor4D, cb: ConvBn, act: Activation, residual?: tf.Tensor4D): tf.Tensor4D {
  const finish = (y: tf.Tensor4D) => activate(residual ? (tf.add(y, residual) as tf.Tensor4D) : y, act);
  if (!ctx.training && ctx.biasOutput) {
    // FullGrad: the BN output is observed, so the convolution cannot be fused with its activation.
    const [w, b] = foldedTf(ctx, cb);
    return finish(ctx.biasOutput(cb.bn, tf.add(conv(x, w, cb), b) as tf.Tensor4D, b));
  }
  if (!ctx.training && ctx.fold) {
    const [w, b] = foldedTf(ctx, cb);
    if (!cb.depthwise && (cb.groups ?? 1) === 1 && act !== 'silu') {
      const activation = act === 'relu' && !residual ? 'relu' : 'linear';
      const y = tf.fused.conv2d({ x, filter: w, strides: cb.stride, pad: explicitPad(cb.pad), bias: b, activation });
      return residual ? finish(y) : y;
    }
    return finish(tf.add(conv(x, w, cb), b) as tf.Tensor4D);
  }
  const y = conv(x, ctx.param(cb.conv) as tf.Tensor4D, cb);
  const gamma = ctx.param(`${cb.bn}.weight`);
  const beta = ctx.param(`${cb.bn}.bias`);
  if (ctx.training) {
    const relu = act === 'relu';
    const bn = batchNormTrain(y, gamma, beta, { epsilon: cb.eps ?? BN_EPS, relu, residual });
    ctx.updateRunningStats(cb.bn, bn.mean, bn.variance, y.size / y.shape[3], cb.momentum);
    return relu || act === 'linear' ? bn.out : activate(bn.out, act);
  }
  const mean = ctx.param(`${cb.bn}.running_mean`);
  const variance = ctx.param(`${cb.bn}.running_var`);
  return finish(tf.add(tf.mul(tf.sub(y, mean), tf.div(gamma, tf.sqrt(tf.add(variance, cb.eps ?? BN_EPS)))), beta) as tf.Tensor4D);
}

/** Conv weight and bias with an eval-mode BatchNorm folded in (computed in float64). */
export function foldBatchNorm(
  w: Float32Array,
  outC: number,
  bn: { weight: Float32Array; bias: Float32Array; mean: Float32Array; var: Float32Array },
  eps = BN_EPS,
): { weight: Float32Array; bias: Float32Array } {
  const per = w.length / outC;
  const weight = new Float32Array(w.length);
  const bias = new Float32Array(outC);
  for (let o = 0; o < outC; o++) {
    const s = bn.weight[o] / Math.sqrt(bn.var[o] + eps);
    for (let i = o * per; i < (o + 1) * per; i++) weight[i] = w[i] * s;
    bias[o] = bn.bias[o] - bn.mean[o] * s;
  }
  return { weight, bias };
}

/** Emits Conv with the BatchNorm folded in (groups = channels for depthwise), then the activation. */
export function emitConvBn(g: GraphEmitter, w: WeightGetter, x: string, cb: ConvBn, act: Activation, out?: string): string {
  const cw = w(cb.conv);
  const { weight, bias } = foldBatchNorm(
    cw.data,
    cw.shape[0],
    {
      weight: w(`${cb.bn}.weight`).data,
      bias: w(`${cb.bn}.bias`).data,
      mean: w(`${cb.bn}.running_mean`).data,
      var: w(`${cb.bn}.running_var`).data,
    },
    cb.eps ?? BN_EPS,
  );
  const wName = g.float(`${cb.conv}:folded`, cw.shape, weight);
  const bName = g.float(`${cb.conv}:bias`, [cw.shape[0]], bias);
  const k = cw.shape[2];
  const p = cb.pad;
  const attrs = {
    kernel_shape: [k, k],
    strides: [cb.stride, cb.stride],
    pads: [p, p, p, p],
    ...(cb.depthwise ? { group: cw.shape[0] } : (cb.groups ?? 1) > 1 ? { group: cb.groups! } : {}),
  };
  const y = g.node('Conv', [x, wName, bName], attrs, act === 'linear' ? out : undefined);
  return emitActivation(g, y, act, out);
}

export function emitActivation(g: GraphEmitter, x: string, act: Activation, out?: string): string {
  if (act === 'relu') return g.node('Relu', [x], {}, out);
  if (act === 'silu') return g.node('Mul', [x, g.node('Sigmoid', [x])], {}, out);
  return x;
}

/** Conv with bias (no BatchNorm), file-layout weights as they are. */
export function emitConv(
  g: GraphEmitter,
  w: WeightGetter,
  x: string,
  prefix: string,
  stride: number,
  pad: number,
  groups = 1,
  out?: string,
): string {
  const cw = w(`${prefix}.weight`);
  const k = cw.shape[2];
  const wName = g.float(`${prefix}.weight`, cw.shape, cw.data);
  const bName = g.float(`${prefix}.bias`, w(`${prefix}.bias`).shape, w(`${prefix}.bias`).data);
  return g.node(
    'Conv',
    [x, wName, bName],
    { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad], ...(groups > 1 ? { group: groups } : {}) },
    out,
  );
}

/** y = x Wᵀ + b on a B×C input. */
export function emitLinear(g: GraphEmitter, w: WeightGetter, x: string, prefix: string, out?: string): string {
  const W = w(`${prefix}.weight`);
  const b = w(`${prefix}.bias`);
  return g.node('Gemm', [x, g.float(`${prefix}.weight`, W.shape, W.data), g.float(`${prefix}.bias`, b.shape, b.data)], { transB: 1 }, out);
}

/** LayerNorm over the last axis (biased variance), then the affine map: PyTorch's F.layer_norm. */
export function layerNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor, bias: tf.Tensor, eps: number): T {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), weight), bias) as T;
}

/** Exact GELU: x·Φ(x) = ½x(1 + erf(x/√2)) (PyTorch's default, not the tanh approximation). */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T;
}

export function emitGelu(g: GraphEmitter, x: string, out?: string): string {
  // Opset 17 has no Gelu; ONNX Runtime fuses this Div/Erf/Add/Mul/Mul pattern into one.
  const e = g.node('Erf', [g.node('Div', [x, g.float(`gelu.sqrt2`, [], new Float32Array([Math.SQRT2]))])]);
  const onePlus = g.node('Add', [e, g.float('gelu.one', [], new Float32Array([1]))]);
  return g.node('Mul', [g.node('Mul', [x, onePlus]), g.float('gelu.half', [], new Float32Array([0.5]))], {}, out);
}

/** LayerNorm2d on an NCHW tensor: normalise over C at each position (via channels-last). */
export function emitLayerNormChannels(g: GraphEmitter, w: WeightGetter, x: string, prefix: string, eps: number, out?: string): string {
  const lw = w(`${prefix}.weight`);
  const lb = w(`${prefix}.bias`);
  const t = g.node('Transpose', [x], { perm: [0, 2, 3, 1] });
  const n = g.node(
    'LayerNormalization',
    [t, g.float(`${prefix}.weight`, lw.shape, lw.data), g.float(`${prefix}.bias`, lb.shape, lb.data)],
    { axis: -1, epsilon: { float: eps } },
  );
  return g.node('Transpose', [n], { perm: [0, 3, 1, 2] }, out);
}
