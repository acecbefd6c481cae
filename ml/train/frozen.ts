// Frozen-mode training (the paper's setting): the backbone and classifier are fixed and never
// train — a forward session computes the taps (ONNX Runtime on an exported graph, or the tfjs model
// in eval mode: ml/forward, the stage's `engine`), and only the CA head (token + projections) is
// trained in tfjs, with the taps entering as constants. BatchNorm statistics cannot move because
// the backbone only ever runs in eval mode.
//
// Taps come from the feature cache when there is no augmentation (computed once, or taken from a
// features stage), else from the backbone session on every augmented batch. Validation always uses
// the cache: the eval transform is deterministic, so the val taps are computed once per run.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LoaderItem } from '../data/loader.js';
import type { Preprocessing } from '../data/preprocessing.js';
import { headTaps, type Taps } from '../models/ca-head.js';
import { lastReading, type Backbone } from '../models/backbone.js';
import { nhwcToNchw } from '../onnx/runtime.js';
import { chooseEngine, openForwardSession, type EngineChoice, type ForwardModelSpec } from '../forward/choose.js';
import type { EngineSetting, ForwardSession } from '../forward/session.js';
import { topkCorrect } from './losses.js';
import { applyGradients, dropoutSeed, exportModelWeights, swapInEma, type WeightsTaskBase } from './end-to-end.js';
import {
  computeFeatures,
  extractionPhase,
  FEATURE_BATCH,
  idsDigest,
  nchwToNhwc,
  loadFeatureSplit,
  readFeaturesMeta,
  tapShapes,
  writeFeaturesMeta,
  type FeaturesMeta,
} from './feature-cache.js';
import type { EvalResult, LoopLogger, LoopProgress, StepPosition, StepResult, TrainTask } from './loop.js';
import { batchLoss, countCorrect, evalBatch, prepareBatch } from './objective.js';
import type { TrainParams } from './params.js';
import type { InitModel } from './run.js';
import { createImageSource, createTapSource, type BatchSource, type SourceBatch } from './sources.js';

export interface FrozenTaskOptions {
  base: WeightsTaskBase;
  params: TrainParams;
  arch: Backbone;
  init: InitModel;
  train: LoaderItem[];
  val: LoaderItem[];
  numClasses: number;
  /** Output directory of a features stage, if given. */
  features?: string;
  /** The resolved pixel convention of this stage. */
  preprocessing: Preprocessing;
  scratchDir: string;
  log: LoopLogger;
  progress?: LoopProgress;
  signal?: AbortSignal;
  /** Gets the backbone engine's choice (run.json provenance, not the outputs). */
  provenance?: Record<string, unknown>;
}

export interface FrozenTask {
  task: TrainTask;
  summary: Record<string, unknown>;
  /** Identifies the taps the head trains on (part of the checkpoint's configuration digest). */
  featuresDigest: string;
  close(): Promise<void>;
}

/** Taps a head reads; the gap head (linear probe) needs the last feature map only. */
export function neededTaps(head: TrainParams['head'], arch: Backbone): string[] {
  return head === 'gap' ? [lastReading(arch).tap] : headTaps(head, arch);
}

export interface BackboneSessionOptions {
  arch: Backbone;
  init: InitModel;
  numClasses: number;
  taps: string[];
  /** Where exported ONNX graphs are cached. */
  cacheDir: string;
  inputSize: number;
  /** Default onnx (the stages pass their param, default auto). */
  engine?: EngineSetting;
  /** Images per forward call, for the calibration of `auto`. */
  batch: number;
  log?: LoopLogger;
}

/**
 * Opens a forward session on the init backbone that outputs the taps and the GAP logits, on the
 * engine the setting picks. The ONNX graph keeps a dynamic input size, as it always had.
 */
