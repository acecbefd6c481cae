// Training-mode BatchNorm (batch statistics over every axis but the last), optionally followed by
// a residual add and a ReLU, as one kernel with a hand-written gradient.
// Why: built from tf.moments and elementwise ops, BN costs ~8 full-size kernels forward and ~25
// backward through autodiff (with a copy of every tensor saved for the backward pass). This file
// holds the maths, the gradient wiring and the cpu kernels (JS loops on the tensors' own memory);
// batchnorm-wasm.ts composes the same from fast wasm kernels.
//
// Forward, per channel over the N = size / C values:
//   μ = Σx/N,  σ² = Σ(x−μ)²/N (biased),  s = γ/√(σ²+ε),  z = s·(x−μ) + β (+ r),  y = relu(z)?
// Backward with g = dy masked by y > 0 when the ReLU is fused (dy otherwise), x̂ = (x−μ)/√(σ²+ε):
//   dβ = Σg,  dγ = Σ g·x̂,  dr = g,
//   dx = s·(g − dβ/N − x̂·dγ/N) + dμ/N + 2(x−μ)·dσ²/N
// (the last two terms carry gradients that reach the mean / variance outputs directly; they are
// zero when those outputs only feed the running statistics).
import * as tf from '@tensorflow/tfjs-core';
import { KernelMemory } from './js-memory.js';

export const BN_TRAIN = 'CaPipeBatchNormTrain';
export const BN_TRAIN_GRAD = 'CaPipeBatchNormTrainGrad';

export interface BnTrainAttrs {
  epsilon: number;
  relu: boolean;
  /** Whether the kernel got a `residual` input (attrs travel with the tape node, inputs may not). */
  residual: boolean;
}

type Info = tf.TensorInfo;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

export function channelsOf(x: Info, what: string): [number, number] {
  const C = x.shape[x.shape.length - 1];
  const size = x.shape.reduce((a, b) => a * b, 1);
  if (!(C > 0) || size === 0) throw new Error(`${what}: empty input of shape [${x.shape}]`);
  return [C, size / C];
}

