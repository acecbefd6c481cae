// Training recipes: presets of optimizer, schedule and regularisation whose fields a user can
// override. Fixes relative to the original `resnet_orig` / `vit_mod`:
//  - the vit warm-up and cosine length follow the real epoch count (original: T_max = 100 fixed,
//    so a 90-epoch run never finished its cosine and a 10-epoch run never left warm-up);
//  - label smoothing and EMA are real settings that the loop applies (original: both silently unused).
import type { OptimizerConfig } from './optim.js';
import type { ScheduleConfig } from './schedule.js';
import { validateSchedule } from './schedule.js';

export type RecipeName = 'resnet' | 'vit';

export interface EmaConfig {
  /** Per-update decay. */
  decay: number;
  /** Update the EMA every this many optimizer steps. */
  every: number;
  /** Ramp the decay as min(decay, (1 + n)/(10 + n)) over the first updates. */
  warmup: boolean;
  /**
   * Treat `decay` as torchvision's per-sample reference and adapt it to the batch size, update
   * period and epochs (see `emaDecayForRun` in ema.ts), as the original recipe did.
   */
  scaleWithBatch: boolean;
}

export interface Recipe {
  name: RecipeName;
  epochs: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig;
  /** Mixup Beta(α, α); 0 disables. */
  mixup: number;
  /** CutMix Beta(α, α); 0 disables. */
  cutmix: number;
  /** Probability of CutMix when both are enabled (timm switch_prob). */
  mixSwitchProb: number;
  /** Label smoothing ε of the cross-entropy targets (torch: (1 − ε)·onehot + ε/K). */
  labelSmoothing: number;
  ema: EmaConfig | null;
  /** Clip gradients to this global L2 norm; null disables. */
  clipGradNorm: number | null;
  /** Human-readable notes on adjustments made while resolving (log them). */
  notes: string[];
}

export type RecipeOverrides = {
  [K in keyof Recipe]?: Recipe[K] extends object | null ? Partial<NonNullable<Recipe[K]>> | null : Recipe[K];
};

const VIT_WARMUP_EPOCHS = 10;
/** What enabling EMA on a recipe without one starts from. */
const EMA_DEFAULTS: EmaConfig = { decay: 0.9998, every: 1, warmup: true, scaleWithBatch: false };

function preset(name: RecipeName): Omit<Recipe, 'epochs' | 'notes'> {
  switch (name) {
    case 'resnet':
      return {
        name,
        optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 1e-4 },
        schedule: { kind: 'multistep', granularity: 'epoch', milestones: [30, 60, 90], gamma: 0.1 },
        mixup: 0,
        cutmix: 0,
        mixSwitchProb: 0.5,
        labelSmoothing: 0,
        ema: null,
        clipGradNorm: null,
      };
    case 'vit':
      return {
        name,
        optimizer: { kind: 'adamw', lr: 9e-3, weightDecay: 0.3, betas: [0.9, 0.999], eps: 1e-8 },
        schedule: {
          kind: 'cosine',
          granularity: 'iter',
          etaMin: 0,
          warmup: VIT_WARMUP_EPOCHS,
          warmupUnit: 'epoch',
          warmupStartFactor: 0.01,
        },
        mixup: 0.2,
        cutmix: 1.0,
        mixSwitchProb: 0.5,
        labelSmoothing: 0.11,
        ema: { decay: 0.99998, every: 32, warmup: true, scaleWithBatch: true },
        clipGradNorm: null,
      };
    default:
      throw new Error(`unknown recipe '${name as string}' (expected resnet or vit)`);
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Merge `over` into `base`, rejecting fields the preset does not have (typos must not pass silently). */
function merge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
  path: string,
  known: Record<string, readonly string[]>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  const allowed = known[path] ?? Object.keys(base);
  for (const [k, v] of Object.entries(over)) {
    const p = path ? `${path}.${k}` : k;
    if (!allowed.includes(k)) throw new Error(`recipe override '${p}': unknown field (known: ${allowed.join(', ')})`);
    if (v === undefined) continue;
    if (isPlainObject(v) && isPlainObject(base[k])) {
      out[k] = merge(base[k] as Record<string, unknown>, v, p, known);
    } else {
      out[k] = v;
    }
  }
  return out;
}

const KNOWN_FIELDS: Record<string, readonly string[]> = {
  '': ['optimizer', 'schedule', 'mixup', 'cutmix', 'mixSwitchProb', 'labelSmoothing', 'ema', 'clipGradNorm'],
  optimizer: ['kind', 'lr', 'weightDecay', 'momentum', 'dampening', 'nesterov', 'betas', 'eps'],
  schedule: ['kind', 'granularity', 'stepSize', 'milestones', 'gamma', 'etaMin', 'warmup', 'warmupUnit', 'warmupStartFactor'],
  ema: ['decay', 'every', 'warmup', 'scaleWithBatch'],
};

