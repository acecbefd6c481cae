// `-s path=value` overrides. A path whose first segment names a stage addresses that stage's
// params (`train.lr` → stages.train.params.lr); any other path is absolute in the document.
// Values are YAML scalars/flow collections, then typed by the schema of the field they land on.
import type { SourceLocation } from '../types.js';
import { didYouMean } from './errors.js';
import { pathString, type FieldPath, type IssueList, type LocationMap, type SourceTexts } from './locations.js';
import { resolveDotted, schemaKeys, schemaOpensKey, schemasAt, setAt, typeBySchema } from './paths.js';
import { experimentSchema } from './validate.js';
import { isPlainMap, yamlLib } from './yaml-source.js';
import type { Registry } from './registry-type.js';

export const OVERRIDES_FILE = '<overrides>';

const NOT_PLAIN = Symbol('not plain');

/**
 * The YAML value of the commonest override texts (decimal numbers, true/false, bare words),
 * without loading the yaml library; NOT_PLAIN for anything else (YAML decides those).
 */
export function plainScalar(text: string): unknown {
  if (/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  // Words YAML reads as something else (null, True, NO under 1.1 rules...) go to YAML.
  if (
    /^[A-Za-z_][A-Za-z0-9_/-]*$/.test(text) &&
    !/^(null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/.test(text)
  )
    return text;
  return NOT_PLAIN;
}

interface Target {
  path: FieldPath;
  /** Schema root and the path inside it for typing the value. */
  schema?: { root: object; at: FieldPath };
}

/**
 * Extend a partial resolution with keys the schema declares; report an unknown path otherwise.
 * `schemaOf(prefix)` gives the schema and in-schema path for a document prefix.
 */
function completePath(
  doc: unknown,
  segs: string[],
  prefix: FieldPath,
  schemaOf: (p: FieldPath) => { root: object; at: FieldPath } | undefined,
): { path?: FieldPath; error?: string } {
  const res = resolveDotted(doc, segs);
  const out: FieldPath = [...prefix, ...res.path];
  if (res.missingAt === undefined) return { path: out };
  for (let i = res.missingAt; i < segs.length; i++) {
    const seg = segs[i]!;
    const s = schemaOf(out);
    const here = s ? schemasAt(s.root, s.at) : [];
    const declared = schemaKeys(here);
    if (declared.includes(seg) || schemaOpensKey(here, seg)) {
      out.push(seg);
      continue;
    }
    const existing = i === res.missingAt && isPlainMap(res.container) ? Object.keys(res.container) : [];
    const hint = didYouMean(seg, [...new Set([...existing, ...declared])]);
    return { error: `unknown key "${seg}" under ${pathString(out) || 'the document'}${hint}` };
  }
  return { path: out };
}

export function applyOverrides(
  doc: Record<string, unknown>,
  locs: LocationMap,
  texts: SourceTexts,
  overrides: string[],
  registry: Registry,
  issues: IssueList,
): void {
  texts.add(OVERRIDES_FILE, overrides.join('\n'));
  overrides.forEach((text, i) => {
    const line = i + 1;
    const at = (column: number): SourceLocation => ({ file: OVERRIDES_FILE, line, column });
    const eq = text.indexOf('=');
    const pathText = eq < 0 ? '' : text.slice(0, eq).trim();
    if (eq < 0 || !pathText) {
      issues.addAt(at(1), '', `override "${text}" must look like path=value (e.g. train.lr=0.01)`);
      return;
    }
    const valueText = text.slice(eq + 1);
    let parsed = plainScalar(valueText);
    if (parsed === NOT_PLAIN) {
      const vdoc = yamlLib().parseDocument(valueText);
      if (vdoc.errors.length) {
        const e = vdoc.errors[0]!;
        issues.addAt(at(eq + 2 + e.pos[0]), pathText, `cannot parse value: ${e.message.split('\n')[0]}`);
        return;
      }
      parsed = vdoc.toJS() as unknown;
    }
    const segs = pathText.split('.');
    const stages = isPlainMap(doc.stages) ? doc.stages : {};

    let target: Target;
    if (segs.length >= 2 && Object.prototype.hasOwnProperty.call(stages, segs[0]!)) {
      const stage = segs[0]!;
      const spec = isPlainMap(stages[stage]) ? (stages[stage] as Record<string, unknown>) : {};
      const kind = typeof spec.kind === 'string' ? registry.get(spec.kind) : undefined;
      const base: FieldPath = ['stages', stage, 'params'];
      const r = completePath(spec.params ?? {}, segs.slice(1), base, (p) =>
        kind ? { root: kind.paramsSchema, at: p.slice(base.length) } : undefined,
      );
      if (r.error) {
        issues.addAt(at(1), pathString([...base, ...segs.slice(1)]), r.error);
        return;
      }
      target = { path: r.path!, schema: kind ? { root: kind.paramsSchema, at: r.path!.slice(base.length) } : undefined };
    } else if ((segs[0] === 'sweep' || segs[0] === 'zip') && segs.length >= 3) {
      // Axis names contain dots: everything after the section is one key (new axes allowed).
      target = { path: [segs[0], segs.slice(1).join('.')] };
      if (!isPlainMap(doc[segs[0]])) doc[segs[0]] = {};
    } else {
      const r = completePath(doc, segs, [], (p) => {
        if (p[0] === 'stages' && p.length >= 3 && p[2] === 'params') {
          const spec = stages[String(p[1])];
          const kindName = isPlainMap(spec) ? spec.kind : undefined;
          const kind = typeof kindName === 'string' ? registry.get(kindName) : undefined;
          return kind ? { root: kind.paramsSchema, at: p.slice(3) } : undefined;
        }
        return { root: experimentSchema(), at: p };
      });
      if (r.error) {
        const first = segs[0]!;
        const isTop = Object.prototype.hasOwnProperty.call(doc, first) || schemaKeys(schemasAt(experimentSchema(), [])).includes(first);
        const msg = isTop
          ? r.error
          : `"${first}" is neither a stage nor a top-level key${didYouMean(first, [...Object.keys(stages), ...Object.keys(doc), ...schemaKeys(schemasAt(experimentSchema(), []))])}`;
        issues.addAt(at(1), pathText, msg);
        return;
      }
      const p = r.path!;
      let schema: Target['schema'];
      if (p[0] === 'stages' && p.length >= 4 && p[2] === 'params') {
        const spec = stages[String(p[1])];
        const kind = isPlainMap(spec) && typeof spec.kind === 'string' ? registry.get(spec.kind) : undefined;
        schema = kind ? { root: kind.paramsSchema, at: p.slice(3) } : undefined;
      } else schema = { root: experimentSchema(), at: p };
      target = { path: p, schema };
    }

    const raw = typeof parsed === 'object' && parsed !== null ? undefined : valueText.trim();
    const value = target.schema ? typeBySchema(parsed, raw, schemasAt(target.schema.root, target.schema.at)) : parsed;
    setAt(doc, target.path, value);
    locs.deleteUnder(target.path);
    locs.setValue(target.path, at(eq + 2));
    locs.setKey(target.path, at(1));

    // Overriding a swept param pins it: the axis no longer varies.
    if (target.path[0] === 'stages' && target.path[2] === 'params') {
      const axis = `${String(target.path[1])}.${target.path.slice(3).join('.')}`;
      for (const section of ['sweep', 'zip'] as const) {
        const axes = doc[section];
        if (isPlainMap(axes) && Object.prototype.hasOwnProperty.call(axes, axis)) delete axes[axis];
      }
    }
  });
}
