// ROAD's noisy linear imputation (Rong, Leemann et al. 2022, xai-anchors §6.7): every removed pixel
// becomes the weighted mean of its in-image 8-neighbours (1/6 for the 4 direct ones, 1/12 for the
// 4 diagonal ones, the weights of neighbours outside the image dropped and the rest renormalised),
// all removed pixels solved jointly, plus absolute Gaussian noise. The official code assembles the
// same equations (multiplied by −1) and solves them with SciPy's direct `spsolve`; here the system,
// symmetric positive definite, is solved by conjugate gradients preconditioned with a modified
// incomplete Cholesky factorisation, to a stated relative residual checked on the true residual.

/** Neighbour offsets (row, column) and weights, as in the official code; they sum to 1. */
export const ROAD_NEIGHBOURS: ReadonlyArray<readonly [number, number, number]> = [
  [1, 1, 1 / 12],
  [0, 1, 1 / 6],
  [-1, 1, 1 / 12],
  [1, -1, 1 / 12],
  [0, -1, 1 / 6],
  [-1, -1, 1 / 12],
  [1, 0, 1 / 6],
  [-1, 0, 1 / 6],
];

/** Stop when ‖b − Mx‖₂ ≤ tol·‖b‖₂ (float64). 1e-10 puts the solution within ~1e-7 of the direct one on 224² images. */
export const IMPUTATION_TOLERANCE = 1e-10;

export interface ImputeOptions {
  /** Noise added to each imputed value: σ per channel (an absolute amount in the image's units). */
  noise: ArrayLike<number>;
  /** Standard normal draws (called once per imputed value, channel-major: channel 0's pixels first). */
  normal?: () => number;
  /** Relative residual tolerance of the solve (default IMPUTATION_TOLERANCE). */
  tol?: number;
}

/**
 * Neighbour directions in the order the solver uses: the 4 that come earlier in row-major pixel order
 * (the lower triangle of the system when unknowns are numbered in that order) first, then the 4 later
 * ones, each later one at index 7 − (its opposite), so that the opposite of direction e is 7 − e.
 */
const DIRS: ReadonlyArray<readonly [number, number]> = [
  [-1, -1],
  [-1, 0],
  [-1, 1],
  [0, -1],
  [0, 1],
  [1, -1],
  [1, 0],
  [1, 1],
];

/** The sparse system of the removed pixels, shared by every channel. */
interface System {
  /** Number of unknowns; index n is a dummy whose value is always 0, so missing neighbours need no branch. */
  n: number;
  /** Flat pixel index of each unknown (row-major, so that DIRS[0..3] point to lower indices). */
  pixels: Int32Array;
  /** Diagonal: the sum of the weights of the pixel's in-image neighbours. */
  diag: Float64Array;
  /** nb[8u + e]: the unknown in direction DIRS[e] of unknown u, or n where that neighbour is kept or outside. */
  nb: Int32Array;
  /** Weight of each direction (off-diagonal entries of the system are −weight). */
  wDir: Float64Array;
  /** Known in-image neighbours per unknown (flat pixel index, weight): the right-hand side. */
  knownStart: Int32Array;
  knownPixel: Int32Array;
  knownW: Float64Array;
}

function buildSystem(keep: Uint8Array, H: number, W: number): System {
  const unknownOf = new Int32Array(H * W).fill(-1);
  let n = 0;
  for (let i = 0; i < H * W; i++) if (!keep[i]) unknownOf[i] = n++;
  const pixels = new Int32Array(n);
  for (let i = 0; i < H * W; i++) if (!keep[i]) pixels[unknownOf[i]] = i;
  // Each direction's weight looked up in ROAD_NEIGHBOURS, the single statement of the stencil.
  const wDir = Float64Array.from(DIRS, ([dy, dx]) => ROAD_NEIGHBOURS.find(([a, b]) => a === dy && b === dx)![2]);
  const diag = new Float64Array(n);
  const nb = new Int32Array(8 * n).fill(n);
  const knownStart = new Int32Array(n + 1);
  const knownPixel = new Int32Array(8 * n);
  const knownW = new Float64Array(8 * n);
  let nk = 0;
  for (let u = 0; u < n; u++) {
    const y = (pixels[u] / W) | 0;
    const x = pixels[u] - y * W;
    for (let e = 0; e < 8; e++) {
      const yy = y + DIRS[e][0];
      const xx = x + DIRS[e][1];
      if (yy < 0 || xx < 0 || yy >= H || xx >= W) continue;
      diag[u] += wDir[e];
      const j = yy * W + xx;
      if (keep[j]) {
        knownPixel[nk] = j;
        knownW[nk++] = wDir[e];
      } else nb[8 * u + e] = unknownOf[j];
    }
    knownStart[u + 1] = nk;
  }
  return { n, pixels, diag, nb, wDir, knownStart, knownPixel, knownW };
}

