// Gathers what the report shows from its inputs' committed outputs. Inputs are recognised by the
// files they hold (stages/artifacts.ts), so a report can take any mix of train, saliency and
// evaluate stages without naming their roles.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext, VariantInput } from '../../engine/contract.js';
import {
  EVALUATE_FILES,
  MODEL_FILES,
  SALIENCY_FILES,
  type EvaluateSummary,
  type ModelCard,
  type SaliencyMeta,
  type TrainSummary,
} from '../artifacts.js';

export interface Source {
  stage: string;
  variant: { id: string; alias: string; values: Record<string, unknown> };
  dir: string;
  key: string;
}

export interface ModelEntry extends Source {
  card: ModelCard;
  summary?: TrainSummary;
  epochs: Array<{ epoch: number; loss?: number; acc?: number; val_loss?: number; val_acc?: number; lr?: number }>;
}

export interface EvaluationEntry extends Source {
  summary: EvaluateSummary;
  curves: Record<string, { insertion: number[]; deletion: number[] }>;
  /** method → metric → image id → value, for paired comparisons. */
  perImage: Map<string, Map<string, Map<number, number>>>;
}

export interface SaliencyEntry extends Source {
  meta: SaliencyMeta;
}

export interface Collected {
  models: ModelEntry[];
  evaluations: EvaluationEntry[];
  saliency: SaliencyEntry[];
  ignored: Source[];
}

async function readJson<T>(file: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`report: cannot read ${file}: ${(e as Error).message}`);
  }
}

async function readJsonl(file: string): Promise<any[]> {
  if (!existsSync(file)) return [];
  const text = await readFile(file, 'utf8');
  const out: any[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line));
    } catch {
      throw new Error(`report: ${file}:${i + 1}: not valid JSON`);
    }
  });
  return out;
}

/**
 * Every (input, variant) pair. A stage shared by several variants appears once per variant (its
 * results belong to each of them, e.g. a GAP evaluation compared against each variant's CA one);
 * readers de-duplicate by key where showing it once is right (trained models).
 */
export function sources(ctx: Pick<StageContext, 'inputs' | 'variantInputs'>): Source[] {
  const seen = new Set<string>();
  const out: Source[] = [];
  const add = (stage: string, v: VariantInput) => {
    const id = `${v.key}\0${v.variantId}`;
    if (seen.has(id)) return;
    seen.add(id);
    out.push({ stage, variant: { id: v.variantId, alias: v.alias, values: v.values }, dir: v.dir, key: v.key });
  };
  for (const [name, list] of Object.entries(ctx.variantInputs ?? {})) for (const v of list) add(name, v);
  for (const [name, dir] of Object.entries(ctx.inputs ?? {})) {
    if (ctx.variantInputs?.[name]) continue;
    add(name, { variantId: '', alias: '', values: {}, dir, key: `dir:${dir}` });
  }
  return out;
}

export async function collect(srcs: Source[]): Promise<Collected> {
  const c: Collected = { models: [], evaluations: [], saliency: [], ignored: [] };
  const shown = new Set<string>();
  // An output shared by several variants (same key) is shown once, without a variant label:
  // labelling it with the first variant that happens to list it would misattribute it.
  const variantsOf = new Map<string, Set<string>>();
  for (const s of srcs) variantsOf.set(s.key, (variantsOf.get(s.key) ?? new Set()).add(s.variant.id));
  const once = (s: Source): Source => ((variantsOf.get(s.key)?.size ?? 0) > 1 ? { ...s, variant: { id: '', alias: '', values: {} } } : s);
  for (const s of srcs) {
    const first = !shown.has(s.key);
    shown.add(s.key);
    if (existsSync(join(s.dir, MODEL_FILES.card))) {
      if (!first) continue;
      const card = await readJson<ModelCard>(join(s.dir, MODEL_FILES.card));
      const summary = existsSync(join(s.dir, MODEL_FILES.summary))
        ? await readJson<TrainSummary>(join(s.dir, MODEL_FILES.summary))
        : undefined;
      const epochs = (await readJsonl(join(s.dir, MODEL_FILES.metrics))).filter((r) => r.type === 'epoch');
      c.models.push({ ...once(s), card, summary, epochs });
    } else if (existsSync(join(s.dir, EVALUATE_FILES.summary))) {
      const summary = await readJson<EvaluateSummary>(join(s.dir, EVALUATE_FILES.summary));
      const curves = existsSync(join(s.dir, EVALUATE_FILES.curves))
        ? await readJson<EvaluationEntry['curves']>(join(s.dir, EVALUATE_FILES.curves))
        : {};
      const perImage: EvaluationEntry['perImage'] = new Map();
      for (const r of await readJsonl(join(s.dir, EVALUATE_FILES.perImage))) {
        if (typeof r.method !== 'string' || typeof r.id !== 'number') continue;
        let m = perImage.get(r.method);
        if (!m) perImage.set(r.method, (m = new Map()));
        for (const [metric, v] of Object.entries(r)) {
          if (metric === 'id' || metric === 'method' || typeof v !== 'number') continue;
          let mm = m.get(metric);
          if (!mm) m.set(metric, (mm = new Map()));
          mm.set(r.id, v);
        }
      }
      c.evaluations.push({ ...s, summary, curves, perImage });
    } else if (existsSync(join(s.dir, SALIENCY_FILES.meta))) {
      if (!first) continue;
      c.saliency.push({ ...once(s), meta: await readJson<SaliencyMeta>(join(s.dir, SALIENCY_FILES.meta)) });
    } else if (first) {
      c.ignored.push(s);
    }
  }
  return c;
}
