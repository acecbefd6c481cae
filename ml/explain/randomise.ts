// Cascading model-parameter randomisation (Adebayo et al. 2018, xai-anchors §6.8): re-initialise
// the weights from the top of the network down, one group more per step — the classifier, the
// CA-Stream head, then the backbone's stages from the last to the stem — so that step k has the
// top k groups random and the rest trained. Re-initialisation follows PyTorch's reset_parameters
// (what Quantus' MPRT calls): conv/linear weights and their biases U(±1/√fan_in), BatchNorm scale
// 1, shift 0, running mean 0 and variance 1. Seeded per tensor name, so a step's weights depend
// only on (seed, name), not on the order of the steps.
import { InitRng, fillUniform } from '../random/init.js';
import type { FloatTensor, LoadedModel } from './model-dir.js';

export interface CascadeStep {
  /** classifier | head | layer4 … layer1 (ResNet) or features.N … features.1 (ConvNeXt, EfficientNet) | stem */
  name: string;
  /** Weight names re-initialised at this step (the previous steps' included). */
  tensors: string[];
}

// The two torchvision layouts of the backbone families: ResNet's (conv1/bn1 stem, layerN stages,
// fc) and the Sequential `features.N` of ConvNeXt and EfficientNet (features.0 the stem; ConvNeXt's
// downsampling layers are their own entries, EfficientNet's last 1×1 conv is features.8), whose
// classifier is `classifier.*` (ConvNeXt's LayerNorm + Linear, EfficientNet's Linear).
const STEM = /^(conv1|bn1|features\.0)\./;
const BACKBONE_STAGE = /^(layer|features\.)(\d+)\./;
const CLASSIFIER = /^(fc|classifier)\./;
// ConvNeXt's per-block scale is a bare parameter, not a layer: PyTorch's reset_parameters (what a
// module-wise re-initialisation calls) never touches it, so it keeps its trained value.
const NOT_RESET = /\.layer_scale$/;

/**
 * The cascade of a model with torchvision weight names (above; everything else is the pooling
 * head, e.g. CA-Stream's cls_token, base.* and l1.*–l4.*). Other weight layouts are refused by name.
 * `withHead: false` (a GAP model) leaves head tensors out: a weights file may carry an unused CA head.
 */
export function cascadeSteps(weights: ReadonlyMap<string, FloatTensor>, withHead = true, where = 'sanity'): CascadeStep[] {
  const names = [...weights.keys()].sort();
  const groups = new Map<string, string[]>();
  const stageIndex = new Map<string, number>();
  const add = (g: string, n: string) => groups.set(g, [...(groups.get(g) ?? []), n]);
  for (const n of names) {
    if (NOT_RESET.test(n)) continue;
    const st = BACKBONE_STAGE.exec(n);
    if (CLASSIFIER.test(n)) add('classifier', n);
    else if (STEM.test(n)) add('stem', n);
    else if (st) {
      const g = `${st[1]}${st[2]}`;
      stageIndex.set(g, Number(st[2]));
      add(g, n);
    } else if (withHead) add('head', n);
  }
  if (!groups.has('classifier') || !groups.has('stem'))
    throw new Error(
      `${where}: the cascade knows torchvision weight names (fc.* or classifier.*, layerN.* or features.N.*, conv1/bn1 or features.0); this model has ${names.slice(0, 4).join(', ')}, …`,
    );
  const stages = [...stageIndex.keys()].sort((a, b) => stageIndex.get(b)! - stageIndex.get(a)!);
  const order = ['classifier', ...(groups.has('head') ? ['head'] : []), ...stages, 'stem'];
  const steps: CascadeStep[] = [];
  let acc: string[] = [];
  for (const g of order) {
    acc = [...acc, ...groups.get(g)!];
    steps.push({ name: g, tensors: acc });
  }
  return steps;
}

function fanIn(shape: number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}

/** A fresh value for one tensor, by its name and shape (and its sibling weight for a bias). */
export function reinitTensor(name: string, t: FloatTensor, weights: ReadonlyMap<string, FloatTensor>, rng: InitRng): FloatTensor {
  const n = t.data.length;
  const shape = [...t.shape];
  const fill = (v: number) => ({ shape, data: new Float32Array(n).fill(v) });
  if (name.endsWith('running_mean')) return fill(0);
  if (name.endsWith('running_var')) return fill(1);
  if (name.endsWith('num_batches_tracked')) return { shape, data: Float32Array.from(t.data) };
  if (shape.length >= 2) return { shape, data: fillUniform(n, 1 / Math.sqrt(fanIn(shape)), rng.fork(name)) };
  const sibling = weights.get(name.replace(/bias$/, 'weight'));
  if (name.endsWith('bias') && sibling && sibling.shape.length >= 2)
    return { shape, data: fillUniform(n, 1 / Math.sqrt(fanIn(sibling.shape)), rng.fork(name)) };
  // A 1-D weight/bias pair without a matrix beside it is a normalisation layer: scale 1, shift 0.
  return fill(name.endsWith('weight') ? 1 : 0);
}

/** The model with `step`'s tensors re-initialised (the others shared, not copied). */
export function randomisedModel(model: LoadedModel, step: CascadeStep, seed: number): LoadedModel {
  const rng = new InitRng(seed);
  const weights = new Map(model.weights);
  for (const name of step.tensors) weights.set(name, reinitTensor(name, model.weights.get(name)!, model.weights, rng));
  return { ...model, weights };
}
