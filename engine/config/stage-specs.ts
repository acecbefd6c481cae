// Validation of the `stages:` section of an interpolated experiment: each stage's name, kind,
// params (typed by their schema) and needs (known stages, accepted and required inputs), then the
// dependency graph's cycles. Problems are collected in the IssueList, not thrown.
import type { StageKind } from '../contract.js';
import { topoOrder } from '../dag.js';
import type { StageSpec } from '../types.js';
import { didYouMean } from './errors.js';
import { IssueList, LocationMap, pathKey, type FieldPath } from './locations.js';
import { getAt, schemasAt, setAt, typeBySchema } from './paths.js';
import type { Registry } from './registry-type.js';
import { checkParams } from './validate.js';
import { isPlainMap } from './yaml-source.js';

export interface StageInfo {
  spec: StageSpec;
  kind: StageKind;
  /** Params passed validation (sweep and path checks need them). */
  paramsOk: boolean;
}

/** What every check of one loaded document shares. */
export interface DocContext {
  issues: IssueList;
  locs: LocationMap;
  /** `stages:` of the interpolated document ({} when it is not a map: the schema reports that). */
  stagesDoc: Record<string, unknown>;
  stageNames: string[];
  /** `executor.parallel.shards`: the default of every stage whose kind can split. */
  defaultShards?: number;
}

const STAGE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function validateStages(ctx: DocContext, registry: Registry, textual: ReadonlySet<string>): Map<string, StageInfo> {
  const infos = new Map<string, StageInfo>();
  for (const name of ctx.stageNames) {
    const info = validateStage(ctx, name, registry, textual);
    if (info) infos.set(name, info);
  }
  return infos;
}

function validateStage(ctx: DocContext, name: string, registry: Registry, textual: ReadonlySet<string>): StageInfo | undefined {
  const { issues } = ctx;
  const sp: FieldPath = ['stages', name];
  if (!STAGE_NAME.test(name)) {
    issues.add(sp, `invalid stage name "${name}": use letters, digits, "_" and "-" (starting with a letter or "_")`, 'key');
    return undefined;
  }
  const raw = ctx.stagesDoc[name];
  if (!isPlainMap(raw) || typeof raw.kind !== 'string') return undefined; // reported by the schema
  const kind = registry.get(raw.kind);
  if (!kind) {
    const known = registry.kinds();
    issues.add(
      [...sp, 'kind'],
      `unknown stage kind "${raw.kind}"${didYouMean(raw.kind, known)} (known kinds: ${known.join(', ') || 'none'})`,
    );
    return undefined;
  }
  if (raw.params !== undefined && !isPlainMap(raw.params)) return undefined; // reported by the schema
  const params = (raw.params ?? {}) as Record<string, unknown>;
  raw.params = params;
  typeTextualParams(params, [...sp, 'params'], kind, textual);
  const paramsOk = checkParams(kind, params, [...sp, 'params'], issues) !== undefined;
  const needs = checkNeeds(ctx, sp, raw.needs, kind);
  const scope = (raw.scope as 'variant' | 'experiment' | undefined) ?? kind.scope ?? 'variant';
  const spec: StageSpec = { name, kind: kind.kind, params, needs, scope, loc: ctx.locs.locateKey(sp) };
  const shards = parallelShards(ctx, sp, raw.parallel, kind);
  if (shards !== undefined) spec.parallel = { shards };
  return { spec, kind, paramsOk };
}

/** The stage's own `parallel.shards`, else the executor's default when the kind can split. */
function parallelShards(ctx: DocContext, sp: FieldPath, raw: unknown, kind: StageKind): number | undefined {
  if (raw === undefined) return kind.split ? ctx.defaultShards : undefined;
  if (!isPlainMap(raw) || typeof raw.shards !== 'number') return undefined; // reported by the schema
  if (!kind.split) {
    ctx.issues.add(
      [...sp, 'parallel'],
      `stage kind "${kind.kind}" cannot be split over shards (kinds that can: those whose work is per-image shards, e.g. saliency, evaluate, features)`,
      'key',
    );
    return undefined;
  }
  return raw.shards;
}

