// The stage contract: the only thing the engine knows about a stage kind.
// Stage kinds live in stages/<kind>/ and register themselves in stages/index.ts.
// Keep this file free of imports from ml/ (and of heavy imports in general: the CLI
// loads it on every invocation, including fully cached reruns).

/** Progress of a running stage, fed to the UI (listr2 bars, JSON events). */
export interface ProgressReporter {
  /** Declare (or re-declare) how much work there is, e.g. `total(50, 'img')`. */
  total(n: number, unit?: string): void;
  /** Advance by `n` units (default 1). */
  tick(n?: number): void;
  /** Set the absolute amount of work done (for resumed stages). */
  set(done: number): void;
  /** A short status line ("epoch 3/10, loss 0.41"). */
  message(text: string): void;
}

export interface StageLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  debug(msg: string): void;
}

/** One upstream output seen by a stage with `scope: experiment` (one entry per variant). */
export interface VariantInput {
  variantId: string;
  alias: string;
  /** The swept values of that variant, keyed by sweep path (e.g. { "train.lr": 0.1 }). */
  values: Record<string, unknown>;
  /** Read-only directory holding the upstream stage's committed output. */
  dir: string;
  /** Upstream stage instance key. */
  key: string;
}

export interface StageContext<P = Record<string, unknown>> {
  /** Params after schema defaults, interpolation and sweep substitution. */
  params: P;
  /** Input name → read-only directory of the upstream stage's committed output. */
  inputs: Record<string, string>;
  /** For `scope: experiment` stages: input name → every variant's output. */
  variantInputs: Record<string, VariantInput[]>;
  /** Empty directory the stage writes its outputs to; committed atomically after run() resolves. */
  outDir: string;
  /** Persistent per-key directory that survives crashes (checkpoints, finished shards). */
  scratchDir: string;
  /** Directory of the experiment file, for resolving user-given relative paths. */
  baseDir: string;
  progress: ProgressReporter;
  log: StageLogger;
  signal: AbortSignal;
  stage: { name: string; variantId: string; alias: string; key: string };
  /** Free-form provenance (backend, engine, machine): recorded in run.json, NOT part of the key. */
  provenance: Record<string, unknown>;
  /**
   * What the run knows about the experiment when this stage starts (set by the engine for
   * `scope: experiment` stages such as the report; NOT part of the key, so a report shows how it
   * was produced the first time).
   */
  experiment?: ExperimentInfo;
}

export interface ExperimentInfo {
  name: string;
  file: string;
  /** The resolved experiment document. */
  resolved: Record<string, unknown>;
  variants: Array<{ id: string; alias: string; values: Record<string, unknown> }>;
  /**
   * The stage's upstream instances (transitively), in plan order, with their status in this run:
   * `variant` is the alias ("" for an instance shared by every variant); `seconds` and
   * `provenance` of an executed instance come from this run, a cached one carries the provenance
   * recorded when its entry was produced (and no seconds).
   */
  instances: Array<{
    id: string;
    stage: string;
    kind: string;
    variant: string;
    status: string;
    seconds?: number;
    provenance?: Record<string, unknown>;
  }>;
  /** package.json version of ca-pipe. */
  toolVersion: string;
}

export type PlanFacts = Record<string, unknown>;

/** An upstream stage instance as `checkInputs` sees it. */
export interface PlannedInput {
  stage: string;
  kind: string;
  /** Its kind's `planFacts`, or undefined when the kind offers none. */
  facts?: PlanFacts;
  /** Its kind's `cost` (for the `cost` of downstream kinds; only while planning costs). */
  cost?: StageCost;
}

