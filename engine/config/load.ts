// loadExperiment: YAML → extends → overrides → interpolation → validation → Experiment.
// Every problem found is collected and thrown together as one located ConfigError, before any
// work starts.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { StageKind } from '../contract.js';
import type { Experiment, SourceLocation, StageSpec, SweepAxis } from '../types.js';
import { canonicalJson } from '../canonical.js';
import { topoOrder } from '../dag.js';
import { ConfigError, describeValue, didYouMean } from './errors.js';
import { interpolate, type Template } from './interpolate.js';
import { IssueList, LocationMap, pathKey, pathString, SourceTexts, type FieldPath } from './locations.js';
import { applyOverrides } from './overrides.js';
import { getAt, resolveParamPath, schemasAt, setAt, typeBySchema } from './paths.js';
import type { Registry } from './registry-type.js';
import { checkParams, validateExperimentDoc, type IssueSink } from './validate.js';
import { isPlainMap, loadLayers } from './yaml-source.js';

export interface LoadOptions {
  /** `-s path=value` strings, applied in order. */
  overrides?: string[];
  registry: Registry;
  /** Environment for `${env:NAME}` (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Check StageKind.requiredPaths exist (default true). */
  checkPaths?: boolean;
}

const STAGE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const NON_SETTINGS = new Set(['name', 'extends', 'vars', 'sweep', 'zip', 'stages']);

/** Field path of the first string leaf of `v` for which `pred` holds. */
function findLeaf(v: unknown, pred: (s: string) => boolean, p: FieldPath = []): FieldPath | undefined {
  if (typeof v === 'string') return pred(v) ? p : undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = findLeaf(v[i], pred, [...p, i]);
      if (r) return r;
    }
  } else if (isPlainMap(v)) {
    for (const [k, x] of Object.entries(v)) {
      const r = findLeaf(x, pred, [...p, k]);
      if (r) return r;
    }
  }
  return undefined;
}

interface StageInfo {
  spec: StageSpec;
  kind: StageKind;
  /** Params passed validation (sweep and path checks need them). */
  paramsOk: boolean;
}

