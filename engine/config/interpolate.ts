// `${a.b.c}` references into the document and `${env:NAME}` / `${env:NAME:-default}` environment
// lookups. A string that is exactly one reference takes the referenced value (and its type);
// references embedded in longer strings are stringified. `$${` is a literal `${`.
import type { VariantTemplate } from '../types.js';
import { closest } from './errors.js';
import { pathKey, pathString, type FieldPath, type IssueList } from './locations.js';
import { getAt, resolveDotted } from './paths.js';
import { isPlainMap } from './yaml-source.js';

/**
 * A string that referenced other fields, kept so it can be evaluated again for each sweep variant
 * (`${stages.train.params.lr}` must see the variant's lr). Environment pieces are already
 * resolved to literals; references are field paths in the document.
 */
export type Template = VariantTemplate;

export interface Interpolated {
  value: Record<string, unknown>;
  /** Every string with at least one reference, in the order they were resolved (dependencies first). */
  templates: Template[];
  /**
   * Paths (pathKey) whose value came from the environment or from a whole-string reference to a
   * scalar. Such values are typed by the schema of the field they land on, like overrides.
   */
  textual: Set<string>;
}

type Piece = { literal: string } | { expr: string };

/** Split a string into literal text and `${...}` expressions; undefined if it has none. */
function scan(s: string): Piece[] | { error: string } | undefined {
  if (!s.includes('${')) return undefined;
  const pieces: Piece[] = [];
  let lit = '';
  let i = 0;
  let any = false;
  while (i < s.length) {
    if (s.startsWith('$${', i)) {
      lit += '${';
      i += 3;
      any = true;
      continue;
    }
    if (s.startsWith('${', i)) {
      const end = s.indexOf('}', i + 2);
      if (end < 0) return { error: `unterminated "\${" in ${JSON.stringify(s)}` };
      if (lit) pieces.push({ literal: lit });
      lit = '';
      pieces.push({ expr: s.slice(i + 2, end).trim() });
      i = end + 1;
      any = true;
      continue;
    }
    lit += s[i];
    i++;
  }
  if (lit) pieces.push({ literal: lit });
  return any ? pieces : undefined;
}

function stringify(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v as number | boolean | bigint); // what is left of a YAML value: a scalar
}

export function interpolate(doc: Record<string, unknown>, env: NodeJS.ProcessEnv, issues: IssueList): Interpolated {
  const memo = new Map<string, unknown>();
  const textual = new Set<string>();
  const active = new Set<string>();
  const refStack: FieldPath[] = [];
  const templates: Template[] = [];
  const FAILED = Symbol('failed');

  const lookupEnv = (expr: string, p: FieldPath): string | typeof FAILED => {
    const body = expr.slice(4);
    const sep = body.indexOf(':-');
    const name = (sep < 0 ? body : body.slice(0, sep)).trim();
    const value = env[name];
    if (sep >= 0) return value === undefined || value === '' ? body.slice(sep + 2) : value;
    if (value === undefined) {
      issues.add(p, `environment variable ${name} is not set (write \${env:${name}:-default} for a fallback)`);
      return FAILED;
    }
    return value;
  };

  const lookupRef = (expr: string, p: FieldPath): { value: unknown; from: FieldPath } | typeof FAILED => {
    if (!expr) {
      issues.add(p, 'empty reference "${}"');
      return FAILED;
    }
    const res = resolveDotted(doc, expr.split('.'));
    if (res.missingAt !== undefined) {
      const prefix = pathString(res.path);
      const keys = isPlainMap(res.container) ? Object.keys(res.container).map((k) => (prefix ? `${prefix}.${k}` : k)) : [];
      const hint = closest(expr, keys);
      issues.add(p, `unknown reference \${${expr}}${hint ? ` (did you mean \${${hint}}?)` : ''}`);
      return FAILED;
    }
    const target = res.path;
    const tk = pathKey(target);
    // A reference to a value being resolved (itself or an ancestor of the referring string) loops.
    if (active.has(tk)) {
      const idx = refStack.findIndex((f) => f.length >= target.length && pathKey(f.slice(0, target.length)) === tk);
      const chain = [...refStack.slice(Math.max(0, idx)), target].map(pathString);
      issues.add(p, `interpolation cycle: ${chain.join(' -> ')}`);
      return FAILED;
    }
    return { value: resolveAt(target, getAt(doc, target).value), from: target };
  };

  const resolveString = (p: FieldPath, s: string): unknown => {
    const pieces = scan(s);
    if (pieces === undefined) return s;
    if ('error' in pieces) {
      issues.add(p, pieces.error);
      return s;
    }
    refStack.push(p);
    try {
      if (pieces.length === 1 && 'expr' in pieces[0]!) {
        const expr = pieces[0].expr;
        if (expr.startsWith('env:')) {
          const v = lookupEnv(expr, p);
          if (v === FAILED) return s;
          textual.add(pathKey(p));
          return v;
        }
        const r = lookupRef(expr, p);
        if (r === FAILED) return s;
        templates.push({ path: p, pieces: [{ ref: r.from }], whole: true });
        // A referenced scalar may still need the type of the field it lands on ("${vars.n}" in a string list).
        if (textual.has(pathKey(r.from)) || (r.value !== null && typeof r.value !== 'object')) textual.add(pathKey(p));
        return structuredClone(r.value);
      }
      let out = '';
      const kept: Template['pieces'] = [];
      for (const piece of pieces) {
        if ('literal' in piece) {
          out += piece.literal;
          kept.push(piece);
          continue;
        }
        if (piece.expr.startsWith('env:')) {
          const v = lookupEnv(piece.expr, p);
          if (v === FAILED) return s;
          out += v;
          kept.push({ literal: v });
        } else {
          const r = lookupRef(piece.expr, p);
          if (r === FAILED) return s;
          out += stringify(r.value);
          kept.push({ ref: r.from });
        }
      }
      if (kept.some((k) => 'ref' in k)) templates.push({ path: p, pieces: kept, whole: false });
      return out;
    } finally {
      refStack.pop();
    }
  };

  function resolveAt(p: FieldPath, node: unknown): unknown {
    const k = pathKey(p);
    if (memo.has(k)) return memo.get(k);
    active.add(k);
    let out: unknown;
    if (typeof node === 'string') out = resolveString(p, node);
    else if (Array.isArray(node)) out = node.map((v, i) => resolveAt([...p, i], v));
    else if (isPlainMap(node)) {
      const o: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(node)) o[key] = resolveAt([...p, key], v);
      out = o;
    } else out = node;
    active.delete(k);
    memo.set(k, out);
    return out;
  }

  return { value: resolveAt([], doc) as Record<string, unknown>, textual, templates };
}

/** A template's value against `doc` (whose referenced fields hold their final values). */
export function evaluateTemplate(t: Template, doc: unknown): unknown {
  if (t.whole) {
    const ref = t.pieces[0] as { ref: FieldPath };
    return structuredClone(getAt(doc, ref.ref).value);
  }
  let out = '';
  for (const piece of t.pieces) out += 'literal' in piece ? piece.literal : stringify(getAt(doc, piece.ref).value);
  return out;
}