/**
 * Y = M X for 3 right-hand sides interleaved (X[3u + c]), with M = diag − (weights between removed
 * neighbours); dot receives X·Y per channel, computed in the same pass rather than another one.
 */
function apply3(s: System, x: Float64Array, y: Float64Array, dot: Float64Array): void {
  const { n, nb, diag, wDir } = s;
  const w0 = wDir[0],
    w1 = wDir[1],
    w2 = wDir[2],
    w3 = wDir[3],
    w4 = wDir[4],
    w5 = wDir[5],
    w6 = wDir[6],
    w7 = wDir[7];
  let d0 = 0,
    d1 = 0,
    d2 = 0;
  for (let u = 0; u < n; u++) {
    const e = 8 * u;
    const j0 = 3 * nb[e],
      j1 = 3 * nb[e + 1],
      j2 = 3 * nb[e + 2],
      j3 = 3 * nb[e + 3];
    const j4 = 3 * nb[e + 4],
      j5 = 3 * nb[e + 5],
      j6 = 3 * nb[e + 6],
      j7 = 3 * nb[e + 7];
    const d = diag[u];
    const o = 3 * u;
    const x0 = x[o],
      x1 = x[o + 1],
      x2 = x[o + 2];
    const y0 = d * x0 - (w0 * x[j0] + w1 * x[j1] + w2 * x[j2] + w3 * x[j3] + w4 * x[j4] + w5 * x[j5] + w6 * x[j6] + w7 * x[j7]);
    const y1 =
      d * x1 -
      (w0 * x[j0 + 1] +
        w1 * x[j1 + 1] +
        w2 * x[j2 + 1] +
        w3 * x[j3 + 1] +
        w4 * x[j4 + 1] +
        w5 * x[j5 + 1] +
        w6 * x[j6 + 1] +
        w7 * x[j7 + 1]);
    const y2 =
      d * x2 -
      (w0 * x[j0 + 2] +
        w1 * x[j1 + 2] +
        w2 * x[j2 + 2] +
        w3 * x[j3 + 2] +
        w4 * x[j4 + 2] +
        w5 * x[j5 + 2] +
        w6 * x[j6 + 2] +
        w7 * x[j7 + 2]);
    y[o] = y0;
    y[o + 1] = y1;
    y[o + 2] = y2;
    d0 += x0 * y0;
    d1 += x1 * y1;
    d2 += x2 * y2;
  }
  dot[0] = d0;
  dot[1] = d1;
  dot[2] = d2;
}

/**
 * Modified incomplete Cholesky MIC(0) of M = L·D·Lᵀ on M's own sparsity pattern (L unit lower
 * triangular): fill-in outside the 8-neighbour pattern is dropped and, scaled by omega, moved onto
 * the two diagonals it couples, which keeps row sums and cuts CG's iteration count on these
 * Laplacian-like systems from O(h⁻¹) towards O(h^-½). Returns lo[4u + e] = L entry to the lower
 * neighbour nb[8u + e], up[4u + e − 4] = the same entries seen from the upper side, and 1/D; or null
 * when a pivot is not positive (omega = 0, plain IC(0), always succeeds on M, an M-matrix).
 */
