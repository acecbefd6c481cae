// The train stage's settings (schema-defaulted, snake_case as users write them) and their
// translation into a resolved recipe. Recipe-derived fields have no schema default: absent means
// "take the recipe's value", present means "override it".
import type { Preprocessing } from '../data/preprocessing.js';
import type { HeadKind } from '../models/params.js';
import type { RecipeName, RecipeOverrides } from './recipe.js';
import type { TrainMode } from '../models/model.js';

export type TrainModeName = TrainMode;

export interface TrainParams {
  arch: string;
  head: HeadKind;
  heads: number;
  /** ca-final only: with the C4→C4 projection. */
  project: boolean;
  dropout: number;
  mode: TrainModeName;
  epochs: number;
  batch_size: number;
  recipe: RecipeName;
  optimizer?: 'sgd' | 'adam' | 'adamw';
  lr?: number;
  weight_decay?: number;
  momentum?: number;
  nesterov?: boolean;
  schedule?: 'constant' | 'step' | 'multistep' | 'cosine';
  /** 'epoch' or 'iter': when the lr changes. */
  schedule_per?: 'epoch' | 'iter';
  milestones?: number[];
  step_size?: number;
  gamma?: number;
  warmup_epochs?: number;
  criterion: 'ce' | 'bce';
  label_smoothing?: number;
  mixup?: number;
  cutmix?: number;
  ema?: boolean;
  ema_decay?: number;
  ema_every?: number;
  clip_grad_norm?: number | null;
  backbone_lr_mult: number;
  seed: number;
  fraction: number;
  input_size: number;
  resize?: number;
  /** Unset: the index's, else torchvision at input size 224 and fast otherwise (no schema default: unset keeps old keys). */
  preprocessing?: Preprocessing;
  augment: boolean;
  crop_scale: [number, number];
  checkpoint_every_epochs: number;
  checkpoint_every_iters: number;
  feature_dtype: 'float16' | 'float32';
  /** Frozen mode: engine of the backbone forwards (absent: auto, see ml/forward/rule.ts). */
  engine?: 'auto' | 'onnx' | 'tfjs';
  workers?: number;
  log_every: number;
}

export const TRAIN_DEFAULTS: Omit<
  TrainParams,
  | 'optimizer'
  | 'lr'
  | 'weight_decay'
  | 'momentum'
  | 'nesterov'
  | 'schedule'
  | 'schedule_per'
  | 'milestones'
  | 'step_size'
  | 'gamma'
  | 'warmup_epochs'
  | 'label_smoothing'
  | 'mixup'
  | 'cutmix'
  | 'ema'
  | 'ema_decay'
  | 'ema_every'
  | 'clip_grad_norm'
  | 'resize'
  | 'workers'
  | 'engine'
> = {
  arch: 'resnet50',
  head: 'ca-stream',
  heads: 1,
  project: false,
  dropout: 0,
  mode: 'frozen',
  epochs: 90,
  batch_size: 64,
  recipe: 'resnet',
  criterion: 'ce',
  backbone_lr_mult: 1,
  seed: 0,
  fraction: 1,
  input_size: 224,
  augment: true,
  crop_scale: [0.08, 1],
  checkpoint_every_epochs: 1,
  checkpoint_every_iters: 0,
  feature_dtype: 'float16',
  log_every: 10,
};

/** Fill defaults for a params object that did not go through the schema (library callers, tests). */
export function withTrainDefaults(p: Partial<TrainParams>): TrainParams {
  return { ...TRAIN_DEFAULTS, ...p } as TrainParams;
}

/** Recipe overrides from the explicit fields. */
export function recipeOverrides(p: TrainParams): RecipeOverrides {
  const o: RecipeOverrides = {};
  const opt: Record<string, unknown> = {};
  if (p.optimizer !== undefined) opt.kind = p.optimizer;
  if (p.lr !== undefined) opt.lr = p.lr;
  if (p.weight_decay !== undefined) opt.weightDecay = p.weight_decay;
  if (p.momentum !== undefined) opt.momentum = p.momentum;
  if (p.nesterov !== undefined) opt.nesterov = p.nesterov;
  if (Object.keys(opt).length) o.optimizer = opt;
  const sched: Record<string, unknown> = {};
  if (p.schedule !== undefined) sched.kind = p.schedule;
  if (p.schedule_per !== undefined) sched.granularity = p.schedule_per;
  if (p.milestones !== undefined) sched.milestones = p.milestones;
  if (p.step_size !== undefined) sched.stepSize = p.step_size;
  if (p.gamma !== undefined) sched.gamma = p.gamma;
  if (p.warmup_epochs !== undefined) {
    sched.warmup = p.warmup_epochs;
    sched.warmupUnit = 'epoch';
  }
  if (Object.keys(sched).length) o.schedule = sched;
  if (p.label_smoothing !== undefined) o.labelSmoothing = p.label_smoothing;
  if (p.mixup !== undefined) o.mixup = p.mixup;
  if (p.cutmix !== undefined) o.cutmix = p.cutmix;
  if (p.clip_grad_norm !== undefined) o.clipGradNorm = p.clip_grad_norm;
  if (p.ema === false) o.ema = null;
  else if (p.ema === true || p.ema_decay !== undefined || p.ema_every !== undefined) {
    const e: Record<string, unknown> = {};
    if (p.ema_decay !== undefined) e.decay = p.ema_decay;
    if (p.ema_every !== undefined) e.every = p.ema_every;
    o.ema = e;
  }
  return o;
}