/** What a stage instance will compute, counted at plan time (`ca-pipe plan`). */
export interface StageCost {
  /** Images it processes (undefined: unknown). */
  images?: number;
  /** Whole-network forward passes in all; undefined when a part of the count is unknown. */
  forwards?: number;
  /** Backward passes (about two forwards' work each). */
  backwards?: number;
  /** Passes of only the network after the target layer (cheap; not in the time estimate). */
  tailForwards?: number;
  /** How the count is made up, one short item each ("6 img × scorecam: 2048 forwards"). */
  detail: string[];
  /** What could not be counted ("method foo: cost unknown"). */
  unknown: string[];
  /** Facts for downstream kinds' cost (e.g. the methods and images of a saliency stage). */
  facts?: Record<string, unknown>;
}

export interface StageKind<P = any> {
  kind: string;
  /** Bump whenever the meaning of the outputs changes: it is part of every key. */
  version: number;
  /** JSON Schema (draft 2020-12) of `params`; defaults are applied before keying. */
  paramsSchema: object;
  /**
   * Param names (top-level) that do not affect results (e.g. `workers`, `progress_every`).
   * They are excluded from the key and listed in the plan.
   */
  nonKeyParams?: string[];
  /** Names of inputs this kind requires / accepts (checked against `needs`). */
  inputs?: { required?: string[]; optional?: string[] };
  /** `experiment` stages see every variant's upstream outputs (e.g. the report). */
  scope?: 'variant' | 'experiment';
  /**
   * Extra content that must enter the key besides params and inputs, e.g. the hashes of
   * `deps` files of a command stage, or (for an index stage) the listing of a folder.
   * Called at plan time with the resolved params; must be cheap (stat, not read, where possible).
   */
  externalDigest?(params: P, baseDir: string): Promise<Record<string, string>>;
  /** Paths (relative to baseDir) that must exist before any work starts. */
  requiredPaths?(params: P): string[];
  /**
   * What the output will be like, known at plan time without running the stage (an index: its
   * class count and split sizes), for the `checkInputs` of stages that consume it. Called only
   * when a consumer has `checkInputs`; opaque to the engine.
   */
  planFacts?(params: P, baseDir: string): Promise<PlanFacts>;
  /**
   * Plan-time check of this stage's inputs against their `planFacts`, so that a mistake that would
   * only surface deep inside the run is reported before any work starts. Throw an Error whose
   * message is meant for the user; it is reported at the stage's `needs` with exit code 2.
   */
  checkInputs?(params: P, inputs: Record<string, PlannedInput>): void;
  /**
   * The kind's work splits over its own shards (images in fixed chunks), so one instance can be
   * computed by several workers: `parallel: { shards: N }` on the stage. Each worker runs
   * `runPart` for its part; then `run` (the merge) reuses every shard they left in the scratch
   * directory and writes the outputs exactly as a single run would, so N never enters the key.
   */
  split?: ShardSplit<P>;
  /**
   * The work an instance will do, counted at plan time from its params and its inputs' planFacts
   * and costs (for `ca-pipe plan`'s estimates). Must not throw for what it cannot count: it lists
   * that in `unknown`.
   */
  cost?(params: P, inputs: Record<string, PlannedInput>): Promise<StageCost>;
  run(ctx: StageContext<P>): Promise<void>;
}

/** Part `index` of `count`: a contiguous range of the stage's shards (see `shardRange`). */
export interface ShardPart {
  index: number;
  count: number;
}

export interface ShardSplit<P = any> {
  /**
   * Computes the shards of `part` into ctx.scratchDir (each written atomically, finished ones from
   * earlier attempts kept) and writes NO output: parts run side by side on one scratch directory.
   */
  runPart(ctx: StageContext<P>, part: ShardPart): Promise<void>;
}

/** The shard indices [start, end) of `part` among `shards` shards: contiguous, sizes differ by at most one. */
export function shardRange(shards: number, part: ShardPart): { start: number; end: number } {
  const { index, count } = part;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count)
    throw new Error(`invalid shard part ${index}/${count}: expected 0 <= index < count`);
  return { start: Math.floor((index * shards) / count), end: Math.floor(((index + 1) * shards) / count) };
}
