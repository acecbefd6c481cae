// Numeric padding on the native TensorFlow backend. Our models pad as PyTorch does (`pad: 1` for a
// 3×3 conv, `pad: 3` for the 7×7 stem, `pad: 1` for the stem's max pool), which tfjs's wasm and cpu
// backends take as is; tfjs-node's kernels accept only 'valid' / 'same' (and, for Conv2D and
// DepthwiseConv2dNative, explicit paddings), so every ResNet forward failed there. TF's 'same' puts
// an odd padding pixel at the bottom/right, where PyTorch pads both sides alike, so it is used only
// where its windows are exactly PyTorch's (`sameMatches`: every stride-1 convolution with an odd
// kernel and centred padding, most of a network's). Elsewhere the stock kernels are wrapped:
//  - convolutions forward: numeric → explicit padding (TF's own EXPLICIT mode);
//  - max pool: pad with −∞ (PadV2), then 'valid' — a padded cell never wins, as in PyTorch;
//  - backprop kernels: the 'valid' kernel on the padded input, then the input gradient cropped
//    (Slice) / the filter gradient taken over the padded input.
// Measured per kernel here (batch 32, 3×3 stride 1): 'same' is 1.3–2× faster than the padded
// 'valid' kernels, and TF's Conv2DBackpropInput with EXPLICIT padding (which tfjs-node does not
// expose) is the slowest of all (6.4 ms vs 0.9 ms 'same' at 4×4×128): it misses both fast paths.
import * as tf from '@tensorflow/tfjs-core';
import { BN_TRAIN, BN_TRAIN_GRAD, bnTrainForwardInputs, type BnTrainAttrs } from './batchnorm-kernels.js';

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;
type KernelArgs = { inputs: Record<string, Info>; backend: unknown; attrs: Attrs };
type Kernel = (args: KernelArgs) => Info | Info[];

const BACKEND = 'tensorflow';

/** [top, bottom, left, right] when `pad` is a number (or a 4-D explicit padding), else undefined. */
function numericPad(pad: unknown): [number, number, number, number] | undefined {
  if (typeof pad === 'number') return [pad, pad, pad, pad];
  if (Array.isArray(pad) && pad.length === 4) {
    const [, h, w] = pad as number[][];
    return [h![0]!, h![1]!, w![0]!, w![1]!];
  }
  return undefined;
}

function explicit(p: [number, number, number, number]): number[][] {
  return [
    [0, 0],
    [p[0], p[1]],
    [p[2], p[3]],
    [0, 0],
  ];
}

function isZero(p: [number, number, number, number]): boolean {
  return p.every((v) => v === 0);
}

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2) return [v[0] as number, v[1] as number];
  return [1, 1];
}

/** Does TF's 'same' padding read exactly the windows of PyTorch's padding `before`/`after` on one axis? */
function sameAxis(n: number, k: number, stride: number, dilation: number, before: number, after: number): boolean {
  const span = (k - 1) * dilation + 1;
  const outTorch = Math.floor((n + before + after - span) / stride) + 1;
  const outTf = Math.ceil(n / stride);
  const total = Math.max((outTf - 1) * stride + span - n, 0);
  return outTorch === outTf && Math.floor(total / 2) === before;
}

/**
 * 'same' when it computes what padding `p` does for an NHWC input of spatial size [h, w] and a
 * [kh, kw] window; otherwise undefined. Rounding modes (tfjs's `dimRoundingMode`) keep the padded path.
 */
export function sameMatches(
  p: [number, number, number, number],
  input: readonly number[],
  window: readonly [number, number],
  attrs: Attrs,
): 'same' | undefined {
  if (attrs.dimRoundingMode != null || (attrs.dataFormat != null && attrs.dataFormat !== 'NHWC' && attrs.dataFormat !== 'channelsLast'))
    return undefined;
  const [sh, sw] = pair(attrs.strides);
  const [dh, dw] = pair(attrs.dilations ?? 1);
  const ok = sameAxis(input[1]!, window[0], sh, dh, p[0], p[1]) && sameAxis(input[2]!, window[1], sw, dw, p[2], p[3]);
  return ok ? 'same' : undefined;
}

function run(kernel: string, args: KernelArgs, inputs: Record<string, Info>, attrs: Attrs): Info {
  const k = tf.getKernel(kernel, BACKEND)!;
  return k.kernelFunc({ inputs, backend: args.backend as tf.KernelBackend, attrs } as never) as Info;
}

// tfjs-node's kernels return engine-tracked Tensors (not bare TensorInfos): dispose them as such.
function dispose(args: KernelArgs, ...infos: Info[]): void {
  const b = args.backend as { disposeData(id: unknown): boolean };
  for (const i of infos) {
    if (i instanceof tf.Tensor) i.dispose();
    else b.disposeData(i.dataId);
  }
}

function padNHWC(args: KernelArgs, x: Info, p: [number, number, number, number], value: number): Info {
  return run('PadV2', args, { x }, { paddings: explicit(p), constantValue: value });
}

