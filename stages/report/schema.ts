// Params schema of the `report` kind (mirrored in schemas/stages/report.schema.json).
export const reportParamsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://ca-pipe.dev/schemas/stages/report.schema.json',
  title: 'report stage params',
  description:
    'Renders one self-contained HTML report (plus summary.md and summary.json) from train, saliency and evaluate outputs of every variant.',
  type: 'object',
  additionalProperties: false,
  properties: {
    title: { type: 'string', description: 'Report title (default: "ca-pipe report — <experiment>").' },
    gallery_images: {
      type: 'integer',
      minimum: 0,
      default: 6,
      description: 'Images in the aligned gallery (each shown for every method and pooling).',
    },
    max_bytes: {
      type: 'integer',
      minimum: 100000,
      default: 5000000,
      description: 'Size budget of report.html; the gallery is thinned to stay under it.',
    },
    bootstrap: { type: 'integer', minimum: 100, default: 1000, description: 'Bootstrap resamples for paired CA-vs-GAP intervals.' },
    seed: { type: 'integer', default: 0, description: 'Seed of the bootstrap.' },
    baseline: {
      type: 'string',
      minLength: 1,
      default: 'random',
      description:
        "Method whose CA − GAP difference is subtracted from every other method's, image by image (the baseline-adjusted comparison); a gain the baseline map shows too comes from the models, not the explanation.",
    },
  },
} as const;
