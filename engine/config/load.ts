// loadExperiment: parse → merge (`extends`) → override (`-s`) → interpolate (`${...}`) → validate
// → Experiment. Every problem found is collected and thrown together as one located ConfigError,
// before any work starts; each step runs only when the ones before it found nothing.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Experiment, SourceLocation } from '../types.js';
import { validateAxes, type Axes } from './axes.js';
import { ConfigError } from './errors.js';
import { interpolate, type Template } from './interpolate.js';
import { IssueList, LocationMap, pathString, SourceTexts, type FieldPath } from './locations.js';
import { applyOverrides } from './overrides.js';
import type { Registry } from './registry-type.js';
import { checkRequiredPaths } from './required-paths.js';
import { checkCycles, validateStages, type DocContext } from './stage-specs.js';
import { validateExperimentDoc } from './validate.js';
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

const NON_SETTINGS = new Set(['name', 'extends', 'vars', 'sweep', 'zip', 'stages']);

export async function loadExperiment(file: string, opts: LoadOptions): Promise<Experiment> {
  const abs = path.resolve(file);
  const texts = new SourceTexts();
  // parse + merge: the file and every layer it extends, with each value's source location.
  const { value: doc, locs } = loadLayers(abs, texts);
  const issues = new IssueList(locs, texts, abs);
  const stopOnIssues = (): void => {
    if (issues.size) throw new ConfigError(issues.list);
  };
  emptyMeansNone(doc);
  if (opts.overrides?.length) applyOverrides(doc, locs, texts, opts.overrides, opts.registry, issues);
  stopOnIssues();
  const { value: resolved, textual, templates } = interpolate(doc, opts.env ?? process.env, issues);
  stopOnIssues();
  const { stages, axes } = validate(resolved, textual, locs, issues, opts.registry);
  if (opts.checkPaths !== false) checkRequiredPaths(issues, path.dirname(abs), stages.infos, axes.byStage);
  checkDefaultName(abs, resolved, issues);
  stopOnIssues();
  return experimentOf(abs, resolved, stages.specs, axes, templates, locs);
}

/** "...yaml" would name its run records "..": the parent of --runs. */
function checkDefaultName(abs: string, resolved: Record<string, unknown>, issues: IssueList): void {
  const fileName = path.basename(abs).replace(/\.[^.]*$/, '');
  if (typeof resolved.name !== 'string' && /^\.*$/.test(fileName)) {
    issues.add(
      [],
      `the experiment name defaults to the file name "${fileName}", which cannot name a directory under --runs: add \`name: my-study\` to the file, or rename it`,
    );
  }
}

/** An empty `params:` or `needs:` (e.g. everything commented out) means "none". */
function emptyMeansNone(doc: Record<string, unknown>): void {
  if (!isPlainMap(doc.stages)) return;
  for (const spec of Object.values(doc.stages)) {
    if (!isPlainMap(spec)) continue;
    if (spec.params === null) spec.params = {};
    if (spec.needs === null) spec.needs = [];
  }
}

/** The document's schema, then its stages, dependency cycles and sweep/zip axes. */
function validate(
  resolved: Record<string, unknown>,
  textual: ReadonlySet<string>,
  locs: LocationMap,
  issues: IssueList,
  registry: Registry,
) {
  // `needs: data` is short for `needs: [data]`.
  if (isPlainMap(resolved.stages)) {
    for (const spec of Object.values(resolved.stages)) if (isPlainMap(spec) && typeof spec.needs === 'string') spec.needs = [spec.needs];
  }
  validateExperimentDoc(resolved, issues);
  const stagesDoc = isPlainMap(resolved.stages) ? resolved.stages : {};
  const exec = resolved.executor;
  const shardsDefault = isPlainMap(exec) && isPlainMap(exec.parallel) ? exec.parallel.shards : undefined;
  const ctx: DocContext = { issues, locs, stagesDoc, stageNames: Object.keys(stagesDoc) };
  if (typeof shardsDefault === 'number') ctx.defaultShards = shardsDefault;
  const infos = validateStages(ctx, registry, textual);
  const specs = [...infos.values()].map((i) => i.spec);
  checkCycles(ctx, specs);
  const axes = validateAxes(ctx, resolved, infos);
  return { stages: { infos, specs }, axes };
}

function experimentOf(
  abs: string,
  resolved: Record<string, unknown>,
  specs: Experiment['stages'],
  axes: Axes,
  templates: Template[],
  locs: LocationMap,
): Experiment {
  const swept = [...axes.byStage.entries()].flatMap(([stage, list]) => list.map((a) => ['stages', stage, 'params', ...a.paramPath]));
  const variantTemplates = sweptTemplates(templates, swept);
  const settings: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resolved)) if (!NON_SETTINGS.has(k)) settings[k] = v;
  return {
    name: typeof resolved.name === 'string' ? resolved.name : path.basename(abs).replace(/\.[^.]*$/, ''),
    file: abs,
    baseDir: path.dirname(abs),
    stages: specs,
    sweep: axes.sweep,
    zip: axes.zip,
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
