// Kernel patches for the wasm backend: a missing Conv2DBackpropFilter and a faster
// Conv2DBackpropInput, both expressed as forward convolutions (XNNPACK).
// Conv2DBackpropFilter is missing from tfjs-backend-wasm 4.x, so gradients of a convolution with
// respect to its filter fail there. (The native Conv3DBackpropFilterV2 it does ship is wrong for
// strides > 1, so it cannot stand in with depth 1.) We express the filter gradient as a forward
// convolution, which wasm runs through XNNPACK:
//   dW[i,j,c,o] = Σ_b Σ_{p,q} xpad[b, i + s·p, j + s·q, c] · dy[b, p, q, o]
// i.e. the input with batch and channels swapped ([C, H, W, B]), convolved with dy laid out as a
// filter ([Ho, Wo, B, Co]) at dilation s (the forward stride), keeping the first kh×kw outputs.
import * as tf from '@tensorflow/tfjs-core';
import { BN_TRAIN, BN_TRAIN_GRAD } from './batchnorm-kernels.js';
import { bnTrainBackwardWasm, bnTrainForwardWasm } from './batchnorm-wasm.js';
import { maxPoolGradFirstMax } from './maxpool-grad.js';

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
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    fmt,
  );
  if (info.outHeight !== dy.shape[1] || info.outWidth !== dy.shape[2]) {
    throw new Error(
      `Conv2DBackpropFilter (wasm): dy shape ${dy.shape} does not match the convolution output ${info.outHeight}x${info.outWidth}`,
    );
  }
  const { top, bottom, left, right } = info.padInfo;
  const call = (name: string, inputs: Record<string, Info>, attrs: Record<string, unknown>) =>
    kernel(name)({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as Info;
  const xT = call('Transpose', { x }, { perm: [3, 1, 2, 0] });
  const dyT = call('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  // Pad the far side only as far as the forward pass read: the output is then exactly kh × kw.
  // (Padding by `bottom` / `right` computed extra rows that were sliced away: 8×8 for the 7×7
  // stride-2 stem, 4×4 for a 3×3 stride-2 conv on an even size — up to 44% wasted work.)
  const readBottom = info.filterHeight + info.strideHeight * (info.outHeight - 1) - info.inHeight - top;
  const readRight = info.filterWidth + info.strideWidth * (info.outWidth - 1) - info.inWidth - left;
  const r = call(
    'Conv2D',
    { x: xT, filter: dyT },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [top, Math.max(0, Math.min(bottom, readBottom))],
        [left, Math.max(0, Math.min(right, readRight))],
        [0, 0],
      ],
      dilations: [info.strideHeight, info.strideWidth],
      dataFormat: 'NHWC',
    },
  );
  const rs = call(
    'Slice',
    { x: r },
    { begin: [0, 0, 0, 0], size: [info.inChannels, info.filterHeight, info.filterWidth, info.outChannels] },
  );
  const out = call('Transpose', { x: rs }, { perm: [1, 2, 0, 3] });
  for (const t of [xT, dyT, r, rs]) backend.disposeData(t.dataId);
  return out;
}

// Conv2DBackpropInput: the stock wasm kernel is a plain C++ loop, ~10× slower than the XNNPACK
// forward convolution. The input gradient is itself a convolution of dy with the flipped filter
// (in/out channels swapped); for stride s we split it into s phases per axis ("sub-pixel" form)
// rather than zero-dilating dy, so no multiply-by-zero work is done on dilated rows. Per axis,
// writing h = s·m + q (q = 0 … s−1) and u = h + padBefore:
//   dx[s·m + q] = Σ_t dy[m + d_q − t] · W[r_q + s·t],   r_q = u mod s,  d_q = ⌊(q + padBefore)/s⌋
// All phases share one forward convolution over the grid m whose output channels are (qh, qw, c);
// a depth-to-space transpose then interleaves them into dx.

/** Per-axis geometry of the phase convolution. */
interface AxisPlan {
  /** Taps of the phase filter (the union of every phase's dy window). */
  taps: number;
  /** Phase-grid rows computed (each yields s input rows). */
  n: number;
  /** For kernel row i: its phase q and its tap in the phase filter. */
  phaseOf: number[];
  tapOf: number[];
  /** Padding (≥ 0) / cropping (≥ 0) of dy at the front and back. */
  padFront: number;
  padBack: number;
  cropFront: number;
  cropBack: number;
}