/**
 * A preset with user overrides applied and tied to the run length. `itersPerEpoch` is used only to
 * validate the schedule (pass it when known).
 */
export function resolveRecipe(name: RecipeName, overrides: RecipeOverrides = {}, epochs: number, itersPerEpoch = 1): Recipe {
  if (!Number.isInteger(epochs) || epochs <= 0) throw new Error(`recipe '${name}': epochs must be a positive integer, got ${epochs}`);
  const base = preset(name) as unknown as Record<string, unknown>;
  const notes: string[] = [];
  const over = { ...(overrides as Record<string, unknown>) };
  for (const k of ['name', 'epochs', 'notes']) {
    if (k in over) throw new Error(`recipe override '${k}': not overridable (name and epochs are given separately)`);
  }
  // A user switching optimizer kind gets that kind's defaults, not the other kind's leftovers.
  const optOver = over.optimizer as Record<string, unknown> | undefined;
  if (optOver?.kind && optOver.kind !== (base.optimizer as OptimizerConfig).kind) {
    base.optimizer = { kind: optOver.kind, lr: (base.optimizer as OptimizerConfig).lr };
  }
  const schedOver = over.schedule as Record<string, unknown> | undefined;
  if (schedOver?.kind && schedOver.kind !== (base.schedule as ScheduleConfig).kind) {
    base.schedule = { kind: schedOver.kind, granularity: (base.schedule as ScheduleConfig).granularity };
  }
  if (isPlainObject(over.ema) && base.ema === null) base.ema = { ...EMA_DEFAULTS };
  const merged = merge(base, over, '', KNOWN_FIELDS) as unknown as Omit<Recipe, 'epochs' | 'notes'>;
  const r: Recipe = { ...merged, epochs, notes };

  // Tie the preset warm-up to the run: it may take at most a fifth of it. A user-set warm-up is kept
  // as given (validation below rejects one that does not fit).
  const userWarm = schedOver !== undefined && 'warmup' in schedOver;
  if (!userWarm && (r.schedule.warmup ?? 0) > 0 && (r.schedule.warmupUnit ?? 'epoch') === 'epoch') {
    const cap = Math.floor(epochs / 5);
    if (r.schedule.warmup! > cap) {
      notes.push(`recipe '${name}': warm-up shortened from ${r.schedule.warmup} to ${cap} epochs for a ${epochs}-epoch run`);
      r.schedule = { ...r.schedule, warmup: cap };
    }
  }
  if (r.schedule.kind === 'multistep' && !(schedOver && 'milestones' in schedOver)) {
    const beyond = (r.schedule.milestones ?? []).filter((m) => m >= epochs);
    if (beyond.length)
      notes.push(`recipe '${name}': milestones ${beyond.join(', ')} lie at or beyond the last epoch (${epochs}) and never apply`);
  }
  validateRecipe(r, itersPerEpoch);
  return r;
}

function validateRecipe(r: Recipe, itersPerEpoch: number): void {
  const fail = (field: string, msg: string) => {
    throw new Error(`recipe '${r.name}' field '${field}': ${msg}`);
  };
  if (!['sgd', 'adam', 'adamw'].includes(r.optimizer.kind)) fail('optimizer.kind', `'${r.optimizer.kind}' is not sgd, adam or adamw`);
  if (!(r.optimizer.lr > 0)) fail('optimizer.lr', `must be > 0, got ${r.optimizer.lr}`);
  if (r.optimizer.weightDecay !== undefined && !(r.optimizer.weightDecay >= 0))
    fail('optimizer.weightDecay', `must be >= 0, got ${r.optimizer.weightDecay}`);
  if (!(r.mixup >= 0)) fail('mixup', `must be >= 0, got ${r.mixup}`);
  if (!(r.cutmix >= 0)) fail('cutmix', `must be >= 0, got ${r.cutmix}`);
  if (!(r.mixSwitchProb >= 0 && r.mixSwitchProb <= 1)) fail('mixSwitchProb', `must be in [0, 1], got ${r.mixSwitchProb}`);
  if (!(r.labelSmoothing >= 0 && r.labelSmoothing < 1)) fail('labelSmoothing', `must be in [0, 1), got ${r.labelSmoothing}`);
  if (r.ema) {
    if (!(r.ema.decay > 0 && r.ema.decay < 1)) fail('ema.decay', `must be in (0, 1), got ${r.ema.decay}`);
    if (!(Number.isInteger(r.ema.every) && r.ema.every >= 1)) fail('ema.every', `must be a positive integer, got ${r.ema.every}`);
  }
  if (r.clipGradNorm !== null && !(r.clipGradNorm > 0)) fail('clipGradNorm', `must be > 0 or null, got ${r.clipGradNorm}`);
  try {
    validateSchedule(r.schedule, { epochs: r.epochs, itersPerEpoch });
  } catch (e) {
    throw new Error(`recipe '${r.name}': ${(e as Error).message}`);
  }
}
