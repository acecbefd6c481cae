// Parameters of a dataset index (the `index` stage's params), with the defaults the schema states.
import { DEFAULT_EXTENSIONS } from './image-folder.js';
import type { Preprocessing } from './preprocessing.js';
import { CLUTTER_LEVELS, MAX_SYNTHETIC_CLASSES, type Clutter } from './synthetic.js';

export type IndexSource = 'imagefolder' | 'list' | 'synthetic';
export type VerifyMode = 'none' | 'stat' | 'content';

export interface SyntheticParams {
  classes: number;
  per_class: number;
  size: number;
  seed: number;
  /** No schema default on purpose: an index written before this setting existed keeps its key. */
  clutter?: Clutter;
}

export interface SplitParams {
  fraction?: number;
  seed?: number;
  /** JSON file {"train":[…],"val":[…]} of item ids; overrides fraction/seed. */
  indices?: string;
}

export interface IndexParams {
  source: IndexSource;
  root?: string;
  extensions?: string[];
  file?: string;
  format?: 'auto' | 'csv' | 'txt';
  header?: boolean | 'auto';
  classes?: string;
  num_classes?: number;
  synthetic?: Partial<SyntheticParams>;
  split?: SplitParams;
  verify?: VerifyMode;
  limit?: number;
  /** No schema default on purpose: unset, the reading stages choose (and existing keys stay). */
  preprocessing?: Preprocessing;
}

export const SYNTHETIC_DEFAULTS: SyntheticParams = { classes: 6, per_class: 100, size: 64, seed: 0 };
export const SPLIT_DEFAULTS = { fraction: 0.2, seed: 0 } as const;

export function syntheticParams(p: IndexParams): SyntheticParams {
  const s = { ...SYNTHETIC_DEFAULTS, ...(p.synthetic ?? {}) };
  if (!Number.isInteger(s.classes) || s.classes < 1 || s.classes > MAX_SYNTHETIC_CLASSES) {
    throw new Error(`index params: synthetic.classes must be an integer in [1, ${MAX_SYNTHETIC_CLASSES}], got ${s.classes}`);
  }
  if (!Number.isInteger(s.per_class) || s.per_class < 1)
    throw new Error(`index params: synthetic.per_class must be a positive integer, got ${s.per_class}`);
  if (!Number.isInteger(s.size) || s.size < 16 || s.size > 1024)
    throw new Error(`index params: synthetic.size must be an integer in [16, 1024], got ${s.size}`);
  if (!Number.isInteger(s.seed)) throw new Error(`index params: synthetic.seed must be an integer, got ${s.seed}`);
  if (s.clutter !== undefined && !CLUTTER_LEVELS.includes(s.clutter)) {
    throw new Error(`index params: synthetic.clutter must be one of ${CLUTTER_LEVELS.join(', ')}, got ${JSON.stringify(s.clutter)}`);
  }
  return s;
}

export function extensionsOf(p: IndexParams): string[] {
  return p.extensions ?? DEFAULT_EXTENSIONS;
}

/** Checks the params a source needs are present; the schema cannot express it without duplicating defaults. */
export function checkIndexParams(p: IndexParams): void {
  if (p.source === 'imagefolder' && !p.root)
    throw new Error('index params: source "imagefolder" needs "root" (the folder holding one sub-folder per class)');
  if (p.source === 'list' && !p.file)
    throw new Error('index params: source "list" needs "file" (a path,label CSV or "path label" text list)');
  if (p.source !== 'imagefolder' && p.source !== 'list' && p.source !== 'synthetic') {
    throw new Error(`index params: unknown source ${JSON.stringify(p.source)} (expected imagefolder, list or synthetic)`);
  }
  if (p.limit !== undefined && (!Number.isInteger(p.limit) || p.limit < 1))
    throw new Error(`index params: limit must be a positive integer, got ${p.limit}`);
  if (p.num_classes !== undefined && (!Number.isInteger(p.num_classes) || p.num_classes < 1)) {
    throw new Error(`index params: num_classes must be a positive integer, got ${p.num_classes}`);
  }
}