export async function loadExperiment(file: string, opts: LoadOptions): Promise<Experiment> {
  const abs = path.resolve(file);
  const baseDir = path.dirname(abs);
  const registry = opts.registry;
  const texts = new SourceTexts();
  const layer = loadLayers(abs, texts);
  const doc = layer.value;
  const locs: LocationMap = layer.locs;
  const issues = new IssueList(locs, texts, abs);
  const fail = (): never => {
    throw new ConfigError(issues.list);
  };

  // An empty `params:` or `needs:` (e.g. everything commented out) means "none".
  if (isPlainMap(doc.stages)) {
    for (const spec of Object.values(doc.stages)) {
      if (!isPlainMap(spec)) continue;
      if (spec.params === null) spec.params = {};
      if (spec.needs === null) spec.needs = [];
    }
  }

  if (opts.overrides?.length) applyOverrides(doc, locs, texts, opts.overrides, registry, issues);
  if (issues.size) fail();

  const { value: resolved, textual, templates } = interpolate(doc, opts.env ?? process.env, issues);
  if (issues.size) fail();

  // `needs: data` is short for `needs: [data]`.
  if (isPlainMap(resolved.stages)) {
    for (const spec of Object.values(resolved.stages)) if (isPlainMap(spec) && typeof spec.needs === 'string') spec.needs = [spec.needs];
  }

  validateExperimentDoc(resolved, issues);
  const stagesDoc = isPlainMap(resolved.stages) ? resolved.stages : {};
  const stageNames = Object.keys(stagesDoc);

  // Stages: kind, params, needs.
  const infos = new Map<string, StageInfo>();
  for (const name of stageNames) {
    const sp: FieldPath = ['stages', name];
    if (!STAGE_NAME.test(name)) {
      issues.add(sp, `invalid stage name "${name}": use letters, digits, "_" and "-" (starting with a letter or "_")`, 'key');
      continue;
    }
    const raw = stagesDoc[name];
    if (!isPlainMap(raw) || typeof raw.kind !== 'string') continue; // reported by the schema
    const kind = registry.get(raw.kind);
    if (!kind) {
      const known = registry.kinds();
      issues.add([...sp, 'kind'], `unknown stage kind "${raw.kind}"${didYouMean(raw.kind, known)} (known kinds: ${known.join(', ') || 'none'})`);
      continue;
    }
    if (raw.params !== undefined && !isPlainMap(raw.params)) continue; // reported by the schema
    const params = (raw.params ?? {}) as Record<string, unknown>;
    raw.params = params;
    // Environment text and referenced scalars take the type their field asks for, like -s overrides.
    for (const k of textual) {
      const prefix = pathKey([...sp, 'params']) + '\u0000';
      if (!k.startsWith(prefix)) continue;
      const sub: FieldPath = k.slice(prefix.length).split('\u0000');
      const cur = getAt(params, sub);
      if (cur.found && cur.value !== null && typeof cur.value !== 'object') {
        setAt(params, sub, typeBySchema(cur.value, typeof cur.value === 'string' ? cur.value : undefined, schemasAt(kind.paramsSchema, sub)));
      }
    }
    const paramsOk = checkParams(kind, params, [...sp, 'params'], issues) !== undefined;

    const needs: Record<string, string> = {};
    const needsPath: Record<string, FieldPath> = {};
    if (Array.isArray(raw.needs)) {
      raw.needs.forEach((up, i) => {
        if (typeof up !== 'string') return;
        needs[up] = up;
        needsPath[up] = [...sp, 'needs', i];
      });
    } else if (isPlainMap(raw.needs)) {
      for (const [input, up] of Object.entries(raw.needs)) {
        if (typeof up !== 'string') continue;
        needs[input] = up;
        needsPath[input] = [...sp, 'needs', input];
      }
    }
    const accepted = kind.inputs ? [...(kind.inputs.required ?? []), ...(kind.inputs.optional ?? [])] : undefined;
    // In the list form a mistyped stage name is also a mistyped input name: report it once.
    let dangling = false;
    for (const [input, up] of Object.entries(needs)) {
      if (!Object.prototype.hasOwnProperty.call(stagesDoc, up)) {
        issues.add(needsPath[input]!, `unknown stage "${up}"${didYouMean(up, stageNames)}`);
        if (Array.isArray(raw.needs)) {
          dangling = true;
          continue;
        }
      }
      if (accepted && !accepted.includes(input)) {
        const how = Array.isArray(raw.needs) ? ` (with the map form, needs: { <input>: ${up} }, you can name the input)` : '';
        issues.add(
          needsPath[input]!,
          `stage kind "${kind.kind}" does not accept input "${input}"${didYouMean(input, accepted)}; it accepts: ${accepted.join(', ') || 'no inputs'}${how}`,
          Array.isArray(raw.needs) ? 'value' : 'key',
        );
      }
    }
    for (const req of kind.inputs?.required ?? []) {
      if (!(req in needs) && !dangling) {
        issues.add(raw.needs !== undefined ? [...sp, 'needs'] : sp, `stage kind "${kind.kind}" requires input "${req}": add it to needs`, raw.needs !== undefined ? 'value' : 'key');
      }
    }
    const scope = (raw.scope as 'variant' | 'experiment' | undefined) ?? kind.scope ?? 'variant';
    infos.set(name, {
      spec: { name, kind: kind.kind, params, needs, scope, loc: locs.locateKey(sp) },
      kind,
      paramsOk,
    });
  }

  // Dependency cycles.
  const specs = [...infos.values()].map((i) => i.spec);
  const topo = topoOrder(specs);
  if ('cycle' in topo) {
    const { stage, input } = topo.closing;
    const raw = stagesDoc[stage] as Record<string, unknown>;
    const entry: FieldPath = Array.isArray(raw.needs) ? ['stages', stage, 'needs', (raw.needs as unknown[]).indexOf(input)] : ['stages', stage, 'needs', input];
    issues.add(entry, `dependency cycle: ${topo.cycle.join(' -> ')}`);
  }

  // Sweep and zip axes.
  const sweep: SweepAxis[] = [];
  const zip: SweepAxis[] = [];
  const axisParams = new Map<string, { axis: SweepAxis; section: 'sweep' | 'zip'; paramPath: FieldPath }[]>();
  for (const section of ['sweep', 'zip'] as const) {
    const axes = resolved[section];
    if (!isPlainMap(axes)) continue;
    for (const [axisPath, values] of Object.entries(axes)) {
      const ap: FieldPath = [section, axisPath];
      const segs = axisPath.split('.');
      const stageName = segs[0]!;
      if (segs.length < 2 || segs.some((s) => s === '')) {
        issues.add(ap, `a ${section} axis is written <stage>.<param path> (e.g. train.lr), got "${axisPath}"`, 'key');
        continue;
      }
      if (!Object.prototype.hasOwnProperty.call(stagesDoc, stageName)) {
        issues.add(ap, `unknown stage "${stageName}"${didYouMean(stageName, stageNames)} in axis "${axisPath}"`, 'key');
        continue;
      }
      if (section === 'zip' && isPlainMap(resolved.sweep) && Object.prototype.hasOwnProperty.call(resolved.sweep, axisPath)) {
        issues.add(ap, `"${axisPath}" is both a sweep and a zip axis`, 'key');
        continue;
      }
      if (!Array.isArray(values)) {
        issues.add(ap, `expected a list of values, got ${describeValue(values)}`);
        continue;
      }
      if (values.length === 0) {
        issues.add(ap, 'empty list: an axis needs at least one value');
        continue;
      }
      const info = infos.get(stageName);
      if (!info) continue; // the stage itself is broken and reported
      if (info.spec.scope === 'experiment') {
        issues.add(ap, `stage "${stageName}" has scope: experiment (one instance for all variants), so its params cannot be swept`, 'key');
        continue;
      }
      const rp = resolveParamPath(info.spec.params, segs.slice(1), info.kind.paramsSchema);
      if ('error' in rp) {
        issues.add(ap, `${rp.error} in stage "${stageName}" (kind ${info.kind.kind})`, 'key');
        continue;
      }
      // Values take the type their param asks for, like -s overrides ("8" for an integer is 8).
      const fieldSchemas = schemasAt(info.kind.paramsSchema, rp.path);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v !== null && typeof v !== 'object') values[i] = typeBySchema(v, typeof v === 'string' ? v : undefined, fieldSchemas);
      }
      const seen = new Map<string, number>();
      let ok = true;
      // A zip axis may repeat a value (lr 0.1 with two batch sizes); its tuples are checked below.
      if (section === 'sweep') values.forEach((v, i) => {
        const c = canonicalJson(v);
        if (seen.has(c)) {
          issues.add([...ap, i], `duplicate value ${c} (also at index ${seen.get(c)})`);
          ok = false;
        } else seen.set(c, i);
      });
      // Each value must be acceptable to the param schema; report at the value, naming the param.
      if (info.paramsOk) {
        values.forEach((v, i) => {
          const trial = structuredClone(info.spec.params);
          setAt(trial, rp.path, structuredClone(v));
          const relocate: IssueSink = {
            add: (p, message) => {
              ok = false;
              issues.add([...ap, i], `${pathString(p)}: ${message}`);
            },
          };
          checkParams(info.kind, trial, ['stages', stageName, 'params'], relocate);
        });
      }
      if (!ok) continue;
      const axis: SweepAxis = { path: axisPath, values, loc: locs.locateKey(ap) };
      (section === 'sweep' ? sweep : zip).push(axis);
      const list = axisParams.get(stageName) ?? [];
      list.push({ axis, section, paramPath: rp.path });
      axisParams.set(stageName, list);
    }
  }
  if (isPlainMap(resolved.zip) && zip.length > 0) {
    const first = zip[0]!;
    let sameLength = true;
    for (const z of zip.slice(1)) {
      if (z.values.length !== first.values.length) {
        sameLength = false;
        issues.add(['zip', z.path], `zip lists must all have the same length: "${z.path}" has ${z.values.length} values, "${first.path}" has ${first.values.length}`, 'key');
      }
    }
    if (sameLength) {
      const seen = new Map<string, number>();
      first.values.forEach((_, i) => {
        const c = canonicalJson(zip.map((z) => z.values[i]));
        const j = seen.get(c);
        if (j !== undefined) issues.add(['zip', first.path, i], `zip entry ${i} repeats entry ${j} (${zip.map((z) => `${z.path}=${canonicalJson(z.values[i])}`).join(', ')})`);
        else seen.set(c, i);
      });
    }
  }

  // Required input paths, for the written params and every swept value of the stage.
  if (opts.checkPaths !== false) {
    for (const info of infos.values()) {
      if (!info.kind.requiredPaths || !info.paramsOk) continue;
      const trials: { params: Record<string, unknown>; at?: FieldPath }[] = [{ params: info.spec.params }];
      for (const a of axisParams.get(info.spec.name) ?? []) {
        a.axis.values.forEach((v, i) => {
          const t = structuredClone(info.spec.params);
          setAt(t, a.paramPath, structuredClone(v));
          trials.push({ params: t, at: [a.section, a.axis.path, i] });
        });
      }
      const reported = new Set<string>();
      for (const t of trials) {
        const defaulted = checkParams(info.kind, t.params, [], { add: () => undefined });
        if (!defaulted) continue;
        for (const rel of info.kind.requiredPaths(defaulted)) {
          const full = path.resolve(baseDir, rel);
          if (existsSync(full) || reported.has(full)) continue;
          reported.add(full);
          const pp = ['stages', info.spec.name, 'params'];
          const leaf = findLeaf(t.params, (s) => s === rel || path.resolve(baseDir, s) === full);
          const at = t.at ?? (leaf ? [...pp, ...leaf] : pp);
          issues.add(at, `required path not found: ${rel}${rel !== full ? ` (${full})` : ''}`);
        }
      }
    }
  }

  if (issues.size) fail();

  const variantTemplates = sweptTemplates(templates, [...axisParams.entries()].flatMap(([stage, list]) => list.map((a) => ['stages', stage, 'params', ...a.paramPath])));

  const nameVal = resolved.name;
  const settings: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resolved)) if (!NON_SETTINGS.has(k)) settings[k] = v;
  return {
    name: typeof nameVal === 'string' ? nameVal : path.basename(abs).replace(/\.[^.]*$/, ''),
    file: abs,
    baseDir,
    stages: specs,
    sweep,
    zip,
    resolved,
    settings,
    ...(variantTemplates.length ? { variantTemplates } : {}),
    locate: (p) => locs.locate(p),
  };
}

