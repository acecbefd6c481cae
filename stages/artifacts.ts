// What the ML stages hand each other on disk. Every stage's output directory is committed to the
// store as-is and read back (read-only) by its consumers, so these names and shapes are the
// contract between stages/train, stages/saliency, stages/evaluate and stages/report.
// Types only (plus file-name constants): no ml/ imports at run time, so the CLI can load it cheaply.
import type { ModelCardLike } from '../ml/explain/model-dir.js';
import type { MetricKey } from '../ml/metrics/table.js';
import type { TrainMode } from '../ml/models/model.js';

/** Output of `kind: train` (and the model an evaluation or saliency stage runs). */
export const MODEL_FILES = {
  /** Model description, see ModelCard. */
  card: 'model.json',
  /** Weights after the last epoch, official/torchvision parameter names, F32. */
  final: 'final.safetensors',
  /** Weights of the epoch with the lowest validation loss. */
  best: 'best.safetensors',
  /** One JSON object per line: {type:'iter'|'epoch', epoch, iter, loss, acc, lr, val_loss?, val_acc?}; timings are in the run's provenance, so reruns reproduce the bytes. */
  metrics: 'metrics.jsonl',
  /** TensorBoard event files live under this folder. */
  tensorboard: 'tb',
  /** TrainSummary. */
  summary: 'summary.json',
} as const;

/** The model card as the train stage writes it: ml's card fields, with the exact values it uses. */
export interface ModelCard extends ModelCardLike {
  format: 'ca-pipe.model/1';
  /** Which weights file consumers should use by default. */
  weights: 'final.safetensors' | 'best.safetensors';
  /** Absolute path of the user's weights file a model directory was made from (experiments/tools/model-dir.mjs); errors name it instead of the store's copy. */
  source?: string;
}

export interface TrainSummary {
  mode: TrainMode;
  epochs: number;
  best_epoch: number;
  best_val_loss: number;
  final_val_acc: number;
  final_val_loss: number;
  /** Validation accuracy of the same backbone with GAP pooling, when the mode allows (frozen). */
  gap_val_acc?: number;
  trainable_parameters: string[];
}

/** Output of `kind: saliency`. */
export const SALIENCY_FILES = {
  /** SaliencyMeta. */
  meta: 'saliency.json',
  /** Shards: `maps/shard-00000.safetensors` with `ids` (I64, n) and one `map.<method>` (F32|F16, n×h×w) per method;
   *  metadata `targets` (JSON array, per id) and `degenerate` (JSON, per method: reason → count). */
  shardDir: 'maps',
  /** Overlay samples: `overlays/<id>-<method>.png` (jet over the image). */
  overlayDir: 'overlays',
} as const;

export interface SaliencyMeta {
  format: 'ca-pipe.saliency/1';
  methods: string[];
  /** Feature resolution of the stored maps. */
  h: number;
  w: number;
  /** Per method: resolution of its stored maps (the feature grid, except RISE: the input size). */
  sizes?: Record<string, { h: number; w: number }>;
  /** True when the maps were imported (params.import) rather than computed. */
  imported?: boolean;
  split: 'train' | 'val' | 'all';
  target: 'gt' | 'pred';
  pooling: 'gap' | 'ca';
  /** Pixel convention the maps were computed on (absent before conventions existed: fast). */
  preprocessing?: 'torchvision' | 'fast';
  ids: number[];
  /** Target class per id (same order as ids). */
  targets: number[];
  shards: string[];
  /** Per method: maps flagged degenerate (constant/NaN), by reason. */
  degenerate: Record<string, Record<string, number>>;
  overlays: Array<{ id: number; method: string; file: string }>;
  /** Per method with a choice of definition (Grad-CAM++, Score-CAM): 'ca-stream' | 'pytorch-grad-cam'. */
  conventions?: Record<string, string>;
}

/** Output of `kind: evaluate`. */
export const EVALUATE_FILES = {
  /** EvaluateSummary. */
  summary: 'evaluation.json',
  /** One line per (image, method): {id, method, target, status, <each metric of ml/metrics/table.ts>, p, o}. */
  perImage: 'per_image.jsonl',
  /** {method: {insertion: number[], deletion: number[]}} mean curves. */
  curves: 'curves.json',
} as const;

export interface Interval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/**
 * Per method: each metric of ml/metrics/table.ts (those needing masks only when the index has
 * them). Partial on purpose: a summary committed before a metric was added lacks it.
 */
export type MethodScores = Partial<Record<MetricKey, Interval>> & { excluded: Record<string, number> };

export interface EvaluateSummary {
  format: 'ca-pipe.evaluate/1';
  protocol: Record<string, unknown>;
  pooling: 'gap' | 'ca';
  /** non_finite: images whose clean scores held NaN/±Inf, counted as wrong (absent in older outputs). */
  accuracy: { top1: number; top5: number; n: number; non_finite?: number };
  methods: Record<string, MethodScores>;
}
