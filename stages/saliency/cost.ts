// Plan-time cost of a saliency instance: images (the split's size, cut to `limit`) × the methods'
// forwards per map (ml/saliency/cost.ts), plus the one taps forward per image every method shares.
import type { PlannedInput, StageCost } from '../../engine/contract.js';
import { plannedIndex } from '../planned-index.js';
import type { SaliencyParams } from './schema.js';

/** Target-layer channels and input side of the model input, when its planFacts name them (a train stage). */
export async function plannedModel(input: PlannedInput | undefined): Promise<{ channels?: number; size?: number }> {
  const f = input?.facts;
  const size = typeof f?.input_size === 'number' ? f.input_size : undefined;
  if (typeof f?.arch !== 'string') return { size };
  try {
    const [{ getBackbone }, { lastReading }] = await Promise.all([
      import('../../ml/models/backbones.js'),
      import('../../ml/models/backbone.js'),
    ]);
    return { channels: lastReading(getBackbone(f.arch)).channels, size };
  } catch {
    return { size };
  }
}

export async function saliencyCost(p: SaliencyParams, inputs: Record<string, PlannedInput>): Promise<StageCost> {
  const { mapCost } = await import('../../ml/saliency/cost.js');
  const data = plannedIndex(inputs.data);
  const split = p.split ?? 'val';
  const all = data && (split === 'all' ? data.train + data.val : data[split]);
  const images = all === undefined ? undefined : p.limit !== undefined ? Math.min(p.limit, all) : all;
  const model = await plannedModel(inputs.model);
  const out: StageCost = { images, detail: [], unknown: [], facts: { images, methods: p.methods, size: model.size } };
  if (images === undefined) out.unknown.push('image count unknown (the data input is not an index stage)');
  if (p.import) {
    // Imported maps: a forward only to find the predicted class.
    out.forwards = images === undefined ? undefined : p.target === 'pred' ? images : 0;
    out.detail.push('imported maps');
    return out;
  }
  let forwards = 1; // the taps every method reads
  let backwards = 0;
  let tail = 0;
  let known = images !== undefined;
  for (const method of p.methods) {
    const c = mapCost({
      method,
      channels: model.channels,
      imageSize: model.size ?? 224,
      riseMasks: p.rise?.masks ?? 6000,
      opticamSteps: p.opticam?.steps,
    });
    if (!c) {
      out.unknown.push(`${method}: cost unknown`);
      known = false;
      continue;
    }
    forwards += c.forwards;
    backwards += c.backwards;
    tail += c.tailForwards;
    const what = [
      c.forwards && `${c.forwards} forwards`,
      c.backwards && `${c.backwards} backward`,
      c.tailForwards && `${c.tailForwards} head passes`,
    ];
    out.detail.push(`${method}: ${what.filter(Boolean).join(' + ') || 'none'} per map`);
  }
  if (known) Object.assign(out, { forwards: images! * forwards, backwards: images! * backwards, tailForwards: images! * tail });
  return out;
}
