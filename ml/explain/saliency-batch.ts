// Saliency maps for a batch of images from a ModelRunner: one ONNX pass for the taps, logits and
// l4 dots; one tfjs backward pass for every gradient method; ONNX batches for Score-CAM and RISE;
// the plain-TS layer4 scorer for Ablation-CAM. Maps are kept at the method's own resolution
// (target-layer grid, RISE at input size) together with per-method degenerate counts.
import { finerComparisons } from '../saliency/finercam.js';
import { opticam } from '../saliency/opticam.js';
import type { SaliencyConvention } from '../saliency/method.js';
import { computeSaliency, isSaliencyMethod, SALIENCY_METHODS, type SaliencyInputs } from '../saliency/registry.js';
import type { ModelRunner } from './runner.js';

export interface SaliencyOptions {
  /** Images per Score-CAM / RISE / Ablation-CAM forward call. */
  maxBatch: number;
  rise: { numMasks: number; cells: number; p1: number };
  /** Base seed; image id i uses imageSeed(seed, i), so maps do not depend on batching or resumption. */
  seed: number;
  /** Per method with a choice of definition (Grad-CAM++, Score-CAM): whose to follow; default its first. */
  conventions?: Partial<Record<string, SaliencyConvention>>;
  /** Opti-CAM's Adam steps and learning rate (default the official 50 and 0.1). */
  opticam?: { steps?: number; lr?: number };
}

/** The convention each listed method follows (only methods that offer a choice appear). */
export function methodConventions(
  methods: readonly string[],
  chosen: Partial<Record<string, SaliencyConvention>> = {},
): Record<string, SaliencyConvention> {
  const out: Record<string, SaliencyConvention> = {};
  for (const m of methods) {
    const offered = isSaliencyMethod(m) ? SALIENCY_METHODS[m].conventions : undefined;
    if (offered) out[m] = chosen[m] ?? offered[0];
  }
  return out;
}

export interface BatchMaps {
  targets: Int32Array;
  /** Per method: n maps of h×w, back to back. */
  maps: Record<string, { h: number; w: number; data: Float32Array }>;
  /** Per method: degenerate reason → count in this batch. */
  degenerate: Record<string, Record<string, number>>;
}

