// The `train` stage kind: binds ml/train/run.ts to the stage contract. ml/ is imported lazily so
// that loading the stage table stays cheap for the CLI.
import type { StageContext, StageKind } from '../../engine/contract.js';
import type { TrainParams } from '../../ml/train/params.js';
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
  if (typeof speed === 'number') ctx.log.info(`train: ${speed.toFixed(1)} img/s over ${timings.train_step_images} images of step time (recorded in run.json, provenance.train)`);
}

export const trainStage: StageKind<TrainParams> = {
  kind: 'train',
  // 2: metrics.jsonl, summary.json and tb/ no longer carry timings (img_s, time, wall times).
  version: 2,
  paramsSchema: trainParamsSchema,
  nonKeyParams: TRAIN_NON_KEY_PARAMS,
  inputs: { required: ['data'], optional: ['init', 'features'] },
  run,
};

export default trainStage;
