// Plan-time cost of an evaluate instance: its saliency input's images × (one clean forward per
// image + methods × the metrics' forwards per map, ml/metrics/cost.ts).
import type { PlannedInput, StageCost } from '../../engine/contract.js';
import { plannedModel } from '../saliency/cost.js';
import type { MetricDef } from '../../ml/metrics/table.js';
import type { EvaluateParams } from './schema.js';

export async function evaluateCost(p: EvaluateParams, inputs: Record<string, PlannedInput>): Promise<StageCost> {
  const [{ evaluateCost: metricsCost }, { resolveProtocol }, { METRICS }, { ROAD_DEFAULTS }] = await Promise.all([
    import('../../ml/metrics/cost.js'),
    import('../../ml/metrics/protocol.js'),
    import('../../ml/metrics/table.js'),
    import('../../ml/metrics/road.js'),
  ]);
  const sal = inputs.saliency?.cost?.facts;
  const images = typeof sal?.images === 'number' ? sal.images : undefined;
  const methods = p.methods ?? (Array.isArray(sal?.methods) ? (sal.methods as string[]) : undefined);
  const size = (await plannedModel(inputs.model)).size ?? (typeof sal?.size === 'number' ? sal.size : undefined);
  const out: StageCost = { images, detail: [], unknown: [] };
  if (images === undefined) out.unknown.push('image count unknown');
  if (!methods) out.unknown.push('methods unknown');
  if (size === undefined) out.unknown.push('image size unknown (the model input is not a train stage)');
  const protocol = resolveProtocol(p.protocol ?? 'ca-stream', p.protocol_overrides ?? {}, 'protocol');
  const c = metricsCost(
    protocol,
    size ?? 224,
    // Opt-in metrics (ROAD, the sanity check) only where the params turn them on.
    (METRICS as readonly MetricDef[]).filter((m) => !m.optIn || p[m.optIn] !== undefined).map((m) => m.key),
    (p.road?.orders ?? ROAD_DEFAULTS.orders).length * (p.road?.percentages ?? ROAD_DEFAULTS.percentages).length,
  );
  out.unknown.push(...c.unknown.map((k) => `metric ${k}: cost unknown`));
  out.detail.push(
    `${c.perImage} clean forward per image`,
    `${c.perMap} forwards per map (${
      Object.entries(c.byGroup)
        .map(([g, k]) => `${k} ${g}`)
        .join(' + ') || 'none'
    }; protocol ${protocol.name}${size ? ` at ${size} px` : ''})`,
  );
  if (images !== undefined && methods && size !== undefined) out.forwards = images * (c.perImage + methods.length * c.perMap);
  return out;
}
