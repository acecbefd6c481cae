// Map-to-map similarity for the model-randomisation sanity check (Adebayo et al. 2018, xai-anchors
// §6.8): Spearman rank correlation and SSIM between a map of the trained model and the map of a
// randomised one. A method passes when its maps change, i.e. both fall towards 0.

/** Ranks 1..n with ties given their average rank (SciPy's rankdata 'average'). */
export function averageRanks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => v[a] - v[b] || a - b);
  const r = new Float64Array(n);
  for (let s = 0; s < n;) {
    let e = s;
    while (e + 1 < n && v[idx[e + 1]] === v[idx[s]]) e++;
    const rank = (s + e) / 2 + 1;
    for (let k = s; k <= e; k++) r[idx[k]] = rank;
    s = e + 1;
  }
  return r;
}

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  // A constant map has no ranking: undefined (NaN), as SciPy returns.
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}

/** Spearman's ρ: Pearson correlation of the average ranks. NaN when either map is constant. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`spearman: ${a.length} vs ${b.length} values`);
  if (a.length < 2) return NaN;
  return pearson(averageRanks(a), averageRanks(b));
}

export interface SsimOptions {
  /** Side of the uniform window (odd; default 7, scikit-image's default). */
  win?: number;
  /** Range of the values (default 1: maps min-max normalised to [0,1]). */
  dataRange?: number;
  k1?: number;
  k2?: number;
}

/**
 * Mean SSIM (Wang et al. 2004) of two H×W planes as scikit-image's structural_similarity computes
 * it by default: uniform win×win window, sample covariances (normalised by N − 1), C1 = (k1·L)²,
 * C2 = (k2·L)², averaged over the windows that fit inside the image (the border of (win−1)/2 cropped).
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, H: number, W: number, o: SsimOptions = {}): number {
  const win = o.win ?? 7;
  const L = o.dataRange ?? 1;
  if (a.length !== H * W || b.length !== H * W) throw new Error(`ssim: planes of ${a.length} and ${b.length} values, expected ${H}×${W}`);
  if (win % 2 !== 1 || win > H || win > W) throw new Error(`ssim: window ${win} must be odd and fit in ${H}×${W}`);
  const c1 = ((o.k1 ?? 0.01) * L) ** 2;
  const c2 = ((o.k2 ?? 0.03) * L) ** 2;
  const np = win * win;
  const covNorm = np / (np - 1);
  let total = 0;
  let count = 0;
  for (let y = 0; y + win <= H; y++)
    for (let x = 0; x + win <= W; x++) {
      let sa = 0;
      let sb = 0;
      let saa = 0;
      let sbb = 0;
      let sab = 0;
      for (let dy = 0; dy < win; dy++)
        for (let dx = 0; dx < win; dx++) {
          const j = (y + dy) * W + x + dx;
          sa += a[j];
          sb += b[j];
          saa += a[j] * a[j];
          sbb += b[j] * b[j];
          sab += a[j] * b[j];
        }
      const ua = sa / np;
      const ub = sb / np;
      const va = covNorm * (saa / np - ua * ua);
      const vb = covNorm * (sbb / np - ub * ub);
      const vab = covNorm * (sab / np - ua * ub);
      total += ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2));
      count++;
    }
  return total / count;
}