function factor(s: System, omega: number): { lo: Float64Array; up: Float64Array; invD: Float64Array } | null {
  const { n, nb, diag, wDir } = s;
  const lo = new Float64Array(4 * (n + 1));
  const up = new Float64Array(4 * (n + 1));
  const piv = Float64Array.from(diag);
  // The lower entries of M, updated in place by earlier pivots before each is scaled into L.
  for (let u = 0; u < n; u++) for (let e = 0; e < 4; e++) if (nb[8 * u + e] < n) lo[4 * u + e] = -wDir[e];
  const invD = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) {
    const p = piv[k];
    if (!(p > 0) || !Number.isFinite(p)) return null;
    invD[k] = 1 / p;
    // Upper neighbours E (0,1), SW (1,−1), S (1,0), SE (1,1) in directions 4..7; their entries to k sit in their lower slot 7 − e.
    const jE = nb[8 * k + 4],
      jSW = nb[8 * k + 5],
      jS = nb[8 * k + 6],
      jSE = nb[8 * k + 7];
    const aE = lo[4 * jE + 3],
      aSW = lo[4 * jSW + 2],
      aS = lo[4 * jS + 1],
      aSE = lo[4 * jSE];
    const lE = aE / p,
      lSW = aSW / p,
      lS = aS / p,
      lSE = aSE / p;
    if (jE < n) lo[4 * jE + 3] = lE;
    if (jSW < n) lo[4 * jSW + 2] = lSW;
    if (jS < n) lo[4 * jS + 1] = lS;
    if (jSE < n) lo[4 * jSE] = lSE;
    up[4 * k] = lE;
    up[4 * k + 1] = lSW;
    up[4 * k + 2] = lS;
    up[4 * k + 3] = lSE;
    // Schur update among the upper neighbours (a missing one has a = 0, so its terms vanish).
    if (jE < n) piv[jE] -= lE * aE;
    if (jSW < n) piv[jSW] -= lSW * aSW;
    if (jS < n) piv[jS] -= lS * aS;
    if (jSE < n) piv[jSE] -= lSE * aSE;
    // Pairs that are neighbours of each other stay in the pattern: S–E (S's NE slot 2), SE–E (SE's N slot 1),
    // S–SW (S's W slot 3), SE–S (SE's W slot 3).
    if (jS < n) {
      lo[4 * jS + 2] -= lS * aE;
      lo[4 * jS + 3] -= lS * aSW;
    }
    if (jSE < n) {
      lo[4 * jSE + 1] -= lSE * aE;
      lo[4 * jSE + 3] -= lSE * aS;
    }
    // Pairs two columns apart (E–SW, SW–SE) are fill outside the pattern: dropped, moved onto both diagonals.
    if (omega !== 0) {
      const fESW = omega * lSW * aE;
      const fSWSE = omega * lSE * aSW;
      if (jE < n) piv[jE] -= fESW;
      if (jSW < n) piv[jSW] -= fESW + fSWSE;
      if (jSE < n) piv[jSE] -= fSWSE;
    }
  }
  return { lo, up, invD };
}
/**
 * z = (L·D·Lᵀ)⁻¹ r for 3 interleaved right-hand sides: a forward sweep, the diagonal, a backward
 * sweep, in place in z; dot receives r·z per channel, taken in the backward sweep as each z is final.
 */
function precondition3(
  s: System,
  f: { lo: Float64Array; up: Float64Array; invD: Float64Array },
  r: Float64Array,
  z: Float64Array,
  dot: Float64Array,
): void {
  const { n, nb } = s;
  const { lo, up, invD } = f;
  for (let u = 0; u < n; u++) {
    const e = 8 * u;
    const j0 = 3 * nb[e],
      j1 = 3 * nb[e + 1],
      j2 = 3 * nb[e + 2],
      j3 = 3 * nb[e + 3];
    const l0 = lo[4 * u],
      l1 = lo[4 * u + 1],
      l2 = lo[4 * u + 2],
      l3 = lo[4 * u + 3];
    const o = 3 * u;
    z[o] = r[o] - (l0 * z[j0] + l1 * z[j1] + l2 * z[j2] + l3 * z[j3]);
    z[o + 1] = r[o + 1] - (l0 * z[j0 + 1] + l1 * z[j1 + 1] + l2 * z[j2 + 1] + l3 * z[j3 + 1]);
    z[o + 2] = r[o + 2] - (l0 * z[j0 + 2] + l1 * z[j1 + 2] + l2 * z[j2 + 2] + l3 * z[j3 + 2]);
  }
  let d0 = 0,
    d1 = 0,
    d2 = 0;
  for (let u = n - 1; u >= 0; u--) {
    const e = 8 * u;
    const j4 = 3 * nb[e + 4],
      j5 = 3 * nb[e + 5],
      j6 = 3 * nb[e + 6],
      j7 = 3 * nb[e + 7];
    const l4 = up[4 * u],
      l5 = up[4 * u + 1],
      l6 = up[4 * u + 2],
      l7 = up[4 * u + 3];
    const d = invD[u];
    const o = 3 * u;
    const z0 = d * z[o] - (l4 * z[j4] + l5 * z[j5] + l6 * z[j6] + l7 * z[j7]);
    const z1 = d * z[o + 1] - (l4 * z[j4 + 1] + l5 * z[j5 + 1] + l6 * z[j6 + 1] + l7 * z[j7 + 1]);
    const z2 = d * z[o + 2] - (l4 * z[j4 + 2] + l5 * z[j5 + 2] + l6 * z[j6 + 2] + l7 * z[j7 + 2]);
    z[o] = z0;
    z[o + 1] = z1;
    z[o + 2] = z2;
    d0 += r[o] * z0;
    d1 += r[o + 1] * z1;
    d2 += r[o + 2] * z2;
  }
  dot[0] = d0;
  dot[1] = d1;
  dot[2] = d2;
}

