// The `features` stage kind: the frozen backbone's taps, computed once and cached, for frozen
// CA-head training without augmentation (see stages/features/schema.ts).
import { shardRange, type ShardPart, type StageContext, type StageKind } from '../../engine/contract.js';
import type { FeaturesParams } from '../../ml/train/run.js';
import { unsetPreprocessingDigest } from '../preprocessing-param.js';
import { featuresParamsSchema } from './schema.js';
import { routeProviderLog } from '../engine-choice.js';

export type { FeaturesParams };

/** The whole stage, or (with `part`) only that part's shards into the scratch directory, with no outputs. */
async function run(ctx: StageContext<FeaturesParams>, part?: ShardPart): Promise<void> {
  const { runFeatures } = await import('../../ml/train/run.js');
  const { data, init } = ctx.inputs;
  if (!data || !init) throw new Error('features: the inputs "data" (an index stage) and "init" (a train stage) are required');
  await routeProviderLog(ctx);
  const t0 = performance.now();
  const meta = await runFeatures({
    params: ctx.params,
    data,
    init,
    outDir: ctx.outDir,
    scratchDir: ctx.scratchDir,
    progress: ctx.progress,
    log: ctx.log,
    signal: ctx.signal,
    provenance: ctx.provenance,
    ...(part ? { shardRange: (shards: number) => shardRange(shards, part) } : {}),
  });
  if (part) return;
  ctx.provenance.features = { total_s: (performance.now() - t0) / 1000, train: meta.splits.train?.count, val: meta.splits.val?.count };
}

export const featuresStage: StageKind<FeaturesParams> = {
  kind: 'features',
  version: 1,
  paramsSchema: featuresParamsSchema,
  nonKeyParams: ['workers'],
  inputs: { required: ['data', 'init'], optional: [] },
  externalDigest: unsetPreprocessingDigest,
  run: (ctx) => run(ctx),
  split: { runPart: run },
};

export default featuresStage;
