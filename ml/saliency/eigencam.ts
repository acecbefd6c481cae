// Eigen-CAM (Muhammad & Yeasin 2020), as pytorch-grad-cam computes it: the activations reshaped
// to M (hw × K), each channel centred over positions, projected on M's first right singular
// vector v₁ — the map is M v₁ = σ₁ u₁ — then the common ReLU + min-max.
//
// We never form the SVD of M. M v₁ = σ₁ u₁, with u₁ the top eigenvector of the hw×hw Gram M Mᵀ
// (λ₁ = σ₁²), or v₁ the top eigenvector of the K×K Gram MᵀM; we take the smaller of the two
// (7×7 = 49 positions vs 2048 channels at layer4). Small Grams are diagonalised with cyclic
// Jacobi (exact to rounding); large ones with power iteration.
//
// Sign: an SVD's sign is arbitrary (pytorch-grad-cam leaves it so, issue #364 shows inverted
// maps). We orient v₁ so its loadings sum to a positive number; equivalently the map correlates
// positively with the (centred) channel-sum map Σ_k A_k, which for post-ReLU features is where
// the activation mass is. If that sum is 0 we fall back to "largest |value| is positive".

import { camPostProcess } from './normalise.js';
import { checkLength, checkPositiveInt, type CamResult, type Floats } from './types.js';

export interface EigenCamOptions {
  /** Subtract each channel's spatial mean first (pytorch-grad-cam does). Default true. */
  centre?: boolean;
  /** 'auto' = Jacobi up to 128×128 Grams, power iteration beyond. */
  solver?: 'auto' | 'jacobi' | 'power';
}

/** Top eigenpair of a symmetric n×n matrix (row-major, float64) by cyclic Jacobi rotations. */
export function topEigenJacobi(S: Float64Array, n: number): { value: number; vector: Float64Array } {
  const a = Float64Array.from(S);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i] * a[i * n + i];
      for (let j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const app = a[p * n + p];
        const aqq = a[q * n + q];
        // Rotation angle that zeroes a[p][q] (Golub & Van Loan §8.5, stable tangent form).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p];
          const vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  let best = 0;
  for (let i = 1; i < n; i++) if (a[i * n + i] > a[best * n + best]) best = i;
  const vector = new Float64Array(n);
  for (let k = 0; k < n; k++) vector[k] = V[k * n + best];
  return { value: a[best * n + best], vector };
}

function norm2(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** Top eigenpair of a symmetric positive semi-definite matrix by power iteration from `start`. */
export function topEigenPower(
  S: Float64Array,
  n: number,
  start: Float64Array,
  maxIter = 2000,
  tol = 1e-13,
): { value: number; vector: Float64Array } {
  const v = Float64Array.from(start);
  let norm = norm2(v);
  if (!(norm > 0)) {
    // A start orthogonal to nothing in particular; deterministic.
    for (let i = 0; i < n; i++) v[i] = 1 + i / n;
    norm = norm2(v);
  }
  for (let i = 0; i < n; i++) v[i] /= norm;
  let value = 0;
  const next = new Float64Array(n);
  for (let it = 0; it < maxIter; it++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0, row = i * n; j < n; j++) s += S[row + j] * v[j];
      next[i] = s;
    }
    const nn = norm2(next);
    if (!(nn > 0)) return { value: 0, vector: v };
    let delta = 0;
    for (let i = 0; i < n; i++) {
      const x = next[i] / nn;
      delta = Math.max(delta, Math.abs(x - v[i]));
      v[i] = x;
    }
    value = nn;
    if (delta < tol) break;
  }
  return { value, vector: v };
}

/** Eigen-CAM of one image's activations A (K×h×w). */
export function eigencam(A: Floats, K: number, h: number, w: number, opts: EigenCamOptions = {}): CamResult {
  checkPositiveInt('K', K);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  const hw = h * w;
  checkLength('activations A', A, K * hw, `K×h×w = ${K}×${h}×${w}`);
  const centre = opts.centre ?? true;

  // M stored channel-major like A: M[k*hw + p].
  const M = new Float64Array(K * hw);
  for (let k = 0; k < K; k++) {
    const off = k * hw;
    let mean = 0;
    if (centre) {
      for (let p = 0; p < hw; p++) mean += A[off + p];
      mean /= hw;
    }
    for (let p = 0; p < hw; p++) M[off + p] = A[off + p] - mean;
  }
  // c = M·1: the centred channel-sum map, used for the start vector and the sign convention.
  const c = new Float64Array(hw);
  for (let k = 0; k < K; k++) for (let p = 0; p < hw; p++) c[p] += M[k * hw + p];

  const usePositions = hw <= K;
  const n = usePositions ? hw : K;
  const S = new Float64Array(n * n);
  if (usePositions) {
    for (let k = 0; k < K; k++) {
      const off = k * hw;
      for (let p = 0; p < hw; p++) {
        const mp = M[off + p];
        if (mp === 0) continue;
        for (let q = p; q < hw; q++) S[p * n + q] += mp * M[off + q];
      }
    }
  } else {
    for (let i = 0; i < K; i++) {
      for (let j = i; j < K; j++) {
        let s = 0;
        for (let p = 0; p < hw; p++) s += M[i * hw + p] * M[j * hw + p];
        S[i * n + j] = s;
      }
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) S[i * n + j] = S[j * n + i];

  const solver = opts.solver ?? 'auto';
  let start: Float64Array;
  if (usePositions) start = c;
  else {
    start = new Float64Array(K);
    for (let k = 0; k < K; k++) for (let p = 0; p < hw; p++) start[k] += M[k * hw + p] * c[p];
  }
  const top = solver === 'jacobi' || (solver === 'auto' && n <= 128) ? topEigenJacobi(S, n) : topEigenPower(S, n, start);

  const proj = new Float64Array(hw);
  if (usePositions) {
    const sigma = Math.sqrt(Math.max(top.value, 0));
    for (let p = 0; p < hw; p++) proj[p] = sigma * top.vector[p];
  } else {
    for (let k = 0; k < K; k++) {
      const vk = top.vector[k];
      if (vk === 0) continue;
      for (let p = 0; p < hw; p++) proj[p] += vk * M[k * hw + p];
    }
  }

  let corr = 0;
  let scale = 0;
  for (let p = 0; p < hw; p++) {
    corr += proj[p] * c[p];
    scale += Math.abs(proj[p]) * Math.abs(c[p]);
  }
  let flip = corr < 0;
  if (!(Math.abs(corr) > 1e-12 * scale)) {
    let lo = 0;
    let hi = 0;
    for (let p = 0; p < hw; p++) {
      lo = Math.min(lo, proj[p]);
      hi = Math.max(hi, proj[p]);
    }
    flip = -lo > hi;
  }
  if (flip) for (let p = 0; p < hw; p++) proj[p] = -proj[p];
  return camPostProcess(proj, h, w);
}

/** B images back to back (B×K×h×w). */
export function eigencamBatch(A: Floats, B: number, K: number, h: number, w: number, opts: EigenCamOptions = {}): CamResult[] {
  checkPositiveInt('B', B);
  const n = K * h * w;
  checkLength('activations A', A, B * n, `B×K×h×w = ${B}×${K}×${h}×${w}`);
  const out: CamResult[] = [];
  for (let b = 0; b < B; b++) out.push(eigencam(A.subarray(b * n, (b + 1) * n), K, h, w, opts));
  return out;
}