function axisPlan(inSize: number, outSize: number, k: number, s: number, padBefore: number): AxisPlan {
  // phase q reads dy[m + d_q − t] for t < T_q; the shared window is dy[m + lo … m + hi]
  let lo = Infinity;
  let hi = -Infinity;
  const d: number[] = [];
  for (let q = 0; q < s; q++) {
    const r = (q + padBefore) % s;
    d.push(Math.floor((q + padBefore) / s));
    const taps = r < k ? Math.ceil((k - r) / s) : 0;
    if (taps > 0) {
      lo = Math.min(lo, d[q] - taps + 1);
      hi = Math.max(hi, d[q]);
    }
  }
  const phaseOf: number[] = [];
  const tapOf: number[] = [];
  for (let i = 0; i < k; i++) {
    const q = ((((i % s) - padBefore) % s) + s) % s;
    phaseOf.push(q);
    tapOf.push(d[q] - lo - Math.floor(i / s));
  }
  const taps = hi - lo + 1;
  const n = Math.ceil(inSize / s);
  const front = -lo;
  const back = n + taps - 1 + lo - outSize;
  return {
    taps,
    n,
    phaseOf,
    tapOf,
    padFront: Math.max(0, front),
    padBack: Math.max(0, back),
    cropFront: Math.max(0, -front),
    cropBack: Math.max(0, -back),
  };
}