export async function openBackboneSession(o: BackboneSessionOptions): Promise<{ session: ForwardSession; choice: EngineChoice }> {
  const spec: ForwardModelSpec = {
    arch: o.arch,
    head: 'gap',
    numClasses: o.numClasses,
    weights: o.init.weights,
    weightsFile: o.init.name,
    outputs: [...o.taps.map((t) => `tap.${t}`), 'logits'],
    cacheDir: o.cacheDir,
    inputSize: o.inputSize,
    fixedInputSize: false,
  };
  const choice = await chooseEngine(o.engine ?? 'onnx', spec, {
    batch: o.batch,
    onCalibrate: (what) => o.log?.info(`backbone engine: ${what}`),
  });
  o.log?.info(`backbone engine: ${choice.engine} (${choice.reason})`);
  return { session: await openForwardSession(choice.engine, spec), choice };
}

type TapShapes = Partial<Record<string, [number, number, number]>>;

function tapTensors(taps: Partial<Record<string, Float32Array>>, shapes: TapShapes, n: number): Taps {
  const out: Taps = {};
  for (const [t, data] of Object.entries(taps) as Array<[string, Float32Array]>) {
    const [h, w, c] = shapes[t]!;
    out[t] = tf.tensor4d(data, [n, h, w, c]);
  }
  return out;
}

/**
 * The backbone session, opened on first use: with a features input and augment: false, training
 * never runs the backbone, so it is never exported or calibrated.
 */
class LazyBackboneSession {
  private session: ForwardSession | null = null;

  constructor(
    private readonly o: FrozenTaskOptions,
    private readonly taps: string[],
    private readonly batch: number,
  ) {}

  async open(): Promise<ForwardSession> {
    if (this.session) return this.session;
    const { o } = this;
    const opened = await openBackboneSession({
      arch: o.arch,
      init: o.init,
      numClasses: o.numClasses,
      taps: this.taps,
      cacheDir: join(o.scratchDir, 'onnx'),
      inputSize: o.params.input_size,
      engine: o.params.engine ?? 'auto',
      batch: this.batch,
      log: o.log,
    });
    if (o.provenance) o.provenance.engine_choice = opened.choice;
    return (this.session = opened.session);
  }

  /** The session open() returned; only the augmented path, which opened it, runs it. */
  get opened(): ForwardSession {
    return this.session!;
  }

  async release(): Promise<void> {
    if (this.session) await this.session.release();
  }
}

/** What the parts of a frozen task share. */
interface FrozenContext {
  o: FrozenTaskOptions;
  taps: string[];
  shapes: TapShapes;
  useCacheForTrain: boolean;
  backbone: LazyBackboneSession;
}

/** Where the cached taps live: a features stage's output, or our own scratch directory. */
interface FeatureCache {
  dir: string;
  meta: FeaturesMeta;
}

export async function createFrozenTask(o: FrozenTaskOptions): Promise<FrozenTask> {
  const p = o.params;
  const taps = neededTaps(p.head, o.arch);
  const shapes = tapShapes(o.arch, p.input_size, taps);
  const useCacheForTrain = !p.augment;
  if (useCacheForTrain && (o.base.objective.mixup > 0 || o.base.objective.cutmix > 0)) {
    throw new Error(
      'train params: mixup/cutmix mix images, but with augment: false frozen training reads cached backbone features (no images); set augment: true or mixup: 0 and cutmix: 0',
    );
  }
  const backbone = new LazyBackboneSession(o, taps, useCacheForTrain ? FEATURE_BATCH : p.batch_size);
  const ctx: FrozenContext = { o, taps, shapes, useCacheForTrain, backbone };

  const cache: FeatureCache = o.features
    ? { dir: o.features, meta: await readFeaturesInput(o, o.features) }
    : await computeFeatureCache(ctx);
  o.progress?.message('loading cached features');
  const { valSource, gapValAcc } = await loadValidation(ctx, cache);
  const trainSource = await createTrainSource(ctx, cache);

  const { meta } = cache;
  const featuresDigest =
    idsDigest([meta.splits.val?.count ?? 0, ...o.train.map((i) => i.id)]) + `:${meta.init_digest}:${meta.dtype}:${useCacheForTrain}`;
  return {
    // Only the head changes; checkpointing the backbone would copy it every time for nothing.
    task: {
      stateVars: o.base.trainable,
      optimizer: o.base.optimizer,
      ema: o.base.ema,
      train: trainSource,
      step: headStep(ctx),
      evaluate: headEvaluation(ctx, valSource),
      exportWeights: () => exportModelWeights(o.base),
    },
    summary: {
      gap_val_acc: gapValAcc,
      feature_cache: { source: o.features ? 'features input' : 'computed', dtype: meta.dtype, train_from_cache: useCacheForTrain, taps },
    },
    featuresDigest,
    close: () => backbone.release(),
  };
}