/** One path is the other or lies inside it. */
function overlaps(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (String(a[i]) !== String(b[i])) return false;
  return true;
}

/**
 * The templates whose value depends on a swept param (directly or through other templates), in
 * dependency order. A template that is itself a swept param is replaced by the sweep, not kept.
 */
function sweptTemplates(templates: Template[], sweptPaths: FieldPath[]): Template[] {
  if (!sweptPaths.length) return [];
  const changing: FieldPath[] = [...sweptPaths];
  const out: Template[] = [];
  for (const t of templates) {
    if (sweptPaths.some((p) => overlaps(p, t.path) && t.path.length >= p.length)) continue;
    if (t.pieces.some((piece) => 'ref' in piece && changing.some((c) => overlaps(c, piece.ref)))) {
      out.push(t);
      changing.push(t.path);
    }
  }
  return out;
}

/** A ConfigError located at a field path of a loaded experiment (for problems found after loading). */
export function configErrorAt(exp: Experiment, p: FieldPath, message: string): ConfigError {
  const loc: SourceLocation = exp.locate(p) ?? { file: exp.file, line: 1, column: 1 };
  let source: string | undefined;
  try {
    source = readFileSync(loc.file, 'utf8').split(/\r?\n/)[loc.line - 1];
  } catch {
    source = undefined;
  }
  return new ConfigError([{ ...loc, path: pathString(p), message, source }]);
}
