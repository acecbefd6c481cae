// Distribution samplers over a plain uniform source `rand(): number in [0, 1)`.
// None of them caches a spare value (e.g. Box–Muller's second normal), so the generator's own
// state is the complete sampling state and restoring it resumes the exact same stream.

export type Uniform = () => number;

/** Uniform in (0, 1]: safe to take the log of. */
function openUniform(rand: Uniform): number {
  return 1 - rand();
}

/** Standard normal by Box–Muller (the cosine branch only). */
export function sampleNormal(rand: Uniform): number {
  const u1 = openUniform(rand);
  const u2 = rand();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 via the boost Gamma(a+1)·U^(1/a). */
export function sampleGamma(shape: number, rand: Uniform): number {
  if (!(shape > 0) || !Number.isFinite(shape)) throw new Error(`sampleGamma: shape must be a positive finite number, got ${shape}`);
  if (shape < 1) return sampleGamma(shape + 1, rand) * Math.pow(openUniform(rand), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = sampleNormal(rand);
    const t = 1 + c * x;
    if (t <= 0) continue;
    const v = t * t * t;
    const u = openUniform(rand);
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
export function sampleBeta(a: number, b: number, rand: Uniform): number {
  const x = sampleGamma(a, rand);
  const y = sampleGamma(b, rand);
  // Both can underflow to 0 for tiny shapes; the limit distribution there is Bernoulli(a/(a+b)).
  if (x + y === 0) return rand() < a / (a + b) ? 1 : 0;
  return x / (x + y);
}

/** Uniform integer in [lo, hi) from a float uniform (as numpy's randint is used by timm). */
export function sampleInt(lo: number, hi: number, rand: Uniform): number {
  if (!(hi > lo)) throw new Error(`sampleInt: empty range [${lo}, ${hi})`);
  return lo + Math.min(hi - lo - 1, Math.floor(rand() * (hi - lo)));
}
