// The fused training-BN kernels (see batchnorm-kernels.ts for the maths) on wasm, composed from
// stock wasm kernels that run at SIMD speed, with only per-channel scalars handled in JS.
// Why not the JS loops used on cpu: on this machine a JS pass costs ~4 ns/element, wasm's
// elementwise kernels ~0.15 ns. The two tricks that avoid wasm's slow paths:
//  - channel sums as an AvgPool over blocks of up to 256 rows, then a short JS sum (0.13 ms for
//    32×32×32×16), instead of Sum over axes 0..2, which transposes first (0.9 ms), or a GEMV
//    ones·X, which repacks X as XNNPACK weights on every call (1.8 ms);
//  - per-channel affine maps x·s + t as a 1×1 depthwise convolution with bias and an optional
//    fused ReLU (0.15 ms), instead of broadcasting Mul / Add (0.5 ms each).
import * as tf from '@tensorflow/tfjs-core';
import {
  backwardCoefficients,
  bnTrainForwardInputs,
  channelsOf,
  forwardCoefficients,
  sameShape,
  type BnTrainAttrs,
} from './batchnorm-kernels.js';

type Info = tf.TensorInfo;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

interface WasmBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): Info;
  typedArrayFromHeap(info: Info): tf.backend_util.TypedArray;
  disposeData(dataId: unknown): boolean;
}

/** The largest divisor of n up to 256: rows averaged per block by channelSums. */
function blockRows(n: number): number {
  for (let r = Math.min(256, n); r > 1; r--) if (n % r === 0) return r;
  return 1;
}

/** Calls stock wasm kernels and frees every intermediate except the ones kept. */
class WasmOps {
  private readonly temps: Info[] = [];

  constructor(readonly backend: WasmBackend) {}

  call(name: string, inputs: Record<string, Info>, attrs: Record<string, unknown> = {}): Info {
    const k = tf.getKernel(name, 'wasm');
    if (!k) throw new Error(`wasm backend lacks the ${name} kernel`);
    const out = k.kernelFunc({ inputs, backend: this.backend, attrs: attrs as tf.NamedAttrMap }) as Info;
    this.temps.push(out);
    return out;
  }

  reshape(x: Info, shape: number[]): Info {
    return this.call('Reshape', { x }, { shape });
  }

  constant(shape: number[], values: ArrayLike<number>): Info {
    const out = this.backend.makeOutput(shape, 'float32', undefined, Float32Array.from(values));
    this.temps.push(out);
    return out;
  }

  /** Copy of a small tensor's values (views die when the heap grows). */
  read(x: Info): Float32Array {
    return Float32Array.from(this.backend.typedArrayFromHeap(x) as Float32Array);
  }

  /** Column sums of X viewed as [N, C]: wasm averages blocks of R rows, JS adds the N/R results. */
  channelSums(x: Info, N: number, C: number): Float64Array {
    const R = blockRows(N);
    const pooled =
      R > 1
        ? this.call(
            'AvgPool',
            { x: this.reshape(x, [1, N / R, R, C]) },
            { filterSize: [1, R], strides: [1, R], pad: 'valid', dimRoundingMode: undefined },
          )
        : x;
    const v = this.backend.typedArrayFromHeap(pooled) as Float32Array;
    const sums = new Float64Array(C);
    for (let p = 0; p < v.length;) for (let c = 0; c < C; c++, p++) sums[c] += v[p];
    for (let c = 0; c < C; c++) sums[c] *= R;
    return sums;
  }

  /** x·scale + shift per channel (x viewed as [1, 1, N, C]), optionally through a ReLU. */
  affine(x4: Info, scale: ArrayLike<number>, shift: ArrayLike<number>, relu: boolean): Info {
    const C = scale.length;
    return this.call(
      'FusedDepthwiseConv2D',
      { x: x4, filter: this.constant([1, 1, C, 1], scale), bias: this.constant([C], shift) },
      {
        strides: [1, 1],
        pad: 'valid',
        dilations: [1, 1],
        dataFormat: 'NHWC',
        dimRoundingMode: undefined,
        activation: relu ? 'relu' : 'linear',
      },
    );
  }

