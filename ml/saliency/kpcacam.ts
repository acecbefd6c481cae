// KPCA-CAM (Karmani et al. 2024) as pytorch-grad-cam computes it: the activations reshaped to
// X (hw × K), each channel centred over positions, then scikit-learn's
// KernelPCA(n_components=1, kernel='sigmoid', gamma=None) fit_transform — restated here:
//   kernel   k(x, y) = tanh(γ·⟨x, y⟩ + c₀),   γ = 1/K (gamma=None), c₀ = 1 (coef0 default);
//   centring Kc = K − 1ₙK − K1ₙ + 1ₙK1ₙ (KernelCenterer, 1ₙ = the n×n matrix of 1/n);
//   the largest eigenvalue λ of Kc and its unit eigenvector v (scipy eigh, largest algebraic);
//   sign    flipped so v's largest-|·| entry is positive (sklearn's svd_flip, u-based);
//   output  v·√λ  (λ clipped at 0, as sklearn's PSD check does for tiny negatives).
// That projection is the map, then the common ReLU + min-max. The sigmoid kernel is not positive
// semi-definite, so the eigenpair must be the largest algebraic one, not the largest |λ|.
import { topEigenJacobi, topEigenPower } from './eigencam.js';
import { camPostProcess } from './normalise.js';
import { checkLength, checkPositiveInt, type CamResult, type Floats } from './types.js';

export interface KpcaOptions {
  /** γ of the sigmoid kernel; default 1/K (scikit-learn's gamma=None). */
  gamma?: number;
  /** c₀ of the sigmoid kernel; default 1 (scikit-learn's coef0). */
  coef0?: number;
}

/** The raw first kernel principal component (hw values) and its eigenvalue. */
export function kpcaProjection(A: Floats, K: number, h: number, w: number, opts: KpcaOptions = {}): { proj: Float64Array; lambda: number } {
  checkPositiveInt('K', K);
  checkPositiveInt('h', h);
  checkPositiveInt('w', w);
  const n = h * w;
  checkLength('activations A', A, K * n, `K×h×w = ${K}×${h}×${w}`);
  const gamma = opts.gamma ?? 1 / K;
  const coef0 = opts.coef0 ?? 1;
  const X = new Float64Array(K * n); // channel-major like A, centred per channel
  for (let k = 0; k < K; k++) {
    let mean = 0;
    for (let p = 0; p < n; p++) mean += A[k * n + p];
    mean /= n;
    for (let p = 0; p < n; p++) X[k * n + p] = A[k * n + p] - mean;
  }
  const Km = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < K; k++) dot += X[k * n + i] * X[k * n + j];
      Km[i * n + j] = Km[j * n + i] = Math.tanh(gamma * dot + coef0);
    }
  }
  const rowMean = new Float64Array(n);
  let all = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Km[i * n + j];
    rowMean[i] = s / n;
    all += s;
  }
  all /= n * n;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Km[i * n + j] += all - rowMean[i] - rowMean[j];

  let top: { value: number; vector: Float64Array };
  if (n <= 128) top = topEigenJacobi(Km, n);
  else {
    // Shift by a Gershgorin bound so the largest algebraic eigenvalue is also the largest in |·|.
    let shift = 0;
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let j = 0; j < n; j++) r += Math.abs(Km[i * n + j]);
      shift = Math.max(shift, r);
    }
    for (let i = 0; i < n; i++) Km[i * n + i] += shift;
    const start = new Float64Array(n).fill(1);
    const t = topEigenPower(Km, n, start);
    top = { value: t.value - shift, vector: t.vector };
  }
  let big = 0;
  for (let i = 1; i < n; i++) if (Math.abs(top.vector[i]) > Math.abs(top.vector[big])) big = i;
  const sign = top.vector[big] < 0 ? -1 : 1;
  const root = Math.sqrt(Math.max(top.value, 0));
  const proj = new Float64Array(n);
  for (let i = 0; i < n; i++) proj[i] = sign * top.vector[i] * root;
  return { proj, lambda: top.value };
}

export function kpcacam(A: Floats, K: number, h: number, w: number, opts: KpcaOptions = {}): CamResult {
  return camPostProcess(kpcaProjection(A, K, h, w, opts).proj, h, w);
}
