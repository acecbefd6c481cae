// Plan building: one stage instance per distinct (params, upstream instances) across variants,
// in dependency order, with key material ready for keying.
import type { PlanFacts, StageKind } from '../contract.js';
import type { Experiment, KeyMaterial, Plan, StageInstance, StageSpec, Variant } from '../types.js';
import { ConfigError, type ConfigIssue } from '../config/errors.js';
import { configErrorAt } from '../config/load.js';
import { pathString, type FieldPath } from '../config/locations.js';
import { evaluateTemplate } from '../config/interpolate.js';
import { getAt, resolveParamPath, schemasAt, setAt, typeBySchema } from '../config/paths.js';
import type { Registry } from '../config/registry-type.js';
import { checkParams } from '../config/validate.js';
import { canonicalJson, computeKey } from './canonical.js';
import { topoOrder } from '../dag.js';
import { expandVariants } from './variants.js';

const NO_VARIANT: Variant = Object.freeze({ id: '', alias: '', values: Object.freeze({}) }) as Variant;

function keyParams(params: Record<string, unknown>, nonKey: string[]): Record<string, unknown> {
  if (nonKey.length === 0) return params;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) if (!nonKey.includes(k)) out[k] = v;
  return out;
}

/** Params with schema defaults; a failure here means the experiment changed since it was loaded. */
function defaulted(exp: Experiment, spec: StageSpec, kind: StageKind, params: Record<string, unknown>): Record<string, unknown> {
  const found: ConfigIssue[] = [];
  const out = checkParams(kind, params, ['stages', spec.name, 'params'], {
    add: (p: readonly (string | number)[], message: string) => {
      const loc = exp.locate([...p]) ?? { file: exp.file, line: 1, column: 1 };
      found.push({ ...loc, path: pathString(p), message });
    },
  });
  if (!out) throw new ConfigError(found);
  return out;
}

export async function buildPlan(exp: Experiment, registry: Registry): Promise<Plan> {
  const variants = expandVariants(exp);
  const topo = topoOrder(exp.stages);
  if ('cycle' in topo) {
    const { stage, input } = topo.closing;
    throw configErrorAt(exp, ['stages', stage, 'needs'], `dependency cycle: ${topo.cycle.join(' -> ')} (input "${input}")`);
  }
  const expansion = expandInstances(exp, registry, topo.order, variants);
  const { instances, servedBy } = expansion;
  const byId = new Map(instances.map((i) => [i.id, i]));
  await checkPlanInputs(exp, expansion, byId);
  assignPlanKeys(instances, byId);

  const byVariant: Record<string, Record<string, string>> = {};
  variants.forEach((v, vi) => {
    const m: Record<string, string> = {};
    for (const spec of topo.order) m[spec.name] = servedBy.get(spec.name)![vi]!.id;
    byVariant[v.id] = m;
  });
  return { experiment: exp, variants, instances, byVariant };
}

interface SweptParam {
  path: string;
  paramPath: FieldPath;
}

interface Expansion {
  instances: StageInstance[];
  /** stage name → instance serving it, per variant index. */
  servedBy: Map<string, StageInstance[]>;
  kindOf: Map<StageInstance, StageKind>;
}

/** Where each variant's params come from. */
interface VariantSource {
  variants: Variant[];
  axesByStage: Map<string, SweptParam[]>;
  templatedStages: Set<string>;
  variantDoc: (vi: number) => Record<string, unknown>;
}

/** Stage instances in dependency order: one per distinct (params, upstream instances) across variants. */
function expandInstances(exp: Experiment, registry: Registry, order: StageSpec[], variants: Variant[]): Expansion {
  const axesByStage = sweptParamsByStage(exp, registry);
  const templates = exp.variantTemplates ?? [];
  const src: VariantSource = {
    variants,
    axesByStage,
    templatedStages: new Set(templates.filter((t) => t.path[0] === 'stages' && t.path[2] === 'params').map((t) => String(t.path[1]))),
    variantDoc: variantDocuments(exp, registry, variants, axesByStage),
  };
  const out: Expansion = { instances: [], servedBy: new Map(), kindOf: new Map() };
  for (const spec of order) {
    const kind = registry.get(spec.kind);
    if (!kind) throw configErrorAt(exp, ['stages', spec.name, 'kind'], `unknown stage kind "${spec.kind}"`);
    const served =
      spec.scope === 'experiment' ? experimentInstance(exp, out, spec, kind, variants) : variantInstances(exp, out, spec, kind, src);
    out.servedBy.set(spec.name, served);
  }
  return out;
}