/** Relaxation of MIC(0): 1 keeps row sums exactly; slightly less guards against tiny pivots on long thin regions. */
const MIC_OMEGA = 0.97;

/**
 * Solves M X = B for 3 right-hand sides (interleaved, so that one pass over the sparse matrix serves
 * all three) by conjugate gradients preconditioned with MIC(0), each channel with its own step sizes
 * and stopping test. M is symmetric (the neighbour relation and its weights are) and, as long as
 * some pixel is kept, positive definite (weakly diagonally dominant, strictly in every row next to a
 * kept pixel, and every connected group of removed pixels has one), so CG converges. The stopping
 * test uses the recurred residual; once every channel passes it, the true residual b − Mx is computed
 * and the iteration resumes from it unless that passes too, so the stated tolerance holds for the
 * returned solution.
 */
function solve3(s: System, b: Float64Array, tol: number, what: string): Float64Array {
  const n = s.n;
  // One dummy unknown (index n) past the end, always 0, so that missing neighbours read a zero.
  const N = 3 * (n + 1);
  const f = factor(s, MIC_OMEGA) ?? factor(s, 0);
  if (!f) throw new Error(`${what}: the incomplete Cholesky factorisation of the imputation system (${n} pixels) broke down`);
  const x = new Float64Array(N);
  const r = Float64Array.from(b);
  const z = new Float64Array(N);
  const p = new Float64Array(N);
  const q = new Float64Array(N);
  let b0 = 0,
    b1 = 0,
    b2 = 0;
  for (let o = 0; o < 3 * n; o += 3) {
    b0 += b[o] * b[o];
    b1 += b[o + 1] * b[o + 1];
    b2 += b[o + 2] * b[o + 2];
  }
  const t0 = tol * tol * b0,
    t1 = tol * tol * b1,
    t2 = tol * tol * b2;
  const limit = 10 * n + 100;
  let it = 0;
  const dot = new Float64Array(3);
  // Each pass starts CG afresh from x (first 0, then the true residual of the recurred solution).
  for (;;) {
    let r0 = 0,
      r1 = 0,
      r2 = 0;
    for (let o = 0; o < 3 * n; o += 3) {
      r0 += r[o] * r[o];
      r1 += r[o + 1] * r[o + 1];
      r2 += r[o + 2] * r[o + 2];
    }
    if (r0 <= t0 && r1 <= t1 && r2 <= t2) return x;
    if (it >= limit) break;
    precondition3(s, f, r, z, dot);
    p.set(z);
    let z0 = dot[0],
      z1 = dot[1],
      z2 = dot[2];
    for (; it < limit; it++) {
      // A channel that has converged (or has a zero right-hand side) stops moving: its step is 0.
      const a0 = r0 > t0,
        a1 = r1 > t1,
        a2 = r2 > t2;
      if (!a0 && !a1 && !a2) break;
      apply3(s, p, q, dot);
      const al0 = a0 ? z0 / dot[0] : 0,
        al1 = a1 ? z1 / dot[1] : 0,
        al2 = a2 ? z2 / dot[2] : 0;
      r0 = r1 = r2 = 0;
      for (let o = 0; o < 3 * n; o += 3) {
        x[o] += al0 * p[o];
        x[o + 1] += al1 * p[o + 1];
        x[o + 2] += al2 * p[o + 2];
        const e0 = (r[o] -= al0 * q[o]),
          e1 = (r[o + 1] -= al1 * q[o + 1]),
          e2 = (r[o + 2] -= al2 * q[o + 2]);
        r0 += e0 * e0;
        r1 += e1 * e1;
        r2 += e2 * e2;
      }
      precondition3(s, f, r, z, dot);
      const n0 = dot[0],
        n1 = dot[1],
        n2 = dot[2];
      const be0 = a0 && z0 !== 0 ? n0 / z0 : 0,
        be1 = a1 && z1 !== 0 ? n1 / z1 : 0,
        be2 = a2 && z2 !== 0 ? n2 / z2 : 0;
      z0 = n0;
      z1 = n1;
      z2 = n2;
      for (let o = 0; o < 3 * n; o += 3) {
        p[o] = z[o] + be0 * p[o];
        p[o + 1] = z[o + 1] + be1 * p[o + 1];
        p[o + 2] = z[o + 2] + be2 * p[o + 2];
      }
    }
    // The recurred residual says converged (or the budget ran out): check against the true one.
    apply3(s, x, q, dot);
    for (let o = 0; o < 3 * n; o++) r[o] = b[o] - q[o];
  }
  throw new Error(`${what}: the imputation system (${n} pixels) did not reach relative residual ${tol} in ${limit} iterations`);
}