  /** A kept result in the given shape (a reshape shares the data). */
  keep(x: Info, shape: number[]): Info {
    const k = tf.getKernel('Reshape', 'wasm')!;
    return k.kernelFunc({ inputs: { x }, backend: this.backend, attrs: { shape } }) as Info;
  }

  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
  }
}

export function bnTrainForwardWasm(args: KernelArgs): Info[] {
  const { x, gamma, beta, residual, epsilon, relu, C, N } = bnTrainForwardInputs(args);
  const ops = new WasmOps(args.backend as WasmBackend);
  try {
    const x4 = ops.reshape(x!, [1, 1, N, C]);
    const mean = ops.channelSums(x!, N, C).map((s) => s / N);
    // Two passes (centre, then square) rather than Σx² − Nμ²: no cancellation when |μ| ≫ σ.
    const centred = ops.affine(
      x4,
      new Float32Array(C).fill(1),
      mean.map((m) => -m),
      false,
    );
    const sumSq = ops.channelSums(ops.call('Square', { x: centred }), N, C);
    const g = ops.read(gamma!);
    const b = ops.read(beta!);
    const { variance, scale, shift } = forwardCoefficients(mean, sumSq, g, b, N, epsilon);
    let out = ops.affine(x4, scale, shift, relu && !residual);
    if (residual) {
      out = ops.call('Add', { a: out, b: ops.reshape(residual, [1, 1, N, C]) });
      if (relu) out = ops.call('Relu', { x: out });
    }
    const y = ops.keep(out, [...x!.shape]);
    const meanOut = ops.backend.makeOutput([C], 'float32', undefined, Float32Array.from(mean));
    const varOut = ops.backend.makeOutput([C], 'float32', undefined, Float32Array.from(variance));
    return [y, meanOut, varOut];
  } finally {
    ops.dispose();
  }
}

export function bnTrainBackwardWasm(args: KernelArgs): Info[] {
  const { dy, x, y, mean, variance, gamma, dMean, dVariance } = args.inputs as Record<string, Info>;
  const { epsilon, relu, residual } = args.attrs as unknown as BnTrainAttrs;
  const [C, N] = channelsOf(x, 'BatchNorm (train) gradient');
  sameShape(x, dy, 'BatchNorm (train) gradient dy');
  const ops = new WasmOps(args.backend as WasmBackend);
  try {
    const m = ops.read(mean);
    // g = dy where the output is positive (ReLU), else 0
    const g = relu ? ops.call('Multiply', { a: dy, b: ops.call('Step', { x: y }, { alpha: 0 }) }) : dy;
    const g4 = ops.reshape(g, [1, 1, N, C]);
    const centred = ops.affine(
      ops.reshape(x, [1, 1, N, C]),
      new Float32Array(C).fill(1),
      Array.from(m, (v) => -v),
      false,
    );
    const sumG = ops.channelSums(g, N, C);
    const sumGd = ops.channelSums(ops.call('Multiply', { a: g4, b: centred }), N, C);
    const dGamma = new Float32Array(C);
    const dBeta = new Float32Array(C);
    const { a, k, c0 } = backwardCoefficients(
      sumG,
      sumGd,
      ops.read(variance),
      ops.read(gamma),
      ops.read(dMean),
      ops.read(dVariance),
      N,
      epsilon,
      dGamma,
      dBeta,
    );
    const dx = ops.call('Add', { a: ops.affine(g4, a, c0, false), b: ops.affine(centred, k, new Float32Array(C), false) });
    const outs = [
      ops.keep(dx, [...x.shape]),
      ops.backend.makeOutput([C], 'float32', undefined, dGamma),
      ops.backend.makeOutput([C], 'float32', undefined, dBeta),
    ];
    if (residual && relu) outs.push(ops.keep(g, [...x.shape]));
    return outs;
  } finally {
    ops.dispose();
  }
}