function cropNHWC(args: KernelArgs, x: Info, p: [number, number, number, number], shape: number[]): Info {
  return run('Slice', args, { x }, { begin: [0, p[0], p[2], 0], size: shape });
}

function filterWindow(shape: readonly number[]): [number, number] {
  return [shape[0]!, shape[1]!];
}

/** The padding the stock kernel can take as is ('valid' for none, 'same' where it matches), else undefined. */
function stockPadding(p: [number, number, number, number], input: readonly number[], filterShape: readonly number[], attrs: Attrs) {
  return isZero(p) ? 'valid' : sameMatches(p, input, filterWindow(filterShape), attrs);
}

/** Forward convolutions: 'same' where it matches, else TF's explicit padding. */
function explicitPadding(stock: Kernel): Kernel {
  return (args) => {
    const p = numericPad(args.attrs.pad);
    if (!p || typeof args.attrs.pad !== 'number') return stock(args);
    const pad = stockPadding(p, args.inputs.x!.shape, args.inputs.filter!.shape, args.attrs);
    return stock({ ...args, attrs: { ...args.attrs, pad: pad ?? explicit(p) } });
  };
}

function maxPool(stock: Kernel): Kernel {
  return (args) => {
    const p = numericPad(args.attrs.pad);
    if (!p) return stock(args);
    if (isZero(p)) return stock({ ...args, attrs: { ...args.attrs, pad: 'valid' } });
    const xp = padNHWC(args, args.inputs.x!, p, -Infinity);
    try {
      return stock({ ...args, inputs: { x: xp }, attrs: { ...args.attrs, pad: 'valid' } });
    } finally {
      dispose(args, xp);
    }
  };
}

function maxPoolGrad(stock: Kernel): Kernel {
  return (args) => {
    const p = numericPad(args.attrs.pad);
    if (!p) return stock(args);
    const { dy, input, output } = args.inputs;
    if (isZero(p)) return stock({ ...args, attrs: { ...args.attrs, pad: 'valid' } });
    const ip = padNHWC(args, input!, p, -Infinity);
    let dxp: Info | undefined;
    try {
      dxp = stock({ ...args, inputs: { dy: dy!, input: ip, output: output! }, attrs: { ...args.attrs, pad: 'valid' } }) as Info;
      return cropNHWC(args, dxp, p, [...input!.shape]);
    } finally {
      dispose(args, ip, ...(dxp ? [dxp] : []));
    }
  };
}

/** Conv2DBackpropInput / DepthwiseConv2dNativeBackpropInput: the gradient of the padded input, cropped. */
function backpropInput(stock: Kernel): Kernel {
  return (args) => {
    const p = numericPad(args.attrs.pad);
    if (!p) return stock(args);
    const shape = args.attrs.inputShape as number[];
    const pad = stockPadding(p, shape, args.inputs.filter!.shape, args.attrs);
    if (pad) return stock({ ...args, attrs: { ...args.attrs, pad } });
    const padded = [shape[0]!, shape[1]! + p[0] + p[1], shape[2]! + p[2] + p[3], shape[3]!];
    const dxp = stock({ ...args, attrs: { ...args.attrs, pad: 'valid', inputShape: padded } }) as Info;
    try {
      return cropNHWC(args, dxp, p, shape);
    } finally {
      dispose(args, dxp);
    }
  };
}

/** Conv2DBackpropFilter / DepthwiseConv2dNativeBackpropFilter: the 'valid' gradient over the zero-padded input. */
function backpropFilter(stock: Kernel): Kernel {
  return (args) => {
    const p = numericPad(args.attrs.pad);
    if (!p) return stock(args);
    const pad = stockPadding(p, args.inputs.x!.shape, args.attrs.filterShape as number[], args.attrs);
    if (pad) return stock({ ...args, attrs: { ...args.attrs, pad } });
    const xp = padNHWC(args, args.inputs.x!, p, 0);
    try {
      return stock({ ...args, inputs: { ...args.inputs, x: xp }, attrs: { ...args.attrs, pad: 'valid' } });
    } finally {
      dispose(args, xp);
    }
  };
}

const WRAPPERS: [string, (stock: Kernel) => Kernel][] = [
  ['Conv2D', explicitPadding],
  ['FusedConv2D', explicitPadding],
  ['DepthwiseConv2dNative', explicitPadding],
  ['FusedDepthwiseConv2D', explicitPadding],
  ['MaxPool', maxPool],
  ['MaxPoolGrad', maxPoolGrad],
  ['Conv2DBackpropInput', backpropInput],
  ['DepthwiseConv2dNativeBackpropInput', backpropInput],
  ['Conv2DBackpropFilter', backpropFilter],
  ['DepthwiseConv2dNativeBackpropFilter', backpropFilter],
];

