// Params schema of the `saliency` kind. The method list is the registry's: a method added there
// is accepted here without a second edit.
import { SALIENCY_METHOD_NAMES, SALIENCY_METHOD_TABLE } from '../../ml/saliency/registry.js';
import { preprocessingParam, UNSET_FROM_MODEL } from '../preprocessing-param.js';
import { engineParamSchema, type EngineParam } from '../engine-param.js';

export interface SaliencyParams {
  methods: string[];
  target: 'gt' | 'pred';
  split: 'val' | 'train' | 'all';
  limit?: number;
  batch_size: number;
  method_batch: number;
  shard_size: number;
  dtype: 'float32' | 'float16';
  overlays: number;
  seed: number;
  rise: { masks: number; cells: number; p1: number };
  engine?: EngineParam;
  import?: { npy_dir?: string; safetensors?: string };
  preprocessing?: 'torchvision' | 'fast';
  /** Per method with a choice of definition: whose to follow (unset = ca-stream, and the key is unchanged). */
  convention?: Partial<Record<string, 'ca-stream' | 'pytorch-grad-cam'>>;
  /** Opti-CAM settings (unset = the official code's 50 steps, lr 0.1; the key is unchanged then). */
  opticam?: { steps?: number; lr?: number };
}

/** The methods that follow either code on request, with the conventions they offer (first = default). */
const CONVENTION_METHODS = SALIENCY_METHOD_TABLE.flatMap((m) => (m.info.conventions ? [[m.info.name, m.info.conventions] as const] : []));

/** RISE's settings, shared with the evaluate stage's sanity check (it recomputes RISE maps). */
export const RISE_PROPERTIES = {
  masks: { type: 'integer', minimum: 1, default: 6000 },
  cells: { type: 'integer', minimum: 1, default: 8 },
  p1: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.1 },
} as const;

export const saliencyParamsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://ca-pipe.dev/schemas/stages/saliency.schema.json',
  title: 'saliency stage params',
  description:
    "Saliency maps of a trained model (input `model`) on a dataset index (input `data`), stored at the methods' own resolution " +
    '(target-layer grid; RISE at input size) in shards maps/shard-NNNNN.safetensors, with saliency.json and PNG overlays. ' +
    'With `import`, maps computed elsewhere are validated and stored instead.',
  type: 'object',
  additionalProperties: false,
  properties: {
    methods: {
      description: 'Methods to run (ca-attention needs a CA-Stream model). With import: the names of the imported maps.',
      type: 'array',
      items: { enum: [...SALIENCY_METHOD_NAMES] },
      minItems: 1,
      uniqueItems: true,
      default: ['gradcam', 'gradcampp', 'random', 'center', 'ones'],
    },
    target: { description: "Class explained: the ground-truth label or the model's prediction.", enum: ['gt', 'pred'], default: 'gt' },
    split: { description: 'Images of the index to explain.', enum: ['val', 'train', 'all'], default: 'val' },
    limit: {
      description:
        'Only N images of the split, class-balanced: a seeded round robin over the classes (seeded order within each class), ' +
        'so N images cover min(N, classes) classes; the same seed gives the same images for every model.',
      type: 'integer',
      minimum: 1,
    },
    batch_size: {
      description: 'Images per forward call for taps and gradients (speed only; not in the key; engine auto calibrates at this size).',
      type: 'integer',
      minimum: 1,
      default: 16,
    },
    method_batch: {
      description: 'Masked images (Score-CAM, RISE) or ablated activations (Ablation-CAM) per forward call (speed only; not in the key).',
      type: 'integer',
      minimum: 1,
      default: 64,
    },
    engine: engineParamSchema,
    shard_size: {
      description: 'Images per output shard (also the resume granularity of this stage and of evaluate).',
      type: 'integer',
      minimum: 1,
      default: 128,
    },
    dtype: { description: 'Storage type of the maps.', enum: ['float32', 'float16'], default: 'float32' },
    overlays: {
      description:
        'How many of the explained images get PNG overlays for every method: the first of the balanced order, so they interleave classes.',
      type: 'integer',
      minimum: 0,
      default: 8,
    },
    seed: {
      description:
        'Seed of the image selection (limit, overlays, storage order) and of the seeded methods (random baseline, RISE: image id i uses a seed mixed from (seed, i)).',
      type: 'integer',
      default: 0,
    },
    rise: {
      description: 'RISE settings (official defaults for ResNet-50: 6000 masks, 8×8 cells, p1 = 0.1).',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: RISE_PROPERTIES,
    },
    convention: {
      description:
        'Per method, whose definition to follow where the original CA-Stream code and pytorch-grad-cam 1.5.5 differ ' +
        "(gradcampp: α's ε, 2.2e-16 vs 1e-6; scorecam: black vs mean-colour masking and probability vs channel-softmax-of-logits weights). " +
        'Unset means ca-stream; the choice is recorded in saliency.json and the shards.',
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(CONVENTION_METHODS.map(([name, offered]) => [name, { enum: [...offered] }])),
    },
    opticam: {
      description:
        "Opti-CAM's optimisation: Adam steps and learning rate. Unset: the official generate_opticam.py defaults (50 steps, lr 0.1).",
      type: 'object',
      additionalProperties: false,
      properties: {
        steps: { type: 'integer', minimum: 1 },
        lr: { type: 'number', exclusiveMinimum: 0 },
      },
    },
    preprocessing: preprocessingParam(`${UNSET_FROM_MODEL} Recorded in saliency.json.`),
    import: {
      description:
        "Import maps instead of computing them: npy_dir = a folder of <dataset id>.npy maps (one method, the original project's layout); " +
        'safetensors = a file with ids and map.<method> tensors. Paths are relative to the experiment file; their listing enters the key.',
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: {
        npy_dir: { type: 'string', minLength: 1 },
        safetensors: { type: 'string', minLength: 1 },
      },
    },
  },
} as const;
