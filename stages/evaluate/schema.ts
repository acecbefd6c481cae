// Params schema of the `evaluate` kind. Every knob of the faithfulness protocol is a param of this
// stage only, so changing one re-keys the evaluation and nothing upstream.
import { preprocessingParam, UNSET_FROM_MODEL } from '../preprocessing-param.js';
import { engineParamSchema, type EngineParam } from '../engine-param.js';

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
    preprocessing: preprocessingParam(`${UNSET_FROM_MODEL} Warns when the saliency maps were computed on other pixels.`),
  },
} as const;
