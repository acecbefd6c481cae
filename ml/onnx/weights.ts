// Strict checking of a weight map against a model's parameter table. The table itself is the
// backbone module's (ml/models, Backbone.params) plus the CA heads' (paramSpecs): never restated here.
import type { ResNetArch } from '../models/arch.js';
import { lastReading, type Backbone } from '../models/backbone.js';
import { getBackbone } from '../models/backbones.js';
import { paramSpecs } from '../models/params.js';
import { describeNonFinite } from '../io/finite.js';
import { WeightsError } from '../models/weights-error.js';
import type { HeadKind as ModelHeadKind } from '../models/params.js';

/** A model's head, or 'none' for the backbone alone. */
export type HeadKind = ModelHeadKind | 'none';

/** What the exporter accepts as an architecture: a registry name, a ResNet description or a Backbone. */
export type ArchLike = string | ResNetArch | Backbone;

export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}
export type WeightMap = Map<string, WeightTensor>;

export { WeightsError } from '../models/weights-error.js';

/** Every parameter name → shape that a model with this head needs ('none': the backbone alone). */
export function expectedWeights(arch: ArchLike, head: HeadKind, numClasses: number): Map<string, number[]> {
  const bb = getBackbone(arch);
  const specs = paramSpecs(bb, { head: head === 'none' ? 'gap' : head, numClasses });
  // Order: backbone, classifier, CA head (callers that fill weights from one generator rely on it).
  const order = { backbone: 0, fc: 1, ca: 2 } as const;
  const kept = specs.filter((s) => head !== 'none' || s.group === 'backbone').sort((a, b) => order[a.group] - order[b.group]);
  return new Map(kept.map((s) => [s.name, s.fileShape]));
}

/** ca-final's projection is optional (the original's default is project=False). */
function optionalWeights(bb: Backbone, head: HeadKind): Map<string, number[]> {
  const out = new Map<string, number[]>();
  if (head === 'ca-final' && bb.caFinalBlock && bb.caFinalKind !== 'kv') {
    const c = lastReading(bb).channels;
    out.set(`${bb.caFinalBlock}.to_out.1.weight`, [c, c]);
    out.set(`${bb.caFinalBlock}.to_out.1.bias`, [c]);
  }
  return out;
}

/**
 * Parameters of the same model family that a graph with a narrower head simply does not use
 * (a CA-Stream checkpoint feeding a backbone-only graph, say): tolerated, not loaded.
 */
export function familyKeys(bb: Backbone): Set<string> {
  const keys = new Set<string>();
  for (const head of ['ca-stream', 'ca-final'] as const) {
    if (head === 'ca-final' && !bb.caFinalBlock) continue;
    for (const s of paramSpecs(bb, { head, numClasses: 1, project: head === 'ca-final' && bb.caFinalKind !== 'kv' }))
      if (s.group !== 'backbone') keys.add(s.name);
  }
  for (const s of bb.params(1)) if (s.group !== 'backbone') keys.add(s.name);
  return keys;
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Strips a DataParallel `module.` prefix from every key. */
export function stripModulePrefix<T>(weights: Map<string, T>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k, v] of weights) out.set(k.startsWith('module.') ? k.slice('module.'.length) : k, v);
  return out;
}

/** Number of classes from the classifier's weight (ResNet: `fc.weight`), or undefined when absent. */
export function inferNumClasses(weights: Map<string, { shape: number[] }>, arch: ArchLike = 'resnet18'): number | undefined {
  const key = getBackbone(arch).classifierWeight;
  const fc = weights.get(key) ?? weights.get(`module.${key}`);
  return fc && fc.shape.length === 2 ? fc.shape[0] : undefined;
}

/**
 * Strict check: every needed key present with the right shape and float data, nothing unknown.
 * Returns the weights with `module.` stripped, restricted to the keys the head uses.
 */
export function checkWeights(
  weights: Map<string, { shape: number[]; data: ArrayLike<number> | BigInt64Array }>,
  arch: ArchLike,
  head: HeadKind,
  numClasses: number,
  file = '<weights>',
): WeightMap {
  const bb = getBackbone(arch);
  const stripped = stripModulePrefix(weights);
  const expected = expectedWeights(bb, head, numClasses);
  const optional = optionalWeights(bb, head);
  const family = familyKeys(bb);
  const problems: Array<{ key: string; problem: string }> = [];
  const out: WeightMap = new Map();
  const fmt = (s: number[]) => `[${s.join(', ')}]`;
  for (const [key, shape] of [...expected, ...optional]) {
    const t = stripped.get(key);
    if (!t) {
      if (expected.has(key)) problems.push({ key, problem: `missing (expected shape ${fmt(shape)} for ${bb.name}, head ${head})` });
      continue;
    }
    if (!sameShape(t.shape, shape)) {
      problems.push({ key, problem: `wrong shape ${fmt(t.shape)}, expected ${fmt(shape)} for ${bb.name}, head ${head}` });
      continue;
    }
    if (!(t.data instanceof Float32Array)) {
      problems.push({ key, problem: `not floating point (${t.data.constructor.name})` });
      continue;
    }
    const bad = describeNonFinite(t.data);
    if (bad) {
      problems.push({ key, problem: bad });
      continue;
    }
    out.set(key, { shape: t.shape, data: t.data });
  }
  const presentOptional = [...optional.keys()].filter((k) => stripped.has(k));
  if (presentOptional.length > 0 && presentOptional.length < optional.size) {
    for (const k of optional.keys())
      if (!stripped.has(k)) problems.push({ key: k, problem: 'missing (the projection needs both weight and bias)' });
  }
  for (const key of stripped.keys()) {
    if (!expected.has(key) && !optional.has(key) && !family.has(key) && !key.endsWith('.num_batches_tracked')) {
      problems.push({ key, problem: `unexpected key (not a parameter of ${bb.name} with head ${head})` });
    }
  }
  if (problems.length) throw new WeightsError(file, problems);
  return out;
}
