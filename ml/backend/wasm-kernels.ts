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

// Conv2DBackpropInput: the stock wasm kernel is a plain C++ loop, ~10× slower than the XNNPACK
// forward convolution. The input gradient is itself a convolution of dy with the flipped filter
// (in/out channels swapped); for stride s we split it into s² phases ("sub-pixel" form) rather
// than zero-dilating dy, so no multiply-by-zero work is done on dilated rows. Per axis, with
// u = h + padTop and r = u mod s:
//   dx[h] = Σ_t dy[(u − r)/s − t] · W[r + s·t],   t = 0 … T−1,  T = ⌈k/s⌉
// All phases share one forward convolution whose output channels are (rh, rw, c); a
// depth-to-space transpose then interleaves them and a slice drops the rows that fall in padding.

/** Per-axis geometry of the phase convolution. */
interface AxisPlan {
  /** Taps per phase, ⌈k/s⌉. */
  taps: number;
  /** Phase-grid rows computed (each yields s input rows). */
  n: number;
  /** Rows of the interleaved result before input row 0. */
  offset: number;
  /** Padding (≥ 0) / cropping (≥ 0) of dy at the front and back. */
  padFront: number;
  padBack: number;
  cropFront: number;
  cropBack: number;
}

function axisPlan(inSize: number, outSize: number, k: number, s: number, padBefore: number): AxisPlan {
  const taps = Math.ceil(k / s);
  const first = Math.floor(padBefore / s); // phase-grid index of input row 0
  const offset = padBefore - s * first;
  const n = Math.ceil((inSize + offset) / s);
  const front = taps - 1 - first;
  const back = n + first - outSize;
  return { taps, n, offset, padFront: Math.max(0, front), padBack: Math.max(0, back), cropFront: Math.max(0, -front), cropBack: Math.max(0, -back) };
}

/** Phase filter [Th, Tw, Co, sh·sw·Ci]: F[a, b, o, (rh, rw, c)] = W[rh + sh·(Th−1−a), rw + sw·(Tw−1−b), c, o] (0 past the kernel). */
function phaseFilter(w: Float32Array, [kh, kw, ci, co]: number[], sh: number, sw: number, th: number, tw: number): Float32Array {
  const phases = sh * sw * ci;
  const out = new Float32Array(th * tw * co * phases);
  let src = 0;
  for (let ih = 0; ih < kh; ih++) {
    const a = th - 1 - Math.floor(ih / sh);
    const rh = ih % sh;
    for (let iw = 0; iw < kw; iw++) {
      const b = tw - 1 - Math.floor(iw / sw);
      const rw = iw % sw;
      const base = (a * tw + b) * co * phases + (rh * sw + rw) * ci;
      for (let c = 0; c < ci; c++) {
        for (let o = 0; o < co; o++) out[base + o * phases + c] = w[src++];
      }
    }
  }
  return out;
}

export type BackpropInputMode = 'auto' | 'forward' | 'native';
let backpropInputMode: BackpropInputMode = 'auto';

/**
 * How wasm computes Conv2DBackpropInput: 'forward' always uses the phase convolution, 'native'
 * always the stock kernel, 'auto' (default) picks per geometry. For tests and benchmarks.
 */
export function setBackpropInputMode(mode: BackpropInputMode): void {
  backpropInputMode = mode;
}

/** Whether the phase convolution beats the stock kernel (measured on resnet-mini shapes). */
function forwardIsFaster(kh: number, kw: number, sh: number, sw: number): boolean {
  if (sh === 1 && sw === 1) return true;
  return kh >= sh && kw >= sw;
}

