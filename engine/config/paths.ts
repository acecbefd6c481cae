// Navigating plain documents and JSON Schemas by field path.
import type { FieldPath } from './locations.js';
import { didYouMean } from './errors.js';
import { isPlainMap } from './yaml-source.js';

export function getAt(doc: unknown, p: readonly (string | number)[]): { found: boolean; value: unknown } {
  let cur: unknown = doc;
  for (const seg of p) {
    const idx = typeof seg === 'number' ? seg : /^\d+$/.test(seg) ? Number(seg) : -1;
    if (Array.isArray(cur) && idx >= 0 && idx < cur.length) cur = cur[idx];
    else if (isPlainMap(cur) && Object.prototype.hasOwnProperty.call(cur, String(seg))) cur = cur[String(seg)];
    else return { found: false, value: undefined };
  }
  return { found: true, value: cur };
}

/** Set a value, creating intermediate maps. The parent chain must be maps or lists. */
export function setAt(doc: Record<string, unknown>, p: readonly (string | number)[], value: unknown): void {
  let cur: unknown = doc;
  for (let i = 0; i < p.length - 1; i++) {
    const seg = p[i]!;
    const container = cur as Record<string | number, unknown>;
    let next = container[seg];
    if (next === undefined || next === null || typeof next !== 'object') {
      next = {};
      container[seg] = next;
    }
    cur = next;
  }
  (cur as Record<string | number, unknown>)[p[p.length - 1]!] = value;
}

export interface DottedResolution {
  /** The resolved field path (complete when `missingAt` is undefined). */
  path: FieldPath;
  /** Index into the dotted segments of the first segment that matched nothing. */
  missingAt?: number;
  /** The container where matching stopped (for "did you mean" candidates). */
  container?: unknown;
}

/**
 * Resolve a dotted path ("stages.train.params.lr", "sweep.train.lr", "needs.0") against a
 * document. Map keys may themselves contain dots (sweep axes), so at each map the longest run
 * of segments naming an existing key wins.
 */
export function resolveDotted(doc: unknown, segs: readonly string[]): DottedResolution {
  const out: FieldPath = [];
  let cur: unknown = doc;
  let i = 0;
  while (i < segs.length) {
    if (Array.isArray(cur)) {
      const idx = Number(segs[i]);
      if (!/^\d+$/.test(segs[i]!) || idx >= cur.length) return { path: out, missingAt: i, container: cur };
      out.push(idx);
      cur = cur[idx];
      i++;
      continue;
    }
    if (!isPlainMap(cur)) return { path: out, missingAt: i, container: cur };
    let matched = 0;
    for (let j = segs.length; j > i; j--) {
      const key = segs.slice(i, j).join('.');
      if (Object.prototype.hasOwnProperty.call(cur, key)) {
        matched = j;
        break;
      }
    }
    if (!matched) return { path: out, missingAt: i, container: cur };
    const key = segs.slice(i, matched).join('.');
    out.push(key);
    cur = cur[key];
    i = matched;
  }
  return { path: out };
}

type Schema = Record<string, unknown>;