/** A features stage's output, refused unless it was computed exactly as this stage would. */
async function readFeaturesInput(o: FrozenTaskOptions, dir: string): Promise<FeaturesMeta> {
  const p = o.params;
  const meta = await readFeaturesMeta(dir);
  const where = join(dir, 'features.json');
  if (meta.arch !== o.arch.name) throw new Error(`${where}: features of a ${meta.arch}, this stage trains a ${o.arch.name}`);
  if (meta.input_size !== p.input_size)
    throw new Error(`${where}: features at input size ${meta.input_size}, this stage uses ${p.input_size}`);
  if ((meta.resize ?? null) !== (p.resize ?? null))
    throw new Error(`${where}: features with resize ${meta.resize}, this stage uses ${p.resize ?? 'the default'}`);
  if ((meta.preprocessing ?? 'fast') !== o.preprocessing)
    throw new Error(
      `${where}: features of '${meta.preprocessing ?? 'fast'}' pixels, this stage uses the '${o.preprocessing}' preprocessing convention (set the same preprocessing on both stages)`,
    );
  if (meta.init_digest !== o.init.digest)
    throw new Error(
      `${where}: features were computed from other init weights than ${o.init.name}; both inputs must come from the same train stage`,
    );
  return meta;
}

/** Val taps always (and train taps without augmentation), computed into the scratch directory. */
async function computeFeatureCache(ctx: FrozenContext): Promise<FeatureCache> {
  const { o, taps, useCacheForTrain } = ctx;
  const p = o.params;
  const t0 = performance.now();
  const dir = join(o.scratchDir, `features-${p.feature_dtype}-${p.input_size}-${p.resize ?? 'd'}`);
  const meta: FeaturesMeta = {
    format: 'ca-pipe.features/1',
    arch: o.arch.name,
    input_size: p.input_size,
    resize: p.resize ?? null,
    preprocessing: o.preprocessing,
    dtype: p.feature_dtype,
    taps,
    tap_shapes: ctx.shapes,
    num_classes: o.numClasses,
    init_digest: o.init.digest,
    splits: {},
  };
  o.progress?.message('preparing the backbone');
  const session = await ctx.backbone.open();
  extractionPhase(o.progress, useCacheForTrain ? [o.val, o.train] : [o.val]);
  const common = {
    session,
    arch: o.arch,
    dir,
    size: p.input_size,
    resize: p.resize,
    preprocessing: o.preprocessing,
    dtype: p.feature_dtype,
    taps,
    numClasses: o.numClasses,
    workers: p.workers,
    progress: o.progress,
    sharedPhase: true,
    signal: o.signal,
  };
  meta.splits.val = await computeFeatures({ ...common, items: o.val, split: 'val' });
  if (useCacheForTrain) meta.splits.train = await computeFeatures({ ...common, items: o.train, split: 'train' });
  await writeFeaturesMeta(dir, meta);
  o.log.info(
    `train: backbone features computed through ${session.engine === 'onnx' ? 'ONNX Runtime' : 'tfjs'} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${p.feature_dtype}${useCacheForTrain ? ', train + val' : ', val'})`,
  );
  return { dir, meta };
}

/** The val batches, and the init's own GAP accuracy on them (the baseline the head is compared with). */
async function loadValidation(ctx: FrozenContext, cache: FeatureCache): Promise<{ valSource: BatchSource; gapValAcc: number }> {
  const { o } = ctx;
  const val = await loadFeatureSplit(cache.dir, cache.meta, 'val', ctx.taps, o.val);
  const gapCorrect = topkCorrect(val.gapLogits, o.numClasses, val.labels, [1])[0];
  const gapValAcc = gapCorrect / val.labels.length;
  o.log.info(`train: GAP accuracy of the init backbone on val: ${(100 * gapValAcc).toFixed(2)}%`);
  const valSource = createTapSource(val, { batchSize: o.params.batch_size, seed: o.params.seed, train: false });
  return { valSource, gapValAcc };
}