/** Phase filter [Th, Tw, Co, sh·sw·Ci]: W[i, j, c, o] goes to tap (tapOf i, tapOf j), channel (phaseOf i, phaseOf j, c); the rest is 0. */
function phaseFilter(
  out: Float32Array,
  w: Float32Array,
  [kh, kw, ci, co]: number[],
  sh: number,
  sw: number,
  ph: AxisPlan,
  pw: AxisPlan,
): void {
  const phases = sh * sw * ci;
  // Only the zero taps need clearing: every other element is written below.
  if (ph.taps * pw.taps * sh * sw !== kh * kw) out.fill(0);
  let src = 0;
  for (let ih = 0; ih < kh; ih++) {
    for (let iw = 0; iw < kw; iw++) {
      const base = (ph.tapOf[ih] * pw.taps + pw.tapOf[iw]) * co * phases + (ph.phaseOf[ih] * sw + pw.phaseOf[iw]) * ci;
      for (let c = 0; c < ci; c++) {
        for (let o = 0; o < co; o++) out[base + o * phases + c] = w[src++];
      }
    }
  }
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

/**
 * Whether the phase convolution should beat the stock kernel. Its extra work over the direct sum is
 * the zero taps of the phase filter (e.g. ×4 for a 1×1 stride-2 kernel) times the phase-grid rows
 * past the input's end. Measured on wasm (batch 32/8, 2–56 px, 3–128 channels): stride 1 is 4–11×
 * faster; 3×3 stride 2 1.5–5× (a tie at 4×4 px); 1×1 stride 2 1.3–2.6×; 1×1 stride 3 (waste 9)
 * 1.5×; 1×1 stride 4 (waste 16) a tie — hence the cut-off at 9.
 */
function forwardIsFaster(info: tf.backend_util.Conv2DInfo, ph: AxisPlan, pw: AxisPlan): boolean {
  const { strideHeight: sh, strideWidth: sw } = info;
  if (sh === 1 && sw === 1) return true;
  const tapWaste = (ph.taps * pw.taps * sh * sw) / (info.filterHeight * info.filterWidth);
  const gridWaste = (ph.n * sh * pw.n * sw) / (info.inHeight * info.inWidth);
  return tapWaste * gridWaste <= 9;
}

function conv2dBackpropInputForward(
  backend: WasmBackendLike & tf.KernelBackend,
  dy: Info,
  filter: Info,
  info: tf.backend_util.Conv2DInfo,
): Info {
  const call = (name: string, inputs: Record<string, Info>, attrs: Record<string, unknown>) =>
    kernel(name)({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as Info;
  const { strideHeight: sh, strideWidth: sw, inChannels: ci, outChannels: co, batchSize: nb } = info;
  const ph = axisPlan(info.inHeight, info.outHeight, info.filterHeight, sh, info.padInfo.top);
  const pw = axisPlan(info.inWidth, info.outWidth, info.filterWidth, sw, info.padInfo.left);
  const temps: Info[] = [];
  let src = dy;
  if (ph.cropFront || ph.cropBack || pw.cropFront || pw.cropBack) {
    src = call(
      'Slice',
      { x: dy },
      {
        begin: [0, ph.cropFront, pw.cropFront, 0],
        size: [nb, info.outHeight - ph.cropFront - ph.cropBack, info.outWidth - pw.cropFront - pw.cropBack, co],
      },
    );
    temps.push(src);
  }
  // Written straight into the wasm heap (no JS-side copies); views are taken after the allocation,
  // which may grow (and so detach) the heap.
  const heap = backend as unknown as { makeOutput(s: number[], d: string): Info; typedArrayFromHeap(i: Info): Float32Array };
  const f = heap.makeOutput([ph.taps, pw.taps, co, sh * sw * ci], 'float32');
  temps.push(f);
  phaseFilter(heap.typedArrayFromHeap(f), heap.typedArrayFromHeap(filter), filter.shape, sh, sw, ph, pw);
  let r = call(
    'Conv2D',
    { x: src, filter: f },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [ph.padFront, ph.padBack],
        [pw.padFront, pw.padBack],
        [0, 0],
      ],
      dilations: [1, 1],
      dataFormat: 'NHWC',
    },
  );
  if (sh > 1 || sw > 1) {
    // depth-to-space: [B·n, n', sh, sw·Ci] → [B·n, sh, n', sw·Ci] = [B, n·sh, n'·sw, Ci]
    const r4 = call('Reshape', { x: r }, { shape: [nb * ph.n, pw.n, sh, sw * ci] });
    temps.push(r, r4);
    r = call('Transpose', { x: r4 }, { perm: [0, 2, 1, 3] });
  }
  let out = r;
  if (ph.n * sh !== info.inHeight || pw.n * sw !== info.inWidth) {
    const r4 = call('Reshape', { x: r }, { shape: [nb, ph.n * sh, pw.n * sw, ci] });
    out = call('Slice', { x: r4 }, { begin: [0, 0, 0, 0], size: [nb, info.inHeight, info.inWidth, ci] });
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
    const info = tf.backend_util.computeConv2DInfo(
      inputShape,
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      fmt,
    );
    if (info.outHeight !== dy.shape[1] || info.outWidth !== dy.shape[2]) {
      throw new Error(
        `Conv2DBackpropInput (wasm): dy shape ${dy.shape} does not match the convolution output ${info.outHeight}x${info.outWidth}`,
      );
    }
    const usable = info.outHeight > 0 && info.outWidth > 0;
    const ph = axisPlan(info.inHeight, info.outHeight, info.filterHeight, info.strideHeight, info.padInfo.top);
    const pw = axisPlan(info.inWidth, info.outWidth, info.filterWidth, info.strideWidth, info.padInfo.left);
    // dy rows that only ever touched padding are cropped; if none remain, dx is all zero and the
    // stock kernel handles that degenerate case
    const empty = ph.cropFront + ph.cropBack >= info.outHeight || pw.cropFront + pw.cropBack >= info.outWidth;
    const wanted = backpropInputMode === 'forward' || forwardIsFaster(info, ph, pw);
    if (!usable || empty || !wanted) return native(args as any) as Info;
    return conv2dBackpropInputForward(backend, dy, filter, info);
  };
}

// Identity and same-dtype Cast: the stock wasm kernels copy the data. tfjs tensors are immutable
// (variables swap data ids on assign, nothing writes into an input), so sharing the buffer under a
// reference count — what the cpu backend and wasm's own Reshape do — is safe. This matters because
// the autodiff engine clones (Identity) every tensor it saves for the backward pass: ~400 full
// copies per training step of a small ResNet.
function makeSharing(stock: tf.KernelFunc, sameDtype: (args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap }) => boolean) {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): Info => {
    const x = (args.inputs as { x: Info }).x;
    if (x.dtype === 'string' || !sameDtype(args)) return stock(args as any) as Info;
    (args.backend as { incRef(id: unknown): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

function replaceKernel(name: string, make: (stock: tf.KernelFunc) => tf.KernelFunc): void {
  const stock = tf.getKernel(name, 'wasm');
  if (!stock) return;
  // keep the stock setupFunc: it binds the C++ entry points the fallbacks call
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...stock, kernelFunc: make(stock.kernelFunc) });
}

/**
 * Register the missing wasm kernels and replace Conv2DBackpropInput, MaxPoolGrad, Identity and
 * Cast by faster forms (call after importing @tensorflow/tfjs-backend-wasm). Idempotent.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  replaceKernel('Identity', (stock) => makeSharing(stock, () => true) as unknown as tf.KernelFunc);
  replaceKernel(
    'Cast',
    (stock) =>
      makeSharing(stock, (a) => (a.attrs as { dtype: string }).dtype === (a.inputs as { x: Info }).x.dtype) as unknown as tf.KernelFunc,
  );
  replaceKernel('MaxPoolGrad', () => maxPoolGradFirstMax as unknown as tf.KernelFunc);
  for (const [kernelName, fn] of [
    [BN_TRAIN, bnTrainForwardWasm],
    [BN_TRAIN_GRAD, bnTrainBackwardWasm],
  ] as const) {
    if (!tf.getKernel(kernelName, 'wasm'))
      tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: fn as unknown as tf.KernelFunc });
  }
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