/** Which swept values land in which stage's params. */
function sweptParamsByStage(exp: Experiment, registry: Registry): Map<string, SweptParam[]> {
  const axesByStage = new Map<string, SweptParam[]>();
  for (const axis of [...exp.sweep, ...exp.zip]) {
    const [stage, ...rest] = axis.path.split('.');
    const spec = exp.stages.find((s) => s.name === stage);
    const kind = spec && registry.get(spec.kind);
    if (!spec || !kind) throw configErrorAt(exp, ['sweep', axis.path], `sweep axis "${axis.path}" names no known stage`);
    const rp = resolveParamPath(spec.params, rest, kind.paramsSchema);
    if ('error' in rp) throw configErrorAt(exp, ['sweep', axis.path], rp.error);
    const list = axesByStage.get(spec.name) ?? [];
    list.push({ path: axis.path, paramPath: rp.path });
    axesByStage.set(spec.name, list);
  }
  return axesByStage;
}

/**
 * Fields computed from swept values (`${stages.train.params.lr}` elsewhere): each variant
 * evaluates them against its own document, built on first use.
 */
function variantDocuments(
  exp: Experiment,
  registry: Registry,
  variants: Variant[],
  axesByStage: Map<string, SweptParam[]>,
): (vi: number) => Record<string, unknown> {
  const templates = exp.variantTemplates ?? [];
  const variantDocs = new Map<number, Record<string, unknown>>();
  return (vi) => {
    let doc = variantDocs.get(vi);
    if (doc) return doc;
    doc = structuredClone(exp.resolved);
    const values = variants[vi]!.values;
    for (const [stage, list] of axesByStage) {
      for (const a of list) if (a.path in values) setAt(doc, ['stages', stage, 'params', ...a.paramPath], structuredClone(values[a.path]));
    }
    for (const t of templates) {
      let v = evaluateTemplate(t, doc);
      const spec = t.path[0] === 'stages' && t.path[2] === 'params' ? exp.stages.find((s) => s.name === t.path[1]) : undefined;
      const kind = spec && registry.get(spec.kind);
      // Like at load time: a whole-string reference to a scalar takes its field's type.
      if (kind && t.whole && v !== null && typeof v !== 'object')
        v = typeBySchema(v, typeof v === 'string' ? v : undefined, schemasAt(kind.paramsSchema, t.path.slice(3)));
      setAt(doc, t.path, v);
    }
    variantDocs.set(vi, doc);
    return doc;
  };
}

function addInstance(
  out: Expansion,
  spec: StageSpec,
  kind: StageKind,
  at: { id: string; variant: Variant; params: Record<string, unknown>; deps: StageInstance['deps']; users: string[] },
): StageInstance {
  const nonKey = kind.nonKeyParams ?? [];
  const { params } = at;
  const inst: StageInstance = {
    id: at.id,
    stage: spec.name,
    kind: kind.kind,
    variant: at.variant,
    params,
    nonKeyParams: nonKey.filter((k) => k in params),
    deps: at.deps,
    scope: spec.scope,
    material: { kind: kind.kind, version: kind.version, params: keyParams(params, nonKey), inputs: {}, external: {} },
    variants: at.users,
  };
  if (spec.parallel && spec.parallel.shards > 1) inst.parallel = { shards: spec.parallel.shards };
  out.kindOf.set(inst, kind);
  out.instances.push(inst);
  return inst;
}

/** A stage that compares variants: one instance, seeing every variant's upstream. */
function experimentInstance(exp: Experiment, out: Expansion, spec: StageSpec, kind: StageKind, variants: Variant[]): StageInstance[] {
  const deps: Record<string, string[]> = {};
  for (const [input, up] of Object.entries(spec.needs)) deps[input] = out.servedBy.get(up)!.map((i) => i.id);
  const inst = addInstance(out, spec, kind, {
    id: spec.name,
    variant: NO_VARIANT,
    params: defaulted(exp, spec, kind, spec.params),
    deps,
    users: variants.map((v) => v.id),
  });
  return variants.map(() => inst);
}

/** A per-variant stage: the instance serving each variant, shared where params and upstream agree. */
function variantInstances(exp: Experiment, out: Expansion, spec: StageSpec, kind: StageKind, src: VariantSource): StageInstance[] {
  const { variants } = src;
  const axes = src.axesByStage.get(spec.name) ?? [];
  const templated = src.templatedStages.has(spec.name);
  const varies = axes.length > 0 || templated;
  const paramsCache = new Map<string, Record<string, unknown>>();
  const groups = new Map<string, { params: Record<string, unknown>; deps: Record<string, string>; members: number[] }>();
  const groupOf: string[] = [];
  variants.forEach((v, vi) => {
    let raw = spec.params;
    if (templated) raw = structuredClone(getAt(src.variantDoc(vi), ['stages', spec.name, 'params']).value as Record<string, unknown>);
    else if (axes.length) {
      raw = structuredClone(spec.params);
      for (const a of axes) if (a.path in v.values) setAt(raw, a.paramPath, structuredClone(v.values[a.path]));
    }
    const rawKey = varies ? canonicalJson(raw) : '';
    let params = paramsCache.get(rawKey);
    if (!params) {
      params = defaulted(exp, spec, kind, raw);
      paramsCache.set(rawKey, params);
    }
    const deps: Record<string, string> = {};
    for (const [input, up] of Object.entries(spec.needs)) deps[input] = out.servedBy.get(up)![vi]!.id;
    // Same params and same upstream instances → the same instance (shared across variants).
    const ident = `${rawKey}\u0000${canonicalJson(deps)}`;
    const g = groups.get(ident);
    if (g) g.members.push(vi);
    // Each instance owns its params object (the cache may serve several instances).
    else groups.set(ident, { params: structuredClone(params), deps, members: [vi] });
    groupOf.push(ident);
  });
  const shared = groups.size === 1;
  const byIdent = new Map<string, StageInstance>();
  for (const [ident, g] of groups) {
    const first = variants[g.members[0]!]!;
    byIdent.set(
      ident,
      addInstance(out, spec, kind, {
        id: shared ? spec.name : `${spec.name}@${first.id}`,
        variant: shared ? NO_VARIANT : first,
        params: g.params,
        deps: g.deps,
        users: g.members.map((m) => variants[m]!.id),
      }),
    );
  }
  return groupOf.map((ident) => byIdent.get(ident)!);
}