/** Environment text and referenced scalars take the type their field asks for, like -s overrides. */
function typeTextualParams(params: Record<string, unknown>, paramsPath: FieldPath, kind: StageKind, textual: ReadonlySet<string>): void {
  const prefix = pathKey(paramsPath) + '\u0000';
  for (const k of textual) {
    if (!k.startsWith(prefix)) continue;
    const sub: FieldPath = k.slice(prefix.length).split('\u0000');
    const cur = getAt(params, sub);
    if (cur.found && cur.value !== null && typeof cur.value !== 'object') {
      setAt(params, sub, typeBySchema(cur.value, typeof cur.value === 'string' ? cur.value : undefined, schemasAt(kind.paramsSchema, sub)));
    }
  }
}

/** input name → upstream stage, with where each entry was written. */
function readNeeds(sp: FieldPath, rawNeeds: unknown): { needs: Record<string, string>; at: Record<string, FieldPath> } {
  const needs: Record<string, string> = {};
  const at: Record<string, FieldPath> = {};
  if (Array.isArray(rawNeeds)) {
    rawNeeds.forEach((up, i) => {
      if (typeof up !== 'string') return;
      needs[up] = up;
      at[up] = [...sp, 'needs', i];
    });
  } else if (isPlainMap(rawNeeds)) {
    for (const [input, up] of Object.entries(rawNeeds)) {
      if (typeof up !== 'string') continue;
      needs[input] = up;
      at[input] = [...sp, 'needs', input];
    }
  }
  return { needs, at };
}

function checkNeeds(ctx: DocContext, sp: FieldPath, rawNeeds: unknown, kind: StageKind): Record<string, string> {
  const { issues } = ctx;
  const { needs, at } = readNeeds(sp, rawNeeds);
  const listForm = Array.isArray(rawNeeds);
  const accepted = kind.inputs ? [...(kind.inputs.required ?? []), ...(kind.inputs.optional ?? [])] : undefined;
  // In the list form a mistyped stage name is also a mistyped input name: report it once.
  let dangling = false;
  for (const [input, up] of Object.entries(needs)) {
    if (!Object.prototype.hasOwnProperty.call(ctx.stagesDoc, up)) {
      issues.add(at[input]!, `unknown stage "${up}"${didYouMean(up, ctx.stageNames)}`);
      if (listForm) {
        dangling = true;
        continue;
      }
    }
    if (accepted && !accepted.includes(input)) {
      const how = listForm ? ` (with the map form, needs: { <input>: ${up} }, you can name the input)` : '';
      issues.add(
        at[input]!,
        `stage kind "${kind.kind}" does not accept input "${input}"${didYouMean(input, accepted)}; it accepts: ${accepted.join(', ') || 'no inputs'}${how}`,
        listForm ? 'value' : 'key',
      );
    }
  }
  for (const req of kind.inputs?.required ?? []) {
    if (!(req in needs) && !dangling) {
      issues.add(
        rawNeeds !== undefined ? [...sp, 'needs'] : sp,
        `stage kind "${kind.kind}" requires input "${req}": add it to needs`,
        rawNeeds !== undefined ? 'value' : 'key',
      );
    }
  }
  return needs;
}

/** Reports a dependency cycle at the `needs` entry that closes it. */
export function checkCycles(ctx: DocContext, specs: StageSpec[]): void {
  const topo = topoOrder(specs);
  if (!('cycle' in topo)) return;
  const { stage, input } = topo.closing;
  const raw = ctx.stagesDoc[stage] as Record<string, unknown>;
  const entry: FieldPath = Array.isArray(raw.needs)
    ? ['stages', stage, 'needs', (raw.needs as unknown[]).indexOf(input)]
    : ['stages', stage, 'needs', input];
  ctx.issues.add(entry, `dependency cycle: ${topo.cycle.join(' -> ')}`);
}
