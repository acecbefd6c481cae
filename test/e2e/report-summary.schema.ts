// JSON Schema (draft 2020-12) of the report's summary.json (format ca-pipe.report/1), written from
// stages/report/build.ts's ReportSummary. Used by the end-to-end test to check a real report.
import { METRICS } from '../../ml/metrics/table.js';

const interval = {
  type: 'object',
  required: ['mean', 'lo', 'hi', 'n'],
  properties: {
    mean: { type: ['number', 'null'] },
    lo: { type: ['number', 'null'] },
    hi: { type: ['number', 'null'] },
    n: { type: 'integer', minimum: 0 },
  },
} as const;

const rowRef = {
  type: 'object',
  required: ['variant', 'method', 'metric'],
  properties: { variant: { type: 'string' }, method: { type: 'string' }, metric: { type: 'string' } },
} as const;

export const reportSummarySchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'ca-pipe report summary.json',
  type: 'object',
  required: ['format', 'title', 'models', 'evaluations', 'paired', 'adjustment', 'sweep', 'ignored_inputs'],
  properties: {
    format: { const: 'ca-pipe.report/1' },
    title: { type: 'string', minLength: 1 },
    experiment: {
      type: 'object',
      required: ['name', 'tool_version', 'variants'],
      properties: { name: { type: 'string' }, tool_version: { type: 'string' }, variants: { type: 'array' } },
    },
    models: {
      type: 'array',
      items: {
        type: 'object',
        required: ['stage', 'variant', 'arch', 'head', 'heads'],
        properties: {
          stage: { type: 'string' },
          variant: { type: 'string' },
          arch: { type: 'string' },
          head: { enum: ['gap', 'ca-stream', 'ca-final'] },
          heads: { type: 'integer', minimum: 1 },
          final_val_acc: { type: 'number', minimum: 0, maximum: 1 },
          gap_val_acc: { type: 'number', minimum: 0, maximum: 1 },
          epochs: { type: 'integer', minimum: 1 },
        },
      },
    },
    evaluations: {
      type: 'array',
      items: {
        type: 'object',
        required: ['stage', 'variant', 'pooling', 'protocol', 'accuracy', 'methods'],
        properties: {
          stage: { type: 'string' },
          variant: { type: 'string' },
          pooling: { enum: ['gap', 'ca'] },
          protocol: { type: 'object' },
          accuracy: {
            type: 'object',
            required: ['top1', 'top5', 'n'],
            properties: {
              top1: { type: 'number', minimum: 0, maximum: 1 },
              top5: { type: 'number', minimum: 0, maximum: 1 },
              n: { type: 'integer', minimum: 1 },
            },
          },
          methods: {
            type: 'object',
            minProperties: 1,
            additionalProperties: {
              type: 'object',
              required: ['AD', 'AI', 'AG', 'insertion', 'deletion', 'excluded'],
              properties: {
                AD: interval,
                AI: interval,
                AG: interval,
                insertion: interval,
                deletion: interval,
                pointing: interval,
                energy: interval,
                excluded: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } },
              },
            },
          },
        },
      },
    },
    paired: {
      type: 'array',
      items: {
        type: 'object',
        required: ['variant', 'method', 'metric', 'gap', 'ca', 'diff'],
        properties: {
          variant: { type: 'string' },
          method: { type: 'string' },
          metric: { enum: METRICS.map((m) => m.key) },
          gap: { type: ['number', 'null'] },
          ca: { type: ['number', 'null'] },
          diff: interval,
          adjusted: {
            type: 'object',
            required: ['baseline', 'method_diff', 'baseline_diff', 'diff'],
            properties: {
              baseline: { type: 'string', minLength: 1 },
              method_diff: { type: ['number', 'null'] },
              baseline_diff: { type: ['number', 'null'] },
              diff: interval,
            },
          },
        },
      },
    },
    adjustment: {
      type: 'object',
      required: ['baseline', 'survive', 'vanish', 'emerge', 'text'],
      properties: {
        baseline: { type: 'string', minLength: 1 },
        survive: { type: 'array', items: rowRef },
        vanish: { type: 'array', items: rowRef },
        emerge: { type: 'array', items: rowRef },
        text: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      },
    },
    sweep: {
      type: 'array',
      items: {
        type: 'object',
        required: ['variant', 'values', 'headline'],
        properties: { values: { type: 'object' }, headline: { type: 'object', additionalProperties: { type: 'number' } } },
      },
    },
    ignored_inputs: { type: 'array', items: { type: 'string' } },
  },
} as const;
