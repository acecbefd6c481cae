// Expected parameter names/shapes of a torchvision ResNet (+ CA heads), and strict checking of a
// weight map against them. Kept inside ml/onnx so the exporter does not depend on the tfjs model.
import { EXPANSION, stageStride, tapChannels, caProjections, type ResNetArch } from '../models/arch.js';
import { WeightsError } from '../models/weights-error.js';
import type { HeadKind as ModelHeadKind } from '../models/params.js';

/** A model's head, or 'none' for the backbone alone. */
export type HeadKind = ModelHeadKind | 'none';

export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}
export type WeightMap = Map<string, WeightTensor>;

export { WeightsError } from '../models/weights-error.js';

/** One residual block as the exporter needs it (names relative to the network root). */
export interface BlockSpec {
  prefix: string; // e.g. "layer2.0"
  inC: number;
  planes: number;
  outC: number;
  stride: number;
  downsample: boolean;
}

/** Blocks in forward order, following torchvision's _make_layer (v1.5: stride on the 3×3 conv). */
export function resnetBlocks(arch: ResNetArch): BlockSpec[][] {
  const e = EXPANSION[arch.block];
  let inC = arch.stemWidth;
  const stages: BlockSpec[][] = [];
  for (let s = 0; s < 4; s++) {
    const planes = arch.widths[s];
    const blocks: BlockSpec[] = [];
    for (let j = 0; j < arch.layers[s]; j++) {
      const stride = j === 0 ? stageStride(arch, s) : 1;
      const outC = planes * e;
      blocks.push({ prefix: `layer${s + 1}.${j}`, inC, planes, outC, stride, downsample: j === 0 && (stride !== 1 || inC !== outC) });
      inC = outC;
    }
    stages.push(blocks);
  }
  return stages;
}

function addBn(out: Map<string, number[]>, prefix: string, c: number): void {
  for (const p of ['weight', 'bias', 'running_mean', 'running_var']) out.set(`${prefix}.${p}`, [c]);
}

/** Every parameter name → shape that a model with this head needs. */
export function expectedWeights(arch: ResNetArch, head: HeadKind, numClasses: number): Map<string, number[]> {
  const out = new Map<string, number[]>();
  out.set('conv1.weight', [arch.stemWidth, 3, 7, 7]);
  addBn(out, 'bn1', arch.stemWidth);
  for (const stage of resnetBlocks(arch)) {
    for (const b of stage) {
      if (arch.block === 'basic') {
        out.set(`${b.prefix}.conv1.weight`, [b.planes, b.inC, 3, 3]);
        addBn(out, `${b.prefix}.bn1`, b.planes);
        out.set(`${b.prefix}.conv2.weight`, [b.outC, b.planes, 3, 3]);
        addBn(out, `${b.prefix}.bn2`, b.outC);
      } else {
        out.set(`${b.prefix}.conv1.weight`, [b.planes, b.inC, 1, 1]);
        addBn(out, `${b.prefix}.bn1`, b.planes);
        out.set(`${b.prefix}.conv2.weight`, [b.planes, b.planes, 3, 3]);
        addBn(out, `${b.prefix}.bn2`, b.planes);
        out.set(`${b.prefix}.conv3.weight`, [b.outC, b.planes, 1, 1]);
        addBn(out, `${b.prefix}.bn3`, b.outC);
      }
      if (b.downsample) {
        out.set(`${b.prefix}.downsample.0.weight`, [b.outC, b.inC, 1, 1]);
        addBn(out, `${b.prefix}.downsample.1`, b.outC);
      }
    }
  }
  const c4 = tapChannels(arch).layer4;
  if (head !== 'none') {
    out.set('fc.weight', [numClasses, c4]);
    out.set('fc.bias', [numClasses]);
  }
  if (head === 'ca-stream') {
    out.set('cls_token', [1, 1, arch.stemWidth]);
    for (const p of caProjections(arch)) {
      out.set(`${p.block}.to_out.1.weight`, [p.outDim, p.inDim]);
      out.set(`${p.block}.to_out.1.bias`, [p.outDim]);
    }
  }
  if (head === 'ca-final') out.set('cls_token', [1, 1, c4]);
  return out;
}

