// Input paths a stage kind requires (StageKind.requiredPaths) must exist, for the written params
// and for every swept value of the stage; a missing one is reported where it was written.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { AxisParam } from './axes.js';
import type { FieldPath, IssueList } from './locations.js';
import { setAt } from './paths.js';
import type { StageInfo } from './stage-specs.js';
import { checkParams } from './validate.js';
import { isPlainMap } from './yaml-source.js';

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

/** The written params, then one trial per swept value (located at the value). */
function trialsOf(info: StageInfo, axes: readonly AxisParam[]): { params: Record<string, unknown>; at?: FieldPath }[] {
  const trials: { params: Record<string, unknown>; at?: FieldPath }[] = [{ params: info.spec.params }];
  for (const a of axes) {
    a.axis.values.forEach((v, i) => {
      const t = structuredClone(info.spec.params);
      setAt(t, a.paramPath, structuredClone(v));
      trials.push({ params: t, at: [a.section, a.axis.path, i] });
    });
  }
  return trials;
}

export function checkRequiredPaths(
  issues: IssueList,
  baseDir: string,
  infos: Map<string, StageInfo>,
  byStage: Map<string, AxisParam[]>,
): void {
  for (const info of infos.values()) {
    if (!info.kind.requiredPaths || !info.paramsOk) continue;
    const reported = new Set<string>();
    for (const t of trialsOf(info, byStage.get(info.spec.name) ?? [])) {
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
