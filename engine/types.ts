// Shared shapes between engine/config, engine/plan and engine/run. No logic here.

/** Where a value came from, for error messages: file:line:column plus the field path. */
export interface SourceLocation {
  file: string;
  line: number; // 1-based
  column: number; // 1-based
}

/** One stage as written in the experiment file (after extends/overrides/interpolation/validation). */
export interface StageSpec {
  name: string;
  kind: string;
  /** Raw params as written (defaults are applied per variant at plan time). */
  params: Record<string, unknown>;
  /** Input name → upstream stage name. A list `needs: [a, b]` is normalised to { a: 'a', b: 'b' }. */
  needs: Record<string, string>;
  scope: 'variant' | 'experiment';
  /** `parallel: { shards: N }` (or `executor.parallel`) of a kind with a `split`: workers per instance. */
  parallel?: { shards: number };
  /** Location of the stage's mapping in its file, for errors raised after loading. */
  loc?: SourceLocation;
}

/** A sweep axis: path like "train.lr" (stage `train`, param `lr`) and its values. */
export interface SweepAxis {
  path: string;
  values: unknown[];
  loc?: SourceLocation;
}

export interface Experiment {
  /** `name:` in the file, else the file's base name without extension. */
  name: string;
  /** Absolute path of the experiment file. */
  file: string;
  /** Directory of the file: relative paths in params resolve against it. */
  baseDir: string;
  stages: StageSpec[];
  /** Grid axes (cartesian product). */
  sweep: SweepAxis[];
  /** Paired axes: every list has the same length, element i of each goes together. */
  zip: SweepAxis[];
  /** The fully resolved document (after extends, overrides, interpolation), for run.json. */
  resolved: Record<string, unknown>;
  /** Other top-level settings (store path, executor, ...), as written. */
  settings: Record<string, unknown>;
  /**
   * Fields whose value came from `${...}` references to swept params (directly or through other
   * such fields), in dependency order: each variant evaluates them again after substituting its
   * swept values. Absent when there are none.
   */
  variantTemplates?: VariantTemplate[];
  /** Looks up the source location of a field path (e.g. ["stages","train","params","lr"]). */
  locate(path: (string | number)[]): SourceLocation | undefined;
}

/** A string field made of literals and references (field paths into the resolved document). */
export interface VariantTemplate {
  path: (string | number)[];
  pieces: Array<{ literal: string } | { ref: (string | number)[] }>;
  /** The whole string was one reference: the result is the referenced value itself (any type). */
  whole: boolean;
}

export interface Variant {
  /** Short hash of the varied values ("" when there is no sweep). */
  id: string;
  /** Readable alias, e.g. "lr=0.1,heads=8". */
  alias: string;
  values: Record<string, unknown>;
}

/** The content that is hashed into a key (canonical JSON). */
export interface KeyMaterial {
  kind: string;
  version: number;
  params: Record<string, unknown>;
  /** Input name → upstream output digest (or, before upstream has run, its key prefixed "key:"). */
  inputs: Record<string, string | string[]>;
  /** Stage-specific external content (command deps hashes, index folder listing...). */
  external: Record<string, string>;
}

export interface StageInstance {
  /** Unique in the plan: "<stage>" or "<stage>@<variantId>". */
  id: string;
  stage: string;
  kind: string;
  variant: Variant;
  /** Params after defaults and sweep substitution (non-key params included). */
  params: Record<string, unknown>;
  /** Top-level params excluded from the key. */
  nonKeyParams: string[];
  /** Input name → upstream instance id(s) (several for scope: experiment). */
  deps: Record<string, string | string[]>;
  scope: 'variant' | 'experiment';
  /**
   * Workers that compute the instance's shards side by side before one merge (see StageKind.split).
   * NOT part of the key: the merged output is the same bytes whatever the count.
   */
  parallel?: { shards: number };
  /**
   * Key = sha256(canonical JSON of KeyMaterial). Upstream *output digests* go in once known,
   * so the scheduler finalises keys as upstream stages commit (early cutoff).
   */
  material: KeyMaterial;
  key?: string;
  /**
   * Key computed with every input given as "key:<upstream planKey>": identifies the whole recipe
   * before anything runs (equals `key` for instances without inputs).
   */
  planKey?: string;
  /** Ids of the variants this instance serves (all of them for a shared instance), in plan order. */
  variants?: string[];
}

export interface Plan {
  experiment: Experiment;
  variants: Variant[];
  /** Topologically ordered; instances shared across variants appear once. */
  instances: StageInstance[];
  /** Variant id → stage name → instance id serving that stage in that variant. */
  byVariant?: Record<string, Record<string, string>>;
}