/** ca-final's projection is optional (the original's default is project=False). */
function optionalWeights(arch: ResNetArch, head: HeadKind): Map<string, number[]> {
  const out = new Map<string, number[]>();
  if (head === 'ca-final') {
    const c4 = tapChannels(arch).layer4;
    out.set('cls_surrogate.to_out.1.weight', [c4, c4]);
    out.set('cls_surrogate.to_out.1.bias', [c4]);
  }
  return out;
}

/**
 * Parameters of the same model family that a graph with a narrower head simply does not use
 * (a CA-Stream checkpoint feeding a backbone-only graph, say): tolerated, not loaded.
 */
function isFamilyKey(key: string): boolean {
  return (
    /^(base|l[1-4])\.to_out\.1\.(weight|bias)$/.test(key) ||
    /^cls_surrogate\.to_out\.1\.(weight|bias)$/.test(key) ||
    key === 'cls_token' ||
    key === 'fc.weight' ||
    key === 'fc.bias' ||
    key.endsWith('.num_batches_tracked')
  );
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Strips a DataParallel `module.` prefix from every key. */
export function stripModulePrefix<T>(weights: Map<string, T>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k, v] of weights) out.set(k.startsWith('module.') ? k.slice('module.'.length) : k, v);
  return out;
}

/** Number of classes from `fc.weight`, or undefined when absent. */
export function inferNumClasses(weights: Map<string, { shape: number[] }>): number | undefined {
  const fc = weights.get('fc.weight') ?? weights.get('module.fc.weight');
  return fc && fc.shape.length === 2 ? fc.shape[0] : undefined;
}

/**
 * Strict check: every needed key present with the right shape and float data, nothing unknown.
 * Returns the weights with `module.` stripped, restricted to the keys the head uses.
 */
export function checkWeights(
  weights: Map<string, { shape: number[]; data: ArrayLike<number> | BigInt64Array }>,
  arch: ResNetArch,
  head: HeadKind,
  numClasses: number,
  file = '<weights>',
): WeightMap {
  const stripped = stripModulePrefix(weights);
  const expected = expectedWeights(arch, head, numClasses);
  const optional = optionalWeights(arch, head);
  const problems: Array<{ key: string; problem: string }> = [];
  const out: WeightMap = new Map();
  const fmt = (s: number[]) => `[${s.join(', ')}]`;
  for (const [key, shape] of [...expected, ...optional]) {
    const t = stripped.get(key);
    if (!t) {
      if (expected.has(key)) problems.push({ key, problem: `missing (expected shape ${fmt(shape)} for ${arch.name}, head ${head})` });
      continue;
    }
    if (!sameShape(t.shape, shape)) {
      problems.push({ key, problem: `wrong shape ${fmt(t.shape)}, expected ${fmt(shape)} for ${arch.name}, head ${head}` });
      continue;
    }
    if (!(t.data instanceof Float32Array)) {
      problems.push({ key, problem: `not floating point (${t.data.constructor.name})` });
      continue;
    }
    out.set(key, { shape: t.shape, data: t.data });
  }
  const presentOptional = [...optional.keys()].filter((k) => stripped.has(k));
  if (presentOptional.length > 0 && presentOptional.length < optional.size) {
    for (const k of optional.keys()) if (!stripped.has(k)) problems.push({ key: k, problem: 'missing (the projection needs both weight and bias)' });
  }
  for (const key of stripped.keys()) {
    if (!expected.has(key) && !optional.has(key) && !isFamilyKey(key)) {
      problems.push({ key, problem: `unexpected key (not a parameter of ${arch.name} with head ${head})` });
    }
  }
  if (problems.length) throw new WeightsError(file, problems);
  return out;
}
