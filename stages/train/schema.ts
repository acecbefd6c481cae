// Params schema of the `train` kind. Fields marked "default: from the recipe" have no schema
// default on purpose: absent means the recipe's value, present overrides it.
import { backboneNames } from '../../ml/models/backbone-names.js';
import { preprocessingParam, UNSET_FROM_INDEX } from '../preprocessing-param.js';
import { engineParamSchema } from '../engine-param.js';

const ARCHS = backboneNames();

export const trainParamsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://ca-pipe.dev/schemas/stages/train.schema.json',
  title: 'train stage params',
  description:
    'Trains a backbone (ResNet / ResNeXt / Wide ResNet, ConvNeXt, EfficientNet) with a GAP, CA-Stream or CA-final head. Inputs: data (an index stage, required), init (a train stage whose ' +
    'final weights initialise backbone + classifier; required for frozen), features (optional, a features stage: cached backbone taps ' +
    'for frozen training without augmentation). Outputs: model.json, final.safetensors, best.safetensors (lowest validation loss), ' +
    'metrics.jsonl, tb/ (TensorBoard scalars), summary.json. Resumes from its last checkpoint after an interruption.',
  type: 'object',
  additionalProperties: false,
  properties: {
    arch: {
      description:
        'Backbone architecture (torchvision names; resnet-mini*, convnext-mini and efficientnet-mini are small variants for quick experiments).',
      enum: ARCHS,
      default: 'resnet50',
    },
    head: {
      description:
        'gap: torchvision pooling; ca-stream: the CA blocks of the original code (ResNet: five; ConvNeXt: four; EfficientNet: nine); ca-final: one CA block on the last feature map (ConvNeXt: the original CLS_KV block, one head).',
      enum: ['gap', 'ca-stream', 'ca-final'],
      default: 'ca-stream',
    },
    heads: {
      description: "Attention heads of the CA blocks (channel groups); must divide every tap's channel count.",
      type: 'integer',
      minimum: 1,
      default: 1,
    },
    project: { description: 'ca-final only: add the C4→C4 projection after the block.', type: 'boolean', default: false },
    dropout: {
      description: 'CA dropout after the softmax and after each projection during training (never on l4).',
      type: 'number',
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0,
    },
    mode: {
      description:
        'frozen: train the CA token and projections only; backbone, BatchNorm statistics and classifier stay fixed (the backbone runs ' +
        'in ONNX Runtime or tfjs, see engine). finetune: everything trains, from init. scratch: random initialisation (e.g. to pretrain a backbone).',
      enum: ['frozen', 'finetune', 'scratch'],
      default: 'frozen',
    },
    epochs: { description: 'Number of epochs.', type: 'integer', minimum: 1, default: 90 },
    batch_size: {
      description: 'Images per optimizer step (the last incomplete batch of an epoch is dropped).',
      type: 'integer',
      minimum: 1,
      default: 64,
    },
    recipe: {
      description:
        'Preset of optimizer, schedule and regularisation. resnet: SGD lr 0.1, momentum 0.9, wd 1e-4, ×0.1 at epochs 30/60/90. vit: AdamW lr 9e-3, wd 0.3, warm-up then cosine, mixup 0.2 / cutmix 1.0, label smoothing 0.11, EMA. Explicit fields override it.',
      enum: ['resnet', 'vit'],
      default: 'resnet',
    },
    optimizer: { description: 'Optimizer (default: from the recipe).', enum: ['sgd', 'adam', 'adamw'] },
    lr: { description: 'Base learning rate (default: from the recipe).', type: 'number', exclusiveMinimum: 0 },
    weight_decay: {
      description: 'Weight decay (L2 for sgd/adam, decoupled for adamw; default: from the recipe).',
      type: 'number',
      minimum: 0,
    },
    momentum: { description: 'SGD momentum (default: from the recipe).', type: 'number', minimum: 0 },
    nesterov: { description: 'SGD Nesterov momentum (default: from the recipe).', type: 'boolean' },
    schedule: { description: 'Learning-rate schedule (default: from the recipe).', enum: ['constant', 'step', 'multistep', 'cosine'] },
    schedule_per: { description: 'Change the lr once per epoch or every iteration (default: from the recipe).', enum: ['epoch', 'iter'] },
    milestones: {
      description: 'multistep: epochs (0-based) at which the lr is multiplied by gamma.',
      type: 'array',
      items: { type: 'integer', minimum: 0 },
    },
    step_size: { description: 'step: decay period in epochs.', type: 'integer', minimum: 1 },
    gamma: { description: 'step/multistep decay factor.', type: 'number', exclusiveMinimum: 0 },
    warmup_epochs: { description: 'Linear warm-up length in epochs (default: from the recipe).', type: 'number', minimum: 0 },
    criterion: {
      description: 'ce: softmax cross-entropy; bce: binary cross-entropy on one-hot (or mixed) targets.',
      enum: ['ce', 'bce'],
      default: 'ce',
    },
    label_smoothing: {
      description: 'Label smoothing ε of the targets, really applied (default: from the recipe).',
      type: 'number',
      minimum: 0,
      exclusiveMaximum: 1,
    },
    mixup: { description: 'Mixup Beta(α, α); 0 disables (default: from the recipe).', type: 'number', minimum: 0 },
    cutmix: { description: 'CutMix Beta(α, α); 0 disables (default: from the recipe).', type: 'number', minimum: 0 },
    ema: {
      description:
        'Keep an exponential moving average of the trained weights; validation and saved weights use it (default: from the recipe).',
      type: 'boolean',
    },
    ema_decay: {
      description: 'EMA decay per update (default: from the recipe, else 0.9998).',
      type: 'number',
      exclusiveMinimum: 0,
      exclusiveMaximum: 1,
    },
    ema_every: { description: 'Update the EMA every N optimizer steps.', type: 'integer', minimum: 1 },
    clip_grad_norm: {
      description: 'Clip gradients to this global L2 norm; null disables (default: from the recipe).',
      type: ['number', 'null'],
      exclusiveMinimum: 0,
    },
    backbone_lr_mult: {
      description: 'finetune: learning-rate multiplier of the backbone parameters (a parameter group).',
      type: 'number',
      minimum: 0,
      default: 1,
    },
    seed: { description: 'Seed of the initialisation, the data order, augmentation, mixup and dropout.', type: 'integer', default: 0 },
    fraction: {
      description: 'Share of the training split to use (a seeded subset).',
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 1,
      default: 1,
    },
    input_size: { description: 'Square input side in pixels.', type: 'integer', minimum: 16, default: 224 },
    resize: {
      description:
        'Eval transform: shorter side before the centre crop (default floor(input_size / 0.875)). Set it to input_size for images already at that size.',
      type: 'integer',
      minimum: 16,
    },
    preprocessing: preprocessingParam(`${UNSET_FROM_INDEX} Recorded in model.json; warns when the init model was trained with another.`),
    augment: {
      description:
        'Random-resized-crop + horizontal flip for training. false uses the eval transform; in frozen mode the backbone taps are then computed once (feature cache) and only the head runs per step.',
      type: 'boolean',
      default: true,
    },
    crop_scale: {
      description: 'Random-resized-crop area range.',
      type: 'array',
      items: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      minItems: 2,
      maxItems: 2,
      default: [0.08, 1],
    },
    checkpoint_every_epochs: {
      description: 'Checkpoint after every N-th epoch (the last is always checkpointed).',
      type: 'integer',
      minimum: 0,
      default: 1,
    },
    checkpoint_every_iters: { description: 'Also checkpoint every N optimizer steps; 0 = off.', type: 'integer', minimum: 0, default: 0 },
    feature_dtype: {
      description: 'Storage type of the feature cache (frozen, augment: false).',
      enum: ['float16', 'float32'],
      default: 'float16',
    },
    engine: { ...engineParamSchema, description: `Mode frozen only (the backbone taps). ${engineParamSchema.description}` },
    workers: { description: 'Image decoding threads (default: one per core). Does not affect results.', type: 'integer', minimum: 0 },
    log_every: {
      description: 'Write a per-iteration metrics record every N steps (0 = epochs only). Does not affect results.',
      type: 'integer',
      minimum: 0,
      default: 10,
    },
  },
} as const;

export const TRAIN_NON_KEY_PARAMS = ['workers', 'log_every'];
