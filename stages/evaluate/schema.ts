// Params schema of the `evaluate` kind. Every knob of the faithfulness protocol is a param of this
// stage only, so changing one re-keys the evaluation and nothing upstream.
import { preprocessingParam, UNSET_FROM_MODEL } from '../preprocessing-param.js';
import { engineParamSchema, type EngineParam } from '../engine-param.js';
import { RISE_PROPERTIES } from '../saliency/schema.js';

export interface EvaluateParams {
  protocol: 'ca-stream' | 'rise';
  protocol_overrides: Record<string, unknown>;
  methods?: string[];
  keep_constant: string[];
  localisation: 'auto' | 'off';
  bootstrap: { samples: number; seed: number; level: number };
  batch_size: number;
  preprocessing?: 'torchvision' | 'fast';
  engine?: EngineParam;
  /** ROAD (absent: not run; present: its fields get their defaults). */
  road?: { percentages: number[]; orders: Array<'morf' | 'lerf'>; noise: number; seed: number };
  /** Model-randomisation sanity check (absent: not run). */
  sanity?: { seed: number; steps?: string[]; saliency_seed: number; rise: { masks: number; cells: number; p1: number } };
}

export const evaluateParamsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://ca-pipe.dev/schemas/stages/evaluate.schema.json',
  title: 'evaluate stage params',
  description:
    'Scores saliency maps (input `saliency`) of a model (input `model`) on its images (input `data`): top-1/top-5 accuracy, ' +
    'AD, AI, AG, insertion and deletion per method, plus the pointing game and the energy-based pointing game when the index has ' +
    'object masks or boxes. Writes evaluation.json (means with 95% bootstrap intervals, degenerate maps counted), per_image.jsonl and curves.json.',
  type: 'object',
  additionalProperties: false,
  properties: {
    protocol: {
      description: 'Named protocol (design §5): ca-stream reproduces the CA-Stream paper; rise the RISE evaluation.',
      enum: ['ca-stream', 'rise'],
      default: 'ca-stream',
    },
    protocol_overrides: {
      description:
        'Deep-merged over the named protocol; every field of ml/metrics Protocol may be set (e.g. {insdel: {step: {count: 4}}}, ' +
        '{target: pred}, {confidence: {maskSpace: normalised}}). Unknown fields are errors. The resolved protocol is written to evaluation.json.',
      type: 'object',
      default: {},
    },
    methods: {
      description: 'Methods to score (default: every method of the saliency input).',
      type: 'array',
      items: { type: 'string', minLength: 1 },
      minItems: 1,
      uniqueItems: true,
    },
    keep_constant: {
      description:
        "Methods whose constant maps stay in the means (baselines that are constant by design); other methods' constant maps are left out and counted.",
      type: 'array',
      items: { type: 'string' },
      uniqueItems: true,
      default: ['ones', 'center', 'random'],
    },
    localisation: {
      description: 'auto: pointing games when the index has object masks (or else boxes); off: never.',
      enum: ['auto', 'off'],
      default: 'auto',
    },
    bootstrap: {
      description: 'Percentile bootstrap of the mean over images.',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        samples: { type: 'integer', minimum: 1, default: 1000 },
        seed: { type: 'integer', default: 0 },
        level: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.95 },
      },
    },
    engine: engineParamSchema,
    batch_size: {
      description: 'Images per forward call (speed only; not in the key; engine auto calibrates at this size).',
      type: 'integer',
      minimum: 1,
      default: 32,
    },
    road: {
      description:
        'Run ROAD (Rong et al. 2022, remove and debias, no retraining): per percentage, remove pixels in the map order (MoRF: p = fraction removed; LeRF: p = fraction kept, as the official code) ' +
        'and fill them by noisy linear imputation, then score the unchanged model. Adds road_morf, road_lerf and road (= (LeRF − MoRF)/2) per image ' +
        '(mean target probability over the percentages) and the per-percentage curves to evaluation.json. Absent: not run. Costs one sparse solve per channel and one forward per image, method, order and percentage.',
      type: 'object',
      additionalProperties: false,
      properties: {
        percentages: {
          description: 'The official percentages by default (road_evaluation experiments/cifar10).',
          type: 'array',
          items: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
          minItems: 1,
          default: [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9],
        },
        orders: {
          type: 'array',
          items: { enum: ['morf', 'lerf'] },
          minItems: 1,
          uniqueItems: true,
          default: ['morf', 'lerf'],
        },
        noise: { description: 'Imputation noise σ in [0,1] pixel units (official 0.01).', type: 'number', minimum: 0, default: 0.01 },
        seed: { description: 'Seeds the tie-breaking jitter and the imputation noise.', type: 'integer', default: 0 },
      },
    },
    sanity: {
      description:
        'Run the model-parameter randomisation test (Adebayo et al. 2018) with cascading randomisation: re-initialise the classifier, then the CA head, then the ' +
        "backbone stages from the last to the stem (PyTorch's reset rules, seeded), recompute every evaluated method's maps on each randomised model and compare " +
        "them with the trained model's maps per image: Spearman ρ and SSIM per cascade step in evaluation.json; sanity_rank and sanity_ssim (fully randomised model) " +
        'per image. Absent: not run. Costs one saliency pass per cascade step.',
      type: 'object',
      additionalProperties: false,
      properties: {
        seed: { description: 'Seed of the re-initialisation.', type: 'integer', default: 0 },
        steps: {
          description:
            'Cascade steps to run, top down (default: all of the model: classifier, head (CA models), layer4 … layer1 or features.N … features.1, stem).',
          type: 'array',
          items: { type: 'string', minLength: 1 },
          minItems: 1,
          uniqueItems: true,
        },
        saliency_seed: {
          description: "Seed of the seeded methods (random baseline, RISE) on both models; the saliency stage's default is 0.",
          type: 'integer',
          default: 0,
        },
        rise: {
          description: 'RISE settings for the recomputed maps (default: the saliency stage defaults).',
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: RISE_PROPERTIES,
        },
      },
    },
    preprocessing: preprocessingParam(`${UNSET_FROM_MODEL} Warns when the saliency maps were computed on other pixels.`),
  },
} as const;
