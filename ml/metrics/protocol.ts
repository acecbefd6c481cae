// Evaluation protocols: every knob that changes a faithfulness number, as plain JSON data.
// A resolved protocol is recorded next to the scores it produced, so two score files can only be
// compared when their protocols are equal.

/** Which class is scored: the ground-truth label or the model's prediction on the clean image. */
export type TargetRule = 'gt' | 'pred';
/**
 * Where the saliency map multiplies the image for AD/AI/AG:
 * `pixel` = normalise(denormalise(x)·S) (black outside the map; the CA-Stream / Grad-CAM++ reading),
 * `normalised` = x·S on the normalised tensor (mean colour outside; pytorch-grad-cam).
 */
export type MaskSpace = 'pixel' | 'normalised';
/**
 * An image substrate: `zeros` = zeros of the NORMALISED tensor (the dataset mean colour),
 * `black` = pixel-space black (−mean/std after normalisation), `blur` = the normalised image blurred
 * with the protocol's kernel.
 */
export type Substrate = 'zeros' | 'black' | 'blur';

export interface Protocol {
  name: string;
  target: TargetRule;
  /** Always the softmax probability of the target class (recorded for readers of score files). */
  score: 'softmax-probability';
  saliency: {
    /** How a map at feature resolution is brought to image resolution. */
    upsample: { mode: 'bilinear'; alignCorners: boolean };
    /** Min-max normalise again after upsampling (bilinear keeps [0,1] maps in [0,1], so false by default). */
    renormalise: boolean;
    epsilon: number;
  };
  confidence: {
    maskSpace: MaskSpace;
    /** ε in AD's and AG's denominators. AI counts strict increases only (ties count 0). */
    epsilon: number;
  };
  insdel: {
    /** Pixels moved per step: `rows` → count·W (8·W = 1792 at 224), `pixels` → count. */
    step: { unit: 'rows' | 'pixels'; count: number };
    insertionStart: Substrate;
    deletionSubstrate: Substrate;
    /** Kernel = scipy gaussian_filter of a size×size Dirac (reflect mode), applied per channel. */
    blur: { size: number; sigma: number; truncate: number; padding: 'zero' | 'reflect' };
    /**
     * Pixels sorted by decreasing saliency, ties by increasing raster index (the original used NumPy's
     * unstable quicksort, so its tie order, e.g. inside flat regions of an upsampled map, was arbitrary).
     */
    order: 'descending-stable';
    /** AUC = (Σ s − s0/2 − sn/2)/n over the n+1 points (trapezoid on x ∈ [0,1]); per image, then averaged. */
    auc: 'trapezoid';
  };
  localisation: {
    /** Pointing-game hit radius in image pixels (distance from the map's maximum to the nearest object pixel). */
    tolerance: number;
  };
  degenerate: {
    /** A map whose range is ≤ relTol·max(|min|,|max|) is `constant` (all-zero maps included). */
    constantRelTol: number;
  };
}

const EPS = 2.220446049250313e-16;

const CA_STREAM: Protocol = {
  name: 'ca-stream',
  target: 'gt',
  score: 'softmax-probability',
  saliency: { upsample: { mode: 'bilinear', alignCorners: false }, renormalise: false, epsilon: EPS },
  confidence: { maskSpace: 'pixel', epsilon: EPS },
  insdel: {
    step: { unit: 'rows', count: 8 },
    insertionStart: 'blur',
    deletionSubstrate: 'zeros',
    blur: { size: 5, sigma: 5, truncate: 4, padding: 'zero' },
    order: 'descending-stable',
    auc: 'trapezoid',
  },
  localisation: { tolerance: 15 },
  degenerate: { constantRelTol: 1e-6 },
};

// RISE (Petsiuk et al. 2018) official evaluation: one row per step, 11×11 σ 5 blur, predicted class.
// RISE defines no AD/AI/AG; the confidence settings are the CA-Stream ones.
const RISE: Protocol = {
  ...CA_STREAM,
  name: 'rise',
  target: 'pred',
  insdel: { ...CA_STREAM.insdel, step: { unit: 'rows', count: 1 }, blur: { size: 11, sigma: 5, truncate: 4, padding: 'zero' } },
};

export const PROTOCOLS: Readonly<Record<string, Protocol>> = { 'ca-stream': CA_STREAM, rise: RISE };

export type ProtocolOverrides = { [K in keyof Protocol]?: Protocol[K] extends object ? DeepPartial<Protocol[K]> : Protocol[K] };
type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

type Check = (v: unknown) => string | null;
const oneOf =
  (...allowed: unknown[]): Check =>
  (v) =>
    allowed.includes(v) ? null : `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(v)}`;
