// Params schema of the `features` kind: backbone taps of an index's images, cached as a stage
// output so a sweep over CA-head settings (lr, heads, epochs, …) computes them once.
import { preprocessingParam, UNSET_FROM_INDEX } from '../preprocessing-param.js';
import { engineParamSchema } from '../engine-param.js';

export const featuresParamsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://ca-pipe.dev/schemas/stages/features.schema.json',
  title: 'features stage params',
  description:
    "Runs the init model's backbone (ONNX Runtime or tfjs: `engine`) over the train and val splits of an index under the eval transform and stores " +
    'the five taps (NHWC) and the GAP logits. Inputs: data (an index stage), init (a train stage). A train stage in mode frozen with ' +
    'augment: false takes this output as its optional input "features" and trains only the head.',
  type: 'object',
  additionalProperties: false,
  required: ['arch'],
  properties: {
    arch: { description: 'Backbone architecture; must match the init model.', type: 'string', minLength: 1 },
    taps: {
      description: 'all: every tap a CA-Stream head reads; layer4: only the last feature map (ca-final / gap heads; any family).',
      enum: ['all', 'layer4'],
      default: 'all',
    },
    input_size: {
      description: "Square input side in pixels (must equal the train stage's input_size).",
      type: 'integer',
      minimum: 16,
      default: 224,
    },
    resize: {
      description:
        "Eval transform: shorter side before the centre crop (default floor(input_size / 0.875)); must equal the train stage's resize.",
      type: 'integer',
      minimum: 16,
    },
    preprocessing: preprocessingParam(`${UNSET_FROM_INDEX} Must resolve to the train stage's convention.`),
    dtype: { description: 'Storage type of the taps (float16 halves the size).', enum: ['float16', 'float32'], default: 'float16' },
    engine: engineParamSchema,
    workers: { description: 'Image decoding threads (default: one per core). Does not affect results.', type: 'integer', minimum: 0 },
  },
} as const;