/**
 * Noisy linear imputation of one C×H×W image (channel planes, any units): pixels with keep = 0 are
 * replaced; kept pixels are copied. Linear imputation commutes with a per-channel affine map (the
 * weights sum to 1), so imputing normalised pixels equals imputing raw ones and normalising after,
 * provided the noise is given in the same units (σ_raw / std per channel).
 */
export function noisyLinearImpute(image: Float32Array, keep: Uint8Array, H: number, W: number, opts: ImputeOptions): Float32Array {
  const plane = H * W;
  const C = image.length / plane;
  if (keep.length !== plane) throw new Error(`noisyLinearImpute: mask has ${keep.length} pixels, the image ${H}×${W}`);
  if (!Number.isInteger(C) || C < 1) throw new Error(`noisyLinearImpute: ${image.length} values are not whole ${H}×${W} planes`);
  if (opts.noise.length !== C) throw new Error(`noisyLinearImpute: ${opts.noise.length} noise levels for ${C} channels`);
  if (!opts.normal && Array.from(opts.noise).some((v) => v !== 0)) throw new Error('noisyLinearImpute: noise > 0 needs a normal() source');
  const out = Float32Array.from(image);
  const s = buildSystem(keep, H, W);
  const n = s.n;
  if (n === 0) return out;
  if (n === plane) throw new Error('noisyLinearImpute: every pixel is removed, nothing to impute from');
  const x = new Float64Array(n * C);
  // The kernels take 3 channels at a time (RGB, ROAD's case); other counts are padded with zero
  // right-hand sides, which start converged and cost no steps of their own.
  const b = new Float64Array(3 * (n + 1));
  for (let c0 = 0; c0 < C; c0 += 3) {
    b.fill(0);
    for (let u = 0; u < n; u++)
      for (let k = s.knownStart[u]; k < s.knownStart[u + 1]; k++)
        for (let c = c0; c < Math.min(C, c0 + 3); c++) b[3 * u + c - c0] += s.knownW[k] * image[c * plane + s.knownPixel[k]];
    const x3 = solve3(s, b, opts.tol ?? IMPUTATION_TOLERANCE, 'noisyLinearImpute');
    for (let u = 0; u < n; u++) for (let c = c0; c < Math.min(C, c0 + 3); c++) x[u * C + c] = x3[3 * u + c - c0];
  }
  // Noise channel-major (channel 0's pixels first), as the official code draws it.
  for (let c = 0; c < C; c++) {
    const sigma = opts.noise[c];
    for (let u = 0; u < n; u++) out[c * plane + s.pixels[u]] = x[u * C + c] + (sigma ? sigma * opts.normal!() : 0);
  }
  return out;
}
