// How the stages that run a frozen model forward report the engine: ONNX Runtime's provider line
// goes to the stage log (not stderr, under the run's UI), the choice and its reason to provenance.
import type { StageContext } from '../engine/contract.js';

type EngineChoice = import('../ml/forward/choose.js').EngineChoice;

export async function routeProviderLog(ctx: StageContext<unknown>): Promise<void> {
  const { setProviderLogger } = await import('../ml/onnx/provider.js');
  setProviderLogger((line) => ctx.log.debug(line));
}

/** Makes a runner choose now, before any work, and records the choice and its reason. */
export async function recordEngine(ctx: StageContext<unknown>, runner: { engine(): Promise<EngineChoice> }, stage: string): Promise<void> {
  await routeProviderLog(ctx);
  const choice = await runner.engine();
  ctx.provenance.engine = choice.engine === 'onnx' ? 'onnxruntime' : 'tfjs';
  ctx.provenance.engine_choice = choice;
  ctx.log.info(`${stage}: engine ${choice.engine} (${choice.reason}); ONNX Runtime provider ${choice.ort_provider}`);
}
