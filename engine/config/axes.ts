// Validation of the `sweep:` and `zip:` axes: each axis names a param of a variant-scoped stage,
// lists distinct values (a zip axis may repeat one; its tuples may not repeat) that the param's
// schema accepts, and zip lists have one length.
import { canonicalJson } from '../canonical.js';
import type { SweepAxis } from '../types.js';
import { describeValue, didYouMean } from './errors.js';
import { pathString, type FieldPath } from './locations.js';
import { resolveParamPath, schemasAt, setAt, typeBySchema } from './paths.js';
import type { DocContext, StageInfo } from './stage-specs.js';
import { checkParams, type IssueSink } from './validate.js';
import { isPlainMap } from './yaml-source.js';

type Section = 'sweep' | 'zip';

/** A valid axis and the param path it sets in its stage. */
export interface AxisParam {
  axis: SweepAxis;
  section: Section;
  paramPath: FieldPath;
}

export interface Axes {
  sweep: SweepAxis[];
  zip: SweepAxis[];
  /** stage name → its swept params. */
  byStage: Map<string, AxisParam[]>;
}

export function validateAxes(ctx: DocContext, resolved: Record<string, unknown>, infos: Map<string, StageInfo>): Axes {
  const out: Axes = { sweep: [], zip: [], byStage: new Map() };
  for (const section of ['sweep', 'zip'] as const) {
    const axes = resolved[section];
    if (!isPlainMap(axes)) continue;
    for (const [axisPath, values] of Object.entries(axes)) {
      const a = validateAxis(ctx, resolved, infos, section, axisPath, values);
      if (!a) continue;
      out[section].push(a.axis);
      const stage = axisPath.split('.')[0]!;
      out.byStage.set(stage, [...(out.byStage.get(stage) ?? []), a]);
    }
  }
  if (isPlainMap(resolved.zip)) checkZipTuples(ctx, out.zip);
  return out;
}

function validateAxis(
  ctx: DocContext,
  resolved: Record<string, unknown>,
  infos: Map<string, StageInfo>,
  section: Section,
  axisPath: string,
  values: unknown,
): AxisParam | undefined {
  const { issues } = ctx;
  const ap: FieldPath = [section, axisPath];
  const segs = axisPath.split('.');
  const stageName = segs[0]!;
  if (segs.length < 2 || segs.some((s) => s === '')) {
    issues.add(ap, `a ${section} axis is written <stage>.<param path> (e.g. train.lr), got "${axisPath}"`, 'key');
    return undefined;
  }
  if (!Object.prototype.hasOwnProperty.call(ctx.stagesDoc, stageName)) {
    issues.add(ap, `unknown stage "${stageName}"${didYouMean(stageName, ctx.stageNames)} in axis "${axisPath}"`, 'key');
    return undefined;
  }
  if (section === 'zip' && isPlainMap(resolved.sweep) && Object.prototype.hasOwnProperty.call(resolved.sweep, axisPath)) {
    issues.add(ap, `"${axisPath}" is both a sweep and a zip axis`, 'key');
    return undefined;
  }
  if (!Array.isArray(values)) {
    issues.add(ap, `expected a list of values, got ${describeValue(values)}`);
    return undefined;
  }
  if (values.length === 0) {
    issues.add(ap, 'empty list: an axis needs at least one value');
    return undefined;
  }
  const info = infos.get(stageName);
  if (!info) return undefined; // the stage itself is broken and reported
  if (info.spec.scope === 'experiment') {
    issues.add(ap, `stage "${stageName}" has scope: experiment (one instance for all variants), so its params cannot be swept`, 'key');
    return undefined;
  }
  const rp = resolveParamPath(info.spec.params, segs.slice(1), info.kind.paramsSchema);
  if ('error' in rp) {
    issues.add(ap, `${rp.error} in stage "${stageName}" (kind ${info.kind.kind})`, 'key');
    return undefined;
  }
  // Values take the type their param asks for, like -s overrides ("8" for an integer is 8).
  const fieldSchemas = schemasAt(info.kind.paramsSchema, rp.path);
  for (let i = 0; i < values.length; i++) {
    const v: unknown = values[i];
    if (v !== null && typeof v !== 'object') values[i] = typeBySchema(v, typeof v === 'string' ? v : undefined, fieldSchemas);
  }
  // A zip axis may repeat a value (lr 0.1 with two batch sizes); its tuples are checked apart.
  const distinct = section === 'zip' || valuesDistinct(ctx, ap, values);
  const accepted = !info.paramsOk || valuesAccepted(ctx, ap, info, rp.path, values);
  if (!distinct || !accepted) return undefined;
  return { axis: { path: axisPath, values, loc: ctx.locs.locateKey(ap) }, section, paramPath: rp.path };
}

function valuesDistinct(ctx: DocContext, ap: FieldPath, values: unknown[]): boolean {
  const seen = new Map<string, number>();
  let ok = true;
  values.forEach((v, i) => {
    const c = canonicalJson(v);
    if (seen.has(c)) {
      ctx.issues.add([...ap, i], `duplicate value ${c} (also at index ${seen.get(c)})`);
      ok = false;
    } else seen.set(c, i);
  });
  return ok;
}

/** Each value must be acceptable to the param schema; reported at the value, naming the param. */
function valuesAccepted(ctx: DocContext, ap: FieldPath, info: StageInfo, paramPath: FieldPath, values: unknown[]): boolean {
  let ok = true;
  values.forEach((v, i) => {
    const trial = structuredClone(info.spec.params);
    setAt(trial, paramPath, structuredClone(v));
    const relocate: IssueSink = {
      add: (p, message) => {
        ok = false;
        ctx.issues.add([...ap, i], `${pathString(p)}: ${message}`);
      },
    };
    checkParams(info.kind, trial, ['stages', info.spec.name, 'params'], relocate);
  });
  return ok;
}

function checkZipTuples(ctx: DocContext, zip: SweepAxis[]): void {
  const first = zip[0];
  if (!first) return;
  let sameLength = true;
  for (const z of zip.slice(1)) {
    if (z.values.length !== first.values.length) {
      sameLength = false;
      ctx.issues.add(
        ['zip', z.path],
        `zip lists must all have the same length: "${z.path}" has ${z.values.length} values, "${first.path}" has ${first.values.length}`,
        'key',
      );
    }
  }
  if (!sameLength) return;
  const seen = new Map<string, number>();
  first.values.forEach((_, i) => {
    const c = canonicalJson(zip.map((z) => z.values[i]));
    const j = seen.get(c);
    if (j !== undefined)
      ctx.issues.add(
        ['zip', first.path, i],
        `zip entry ${i} repeats entry ${j} (${zip.map((z) => `${z.path}=${canonicalJson(z.values[i])}`).join(', ')})`,
      );
    else seen.set(c, i);
  });
}