function deref(root: Schema, s: unknown): Schema[] {
  if (s === true || s === undefined) return [{}];
  if (!isPlainMap(s)) return [];
  const out: Schema[] = [s];
  const ref = s.$ref;
  if (typeof ref === 'string' && ref.startsWith('#/')) {
    let target: unknown = root;
    for (const part of ref.slice(2).split('/'))
      target = isPlainMap(target) ? target[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    out.push(...deref(root, target));
  }
  for (const comb of ['allOf', 'anyOf', 'oneOf'] as const) {
    const list = s[comb];
    if (Array.isArray(list)) for (const sub of list) out.push(...deref(root, sub));
  }
  return out;
}

function typeAllows(s: Schema, t: string): boolean {
  if (s.type === undefined) return true;
  return Array.isArray(s.type) ? s.type.includes(t) : s.type === t;
}

function hasCombinator(s: Schema): boolean {
  return s.$ref !== undefined || s.allOf !== undefined || s.anyOf !== undefined || s.oneOf !== undefined;
}

/** Subschemas describing the member `seg` of a value described by `s` (empty: `s` forbids it). */
function memberSchemas(root: Schema, s: Schema, seg: string | number): Schema[] {
  const out: Schema[] = [];
  const key = String(seg);
  if (/^\d+$/.test(key) && typeAllows(s, 'array')) {
    const idx = Number(key);
    if (Array.isArray(s.prefixItems) && idx < s.prefixItems.length) out.push(...deref(root, s.prefixItems[idx]));
    else if (s.items !== undefined && s.items !== false) out.push(...deref(root, s.items));
    else if (s.items === undefined && !hasCombinator(s)) out.push({});
  }
  if (typeof seg === 'number' || !typeAllows(s, 'object')) return out;
  const props = s.properties;
  if (isPlainMap(props) && Object.prototype.hasOwnProperty.call(props, key)) return [...out, ...deref(root, props[key])];
  if (isPlainMap(s.patternProperties)) {
    for (const [re, sub] of Object.entries(s.patternProperties)) if (new RegExp(re, 'u').test(key)) out.push(...deref(root, sub));
    if (out.length) return out;
  }
  const ap = s.additionalProperties;
  if (ap !== undefined && ap !== false) out.push(...deref(root, ap));
  else if (ap === undefined && !isPlainMap(props) && !isPlainMap(s.patternProperties) && !hasCombinator(s)) out.push({}); // free-form map
  return out;
}

/** Every subschema that may apply at `p` inside a value described by `root` (empty = nothing allows it). */
export function schemasAt(root: object, p: readonly (string | number)[]): Schema[] {
  let cur = deref(root as Schema, root);
  for (const seg of p) {
    cur = cur.flatMap((s) => memberSchemas(root as Schema, s, seg));
    if (cur.length === 0) break;
  }
  return cur;
}

/** Whether the schemas at a path accept a member named `key` under it. */
export function schemaAllowsKey(root: object, schemas: Schema[], key: string): boolean {
  return schemas.some((s) => memberSchemas(root as Schema, s, key).length > 0);
}

/**
 * Whether the schemas explicitly describe a map with open-ended keys (`additionalProperties:
 * {schema}` or a matching `patternProperties`), so a key absent from the file may still be set.
 * Maps left unconstrained by omission do not count: there a new key is most likely a typo.
 */
export function schemaOpensKey(schemas: Schema[], key: string): boolean {
  return schemas.some((s) => {
    if (isPlainMap(s.patternProperties) && Object.keys(s.patternProperties).some((re) => new RegExp(re, 'u').test(key))) return true;
    return s.additionalProperties === true || isPlainMap(s.additionalProperties);
  });
}

/** Property names declared by the schemas (for "did you mean"). */
export function schemaKeys(schemas: Schema[]): string[] {
  const out = new Set<string>();
  for (const s of schemas) if (isPlainMap(s.properties)) for (const k of Object.keys(s.properties)) out.add(k);
  return [...out];
}

/** JSON types allowed by the schemas; undefined when unconstrained. */
export function schemaTypes(schemas: Schema[]): Set<string> | undefined {
  const out = new Set<string>();
  for (const s of schemas) {
    const constrained = s.type !== undefined || Array.isArray(s.enum) || 'const' in s;
    if (!constrained && !hasCombinator(s)) return undefined;
    if (typeof s.type === 'string') out.add(s.type);
    else if (Array.isArray(s.type)) for (const t of s.type) out.add(String(t));
    else if (Array.isArray(s.enum)) for (const e of s.enum) out.add(jsonType(e));
    else if ('const' in s) out.add(jsonType(s.const));
  }
  return out.size ? out : undefined;
}

export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v === 'object' ? 'object' : typeof v;
}

/**
 * Give a textual value the type its schema asks for: "0.01" → 0.01 for a number field, while a
 * string field keeps "1e-3" as written. `raw` is the source text (undefined when not available).
 */
export function typeBySchema(parsed: unknown, raw: string | undefined, schemas: Schema[]): unknown {
  const types = schemaTypes(schemas);
  if (!types) return parsed;
  const actual = jsonType(parsed);
  if (types.has(actual) || (actual === 'integer' && types.has('number'))) return parsed;
  const text =
    raw ?? (typeof parsed === 'string' ? parsed : typeof parsed === 'number' || typeof parsed === 'boolean' ? String(parsed) : undefined);
  if (text === undefined) return parsed;
  const t = text.trim();
  if ((types.has('number') || types.has('integer')) && t !== '' && Number.isFinite(Number(t))) {
    const n = Number(t);
    if (types.has('number') || Number.isInteger(n)) return n;
  }
  if (types.has('boolean') && (t === 'true' || t === 'false')) return t === 'true';
  if (types.has('null') && (t === 'null' || t === '~' || t === '')) return null;
  if (types.has('string') && typeof parsed !== 'object') return text;
  return parsed;
}

/** Turn a swept param path like "optim.lr" into a field path inside params, if it exists or the schema declares it. */
export function resolveParamPath(
  params: Record<string, unknown>,
  rest: string[],
  paramsSchema: object,
): { path: FieldPath } | { error: string } {
  const res = resolveDotted(params, rest);
  const out: FieldPath = [...res.path];
  if (res.missingAt === undefined) return { path: out };
  for (let i = res.missingAt; i < rest.length; i++) {
    const here = schemasAt(paramsSchema, out);
    const declared = schemaKeys(here);
    if (declared.includes(rest[i]!) || schemaOpensKey(here, rest[i]!)) {
      out.push(rest[i]!);
      continue;
    }
    const existing = i === res.missingAt && isPlainMap(res.container) ? Object.keys(res.container) : [];
    return { error: `unknown param "${[...out, rest[i]].join('.')}"${didYouMean(rest[i]!, [...new Set([...existing, ...declared])])}` };
  }
  return { path: out };
}
