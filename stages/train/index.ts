// The `train` stage kind: binds ml/train/run.ts to the stage contract. ml/ is imported lazily so
// that loading the stage table stays cheap for the CLI.
import type { PlannedInput, StageContext, StageKind } from '../../engine/contract.js';
import { describeInput, plannedIndex } from '../planned-index.js';
import type { TrainParams } from '../../ml/train/params.js';
import { unsetPreprocessingDigest } from '../preprocessing-param.js';
import { TRAIN_NON_KEY_PARAMS, trainParamsSchema } from './schema.js';
import { routeProviderLog } from '../engine-choice.js';

export type { TrainParams };

async function run(ctx: StageContext<TrainParams>): Promise<void> {
  const { initBackend } = await import('../../ml/backend/index.js');
  const { runTraining } = await import('../../ml/train/run.js');
  const { withTrainDefaults } = await import('../../ml/train/params.js');
  const backend = await initBackend();
  ctx.provenance.backend = backend.name;
  await routeProviderLog(ctx);
  const data = ctx.inputs.data;
  if (!data) throw new Error('train: the input "data" (an index stage) is required');
  const params = withTrainDefaults(ctx.params);
  const timings: Record<string, unknown> = {};
  const t0 = performance.now();
  await runTraining({
    params,
    data,
    init: ctx.inputs.init,
    features: ctx.inputs.features,
    outDir: ctx.outDir,
    scratchDir: ctx.scratchDir,
    progress: ctx.progress,
    log: ctx.log,
    signal: ctx.signal,
    provenance: timings,
  });
  timings.total_s = (performance.now() - t0) / 1000;
  // Frozen mode: which engine ran the backbone and why, beside the other stages' engine_choice.
  if (timings.engine_choice) {
    ctx.provenance.engine_choice = timings.engine_choice;
    delete timings.engine_choice;
  }
  // Timings, throughput and resume history live here (run.json), not in the outputs: those must be
  // byte-identical on every rerun so that an unchanged result keeps downstream stages cached.
  ctx.provenance.train = timings;
  const speed = timings.train_images_per_s;
  if (typeof speed === 'number')
    ctx.log.info(
      `train: ${speed.toFixed(1)} img/s over ${timings.train_step_images} images of step time (recorded in run.json, provenance.train)`,
    );
}

/** What planData would refuse once the index is built, said before any work starts. */
function checkInputs(p: TrainParams, inputs: Record<string, PlannedInput>): void {
  const data = plannedIndex(inputs.data);
  if (!data) return;
  const of = describeInput('data', inputs.data!);
  // With an init model (frozen, finetune) the classifier's width comes from it, not from the data.
  const classesFromData = !inputs.init || p.mode === 'scratch';
  if (classesFromData && data.classes < 2) {
    const named = data.classNames?.length ? ` (${data.classNames.map((c) => JSON.stringify(c)).join(', ')})` : '';
    throw new Error(
      `training needs at least 2 classes, but ${of} has ${data.classes} class${data.classes === 1 ? '' : 'es'}${named}; give the index at least 2 classes (class folders, labels)`,
    );
  }
  const fraction = p.fraction ?? 1;
  const trainImages = fraction < 1 ? Math.max(1, Math.round(data.train * fraction)) : data.train;
  if (p.batch_size !== undefined && trainImages < p.batch_size) {
    throw new Error(
      `batch_size ${p.batch_size} is larger than the ${trainImages} training images of ${of}${fraction < 1 ? ` (fraction ${fraction})` : ''}; lower batch_size or give the index more images`,
    );
  }
  if (data.val === 0) {
    throw new Error(
      `${of} has an empty validation split; training needs it to pick the best epoch (set that index's split.fraction > 0, or list "val" ids in split.indices)`,
    );
  }
}

export const trainStage: StageKind<TrainParams> = {
  kind: 'train',
  // 2: metrics.jsonl, summary.json and tb/ no longer carry timings (img_s, time, wall times).
  version: 2,
  paramsSchema: trainParamsSchema,
  nonKeyParams: TRAIN_NON_KEY_PARAMS,
  inputs: { required: ['data'], optional: ['init', 'features'] },
  checkInputs,
  externalDigest: unsetPreprocessingDigest,
  // For the plan's cost estimates of the stages using the model (target-layer channels, image size).
  async planFacts(params) {
    return { arch: params.arch, input_size: params.input_size ?? 224 };
  },
  run,
};

export default trainStage;