function conv2dBackpropInputForward(backend: WasmBackendLike & tf.KernelBackend, dy: Info, filter: Info, info: tf.backend_util.Conv2DInfo): Info {
  const call = (name: string, inputs: Record<string, Info>, attrs: Record<string, unknown>) =>
    kernel(name)({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as Info;
  const { strideHeight: sh, strideWidth: sw, inChannels: ci, outChannels: co, batchSize: nb } = info;
  const ph = axisPlan(info.inHeight, info.outHeight, info.filterHeight, sh, info.padInfo.top);
  const pw = axisPlan(info.inWidth, info.outWidth, info.filterWidth, sw, info.padInfo.left);
  const temps: Info[] = [];
  let src = dy;
  if (ph.cropFront || ph.cropBack || pw.cropFront || pw.cropBack) {
    src = call('Slice', { x: dy }, {
      begin: [0, ph.cropFront, pw.cropFront, 0],
      size: [nb, info.outHeight - ph.cropFront - ph.cropBack, info.outWidth - pw.cropFront - pw.cropBack, co],
    });
    temps.push(src);
  }
  const w = backend.readSync(filter.dataId) as Float32Array;
  const f = (backend as unknown as { makeOutput(s: number[], d: string, o?: number, v?: Float32Array): Info }).makeOutput(
    [ph.taps, pw.taps, co, sh * sw * ci],
    'float32',
    undefined,
    phaseFilter(w, filter.shape, sh, sw, ph.taps, pw.taps),
  );
  temps.push(f);
  let r = call('Conv2D', { x: src, filter: f }, {
    strides: [1, 1],
    pad: [[0, 0], [ph.padFront, ph.padBack], [pw.padFront, pw.padBack], [0, 0]],
    dilations: [1, 1],
    dataFormat: 'NHWC',
  });
  if (sh > 1 || sw > 1) {
    // depth-to-space: [B·n, n', sh, sw·Ci] → [B·n, sh, n', sw·Ci] = [B, n·sh, n'·sw, Ci]
    const r4 = call('Reshape', { x: r }, { shape: [nb * ph.n, pw.n, sh, sw * ci] });
    temps.push(r, r4);
    r = call('Transpose', { x: r4 }, { perm: [0, 2, 1, 3] });
  }
  let out = r;
  if (ph.offset || pw.offset || ph.n * sh !== info.inHeight || pw.n * sw !== info.inWidth) {
    const r4 = call('Reshape', { x: r }, { shape: [nb, ph.n * sh, pw.n * sw, ci] });
    out = call('Slice', { x: r4 }, { begin: [0, ph.offset, pw.offset, 0], size: [nb, info.inHeight, info.inWidth, ci] });
    temps.push(r, r4);
  } else if (sh > 1 || sw > 1) {
    out = call('Reshape', { x: r }, { shape: [nb, info.inHeight, info.inWidth, ci] });
    temps.push(r);
  }
  for (const t of temps) backend.disposeData(t.dataId);
  return out;
}

function makeConv2dBackpropInput(native: tf.KernelFunc) {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): Info => {
    const backend = args.backend as WasmBackendLike & tf.KernelBackend;
    const { dy, filter } = args.inputs as { dy: Info; filter: Info };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as any;
    const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC');
    if (backpropInputMode === 'native' || fmt !== 'channelsLast' || dy.dtype !== 'float32' || filter.dtype !== 'float32') {
      return native(args as any) as Info;
    }
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false, fmt);
    if (info.outHeight !== dy.shape[1] || info.outWidth !== dy.shape[2]) {
      throw new Error(`Conv2DBackpropInput (wasm): dy shape ${dy.shape} does not match the convolution output ${info.outHeight}x${info.outWidth}`);
    }
    const usable = info.outHeight > 0 && info.outWidth > 0;
    const ph = axisPlan(info.inHeight, info.outHeight, info.filterHeight, info.strideHeight, info.padInfo.top);
    const pw = axisPlan(info.inWidth, info.outWidth, info.filterWidth, info.strideWidth, info.padInfo.left);
    // dy rows that only ever touched padding are cropped; if none remain, dx is all zero
    const empty = ph.cropFront + ph.cropBack >= info.outHeight || pw.cropFront + pw.cropBack >= info.outWidth;
    const wanted = backpropInputMode === 'forward' || forwardIsFaster(info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth);
    if (!usable || empty || !wanted) return native(args as any) as Info;
    return conv2dBackpropInputForward(backend, dy, filter, info);
  };
}

/**
 * Register the missing wasm kernels and replace Conv2DBackpropInput by the faster forward form
 * (call after importing @tensorflow/tfjs-backend-wasm). Idempotent.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  const stock = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (stock) {
    // keep the stock setupFunc: it binds the C++ entry point the native fallback calls
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel({ ...stock, kernelFunc: makeConv2dBackpropInput(stock.kernelFunc) as unknown as tf.KernelFunc });
  }
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
  });
}