// Training-mode BatchNorm as TensorFlow's own fused op. Built from tf ops instead, each of a
// ResNet's BN layers costs ~60 kernel calls forward and backward, and on this backend a call's
// overhead (engine bookkeeping, N-API, TFE_Execute) is what dominates small-image training.
// FusedBatchNorm with is_training = true returns y, the batch mean and the *unbiased* batch
// variance, then its reserve spaces: the mean and the biased variance that normalised, which
// FusedBatchNormGrad takes back. Same contract as the wasm/cpu kernels (batchnorm-kernels.ts).
interface NodeBackend {
  binding: { TF_ATTR_TYPE: number; TF_ATTR_FLOAT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_FLOAT: number };
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: Info[], n: number): tf.Tensor[];
  executeSingleOutput(name: string, attrs: unknown[], inputs: Info[]): tf.Tensor;
}

function floatType(b: NodeBackend): unknown {
  return { name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT };
}

function bnAttrs(b: NodeBackend, epsilon: number): unknown[] {
  return [
    floatType(b),
    { name: 'epsilon', type: b.binding.TF_ATTR_FLOAT, value: epsilon },
    { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: b.binding.TF_ATTR_BOOL, value: true },
  ];
}

/** Any-rank [..., C] as the op's NHWC [1, 1, N, C]: the same per-channel statistics. */
function asNHWC(x: Info, C: number): tf.Tensor4D {
  if (x.shape.length === 4) return x as tf.Tensor4D;
  return tf.reshape(x as tf.Tensor, [1, 1, -1, C]);
}

/** Back from asNHWC. Reshapes are TF ops here too (~50 µs each): none where nothing changes. */
function fromNHWC(t: tf.Tensor, like: Info): tf.Tensor {
  return like.shape.length === 4 ? t : tf.reshape(t, like.shape);
}

function bnTrainForwardTf(args: KernelArgs): Info[] {
  const { x, gamma, beta, residual, epsilon, relu, C } = bnTrainForwardInputs(args as never);
  const b = args.backend as NodeBackend;
  return tf.tidy(() => {
    const empty = tf.tensor1d([]);
    const outs = b.executeMultipleOutputs('FusedBatchNorm', bnAttrs(b, epsilon), [asNHWC(x, C), gamma, beta, empty, empty], 5);
    const [yBn, , , mean, variance] = outs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    let y = fromNHWC(yBn, x);
    if (residual) y = tf.add(y, residual as tf.Tensor);
    if (relu) y = tf.relu(y);
    return [y, mean, variance];
  });
}

function bnTrainBackwardTf(args: KernelArgs): Info[] {
  const { dy, x, y, mean, variance, gamma, dMean, dVariance } = args.inputs as Record<string, tf.Tensor>;
  const { epsilon, relu, residual } = args.attrs as unknown as BnTrainAttrs;
  const b = args.backend as NodeBackend;
  const C = gamma!.shape[0]!;
  return tf.tidy(() => {
    // The ReLU's gradient: through where the output is positive (0 at 0, as the wasm kernel), as
    // TF's one ReluGrad op (dy · [y > 0]); tfjs-node's Step alone is six ops with two full-size fills.
    const g = relu ? b.executeSingleOutput('ReluGrad', [floatType(b)], [dy!, y!]) : dy!;
    const [dx4, dGamma, dBeta] = b.executeMultipleOutputs(
      'FusedBatchNormGrad',
      bnAttrs(b, epsilon),
      [asNHWC(g, C), asNHWC(x!, C), gamma!, mean!, variance!],
      5,
    );
    let dx = fromNHWC(dx4!, x!);
    // Gradients that reach the mean / variance outputs directly (zero when they only feed the
    // running statistics, as in every model here) are not the op's business: add them.
    const dm = dMean ? dMean.dataSync() : undefined;
    const dv = dVariance ? dVariance.dataSync() : undefined;
    if ((dm && dm.some((v) => v !== 0)) || (dv && dv.some((v) => v !== 0))) {
      const N = x!.size / C;
      dx = tf.add(dx, tf.add(tf.div(dMean!, N), tf.mul(tf.sub(x!, mean!), tf.div(tf.mul(dVariance!, 2), N))));
    }
    return residual ? [dx, dGamma!, dBeta!, relu ? g : tf.clone(dy!)] : [dx, dGamma!, dBeta!];
  });
}

let registered = false;

/** Wrap tfjs-node's padding-limited kernels (call after @tensorflow/tfjs-node registered them). Idempotent. */
export function registerTensorflowKernels(): void {
  if (registered) return;
  registered = true;
  for (const [name, wrap] of WRAPPERS) {
    const stock = tf.getKernel(name, BACKEND);
    if (!stock) continue;
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel({ ...stock, kernelFunc: wrap(stock.kernelFunc as unknown as Kernel) as unknown as tf.KernelFunc });
  }
  if (!tf.getKernel(BN_TRAIN, BACKEND))
    tf.registerKernel({ kernelName: BN_TRAIN, backendName: BACKEND, kernelFunc: bnTrainForwardTf as unknown as tf.KernelFunc });
  if (!tf.getKernel(BN_TRAIN_GRAD, BACKEND))
    tf.registerKernel({ kernelName: BN_TRAIN_GRAD, backendName: BACKEND, kernelFunc: bnTrainBackwardTf as unknown as tf.KernelFunc });
}
