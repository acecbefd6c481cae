// One training run, from an index directory (and an init model directory) to the train stage's
// outputs: model.json, final.safetensors, best.safetensors, metrics.jsonl, tb/, summary.json.
// Everything is checked before the first step (data size, labels, init architecture), so a bad
// configuration fails in seconds with a message that names the file and the field.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkCard, weightsDisplayName, type ModelCardLike } from '../explain/model-dir.js';
import { describeNonFinite } from '../io/finite.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { readIndex, type LoadedIndex } from '../data/index-file.js';
import type { LoaderItem } from '../data/loader.js';
import { Rng } from '../data/rng.js';
import { conventionMismatch, resolvePreprocessing, type Preprocessing } from '../data/preprocessing.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.js';
import { lastReading, type Backbone } from '../models/backbone.js';
import {
  computeFeatures,
  extractionPhase,
  FEATURE_BATCH,
  FEATURES_FORMAT,
  tapShapes,
  writeFeaturesMeta,
  type FeaturesMeta,
} from './feature-cache.js';
import { openBackboneSession } from './frozen.js';
import type { EngineSetting } from '../forward/session.js';
import { paramSpecs } from '../models/params.js';
import { createModel, type CaPipeModel } from '../models/model.js';
import { getBackbone } from '../models/backbones.js';
import { Ema, emaDecayForRun } from './ema.js';
import { createEndToEndTask, exportModelWeights, type WeightsTaskBase } from './end-to-end.js';
import {
  copyOut,
  trainLoop,
  writeTensorBoardFromMetrics,
  type LoopLogger,
  type LoopProgress,
  type LoopResult,
  type TrainTask,
} from './loop.js';
import type { ObjectiveConfig } from './objective.js';
import { createOptimizer, placementForActiveBackend, type ParamGroupSpec } from './optim.js';
import { recipeOverrides, type TrainParams } from './params.js';
import { resolveRecipe, type Recipe } from './recipe.js';
import { LrSchedule } from './schedule.js';
import { createImageSource } from './sources.js';

export interface RunTrainingOptions {
  params: TrainParams;
  /** Index directory (output of an index stage). */
  data: string;
  /** Model directory whose final weights initialise backbone + fc. */
  init?: string;
  /** Feature-cache directory (output of a features stage), frozen mode only. */
  features?: string;
  outDir: string;
  scratchDir: string;
  progress?: LoopProgress;
  log?: LoopLogger;
  signal?: AbortSignal;
  /** Test hook, called after every optimizer step. */
  onStep?: (pos: { epoch: number; iter: number; iteration: number }) => void;
  /**
   * Filled with what describes this process rather than the result: timings (`data_load_s`,
   * `train_loop_s`), throughput (`train_images_per_s`, `epochs_images_per_s`) and
   * `resumed_from_step`. None of it enters the outputs, which must not depend on the clock or on
   * whether the run was interrupted.
   */
  provenance?: Record<string, unknown>;
}

export interface InitModel {
  dir: string;
  card: ModelCardLike;
  file: string;
  /** How errors name the weights (the user's own file when the card records it). */
  name: string;
  /** Backbone + fc tensors of the init, file layout. */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  digest: string;
}

const silentLog: LoopLogger = { info() {}, warn() {} };

