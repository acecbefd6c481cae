// Mixup / CutMix with timm's batch-mode semantics, on NHWC float batches in plain arrays:
//  - with probability `prob` a batch is mixed; when both are enabled, CutMix is chosen with
//    probability `switchProb`, else Mixup; λ ~ Beta(α, α) of the chosen one;
//  - each sample is paired with its mirror in the batch (x.flip(0)): i ↔ B−1−i;
//  - Mixup: x ← λ·x + (1−λ)·x_flip;
//  - CutMix: box of size ⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋ centred at a uniform pixel, clipped to the image,
//    pasted from x_flip; λ ← 1 − (clipped box area)/(H·W), so λ is the real share of own pixels;
//  - targets: λ·y + (1−λ)·y_flip, on label-smoothed one-hots (off = ε/K, on = 1 − ε + ε/K).
// Draw order (one uniform for prob, one for the switch when both are on, the Beta draw, then the
// box centre y and x) is fixed, so a seed gives the same batch sequence.
import { sampleBeta, sampleInt, type Uniform } from './sampling.js';

export interface MixConfig {
  /** Mixup Beta(α, α); 0 disables. */
  mixup: number;
  /** CutMix Beta(α, α); 0 disables. */
  cutmix: number;
  /** Probability that a batch is mixed at all. Default 1. */
  prob?: number;
  /** Probability of CutMix when both are enabled. Default 0.5. */
  switchProb?: number;
  /** Label smoothing folded into the targets. Default 0. */
  labelSmoothing?: number;
  classes: number;
}

export interface MixResult {
  /** The mixed images, same NHWC layout (a new array; the input is not modified). */
  images: Float32Array;
  /** Soft targets [B·K], each row summing to 1. */
  targets: Float32Array;
  /** Share of each sample's own content (1 when the batch was not mixed). */
  lambda: number;
  mode: 'none' | 'mixup' | 'cutmix';
  /** CutMix box, half-open: rows [y0, y1), columns [x0, x1). */
  box?: { y0: number; y1: number; x0: number; x1: number };
}

export function smoothedOneHot(labels: Int32Array | number[], classes: number, smoothing = 0): Float32Array {
  const off = smoothing / classes;
  const on = 1 - smoothing + off;
  const out = new Float32Array(labels.length * classes).fill(off);
  labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new Error(`mixup: label ${y} at batch index ${i} is outside [0, ${classes})`);
    out[i * classes + y] = on;
  });
  return out;
}

/** Mix one batch. `shape` is [B, H, W, C]; `labels` are class indices. */
export function mixBatch(
  images: Float32Array,
  shape: [number, number, number, number],
  labels: Int32Array | number[],
  cfg: MixConfig,
  rand: Uniform,
): MixResult {
  const [b, h, w, c] = shape;
  if (images.length !== b * h * w * c)
    throw new Error(`mixup: images hold ${images.length} values, shape [${shape}] needs ${b * h * w * c}`);
  if (labels.length !== b) throw new Error(`mixup: ${labels.length} labels for a batch of ${b}`);
  if (!(cfg.mixup >= 0 && cfg.cutmix >= 0)) throw new Error(`mixup: alphas must be >= 0, got mixup ${cfg.mixup}, cutmix ${cfg.cutmix}`);
  const k = cfg.classes;
  const onehot = smoothedOneHot(labels, k, cfg.labelSmoothing ?? 0);
  const prob = cfg.prob ?? 1;
  const switchProb = cfg.switchProb ?? 0.5;

  let mode: MixResult['mode'] = 'none';
  let lam = 1;
  if ((cfg.mixup > 0 || cfg.cutmix > 0) && rand() < prob) {
    if (cfg.mixup > 0 && cfg.cutmix > 0) mode = rand() < switchProb ? 'cutmix' : 'mixup';
    else mode = cfg.cutmix > 0 ? 'cutmix' : 'mixup';
    const alpha = mode === 'cutmix' ? cfg.cutmix : cfg.mixup;
    lam = sampleBeta(alpha, alpha, rand);
  }
  const out = Float32Array.from(images);
  const per = h * w * c;
  let box: MixResult['box'];
  if (mode === 'mixup') {
    for (let i = 0; i < b; i++) {
      const j = b - 1 - i;
      for (let e = 0; e < per; e++) out[i * per + e] = lam * images[i * per + e] + (1 - lam) * images[j * per + e];
    }
  } else if (mode === 'cutmix') {
    const ratio = Math.sqrt(1 - lam);
    const cutH = Math.floor(h * ratio);
    const cutW = Math.floor(w * ratio);
    const cy = sampleInt(0, h, rand);
    const cx = sampleInt(0, w, rand);
    const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
    box = {
      y0: clip(cy - Math.floor(cutH / 2), h),
      y1: clip(cy + Math.floor(cutH / 2), h),
      x0: clip(cx - Math.floor(cutW / 2), w),
      x1: clip(cx + Math.floor(cutW / 2), w),
    };
    for (let i = 0; i < b; i++) {
      const j = b - 1 - i;
      for (let y = box.y0; y < box.y1; y++) {
        const src = j * per + (y * w + box.x0) * c;
        out.set(images.subarray(src, src + (box.x1 - box.x0) * c), i * per + (y * w + box.x0) * c);
      }
    }
    lam = 1 - ((box.y1 - box.y0) * (box.x1 - box.x0)) / (h * w);
  }
  const targets = new Float32Array(b * k);
  for (let i = 0; i < b; i++) {
    const j = b - 1 - i;
    for (let q = 0; q < k; q++) targets[i * k + q] = lam * onehot[i * k + q] + (1 - lam) * onehot[j * k + q];
  }
  return { images: out, targets, lambda: lam, mode, box };
}
