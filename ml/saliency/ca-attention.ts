// The CA-Stream attention map (design §3; the original referenced `raw_attention` but never
// implemented it): the l4 block's dots (pre-softmax scaled scores, heads×h×w) → softmax over the
// h·w positions per head → mean over heads → min-max. Class-agnostic: no target, no gradients.

import { minMaxNormalise } from './normalise.js';
import { checkLength, checkPositiveInt, type Floats, type SaliencyMap } from './types.js';

/**
 * Per-head attention weights: softmax over the h·w positions of each head's dots (heads×hw,
 * float64). Head g pools channel group g (channels g·C/heads … (g+1)·C/heads − 1) of the tap.
 * Returns null when some head has no finite maximum (NaN/±Infinity everywhere).
 */
export function caAttentionWeights(dots: Floats, heads: number, h: number, w: number): Float64Array | null {
  checkPositiveInt('heads', heads);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  const hw = h * w;
  checkLength('dots', dots, heads * hw, `heads×h×w = ${heads}×${h}×${w}`);
  const a = new Float64Array(heads * hw);
  for (let g = 0; g < heads; g++) {
    const off = g * hw;
    let mx = -Infinity;
    for (let p = 0; p < hw; p++) if (dots[off + p] > mx) mx = dots[off + p];
    if (!Number.isFinite(mx)) return null;
    let z = 0;
    for (let p = 0; p < hw; p++) z += a[off + p] = Math.exp(dots[off + p] - mx);
    for (let p = 0; p < hw; p++) a[off + p] /= z;
  }
  return a;
}

export function caAttention(dots: Floats, heads: number, h: number, w: number): SaliencyMap {
  const a = caAttentionWeights(dots, heads, h, w);
  const hw = h * w;
  if (a === null) return { map: new Float32Array(hw), h, w, degenerate: true, reason: 'non-finite' };
  const avg = new Float64Array(hw);
  for (let g = 0; g < heads; g++) for (let p = 0; p < hw; p++) avg[p] += a[g * hw + p] / heads;
  return minMaxNormalise(avg, h, w);
}

/** B images back to back (B×heads×h×w). */
export function caAttentionBatch(dots: Floats, B: number, heads: number, h: number, w: number): SaliencyMap[] {
  checkPositiveInt('B', B);
  const n = heads * h * w;
  checkLength('dots', dots, B * n, `B×heads×h×w = ${B}×${heads}×${h}×${w}`);
  const out: SaliencyMap[] = [];
  for (let b = 0; b < B; b++) out.push(caAttention(dots.subarray(b * n, (b + 1) * n), heads, h, w));
  return out;
}