export function sameShape(a: Info, b: Info, what: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${what}: shape [${b.shape}] does not match [${a.shape}]`);
  }
}

/** Per-channel forward coefficients from the mean and Σ(x−μ)²: z = scale·x + shift. */
export function forwardCoefficients(
  mean: ArrayLike<number>,
  sumSq: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  N: number,
  epsilon: number,
) {
  const C = mean.length;
  const variance = new Float64Array(C);
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    variance[c] = sumSq[c] / N;
    scale[c] = gamma[c] / Math.sqrt(variance[c] + epsilon);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  return { variance, scale, shift };
}

/**
 * Per-channel backward coefficients from Σg and Σg·(x−μ): dx = a·g + k·(x−μ) + c0.
 * Writes dγ and dβ into the given arrays.
 */
export function backwardCoefficients(
  sumG: ArrayLike<number>,
  sumGd: ArrayLike<number>,
  variance: ArrayLike<number>,
  gamma: ArrayLike<number>,
  dMean: ArrayLike<number>,
  dVariance: ArrayLike<number>,
  N: number,
  epsilon: number,
  dGamma: Float32Array,
  dBeta: Float32Array,
) {
  const C = sumG.length;
  const a = new Float64Array(C);
  const k = new Float64Array(C);
  const c0 = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const invstd = 1 / Math.sqrt(variance[c] + epsilon);
    const dg = sumGd[c] * invstd;
    dBeta[c] = sumG[c];
    dGamma[c] = dg;
    a[c] = gamma[c] * invstd;
    k[c] = (-a[c] * invstd * dg + 2 * dVariance[c]) / N;
    c0[c] = (-a[c] * sumG[c] + dMean[c]) / N;
  }
  return { a, k, c0 };
}

/** The forward kernel's inputs and attributes, checked (shared by the JS and wasm kernels). */
export function bnTrainForwardInputs(args: KernelArgs): {
  x: Info;
  gamma: Info;
  beta: Info;
  residual?: Info;
  epsilon: number;
  relu: boolean;
  C: number;
  N: number;
} {
  const { x, gamma, beta, residual } = args.inputs as Record<string, Info | undefined>;
  const { epsilon, relu } = args.attrs as unknown as BnTrainAttrs;
  const [C, N] = channelsOf(x!, 'BatchNorm (train)');
  if (gamma!.shape.length !== 1 || gamma!.shape[0] !== C || beta!.shape.length !== 1 || beta!.shape[0] !== C) {
    throw new Error(`BatchNorm (train): gamma [${gamma!.shape}] and beta [${beta!.shape}] must have ${C} elements (the channel count)`);
  }
  if (residual) sameShape(x!, residual, 'BatchNorm (train) residual');
  return { x: x!, gamma: gamma!, beta: beta!, residual, epsilon, relu: relu === true, C, N };
}

function bnTrainForward(args: KernelArgs): Info[] {
  const { x, gamma, beta, residual, epsilon, relu, C, N } = bnTrainForwardInputs(args);
  const mem = new KernelMemory(args.backend as tf.KernelBackend);
  const yInfo = mem.output([...x!.shape]);
  const meanInfo = mem.output([C]);
  const varInfo = mem.output([C]);
  const xv = mem.view(x!);
  const gv = mem.view(gamma!);
  const bv = mem.view(beta!);
  const rv = residual ? mem.view(residual) : undefined;
  const y = mem.view(yInfo);
  const meanOut = mem.view(meanInfo);
  const varOut = mem.view(varInfo);
  const total = N * C;

  const acc = new Float64Array(C);
  for (let p = 0; p < total;) for (let c = 0; c < C; c++, p++) acc[c] += xv[p];
  const mean = new Float64Array(C);
  for (let c = 0; c < C; c++) mean[c] = acc[c] / N;
  // Two passes rather than Σx² − Nμ²: no cancellation when |μ| ≫ σ.
  acc.fill(0);
  for (let p = 0; p < total;) {
    for (let c = 0; c < C; c++, p++) {
      const d = xv[p] - mean[c];
      acc[c] += d * d;
    }
  }
  const { variance, scale, shift } = forwardCoefficients(mean, acc, gv, bv, N, epsilon);
  meanOut.set(mean);
  varOut.set(variance);
  for (let p = 0; p < total;) {
    for (let c = 0; c < C; c++, p++) {
      let z = xv[p] * scale[c] + shift[c];
      if (rv) z += rv[p];
      y[p] = relu && !(z > 0) ? 0 : z;
    }
  }
  return [yInfo, meanInfo, varInfo];
}

function bnTrainBackward(args: KernelArgs): Info[] {
  const { dy, x, y, mean, variance, gamma, dMean, dVariance } = args.inputs as Record<string, Info>;
  const { epsilon, relu, residual } = args.attrs as unknown as BnTrainAttrs;
  const [C, N] = channelsOf(x, 'BatchNorm (train) gradient');
  sameShape(x, dy, 'BatchNorm (train) gradient dy');
  const mem = new KernelMemory(args.backend as tf.KernelBackend);
  const dxInfo = mem.output([...x.shape]);
  const dgInfo = mem.output([C]);
  const dbInfo = mem.output([C]);
  // The residual's gradient is the masked dy; without a ReLU it is dy itself (no output needed).
  const drInfo = residual && relu ? mem.output([...x.shape]) : undefined;
  const dyv = mem.view(dy);
  const xv = mem.view(x);
  const yv = mem.view(y);
  const mv = mem.view(mean);
  const vv = mem.view(variance);
  const gv = mem.view(gamma);
  const dmv = mem.view(dMean);
  const dvv = mem.view(dVariance);
  const dx = mem.view(dxInfo);
  const dGamma = mem.view(dgInfo);
  const dBeta = mem.view(dbInfo);
  const dr = drInfo ? mem.view(drInfo) : undefined;
  const total = N * C;

  const sg = new Float64Array(C);
  const sgx = new Float64Array(C);
  for (let p = 0; p < total;) {
    for (let c = 0; c < C; c++, p++) {
      const g = relu && !(yv[p] > 0) ? 0 : dyv[p];
      if (dr) dr[p] = g;
      sg[c] += g;
      sgx[c] += g * (xv[p] - mv[c]);
    }
  }
  const { a, k, c0 } = backwardCoefficients(sg, sgx, vv, gv, dmv, dvv, N, epsilon, dGamma, dBeta);
  for (let p = 0; p < total;) {
    for (let c = 0; c < C; c++, p++) {
      const g = dr ? dr[p] : relu && !(yv[p] > 0) ? 0 : dyv[p];
      dx[p] = a[c] * g + k[c] * (xv[p] - mv[c]) + c0[c];
    }
  }
  return drInfo ? [dxInfo, dgInfo, dbInfo, drInfo] : [dxInfo, dgInfo, dbInfo];
}

const gradConfig: tf.GradConfig = {
  kernelName: BN_TRAIN,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [true, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [dy, dMean, dVariance] = dys as tf.Tensor[];
    const [x, gamma, y, mean, variance] = saved;
    const at = attrs as unknown as BnTrainAttrs;
    // One kernel yields every input's gradient; the closures only hand them out. (The engine runs
    // each closure in its own tidy, so computing inside one would dispose the others' results.)
    const outs = tf
      .engine()
      .runKernel(BN_TRAIN_GRAD, { dy, x, y, mean, variance, gamma, dMean, dVariance } as any, attrs as any) as tf.Tensor[];
    const grads: Record<string, () => tf.Tensor> = { x: () => outs[0], gamma: () => outs[1], beta: () => outs[2] };
    if (at.residual) grads.residual = at.relu ? () => outs[3] : () => tf.clone(dy);
    return grads;
  },
};

let registered = false;

/** Register the fused training-BN kernels (cpu, JS loops) and their gradient. Idempotent. */
export function registerBatchNormKernels(): void {
  if (registered) return;
  registered = true;
  // wasm gets its own composition of stock kernels (batchnorm-wasm.ts, registered by wasm-kernels.ts)
  if (!tf.getKernel(BN_TRAIN, 'cpu'))
    tf.registerKernel({ kernelName: BN_TRAIN, backendName: 'cpu', kernelFunc: bnTrainForward as unknown as tf.KernelFunc });
  if (!tf.getKernel(BN_TRAIN_GRAD, 'cpu'))
    tf.registerKernel({ kernelName: BN_TRAIN_GRAD, backendName: 'cpu', kernelFunc: bnTrainBackward as unknown as tf.KernelFunc });
  if (!tf.getGradient(BN_TRAIN)) tf.registerGradient(gradConfig);
}

/** Whether the fused kernel runs on the active backend (else callers use plain tf ops). */
export function batchNormKernelAvailable(): boolean {
  return tf.getKernel(BN_TRAIN, tf.getBackend()) !== undefined;
}
