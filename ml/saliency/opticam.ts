// Opti-CAM (Zhang et al., CVIU 2024) as the official code (hanwei0912/OptiCAM util.py
// Basic_OptCAM with generate_opticam.py's defaults) defines it, for a batch of images at once:
//   A      ReLU of the target layer's activations (K×h×w per image);
//   S(w)   minmax(up(Σ_k softmax(w)_k A_k)), up = bilinear to the input size, half-pixel centres
//          (align_corners=False); minmax (v − min)/(max − min) with no ε;
//   loss   Σ_b f_b(x_b) − f_b(x_b ⊙ S_b), f_b the target logit, x ⊙ S in [0, 1] PIXEL space;
//   w      starts at 0.5 for every channel; Adam (β = 0.9, 0.999, ε = 1e-8), lr 0.1, 50 steps;
//   stop   at every step that is a multiple of steps/10, if the loss exceeds the loss at the
//          previous such step, return the map of that step (before its update); otherwise the
//          map of the final weights.
// The model side is a callback: for masks S of some images it returns their target logits on
// x ⊙ S and ∂f/∂S; the chain rule to w (min-max, bilinear adjoint, channel sum, softmax) and
// Adam run here in float64.
//
// One deliberate difference: the official code sums the loss over its batch before the stopping
// test, so an image's map depends on the images batched with it. Here each image stops on its own
// loss term, so maps do not depend on batching (the gradient steps are the same: Adam is
// element-wise and the loss is a sum over images).
import { axisTable, type AxisTable } from '../metrics/upsample.js';
import { minMaxNormalise } from './normalise.js';
import { checkLength, checkPositiveInt, throwIfAborted, type Floats, type LongRunOptions, type SaliencyMap } from './types.js';

/** Target logits on x ⊙ S and their gradients with respect to S, for the images `idx` of the batch. */
export type MaskedScores = (masks: Float32Array, idx: readonly number[]) => Promise<{ scores: Float32Array; grads: Float32Array }>;

export interface OptiCamOptions {
  /** Adam steps (generate_opticam.py: 50). */
  steps?: number;
  /** Adam learning rate (generate_opticam.py: 0.1). */
  lr?: number;
}

export const OPTICAM_DEFAULTS = { steps: 50, lr: 0.1 } as const;

export interface OptiCamInput extends LongRunOptions, OptiCamOptions {
  /** B×K×h×w target-layer activations (ReLU is applied here). */
  A: Floats;
  B: number;
  K: number;
  h: number;
  w: number;
  H: number;
  W: number;
  maskedScores: MaskedScores;
}

export interface OptiCamResult extends SaliencyMap {
  /** Steps taken before the map was returned (≤ steps). */
  steps: number;
  weights: Float64Array;
}

/** u = up(c) for one h×w plane (the same rule as ml/metrics/upsample's resizePlane). */
function upsample(c: Float64Array, w: number, rows: AxisTable, cols: AxisTable, out: Float64Array): void {
  const W = cols.t.length;
  for (let y = 0; y < rows.t.length; y++) {
    const ty = rows.t[y];
    for (let x = 0; x < W; x++) {
      const tx = cols.t[x];
      const r0 = rows.i0[y] * w;
      const r1 = rows.i1[y] * w;
      const a = c[r0 + cols.i0[x]] * (1 - tx) + c[r0 + cols.i1[x]] * tx;
      const b = c[r1 + cols.i0[x]] * (1 - tx) + c[r1 + cols.i1[x]] * tx;
      out[y * W + x] = a * (1 - ty) + b * ty;
    }
  }
}

/** The adjoint of upsample: scatters gU (H×W) back onto the h×w grid. */
function upsampleAdjoint(gU: Float64Array, w: number, rows: AxisTable, cols: AxisTable, out: Float64Array): void {
  out.fill(0);
  const W = cols.t.length;
  for (let y = 0; y < rows.t.length; y++) {
    const ty = rows.t[y];
    for (let x = 0; x < W; x++) {
      const g = gU[y * W + x];
      if (g === 0) continue;
      const tx = cols.t[x];
      const r0 = rows.i0[y] * w;
      const r1 = rows.i1[y] * w;
      out[r0 + cols.i0[x]] += g * (1 - ty) * (1 - tx);
      out[r0 + cols.i1[x]] += g * (1 - ty) * tx;
      out[r1 + cols.i0[x]] += g * ty * (1 - tx);
      out[r1 + cols.i1[x]] += g * ty * tx;
    }
  }
}

/** Per-image state of the optimisation. */
interface Item {
  A: Float64Array;
  w: Float64Array;
  m: Float64Array;
  v: Float64Array;
  alpha: Float64Array;
  c: Float64Array;
  U: Float64Array;
  S: Float64Array;
  lo: number;
  hi: number;
  iLo: number;
  iHi: number;
  prev: number;
  done: boolean;
  steps: number;
}