/** Reads an init model directory and keeps the backbone + fc of `arch`, rejecting anything else. */
export async function readInit(dir: string, arch: Backbone, want: 'backbone+fc'): Promise<InitModel> {
  const cardFile = join(dir, 'model.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(cardFile, 'utf8'));
  } catch (e) {
    throw new Error(`init: ${cardFile} cannot be read (${(e as Error).message}); "init" must be the output directory of a train stage`);
  }
  const card = checkCard(raw, cardFile);
  if (card.arch !== arch.name) {
    throw new Error(
      `init: ${cardFile} describes a ${card.arch} but this stage trains a ${arch.name} (set "arch: ${card.arch}" or use an init trained with ${arch.name})`,
    );
  }
  const file = join(dir, 'final.safetensors');
  const name = weightsDisplayName(file, card);
  const buf = await readFile(file).catch((e) => {
    throw new Error(`init: ${name} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  });
  const digest = createHash('sha256').update(buf).digest('hex');
  const tf_ = await readSafetensors(file).catch((e: Error) => {
    throw new Error(`init: ${e.message.replace(file, name)}`);
  });
  const specs = paramSpecs(arch, { head: 'gap', numClasses: card.num_classes }).filter(
    (s) => want === 'backbone+fc' && (s.group === 'backbone' || s.group === 'fc'),
  );
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const problems: string[] = [];
  for (const s of specs) {
    const t = tf_.tensors.get(s.name) ?? tf_.tensors.get(`module.${s.name}`);
    if (!t) problems.push(`${s.name}: missing`);
    else if (!(t.data instanceof Float32Array)) problems.push(`${s.name}: ${t.dtype}, expected a float type`);
    else if (t.shape.join() !== s.fileShape.join()) problems.push(`${s.name}: shape [${t.shape}], ${arch.name} needs [${s.fileShape}]`);
    else {
      const bad = describeNonFinite(t.data);
      if (bad) problems.push(`${s.name}: ${bad}`);
      else weights.set(s.name, { shape: t.shape, data: t.data });
    }
  }
  if (problems.length) {
    const shown = problems.slice(0, 8).join('; ') + (problems.length > 8 ? `; … (${problems.length - 8} more)` : '');
    throw new Error(`init: ${name} does not hold ${arch.name} weights: ${shown}`);
  }
  return { dir, card, file, name, weights, digest };
}

interface DataPlan {
  index: LoadedIndex;
  numClasses: number;
  train: LoaderItem[];
  val: LoaderItem[];
}

/** Train items (a seeded `fraction` of the split), val items, and the label checks. */
export async function planData(p: TrainParams, dataDir: string, numClasses: number | undefined): Promise<DataPlan> {
  const index = await readIndex(dataDir);
  const classes = numClasses ?? index.classes.length;
  // Normally refused at plan time; an index whose classes were unknown then (a list under verify: none) lands here.
  if (classes < 2)
    throw new Error(
      `${join(dataDir, 'classes.json')}: training needs at least 2 classes, but the index given as input "data" has ${classes}${numClasses !== undefined ? " (the init model's classifier)" : ''}`,
    );
  const toItem = (id: number): LoaderItem => {
    const r = index.records[id];
    if (!r) throw new Error(`${join(dataDir, 'splits.json')}: item ${id} is not in index.jsonl`);
    if (!(r.label >= 0 && r.label < classes)) {
      throw new Error(
        `${join(dataDir, 'index.jsonl')}: item ${id} (${r.path}) has label ${r.label}, beyond the head's ${classes} classes${numClasses !== undefined ? " (the init model's classifier)" : ''}`,
      );
    }
    return { id, path: index.imagePath(r), label: r.label };
  };
  let trainIds = [...index.splits.train];
  if (!(p.fraction > 0 && p.fraction <= 1)) throw new Error(`train params: fraction must be in (0, 1], got ${p.fraction}`);
  if (p.fraction < 1) {
    const keep = Math.max(1, Math.round(trainIds.length * p.fraction));
    const perm = new Rng(p.seed, 0xf4ac)
      .permutation(trainIds.length)
      .slice(0, keep)
      .sort((a, b) => a - b);
    trainIds = perm.map((i) => trainIds[i]);
  }
  const train = trainIds.map(toItem);
  const val = index.splits.val.map(toItem);
  if (train.length < p.batch_size) {
    throw new Error(
      `train params: batch_size ${p.batch_size} is larger than the ${train.length} training images of ${dataDir}${p.fraction < 1 ? ` (fraction ${p.fraction})` : ''}; lower batch_size or use more data`,
    );
  }
  if (val.length === 0)
    throw new Error(
      `${join(dataDir, 'splits.json')}: the validation split is empty; the train stage needs it to pick the best epoch (set the index's split.fraction > 0)`,
    );
  return { index, numClasses: classes, train, val };
}

export function resolveTrainRecipe(p: TrainParams, itersPerEpoch: number): Recipe {
  try {
    return resolveRecipe(p.recipe, recipeOverrides(p), p.epochs, itersPerEpoch);
  } catch (e) {
    throw new Error(`train params: ${(e as Error).message}`);
  }
}

function configDigest(p: TrainParams, extra: Record<string, unknown>): string {
  const { workers: _w, log_every: _l, ...keyed } = p;
  return createHash('sha256').update(JSON.stringify({ keyed, extra })).digest('hex');
}

export interface TrainOutcome {
  summary: Record<string, unknown>;
  card: Record<string, unknown>;
}