const posNum: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : `expected a positive number, got ${JSON.stringify(v)}`;
const nonNegNum: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : `expected a non-negative number, got ${JSON.stringify(v)}`;
const posInt: Check = (v) => (Number.isInteger(v) && (v as number) > 0 ? null : `expected a positive integer, got ${JSON.stringify(v)}`);
const oddPosInt: Check = (v) =>
  Number.isInteger(v) && (v as number) > 0 && (v as number) % 2 === 1 ? null : `expected an odd positive integer, got ${JSON.stringify(v)}`;
const bool: Check = (v) => (typeof v === 'boolean' ? null : `expected true or false, got ${JSON.stringify(v)}`);
const str: Check = (v) => (typeof v === 'string' && v.length > 0 ? null : `expected a non-empty string, got ${JSON.stringify(v)}`);
const substrate = oneOf('zeros', 'black', 'blur');

/** Leaf validators by dotted path; the set of paths is also the set of allowed override keys. */
const LEAVES: Record<string, Check> = {
  name: str,
  target: oneOf('gt', 'pred'),
  score: oneOf('softmax-probability'),
  'saliency.upsample.mode': oneOf('bilinear'),
  'saliency.upsample.alignCorners': bool,
  'saliency.renormalise': bool,
  'saliency.epsilon': nonNegNum,
  'confidence.maskSpace': oneOf('pixel', 'normalised'),
  'confidence.epsilon': nonNegNum,
  'insdel.step.unit': oneOf('rows', 'pixels'),
  'insdel.step.count': posInt,
  'insdel.insertionStart': substrate,
  'insdel.deletionSubstrate': substrate,
  'insdel.blur.size': oddPosInt,
  'insdel.blur.sigma': posNum,
  'insdel.blur.truncate': posNum,
  'insdel.blur.padding': oneOf('zero', 'reflect'),
  'insdel.order': oneOf('descending-stable'),
  'insdel.auc': oneOf('trapezoid'),
  'localisation.tolerance': nonNegNum,
  'degenerate.constantRelTol': nonNegNum,
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mergeInto(target: Record<string, unknown>, over: Record<string, unknown>, prefix: string, where: string): void {
  for (const [k, v] of Object.entries(over)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v === undefined) continue;
    if (path in LEAVES) {
      const err = LEAVES[path](v);
      if (err) throw new Error(`${where}: protocol field "${path}": ${err}`);
      target[k] = v;
      continue;
    }
    const isBranch = Object.keys(LEAVES).some((p) => p.startsWith(path + '.'));
    if (!isBranch) throw new Error(`${where}: unknown protocol field "${path}"`);
    if (!isPlainObject(v)) throw new Error(`${where}: protocol field "${path}" must be an object, got ${JSON.stringify(v)}`);
    mergeInto(target[k] as Record<string, unknown>, v, path, where);
  }
}

function deepFreeze<T>(o: T): T {
  if (isPlainObject(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * A named protocol with `overrides` deep-merged in. Unknown fields and invalid values throw an error
 * naming the field path; `where` (e.g. "exp.yaml: stages.evaluate.params.protocol") prefixes it.
 * The result is a frozen, JSON-serialisable copy.
 */
export function resolveProtocol(name: string, overrides: unknown = {}, where = 'protocol'): Protocol {
  const base = PROTOCOLS[name];
  if (!base) throw new Error(`${where}: unknown protocol "${name}" (known: ${Object.keys(PROTOCOLS).join(', ')})`);
  if (overrides !== undefined && overrides !== null && !isPlainObject(overrides))
    throw new Error(`${where}: protocol overrides must be an object, got ${JSON.stringify(overrides)}`);
  const p = JSON.parse(JSON.stringify(base)) as Protocol;
  if (overrides) mergeInto(p as unknown as Record<string, unknown>, overrides, '', where);
  return deepFreeze(p);
}

/** Validate a protocol read back from a score file (all fields present and valid). */
export function validateProtocol(p: unknown, where = 'protocol'): Protocol {
  if (!isPlainObject(p)) throw new Error(`${where}: expected a protocol object`);
  for (const [path, check] of Object.entries(LEAVES)) {
    let v: unknown = p;
    for (const part of path.split('.')) v = isPlainObject(v) ? v[part] : undefined;
    const err = check(v);
    if (err) throw new Error(`${where}: protocol field "${path}": ${err}`);
  }
  return p as unknown as Protocol;
}

/** Pixels moved per insertion/deletion step for an H×W image. */
export function stepPixels(p: Protocol, h: number, w: number): number {
  const s = p.insdel.step;
  return Math.min(h * w, s.unit === 'rows' ? s.count * w : s.count);
}

/** Number of steps n (the curve has n+1 points). */
export function stepCount(p: Protocol, h: number, w: number): number {
  return Math.ceil((h * w) / stepPixels(p, h, w));
}