function combine(it: Item, K: number, hw: number, w: number, rows: AxisTable, cols: AxisTable): void {
  let mx = -Infinity;
  for (let k = 0; k < K; k++) mx = Math.max(mx, it.w[k]);
  let z = 0;
  for (let k = 0; k < K; k++) z += it.alpha[k] = Math.exp(it.w[k] - mx);
  it.c.fill(0);
  for (let k = 0; k < K; k++) {
    const a = it.alpha[k] / z;
    it.alpha[k] = a;
    for (let p = 0; p < hw; p++) it.c[p] += a * it.A[k * hw + p];
  }
  upsample(it.c, w, rows, cols, it.U);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < it.U.length; i++) {
    if (it.U[i] < lo) {
      lo = it.U[i];
      it.iLo = i;
    }
    if (it.U[i] > hi) {
      hi = it.U[i];
      it.iHi = i;
    }
  }
  it.lo = lo;
  it.hi = hi;
  const d = hi - lo;
  // A constant combination has no min-max (the official code divides by 0): mask 0, no gradient.
  for (let i = 0; i < it.U.length; i++) it.S[i] = d > 0 ? (it.U[i] - lo) / d : 0;
}

export async function opticam(input: OptiCamInput): Promise<OptiCamResult[]> {
  const { A, B, K, h, w, H, W, maskedScores } = input;
  for (const [n, v] of Object.entries({ B, K, h, w, H, W })) checkPositiveInt(n, v);
  const steps = input.steps ?? OPTICAM_DEFAULTS.steps;
  const lr = input.lr ?? OPTICAM_DEFAULTS.lr;
  checkPositiveInt('opticam steps', steps);
  if (!(lr > 0)) throw new Error(`saliency: opticam lr must be > 0, got ${lr}`);
  const hw = h * w;
  const HW = H * W;
  checkLength('activations A', A, B * K * hw, `B×K×h×w = ${B}×${K}×${h}×${w}`);
  const rows = axisTable(h, H);
  const cols = axisTable(w, W);
  const items: Item[] = [];
  for (let b = 0; b < B; b++) {
    const a = new Float64Array(K * hw);
    for (let i = 0; i < K * hw; i++) a[i] = Math.max(0, A[b * K * hw + i]);
    items.push({
      A: a,
      w: new Float64Array(K).fill(0.5),
      m: new Float64Array(K),
      v: new Float64Array(K),
      alpha: new Float64Array(K),
      c: new Float64Array(hw),
      U: new Float64Array(HW),
      S: new Float64Array(HW),
      lo: 0,
      hi: 0,
      iLo: 0,
      iHi: 0,
      prev: 1e10,
      done: false,
      steps: 0,
    });
  }
  const all = items.map((_, b) => b);
  const base = await maskedScores(new Float32Array(B * HW).fill(1), all);
  checkLength('maskedScores scores', base.scores, B, `${B} images`);
  const every = Math.floor(steps / 10);
  const gU = new Float64Array(HW);
  const gc = new Float64Array(hw);
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  for (let step = 0; step < steps; step++) {
    throwIfAborted(input.signal);
    const active = all.filter((b) => !items[b].done);
    if (active.length === 0) break;
    const masks = new Float32Array(active.length * HW);
    active.forEach((b, j) => {
      combine(items[b], K, hw, w, rows, cols);
      masks.set(items[b].S, j * HW);
    });
    const r = await maskedScores(masks, active);
    checkLength('maskedScores grads', r.grads, active.length * HW, `${active.length}×${H}×${W}`);
    active.forEach((b, j) => {
      const it = items[b];
      const loss = base.scores[b] - r.scores[j];
      // The official test runs after the update, but returns the map computed before it.
      const check = every > 0 ? step % every === 0 : true;
      if (check && loss > it.prev) {
        it.done = true;
        return;
      }
      if (check) it.prev = loss;
      // dL/dS = −∂f/∂S, then through the min-max (its min and max move with U too).
      const d = it.hi - it.lo;
      if (d > 0) {
        let sm = 0;
        let sM = 0;
        for (let i = 0; i < HW; i++) {
          const g = -r.grads[j * HW + i];
          gU[i] = g / d;
          sm += (g * (it.S[i] - 1)) / d;
          sM -= (g * it.S[i]) / d;
        }
        gU[it.iLo] += sm;
        gU[it.iHi] += sM;
      } else gU.fill(0);
      upsampleAdjoint(gU, w, rows, cols, gc);
      const gAlpha = new Float64Array(K);
      let dotA = 0;
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let p = 0; p < hw; p++) s += gc[p] * it.A[k * hw + p];
        gAlpha[k] = s;
        dotA += it.alpha[k] * s;
      }
      const t = step + 1;
      for (let k = 0; k < K; k++) {
        const g = it.alpha[k] * (gAlpha[k] - dotA);
        it.m[k] = b1 * it.m[k] + (1 - b1) * g;
        it.v[k] = b2 * it.v[k] + (1 - b2) * g * g;
        const mh = it.m[k] / (1 - b1 ** t);
        const vh = it.v[k] / (1 - b2 ** t);
        it.w[k] -= (lr * mh) / (Math.sqrt(vh) + eps);
      }
      it.steps = t;
    });
    input.onProgress?.(step + 1, steps);
  }
  return items.map((it) => {
    if (!it.done) combine(it, K, hw, w, rows, cols);
    return { ...minMaxNormalise(it.S, H, W, false), steps: it.steps, weights: Float64Array.from(it.alpha) };
  });
}