/** Loads init weights (backbone + fc) into a model; CA parameters keep their fresh initialisation. */
function loadInit(model: CaPipeModel, init: InitModel): void {
  const all = new Map<string, { dtype: string; shape: number[]; data: Float32Array }>();
  for (const [k, v] of model.stateDict()) all.set(k, { dtype: 'F32', ...(init.weights.get(k) ?? v) });
  model.loadWeights(all, { file: init.name });
}

type Cleanups = Array<() => Promise<void> | void>;

/** What the task, the loop and the outputs of one run share once the data and recipe are resolved. */
interface TrainingPlan {
  o: RunTrainingOptions;
  p: TrainParams;
  log: LoopLogger;
  prov: Record<string, unknown>;
  arch: Backbone;
  init: InitModel | undefined;
  data: DataPlan;
  preprocessing: Preprocessing;
  itersPerEpoch: number;
  recipe: Recipe;
  emaDecay: number;
}

interface ModeTask {
  task: TrainTask;
  extraSummary: Record<string, unknown>;
}

export async function runTraining(o: RunTrainingOptions): Promise<TrainOutcome> {
  const plan = await planTraining(o);
  const { p, data } = plan;
  const model = createModel({
    arch: plan.arch,
    head: p.head,
    heads: p.heads,
    numClasses: data.numClasses,
    seed: p.seed,
    dropout: p.dropout,
    project: p.project,
  });
  const cleanups: Cleanups = [() => model.dispose()];
  try {
    if (plan.init) loadInit(model, plan.init);
    const base = createWeightsBase(plan, model, cleanups);
    const digestExtra: Record<string, unknown> = {
      data: data.index.meta.records_digest,
      init: plan.init?.digest ?? null,
      train: data.train.map((i) => i.id).join(','),
    };
    const { task, extraSummary } =
      p.mode === 'frozen' ? await frozenModeTask(plan, base, cleanups, digestExtra) : await imageModeTask(plan, base);
    const result = await runLoopWithProvenance(plan, task, digestExtra);
    await writeWeightsAndMetrics(o.outDir, base, result, p.epochs);
    const card = modelCard(plan);
    const summary = trainSummary(plan, result, extraSummary, base.trainable);
    await writeFile(join(o.outDir, 'model.json'), JSON.stringify(card, null, 2) + '\n');
    await writeFile(join(o.outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    return { summary, card };
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}

/** Every check that needs no model: inputs against the mode, the init, the data, the recipe. */
async function planTraining(o: RunTrainingOptions): Promise<TrainingPlan> {
  const p = o.params;
  const log = o.log ?? silentLog;
  const prov = o.provenance ?? {};
  const arch = getBackbone(p.arch);
  checkInputsForMode(o, log);
  const init = o.init && p.mode !== 'scratch' ? await readInit(o.init, arch, 'backbone+fc') : undefined;
  if (p.mode === 'finetune' && !init) log.warn('train: mode "finetune" without "init" starts from random weights (like scratch)');

  const data = await planData(p, o.data, init?.card.num_classes);
  const preprocessing = resolvePreprocessing(p.preprocessing, data.index.meta.preprocessing, p.input_size);
  if (init) {
    const mismatch = conventionMismatch('train', preprocessing, init.card, `the init model (${o.init})`);
    if (mismatch) log.warn(mismatch);
  }
  const itersPerEpoch = Math.floor(data.train.length / p.batch_size);
  const recipe = resolveTrainRecipe(p, itersPerEpoch);
  for (const n of recipe.notes) log.info(n);
  const emaDecay = recipe.ema
    ? recipe.ema.scaleWithBatch
      ? emaDecayForRun(recipe.ema.decay, p.batch_size, recipe.ema.every ?? 1, p.epochs)
      : recipe.ema.decay
    : 0;
  return { o, p, log, prov, arch, init, data, preprocessing, itersPerEpoch, recipe, emaDecay };
}

function checkInputsForMode(o: RunTrainingOptions, log: LoopLogger): void {
  const p = o.params;
  if (p.mode === 'frozen' && !o.init)
    throw new Error('train: mode "frozen" needs the input "init" (a train output whose final weights hold the backbone and classifier)');
  if (p.mode === 'scratch' && o.init) log.warn('train: mode "scratch" ignores the input "init" (random initialisation)');
  if (p.engine !== undefined && p.mode !== 'frozen')
    throw new Error(
      `train: "engine" chooses how a frozen backbone runs; mode "${p.mode}" trains the backbone in tfjs, so remove engine: ${p.engine}`,
    );
  if (o.features && p.mode !== 'frozen')
    throw new Error('train: the input "features" (cached backbone taps) only applies to mode "frozen"');
  if (p.mode === 'frozen' && p.head === 'gap') log.info('train: frozen mode with the gap head trains the classifier only (a linear probe)');
}

/** The trainable variables of the mode with their optimizer, EMA and objective. */
function createWeightsBase(plan: TrainingPlan, model: CaPipeModel, cleanups: Cleanups): WeightsTaskBase {
  const { p, recipe } = plan;
  const trainable = Object.fromEntries(model.trainableVariables(p.mode === 'scratch' ? 'scratch' : p.mode));
  const groups: ParamGroupSpec[] | undefined =
    p.mode === 'finetune' && p.backbone_lr_mult !== 1
      ? [
          {
            names: model.specs.filter((s) => s.group === 'backbone' && s.name in trainable).map((s) => s.name),
            lrMult: p.backbone_lr_mult,
          },
          { names: model.specs.filter((s) => s.group !== 'backbone' && s.name in trainable).map((s) => s.name) },
        ]
      : undefined;
  // Both placements give the same bits (test/train/optim-placement.test.ts): this is speed only.
  const placement = placementForActiveBackend();
  plan.prov.optimizer_update = placement;
  const optimizer = createOptimizer(trainable, recipe.optimizer, groups, placement);
  const ema = recipe.ema ? new Ema(trainable, { decay: plan.emaDecay, warmup: recipe.ema.warmup }) : null;
  cleanups.push(
    () => optimizer.dispose(),
    () => ema?.dispose(),
  );
  const objective: ObjectiveConfig = {
    criterion: p.criterion,
    labelSmoothing: recipe.labelSmoothing,
    mixup: recipe.mixup,
    cutmix: recipe.cutmix,
    mixSwitchProb: recipe.mixSwitchProb,
    classes: plan.data.numClasses,
    seed: p.seed,
  };
  const emaEvery = recipe.ema?.every ?? 1;
  return { model, trainable, optimizer, ema, emaEvery, clipGradNorm: recipe.clipGradNorm, objective };
}

async function frozenModeTask(
  plan: TrainingPlan,
  base: WeightsTaskBase,
  cleanups: Cleanups,
  digestExtra: Record<string, unknown>,
): Promise<ModeTask> {
  const { o, data } = plan;
  const { createFrozenTask } = await import('./frozen.js');
  const frozen = await createFrozenTask({
    base,
    params: plan.p,
    arch: plan.arch,
    init: plan.init!,
    train: data.train,
    val: data.val,
    numClasses: data.numClasses,
    features: o.features,
    preprocessing: plan.preprocessing,
    scratchDir: o.scratchDir,
    log: plan.log,
    progress: o.progress,
    signal: o.signal,
    provenance: plan.prov,
  });
  cleanups.push(() => frozen.close());
  digestExtra.features = frozen.featuresDigest;
  return { task: frozen.task, extraSummary: frozen.summary };
}

/** Scratch and finetune: the whole model trains in tfjs on decoded images. */
async function imageModeTask(plan: TrainingPlan, base: WeightsTaskBase): Promise<ModeTask> {
  const { o, p, data, preprocessing } = plan;
  const layout = 'NHWC' as const;
  const t0 = performance.now();
  o.progress?.message('loading images');
  const train = await createImageSource({
    items: data.train,
    batchSize: p.batch_size,
    size: p.input_size,
    layout,
    seed: p.seed,
    augment: p.augment,
    train: true,
    resize: p.resize,
    scale: p.crop_scale,
    workers: p.workers,
    signal: o.signal,
    preprocessing,
  });
  const val = await createImageSource({
    items: data.val,
    batchSize: p.batch_size,
    size: p.input_size,
    layout,
    seed: p.seed,
    augment: false,
    train: false,
    resize: p.resize,
    workers: p.workers,
    signal: o.signal,
    preprocessing,
  });
  plan.prov.data_load_s = (performance.now() - t0) / 1000;
  return { task: createEndToEndTask({ ...base, train, val, size: p.input_size, seed: p.seed }), extraSummary: {} };
}

async function runLoopWithProvenance(plan: TrainingPlan, task: TrainTask, digestExtra: Record<string, unknown>): Promise<LoopResult> {
  const { o, p, recipe, prov } = plan;
  const schedule = new LrSchedule(recipe.schedule, recipe.optimizer.lr, { epochs: p.epochs, itersPerEpoch: plan.itersPerEpoch });
  const t0 = performance.now();
  const result = await trainLoop({
    task,
    epochs: p.epochs,
    schedule,
    scratchDir: o.scratchDir,
    checkpointEveryEpochs: p.checkpoint_every_epochs,
    checkpointEveryIters: p.checkpoint_every_iters,
    logEvery: p.log_every,
    configDigest: configDigest(p, digestExtra),
    progress: o.progress,
    log: plan.log,
    signal: o.signal,
    onStep: o.onStep,
  });
  prov.train_loop_s = (performance.now() - t0) / 1000;
  prov.train_images_per_s = result.throughput.imagesPerSecond;
  prov.train_step_images = result.throughput.images;
  prov.train_step_s = result.throughput.seconds;
  prov.epochs_images_per_s = result.throughput.epochs.map((e) => ({ epoch: e.epoch, images: e.images, images_per_s: e.imagesPerSecond }));
  prov.resumed_from_step = result.resumedFrom;
  return result;
}

/** final/best weights, metrics.jsonl and tb/ (the card and summary are written after). */
async function writeWeightsAndMetrics(outDir: string, base: WeightsTaskBase, result: LoopResult, epochs: number): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const finalWeights = exportModelWeights(base);
  await writeSafetensors(join(outDir, 'final.safetensors'), finalWeights, { epoch: String(epochs - 1) });
  if (result.files.best) await copyOut(result.files.best, join(outDir, 'best.safetensors'));
  else await writeSafetensors(join(outDir, 'best.safetensors'), finalWeights, { epoch: String(epochs - 1) });
  await copyOut(result.files.metrics, join(outDir, 'metrics.jsonl'));
  const tbDir = join(outDir, 'tb');
  // A leftover event file would make the writer pick another name (and leave two files).
  await rm(tbDir, { recursive: true, force: true });
  await mkdir(tbDir, { recursive: true });
  writeTensorBoardFromMetrics(result.files.metrics, tbDir);
}

function modelCard(plan: TrainingPlan): Record<string, unknown> {
  const { p, data } = plan;
  return {
    format: 'ca-pipe.model/1',
    arch: plan.arch.name,
    head: p.head,
    heads: p.heads,
    num_classes: data.numClasses,
    input_size: p.input_size,
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    classes: data.index.classes
      .slice(0, data.numClasses)
      .concat(
        Array.from(
          { length: Math.max(0, data.numClasses - data.index.classes.length) },
          (_, i) => `class_${data.index.classes.length + i}`,
        ),
      ),
    weights: 'final.safetensors',
    ...(p.resize !== undefined && { resize: p.resize }),
    preprocessing: plan.preprocessing,
  };
}

function trainSummary(
  plan: TrainingPlan,
  result: LoopResult,
  extraSummary: Record<string, unknown>,
  trainable: Record<string, unknown>,
): Record<string, unknown> {
  const { p, data, recipe } = plan;
  const last = result.epochs[result.epochs.length - 1];
  return {
    mode: p.mode,
    epochs: p.epochs,
    best_epoch: result.best?.epoch ?? p.epochs - 1,
    best_val_loss: result.best?.value ?? last.val_loss,
    final_val_acc: last.val_acc,
    final_val_loss: last.val_loss,
    ...extraSummary,
    trainable_parameters: Object.keys(trainable).sort(),
    train_images: data.train.length,
    val_images: data.val.length,
    iterations: p.epochs * plan.itersPerEpoch,
    recipe: {
      name: recipe.name,
      optimizer: recipe.optimizer,
      schedule: recipe.schedule,
      mixup: recipe.mixup,
      cutmix: recipe.cutmix,
      label_smoothing: recipe.labelSmoothing,
      ema: recipe.ema ? { ...recipe.ema, effective_decay: plan.emaDecay } : null,
      clip_grad_norm: recipe.clipGradNorm,
    },
  };
}

export interface FeaturesParams {
  arch: string;
  taps?: 'all' | 'layer4';
  input_size?: number;
  resize?: number;
  /** Unset: the index's, else torchvision at input size 224 and fast otherwise. */
  preprocessing?: Preprocessing;
  dtype?: 'float16' | 'float32';
  workers?: number;
  /** Backbone engine (absent: auto). */
  engine?: EngineSetting;
}

export interface RunFeaturesOptions {
  params: FeaturesParams;
  data: string;
  init: string;
  outDir: string;
  scratchDir: string;
  progress?: LoopProgress;
  log?: LoopLogger;
  signal?: AbortSignal;
  /** Gets the backbone engine's choice (run.json provenance). */
  provenance?: Record<string, unknown>;
  /**
   * A split stage's worker: given the number of shards (train's, then val's), the range [start, end)
   * to compute into the scratch directory; nothing is written to outDir then.
   */
  shardRange?: (shards: number) => { start: number; end: number };
}

/**
 * The features stage: taps of every train and val image of the index, computed by the backbone
 * engine (ONNX Runtime or tfjs, see ml/forward) into the scratch directory (resumable by shard),
 * then copied to the outputs.
 */
export async function runFeatures(o: RunFeaturesOptions): Promise<FeaturesMeta> {
  const p = { taps: 'all' as const, input_size: 224, dtype: 'float16' as const, ...o.params };
  const log = o.log ?? silentLog;
  const arch = getBackbone(p.arch);
  const init = await readInit(o.init, arch, 'backbone+fc');
  const index = await readIndex(o.data);
  const preprocessing = resolvePreprocessing(p.preprocessing, index.meta.preprocessing, p.input_size);
  const mismatch = conventionMismatch('features', preprocessing, init.card, `the init model (${o.init})`);
  if (mismatch) log.warn(mismatch);
  const K = init.card.num_classes;
  const items = (ids: number[]): LoaderItem[] =>
    ids.map((id) => {
      const r = index.records[id];
      if (!(r.label >= 0 && r.label < K))
        throw new Error(
          `${join(o.data, 'index.jsonl')}: item ${id} (${r.path}) has label ${r.label}, beyond the init model's ${K} classes`,
        );
      return { id, path: index.imagePath(r), label: r.label };
    });
  // 'layer4' names the last feature map of any family (the ResNets' layer4), 'all' every CA reading.
  const taps: string[] = p.taps === 'layer4' ? [lastReading(arch).tap] : arch.caStream().map((b) => b.tap);
  const work = join(o.scratchDir, 'features');
  const { session, choice } = await openBackboneSession({
    arch,
    init,
    numClasses: K,
    taps,
    cacheDir: join(o.scratchDir, 'onnx'),
    inputSize: p.input_size,
    engine: p.engine ?? 'auto',
    batch: FEATURE_BATCH,
    log,
  });
  if (o.provenance) o.provenance.engine_choice = choice;
  const meta: FeaturesMeta = {
    format: FEATURES_FORMAT,
    arch: arch.name,
    input_size: p.input_size,
    resize: p.resize ?? null,
    preprocessing,
    dtype: p.dtype,
    taps,
    tap_shapes: tapShapes(arch, p.input_size, taps),
    num_classes: K,
    init_digest: init.digest,
    splits: {},
  };
  let range: { start: number; end: number } | undefined;
  try {
    const trainItems = items(index.splits.train);
    const valItems = items(index.splits.val);
    extractionPhase(o.progress, [trainItems, valItems]);
    const common = {
      session,
      arch,
      dir: work,
      size: p.input_size,
      resize: p.resize,
      preprocessing,
      dtype: p.dtype,
      taps,
      numClasses: K,
      workers: p.workers,
      progress: o.progress,
      sharedPhase: true,
      signal: o.signal,
    };
    // Shards of 256 (computeFeatures' default), train's numbered first, then val's.
    const trainShards = Math.ceil(trainItems.length / 256);
    range = o.shardRange?.(trainShards + Math.ceil(valItems.length / 256));
    const inRange = (s: number) => !range || (s >= range.start && s < range.end);
    meta.splits.train = await computeFeatures({ ...common, items: trainItems, split: 'train', onlyShards: inRange });
    meta.splits.val = await computeFeatures({ ...common, items: valItems, split: 'val', onlyShards: (s) => inRange(trainShards + s) });
  } finally {
    await session.release();
  }
  if (range) return meta;
  await mkdir(o.outDir, { recursive: true });
  for (const s of [...meta.splits.train!.shards, ...meta.splits.val!.shards]) await copyOut(join(work, s), join(o.outDir, s));
  await writeFeaturesMeta(o.outDir, meta);
  log.info(
    `features: ${meta.splits.train!.count} train + ${meta.splits.val!.count} val images; GAP accuracy of the init on val ${(100 * meta.splits.val!.gap_acc).toFixed(2)}%`,
  );
  return meta;
}