/**
 * External content (dependency files, folder listings) and the stage kinds' input checks. What
 * goes wrong here is the user's input, found before any work: a located error (exit code 2).
 */
async function checkPlanInputs(exp: Experiment, { instances, kindOf }: Expansion, byId: Map<string, StageInstance>): Promise<void> {
  const upstreamOf = (inst: StageInstance): Array<[string, StageInstance]> =>
    Object.entries(inst.deps).flatMap(([input, dep]) => (Array.isArray(dep) ? [] : [[input, byId.get(dep)!] as [string, StageInstance]]));
  const factsWanted = new Set(
    instances.filter((i) => kindOf.get(i)!.checkInputs !== undefined).flatMap((i) => upstreamOf(i).map(([, up]) => up)),
  );
  const facts = new Map<StageInstance, PlanFacts>();
  const userError = (inst: StageInstance, field: string, e: unknown): ConfigError =>
    e instanceof ConfigError
      ? e
      : configErrorAt(exp, ['stages', inst.stage, field], `${inst.kind} stage "${inst.id}": ${(e as Error)?.message ?? String(e)}`);
  // All at once (each may stat thousands of files), but the error reported is the first stage's in
  // plan order, not whichever failed first: the same input gives the same message every time.
  const settled = await Promise.allSettled(
    instances.map(async (inst) => {
      const kind = kindOf.get(inst)!;
      try {
        if (kind.externalDigest) inst.material.external = { ...(await kind.externalDigest(inst.params, exp.baseDir)) };
        if (kind.planFacts && factsWanted.has(inst)) facts.set(inst, await kind.planFacts(inst.params, exp.baseDir));
      } catch (e) {
        throw userError(inst, 'params', e);
      }
    }),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  for (const inst of instances) {
    const kind = kindOf.get(inst)!;
    if (!kind.checkInputs) continue;
    const inputs = Object.fromEntries(
      upstreamOf(inst).map(([input, up]) => [input, { stage: up.stage, kind: up.kind, facts: facts.get(up) }]),
    );
    try {
      kind.checkInputs(inst.params, inputs);
    } catch (e) {
      throw userError(inst, 'needs', e);
    }
  }
}

/** Provisional keys, in dependency order: upstream outputs enter as their plan keys. */
function assignPlanKeys(instances: StageInstance[], byId: Map<string, StageInstance>): void {
  for (const inst of instances) {
    const inputs: KeyMaterial['inputs'] = {};
    for (const [input, dep] of Object.entries(inst.deps)) {
      inputs[input] = Array.isArray(dep) ? dep.map((d) => `key:${byId.get(d)!.planKey}`) : `key:${byId.get(dep)!.planKey}`;
    }
    inst.material.inputs = inputs;
    inst.planKey = computeKey(inst.material);
    if (Object.keys(inst.deps).length === 0) inst.key = inst.planKey;
  }
}

/**
 * Fill `inst.material.inputs` with the upstream output digests and set `inst.key`; undefined (and
 * nothing changed) while some upstream digest is still unknown.
 */
export function finaliseKey(inst: StageInstance, outputDigests: Map<string, string>): string | undefined {
  const inputs: KeyMaterial['inputs'] = {};
  for (const [input, dep] of Object.entries(inst.deps)) {
    if (Array.isArray(dep)) {
      const list: string[] = [];
      for (const d of dep) {
        const digest = outputDigests.get(d);
        if (digest === undefined) return undefined;
        list.push(digest);
      }
      inputs[input] = list;
    } else {
      const digest = outputDigests.get(dep);
      if (digest === undefined) return undefined;
      inputs[input] = digest;
    }
  }
  inst.material.inputs = inputs;
  inst.key = computeKey(inst.material);
  return inst.key;
}
