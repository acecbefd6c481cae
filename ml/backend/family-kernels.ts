// Kernels and gradients the ConvNeXt and EfficientNet blocks need beyond the ResNets' (depthwise
// convolution, exact GELU's erf). Registered at import (ml/backend/index.ts imports this module).
//
// The Node bundle of tfjs-core registers no per-kernel gradients (see gradients.ts), so the
// depthwise convolution and Erf get theirs here. tfjs-backend-wasm 4.x also ships the forward
// depthwise kernel but neither backprop kernel; both are plain loops over the heap buffers, per
// channel c and multiplier m (filter [kh, kw, C, M], output channel c·M + m), with input row
// h = p·s − top + i·d:
//   dx[b, h, w, c]   = Σ_{p,q,i,j,m} dy[b, p, q, cM+m] · W[i, j, c, m]
//   dW[i, j, c, m]   = Σ_{b,p,q}     x[b, h, w, c]    · dy[b, p, q, cM+m]
import * as tf from '@tensorflow/tfjs-core';

type Info = tf.TensorInfo;
interface Heap {
  makeOutput(shape: number[], dtype: string): Info;
  typedArrayFromHeap(t: Info): Float32Array;
}
interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function geometry(xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap) {
  const { strides, dilations, pad, dimRoundingMode } = attrs as any;
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations ?? [1, 1],
    pad,
    dimRoundingMode,
    true,
  );
}

/** Calls f(b, p, q, i, j, xOffset, dyOffset) for every in-bounds (output position, filter tap). */
function forEachTap(info: tf.backend_util.Conv2DInfo, f: (xOff: number, dyOff: number, wOff: number) => void): void {
  const {
    batchSize: B,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: Ho,
    outWidth: Wo,
    outChannels: Co,
    filterHeight: kh,
    filterWidth: kw,
  } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < Ho; p++) {
      for (let q = 0; q < Wo; q++) {
        const dyOff = ((b * Ho + p) * Wo + q) * Co;
        for (let i = 0; i < kh; i++) {
          const h = p * sh - top + i * dh;
          if (h < 0 || h >= H) continue;
          for (let j = 0; j < kw; j++) {
            const w = q * sw - left + j * dw;
            if (w < 0 || w >= W) continue;
            f(((b * H + h) * W + w) * C, dyOff, (i * kw + j) * Co);
          }
        }
      }
    }
  }
}

function checkFloat(name: string, ...ts: Info[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`${name} (wasm): float32 tensors only`);
}

function backpropInput(args: Args): Info {
  const heap = args.backend as Heap;
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  checkFloat('DepthwiseConv2dNativeBackpropInput', dy, filter);
  const inputShape = (args.attrs as any).inputShape as number[];
  const info = geometry(inputShape, filter.shape, args.attrs!);
  const M = filter.shape[3];
  const C = info.inChannels;
  const out = heap.makeOutput(inputShape, 'float32');
  const dx = heap.typedArrayFromHeap(out);
  dx.fill(0);
  const g = heap.typedArrayFromHeap(dy);
  const wt = heap.typedArrayFromHeap(filter);
  // Filter [kh, kw, C, M] is laid out like Co = C·M output channels per tap: offsets line up with dy's.
  forEachTap(info, (xOff, dyOff, wOff) => {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += g[dyOff + c * M + m] * wt[wOff + c * M + m];
      dx[xOff + c] += s;
    }
  });
  return out;
}

function backpropFilter(args: Args): Info {
  const heap = args.backend as Heap;
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  checkFloat('DepthwiseConv2dNativeBackpropFilter', x, dy);
  const filterShape = (args.attrs as any).filterShape as number[];
  const info = geometry(x.shape, filterShape, args.attrs!);
  const M = filterShape[3];
  const C = info.inChannels;
  const out = heap.makeOutput(filterShape, 'float32');
  const dw = heap.typedArrayFromHeap(out);
  dw.fill(0);
  const xs = heap.typedArrayFromHeap(x);
  const g = heap.typedArrayFromHeap(dy);
  forEachTap(info, (xOff, dyOff, wOff) => {
    for (let c = 0; c < C; c++) {
      const v = xs[xOff + c];
      for (let m = 0; m < M; m++) dw[wOff + c * M + m] += v * g[dyOff + c * M + m];
    }
  });
  return out;
}

for (const [kernelName, fn] of [
  ['DepthwiseConv2dNativeBackpropInput', backpropInput],
  ['DepthwiseConv2dNativeBackpropFilter', backpropFilter],
] as const) {
  if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: fn as unknown as tf.KernelFunc });
}

const gradients: tf.GradConfig[] = [
  {
    kernelName: 'DepthwiseConv2dNative',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved;
      const { strides, pad, dilations, dimRoundingMode } = attrs as any;
      const d = dilations ?? [1, 1];
      if (!(d === 1 || (Array.isArray(d) && d.every((v: number) => v === 1))))
        throw new Error('DepthwiseConv2dNative gradient: dilation > 1 is not supported');
      const common = { strides, pad, dilations: [1, 1], dimRoundingMode };
      const run = (name: string, inputs: Record<string, tf.Tensor>, extra: Record<string, unknown>) =>
        tf.engine().runKernel(name, inputs as any, { ...common, ...extra } as any) as tf.Tensor;
      return {
        x: () => run('DepthwiseConv2dNativeBackpropInput', { dy: dy as tf.Tensor, filter }, { inputShape: x.shape }),
        filter: () => run('DepthwiseConv2dNativeBackpropFilter', { x, dy: dy as tf.Tensor }, { filterShape: filter.shape }),
      };
    },
  },
  {
    // d erf(x)/dx = 2/√π · exp(−x²)
    kernelName: 'Erf',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      return { x: () => tf.mul(dy as tf.Tensor, tf.mul(tf.exp(tf.neg(tf.square(x))), 2 / Math.sqrt(Math.PI))) };
    },
  },
];
for (const g of gradients) if (!tf.getGradient(g.kernelName)) tf.registerGradient(g);
