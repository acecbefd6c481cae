// The `evaluate` kind: faithfulness (AD, AI, AG, insertion, deletion) and localisation scores of a
// saliency stage's maps, plus accuracy. ml/ is imported lazily (in run.ts).
import type { StageKind } from '../../engine/contract.js';
import { evaluateParamsSchema, type EvaluateParams } from './schema.js';

export type { EvaluateParams };

export const evaluateStage: StageKind<EvaluateParams> = {
  kind: 'evaluate',
  // 2: accuracy.non_finite (a NaN score no longer counts as a correct prediction).
  version: 2,
  paramsSchema: evaluateParamsSchema,
  nonKeyParams: ['batch_size'],
  inputs: { required: ['model', 'data', 'saliency'], optional: [] },
  async run(ctx) {
    const { runEvaluate } = await import('./run.js');
    await runEvaluate(ctx);
  },
  async cost(params, inputs) {
    return (await import('./cost.js')).evaluateCost(params, inputs);
  },
  split: {
    async runPart(ctx, part) {
      const { runEvaluate } = await import('./run.js');
      await runEvaluate(ctx, part);
    },
  },
};

export default evaluateStage;
