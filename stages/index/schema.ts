// Params schema of the `index` kind; schemas/stages/index.schema.json holds the same document
// (test/data/index-schema.test.ts keeps the two equal) so editors can validate experiment files.
// Source-specific defaults (synthetic.*) live inside their own object so that an imagefolder's
// key does not carry synthetic settings.
export const indexParamsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://ca-pipe.dev/schemas/stages/index.schema.json',
  title: 'index stage params',
  description:
    'Indexes a dataset: an ImageNet-style folder, an annotation list, or the built-in synthetic shapes benchmark. ' +
    'Outputs index.jsonl, classes.json, splits.json, dataset.json, summary.json. The cache key includes a ' +
    'listing of (path, size, mtime) of every image, never their bytes, so an unchanged folder is a cache hit. ' +
    'Record paths are relative to dataset.json\'s root: the absolute dataset folder, or "." (the index directory ' +
    'itself) for synthetic images, which are written into the output.',
  type: 'object',
  additionalProperties: false,
  required: ['source'],
  properties: {
    source: {
      description:
        'imagefolder: <root>/<class>/**/<image>; list: a path,label CSV or "path label" text list; synthetic: generated shapes with masks.',
      enum: ['imagefolder', 'list', 'synthetic'],
    },
    root: {
      description:
        'imagefolder: the folder holding one sub-folder per class (classes = sorted folder names). ' +
        "list: folder the listed paths are relative to (default: the list file's folder). Relative to the experiment file.",
      type: 'string',
      minLength: 1,
    },
    extensions: {
      description: 'imagefolder: image file extensions, case-insensitive.',
      type: 'array',
      items: { type: 'string', pattern: '^\\.?[A-Za-z0-9]+$' },
      minItems: 1,
      default: ['jpg', 'jpeg', 'png', 'webp'],
    },
    file: {
      description:
        'list: the list file. CSV lines "<path>,<label>" are split on the LAST comma (file names may contain spaces or commas); ' +
        'text lines "<path> <label>" on the last whitespace. Path-only lists take the label from the class folder (alphabetical index).',
      type: 'string',
      minLength: 1,
    },
    format: {
      description: 'list: csv, txt, or auto (csv when the first data line contains a comma).',
      enum: ['auto', 'csv', 'txt'],
      default: 'auto',
    },
    header: {
      description: 'list: skip a header line. auto detects headers like "path,label".',
      enum: ['auto', true, false],
      default: 'auto',
    },
    classes: {
      description:
        'list: optional classes file (JSON array or one name per line; label = position). Without it, names come from the ' +
        'class folders when folders and labels correspond one-to-one, else "class_<n>".',
      type: 'string',
      minLength: 1,
    },
    num_classes: {
      description: 'list: number of classes, for range checks of the labels (default: largest label + 1).',
      type: 'integer',
      minimum: 1,
    },
    synthetic: {
      description: 'synthetic: generator settings (used when source is synthetic; all fields have defaults).',
      type: 'object',
      additionalProperties: false,
      properties: {
        classes: {
          description: 'Number of shape classes (circle, square, triangle, star, cross, ring, hexagon, diamond).',
          type: 'integer',
          minimum: 1,
          maximum: 8,
          default: 6,
        },
        per_class: { description: 'Images per class (train + val).', type: 'integer', minimum: 1, default: 100 },
        size: { description: 'Image side in pixels.', type: 'integer', minimum: 16, maximum: 1024, default: 64 },
        seed: { description: 'Generator seed; the images are byte-identical for a given seed.', type: 'integer', default: 0 },
        clutter: {
          description:
            'full (the default): striped, value-noise or gradient backgrounds and 3–8 distractors in the object colours; ' +
            'low: no distractors, no stripes (same objects, positions, colours and masks). A small net learns `low` in a few epochs.',
          enum: ['full', 'low'],
        },
      },
    },
    split: {
      description:
        'Train/validation split: a seeded random share (the validation set is the first floor(N·fraction) items of a seeded ' +
        'permutation, as in the original train_splitter) or a JSON file {"train": [ids], "val": [ids]} (indices override fraction).',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        fraction: { description: 'Validation share in [0, 1).', type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.2 },
        seed: { description: 'Seed of the split permutation.', type: 'integer', default: 0 },
        indices: {
          description: 'JSON file of item ids {"train": [...], "val": [...]}, relative to the experiment file.',
          type: 'string',
          minLength: 1,
        },
      },
    },
    verify: {
      description:
        'none: trust the list (no file access; lists only); stat: check every file exists and record size and mtime; ' +
        "content: also record each file's sha256 (reads every byte when the stage runs; the cache key still comes from the cheap listing).",
      enum: ['none', 'stat', 'content'],
      default: 'stat',
    },
    limit: {
      description:
        'Keep only the first N items in list order (imagefolder: sorted path order; synthetic: class-major order), before splitting.',
      type: 'integer',
      minimum: 1,
    },
    preprocessing: {
      description:
        "The dataset's pixel convention, recorded in dataset.json for the stages that read its images (train, features, saliency, " +
        'evaluate) unless they set their own. torchvision: the pixels torchvision computes on PIL images (PIL decode without colour ' +
        "management or EXIF rotation, Pillow's antialiased bilinear, ToTensor + Normalize); fast: libvips decode and resize " +
        '(colour-managed, about 1/255 off on most photos). Unset: those stages use torchvision at input size 224, fast otherwise.',
      enum: ['torchvision', 'fast'],
    },
  },
} as const;
