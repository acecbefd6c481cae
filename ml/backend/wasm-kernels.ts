// Kernel patches for the wasm backend.
// Conv2DBackpropFilter is missing from tfjs-backend-wasm 4.x, so gradients of a convolution with
// respect to its filter fail there. (The native Conv3DBackpropFilterV2 it does ship is wrong for
// strides > 1, so it cannot stand in with depth 1.) We express the filter gradient as a forward
// convolution, which wasm runs through XNNPACK:
//   dW[i,j,c,o] = Σ_b Σ_{p,q} xpad[b, i + s·p, j + s·q, c] · dy[b, p, q, o]
// i.e. the input with batch and channels swapped ([C, H, W, B]), convolved with dy laid out as a
// filter ([Ho, Wo, B, Co]) at dilation s (the forward stride), keeping the first kh×kw outputs.
import * as tf from '@tensorflow/tfjs-core';

interface WasmBackendLike {
  disposeData(dataId: unknown): boolean;
}

type Info = tf.TensorInfo;
let registered = false;

function kernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm backend lacks the ${name} kernel`);
  return k.kernelFunc;
}

function conv2dBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): Info {
  const backend = args.backend as WasmBackendLike & tf.KernelBackend;
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as any;
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') throw new Error('Conv2DBackpropFilter (wasm): float32 tensors only');
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC');
  if (fmt !== 'channelsLast') throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported');
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, fmt);
  if (info.outHeight !== dy.shape[1] || info.outWidth !== dy.shape[2]) {
    throw new Error(`Conv2DBackpropFilter (wasm): dy shape ${dy.shape} does not match the convolution output ${info.outHeight}x${info.outWidth}`);
  }
  const { top, bottom, left, right } = info.padInfo;
  const call = (name: string, inputs: Record<string, Info>, attrs: Record<string, unknown>) =>
    kernel(name)({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as Info;
  const xT = call('Transpose', { x }, { perm: [3, 1, 2, 0] });
  const dyT = call('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  // Padding beyond what the forward pass read would only add rows we slice away.
  const r = call(
    'Conv2D',
    { x: xT, filter: dyT },
    { strides: [1, 1], pad: [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]], dilations: [info.strideHeight, info.strideWidth], dataFormat: 'NHWC' },
  );
  const rs = call('Slice', { x: r }, { begin: [0, 0, 0, 0], size: [info.inChannels, info.filterHeight, info.filterWidth, info.outChannels] });
  const out = call('Transpose', { x: rs }, { perm: [1, 2, 0, 3] });
  for (const t of [xT, dyT, r, rs]) backend.disposeData(t.dataId);
  return out;
}

/** Register the missing wasm kernels (call after importing @tensorflow/tfjs-backend-wasm). Idempotent. */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
  });
}
