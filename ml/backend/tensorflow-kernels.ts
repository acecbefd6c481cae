// Numeric padding on the native TensorFlow backend. Our models pad as PyTorch does (`pad: 1` for a
// 3×3 conv, `pad: 3` for the 7×7 stem, `pad: 1` for the stem's max pool), which tfjs's wasm and cpu
// backends take as is; tfjs-node's kernels accept only 'valid' / 'same' (and, for Conv2D and
// DepthwiseConv2dNative, explicit paddings), so every ResNet forward failed there. TF's 'same' is
// not a substitute: it puts the odd pixel at the bottom/right, PyTorch pads both sides alike.
// The stock kernels are wrapped, not replaced:
//  - convolutions forward: numeric → explicit padding (TF's own EXPLICIT mode);
//  - max pool: pad with −∞ (PadV2), then 'valid' — a padded cell never wins, as in PyTorch;
//  - backprop kernels (no EXPLICIT mode in tfjs-node): the 'valid' kernel on the padded input,
//    then the input gradient cropped (Slice) / the filter gradient taken over the padded input.
import * as tf from '@tensorflow/tfjs-core';

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
  return [[0, 0], [p[0], p[1]], [p[2], p[3]], [0, 0]];
}

function isZero(p: [number, number, number, number]): boolean {
  return p.every((v) => v === 0);
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

/** Forward convolutions: TF's explicit padding does it natively. */
function explicitPadding(stock: Kernel): Kernel {
  return (args) => {
    const p = numericPad(args.attrs.pad);
    if (!p || typeof args.attrs.pad !== 'number') return stock(args);
    return stock({ ...args, attrs: { ...args.attrs, pad: isZero(p) ? 'valid' : explicit(p) } });
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
    if (isZero(p)) return stock({ ...args, attrs: { ...args.attrs, pad: 'valid' } });
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
    if (isZero(p)) return stock({ ...args, attrs: { ...args.attrs, pad: 'valid' } });
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
}