/** A per-image seed that mixes the base seed and the dataset id (32-bit). */
export function imageSeed(seed: number, id: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(id >>> 0, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

/** Throws a clear error for unknown methods or methods the model cannot provide. */
export function checkMethods(methods: string[], isCa: boolean, where = 'saliency'): void {
  if (methods.length === 0) throw new Error(`${where}: no methods given`);
  for (const m of methods) {
    if (!isSaliencyMethod(m)) throw new Error(`${where}: unknown method "${m}" (known: ${Object.keys(SALIENCY_METHODS).join(', ')})`);
    if (SALIENCY_METHODS[m].caOnly && !isCa)
      throw new Error(`${where}: method "${m}" needs a CA-Stream model (head ca-stream or ca-final); this model pools with GAP`);
  }
  if (new Set(methods).size !== methods.length) throw new Error(`${where}: methods are listed twice: ${methods.join(', ')}`);
}

export async function computeBatchMaps(
  runner: ModelRunner,
  images: Float32Array,
  ids: readonly number[],
  labels: readonly number[],
  target: 'gt' | 'pred',
  methods: string[],
  opts: SaliencyOptions,
  hooks: { signal?: AbortSignal; onImage?: () => void } = {},
): Promise<BatchMaps> {
  const n = ids.length;
  const { K, h, w } = runner.model.feature;
  const H = runner.size;
  const W = H;
  const hw = h * w;
  const chw = 3 * H * W;
  const classes = runner.model.card.num_classes;
  const card = runner.model.card;
  const feats = await runner.features(images, n);
  const targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (target === 'gt') targets[i] = labels[i];
    else {
      let best = 0;
      for (let j = 1; j < classes; j++) if (feats.logits[i * classes + j] > feats.logits[i * classes + best]) best = j;
      targets[i] = best;
    }
    if (!(targets[i] >= 0 && targets[i] < classes))
      throw new Error(`image ${ids[i]}: label ${targets[i]} is outside the model's ${classes} classes`);
  }
  const A = feats.taps[runner.lastTap]!.data;
  const needsGrad = methods.some((m) => SALIENCY_METHODS[m as keyof typeof SALIENCY_METHODS].needs === 'gradients');
  const wants = (field: 'hvp' | 'finerG' | 'fullgrad' | 'opticam') =>
    methods.some((m) => (SALIENCY_METHODS[m as keyof typeof SALIENCY_METHODS].inputs as readonly string[]).includes(field));
  // G always comes from the plain backward (not from ShapleyCAM's pass, whose plain-autodiff
  // attention rounds differently), so no map depends on which other methods are listed.
  const G = needsGrad ? runner.head().layer4Gradients(feats.taps, targets).grad : undefined;
  const second = wants('hvp') ? runner.head().layer4Hvp(feats.taps, targets) : undefined;
  const finerG = wants('finerG')
    ? runner.head().layer4FinerGradients(
        feats.taps,
        targets,
        Array.from(targets, (t, i) => finerComparisons(feats.logits.subarray(i * classes, (i + 1) * classes), t)),
        1,
      )
    : undefined;
  const full = wants('fullgrad') ? runner.fullModel().fullGradInputs(images, n, H, W, targets) : undefined;
  const opti = wants('opticam')
    ? await opticam({
        A,
        B: n,
        K,
        h,
        w,
        H,
        W,
        maskedScores: runner.fullModel().maskedScores(images, n, H, W, card.mean, card.std, targets),
        steps: opts.opticam?.steps,
        lr: opts.opticam?.lr,
        signal: hooks.signal,
      })
    : undefined;
  const tokens = methods.includes('ablationcam') && runner.isCa ? runner.head().l4Tokens(feats.taps, n) : undefined;

  const conventions = methodConventions(methods, opts.conventions);
  const maps: BatchMaps['maps'] = {};
  const degenerate: BatchMaps['degenerate'] = {};
  for (const m of methods) {
    const res = SALIENCY_METHODS[m as keyof typeof SALIENCY_METHODS].resolution === 'input' ? { h: H, w: W } : { h, w };
    maps[m] = { ...res, data: new Float32Array(n * res.h * res.w) };
    degenerate[m] = {};
  }
  for (let i = 0; i < n; i++) {
    hooks.signal?.throwIfAborted();
    const base: SaliencyInputs = {
      A: A.subarray(i * K * hw, (i + 1) * K * hw),
      G: G?.subarray(i * K * hw, (i + 1) * K * hw),
      hvp: second?.hvp.subarray(i * K * hw, (i + 1) * K * hw),
      finerG: finerG?.subarray(i * K * hw, (i + 1) * K * hw),
      fullgrad: full?.[i],
      opticam: opti?.[i],
      K,
      h,
      w,
      dots: feats.dots?.subarray(i * card.heads * hw, (i + 1) * card.heads * hw),
      heads: card.heads,
      image: images.subarray(i * chw, (i + 1) * chw),
      H,
      W,
      mean: card.mean,
      std: card.std,
      forwardProbs: runner.probs,
      forwardLogits: runner.logits,
      target: targets[i],
      maxBatch: opts.maxBatch,
      seed: imageSeed(opts.seed, ids[i]),
      rise: opts.rise,
      signal: hooks.signal,
    };
    for (const m of methods) {
      const inp: SaliencyInputs = { ...base, convention: conventions[m] };
      if (m === 'ablationcam') {
        inp.forwardFromLayer = runner.head().layer4Scorer(targets[i], tokens?.subarray(i * K, (i + 1) * K), K, h, w);
        // y itself comes from the same scorer (not ONNX), so y − y_k is free of engine round-off.
      }
      const r = await computeSaliency(m, inp);
      const slot = maps[m];
      if (r.h !== slot.h || r.w !== slot.w) throw new Error(`saliency: method ${m} returned ${r.h}×${r.w}, expected ${slot.h}×${slot.w}`);
      slot.data.set(r.map, i * slot.h * slot.w);
      if (r.degenerate) {
        const why = r.reason ?? 'constant';
        degenerate[m][why] = (degenerate[m][why] ?? 0) + 1;
      }
    }
    hooks.onImage?.();
  }
  return { targets, maps, degenerate };
}
