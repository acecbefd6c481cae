// Finer-CAM (Zhang et al. 2025) as pytorch-grad-cam's FinerCAM with its default base (Grad-CAM):
// Grad-CAM of a target that contrasts the explained class t with the classes the model finds most
// similar to it. Classes are ranked by |logit_j − logit_t| (ascending); ranks 1, 2, 3 (rank 0 is t)
// are the comparisons J, and the differentiated score is FinerWeightedTarget's
//   y = Σ_{j∈J} p_j·(y_t − α·y_j) / (Σ_{j∈J} p_j + 1e-9),   p = softmax(logits), α = 1,
// with p not detached (its gradient counts too). The caller differentiates y (see
// ml/explain/head.ts layer4FinerGradients); this module picks J and computes y for checks.
//
// Two choices where pytorch-grad-cam leaves things to chance: ties in the ranking go to the lower
// class index (numpy's default argsort is not stable), and rank 0 is t itself even when another
// class has exactly t's logit. With fewer than 4 classes the available ones are compared.

/** Default comparison ranks of pytorch-grad-cam (comparison_categories=[1, 2, 3]). */
export const FINER_RANKS = [1, 2, 3] as const;

/** The comparison classes for one image: the given ranks among the classes other than t. */
export function finerComparisons(logits: ArrayLike<number>, target: number, ranks: readonly number[] = FINER_RANKS): number[] {
  const C = logits.length;
  if (!Number.isInteger(target) || target < 0 || target >= C) throw new Error(`Finer-CAM: target ${target} is outside the ${C} classes`);
  if (C < 2) throw new Error('Finer-CAM needs at least two classes to compare');
  const t = logits[target];
  const others = Array.from({ length: C }, (_, j) => j).filter((j) => j !== target);
  others.sort((a, b) => Math.abs(logits[a] - t) - Math.abs(logits[b] - t) || a - b);
  const out: number[] = [];
  for (const r of ranks) {
    if (!Number.isInteger(r) || r < 1) throw new Error(`Finer-CAM: comparison ranks must be integers ≥ 1, got ${r}`);
    if (r <= others.length) out.push(others[r - 1]);
  }
  return out;
}

/** FinerWeightedTarget's value for one image's logits. */
export function finerScore(logits: ArrayLike<number>, target: number, comparisons: readonly number[], alpha = 1): number {
  let mx = -Infinity;
  for (let j = 0; j < logits.length; j++) mx = Math.max(mx, logits[j]);
  let z = 0;
  for (let j = 0; j < logits.length; j++) z += Math.exp(logits[j] - mx);
  let num = 0;
  let den = 0;
  for (const j of comparisons) {
    const p = Math.exp(logits[j] - mx) / z;
    num += p * (logits[target] - alpha * logits[j]);
    den += p;
  }
  return num / (den + 1e-9);
}