async function createTrainSource(ctx: FrozenContext, cache: FeatureCache): Promise<BatchSource> {
  const { o } = ctx;
  const p = o.params;
  if (ctx.useCacheForTrain) {
    const tr = await loadFeatureSplit(cache.dir, cache.meta, 'train', ctx.taps, o.train);
    return createTapSource(tr, { batchSize: p.batch_size, seed: p.seed, train: true });
  }
  await ctx.backbone.open();
  o.progress?.message('loading images');
  return createImageSource({
    items: o.train,
    batchSize: p.batch_size,
    size: p.input_size,
    layout: 'NHWC',
    seed: p.seed,
    augment: true,
    train: true,
    resize: p.resize,
    scale: p.crop_scale,
    workers: p.workers,
    signal: o.signal,
    preprocessing: o.preprocessing,
  });
}

/** A batch's taps: cached ones as they are, else the backbone's on the prepared (mixed) images. */
async function batchTaps(
  ctx: FrozenContext,
  batch: SourceBatch,
  pos: StepPosition,
): Promise<{ taps: Partial<Record<string, Float32Array>>; prep: ReturnType<typeof prepareBatch> }> {
  const { objective } = ctx.o.base;
  const S = ctx.o.params.input_size;
  if (batch.taps) return { taps: batch.taps, prep: prepareBatch(objective, undefined, null, batch.labels, pos.epoch, pos.iter) };
  const prep = prepareBatch(objective, batch.x, [batch.n, S, S, 3], batch.labels, pos.epoch, pos.iter);
  const res = await ctx.backbone.opened.run(
    nhwcToNchw(prep.images!, batch.n, S, S),
    batch.n,
    S,
    S,
    ctx.taps.map((t) => `tap.${t}`),
  );
  const out: Partial<Record<string, Float32Array>> = {};
  for (const t of ctx.taps) {
    const [h, w, c] = ctx.shapes[t]!;
    out[t] = nchwToNhwc(res[`tap.${t}`].data, batch.n, c, h, w);
  }
  return { taps: out, prep };
}

function headStep(ctx: FrozenContext): TrainTask['step'] {
  const { base, params: p } = ctx.o;
  const varList = Object.values(base.trainable);
  return async function step(batch: SourceBatch, pos: StepPosition): Promise<StepResult> {
    const { taps: data, prep } = await batchTaps(ctx, batch, pos);
    const t = tapTensors(data, ctx.shapes, batch.n);
    let logits: tf.Tensor2D | null = null;
    try {
      const { value, grads } = tf.variableGrads(() => {
        const out = base.model.head(t, { training: true, tapGrad: false, seed: dropoutSeed(p.seed, pos) });
        logits = tf.keep(out.logits);
        return batchLoss(base.objective, out.logits, prep);
      }, varList);
      const loss = value.dataSync()[0];
      value.dispose();
      const correct = countCorrect(logits!, prep.accLabels);
      applyGradients(base, grads, pos);
      return { loss, correct, n: batch.n };
    } finally {
      tf.dispose(Object.values(t));
      (logits as tf.Tensor | null)?.dispose();
    }
  };
}

function headEvaluation(ctx: FrozenContext, valSource: BatchSource): TrainTask['evaluate'] {
  const { base } = ctx.o;
  return async function evaluate(): Promise<EvalResult> {
    const restore = swapInEma(base.trainable, base.ema);
    try {
      let lossSum = 0;
      let correct = 0;
      let count = 0;
      for await (const b of valSource.batches(0)) {
        const t = tapTensors(b.taps!, ctx.shapes, b.n);
        const logits = tf.tidy(() => base.model.head(t, { training: false, tapGrad: false }).logits);
        const r = evalBatch(logits, b.labels);
        tf.dispose([logits, ...Object.values(t)]);
        lossSum += r.lossSum;
        correct += r.correct;
        count += b.n;
      }
      return { loss: lossSum / count, acc: correct / count, n: count };
    } finally {
      restore();
    }
  };
}
