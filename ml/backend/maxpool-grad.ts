// MaxPoolGrad in JS (wasm and cpu), routing each output's gradient to the FIRST maximum of its
// window in row-major scan order, padding excluded — what PyTorch and tfjs-cpu do.
// Why not the stock wasm kernel: it is slow (21 ms for one 3×3/2 pool of 32×32×32×16, vs ~2 ms
// here), and it differs from both references: it keeps the LAST maximum (`>=`) and starts from
// FLT_MIN (the smallest positive float, not −∞), so a window whose maximum is ≤ 0 sends its
// gradient nowhere (or to element 0 of the batch when that lies in the window).
import * as tf from '@tensorflow/tfjs-core';
import { KernelMemory } from './js-memory.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

export function maxPoolGradFirstMax(args: KernelArgs): tf.TensorInfo {
  const { dy, input, output } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo; output?: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as any;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { top, left } = info.padInfo;
  if (dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== C) {
    throw new Error(`MaxPoolGrad: dy shape [${dy.shape}] does not match the pooling output [${B},${OH},${OW},${C}]`);
  }
  const mem = new KernelMemory(args.backend as tf.KernelBackend);
  const dxInfo = mem.output([...input.shape]);
  const x = mem.view(input);
  const g = mem.view(dy);
  // The forward output holds each window's maximum: the first tap equal to it is the first
  // maximum, found after ~half the taps on average instead of all of them.
  const y = output && output.shape.length === 4 && output.shape[3] === C ? mem.view(output) : undefined;
  const dx = mem.view(dxInfo);
  dx.fill(0);
  const rowStride = W * C;
  let o = 0;
  for (let b = 0; b < B; b++) {
    for (let yr = 0; yr < OH; yr++) {
      const r0 = Math.max(0, yr * sh - top);
      const r1 = Math.min(H, yr * sh - top + fh);
      for (let yc = 0; yc < OW; yc++, o += C) {
        const c0 = Math.max(0, yc * sw - left);
        const c1 = Math.min(W, yc * sw - left + fw);
        const corner = ((b * H + r0) * W + c0) * C;
        for (let d = 0; d < C; d++) {
          const gv = g[o + d];
          if (gv === 0) continue;
          let pos = -1;
          if (y) {
            const target = y[o + d];
            search: for (let r = r0, rowBase = corner + d; r < r1; r++, rowBase += rowStride) {
              for (let c = c0, q = rowBase; c < c1; c++, q += C) {
                if (x[q] === target) {
                  pos = q;
                  break search;
                }
              }
            }
          }
          if (pos < 0) {
            // no output given, or no tap equals it (NaN): scan for the first strict maximum
            let best = -Infinity;
            for (let r = r0, rowBase = corner + d; r < r1; r++, rowBase += rowStride) {
              for (let c = c0, q = rowBase; c < c1; c++, q += C) {
                if (x[q] > best) {
                  best = x[q];
                  pos = q;
                }
              }
            }
          }
          if (pos >= 0) dx[pos] += gv;
        }
      }
    }
  }
  return dxInfo;
}
