// JSON Schema validation (ajv, draft 2020-12) with errors turned into located, readable issues.
// Valid documents are checked by cached standalone validators (fast-validators.ts) without
// loading ajv; a full ajv instance is loaded only to explain a failure.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { StageKind } from '../contract.js';
import { describeValue, didYouMean } from './errors.js';
import type { FieldPath, IssueList } from './locations.js';
import { fastValidator, type FastValidator } from './fast-validators.js';
import { isPlainMap } from './yaml-source.js';

/** Anything that records located issues (an IssueList, or an adapter re-locating them). */
export type IssueSink = Pick<IssueList, 'add'>;

const require = createRequire(import.meta.url);

interface AjvLike {
  compile(schema: object): ValidateFunction;
}

let fullAjv: AjvLike | undefined;

/** The explaining validator. useDefaults mutates the validated value: callers validate clones. */
function ajv(): AjvLike {
  if (!fullAjv) {
    const Ajv2020 = (require('ajv/dist/2020.js') as { default: new (o: object) => AjvLike }).default;
    const addFormats = (require('ajv-formats') as { default: (a: AjvLike) => void }).default;
    fullAjv = new Ajv2020({ allErrors: true, useDefaults: true, strict: false, verbose: true });
    addFormats(fullAjv);
  }
  return fullAjv;
}

let experimentValidator: ValidateFunction | undefined;
let experimentFast: FastValidator | undefined;
let experimentSchemaCache: object | undefined;

/** schemas/experiment.schema.json, found from both the sources (tsx) and the compiled dist/. */
export function experimentSchema(): object {
  if (experimentSchemaCache) return experimentSchemaCache;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'schemas', 'experiment.schema.json');
    if (existsSync(candidate)) {
      experimentSchemaCache = JSON.parse(readFileSync(candidate, 'utf8')) as object;
      return experimentSchemaCache;
    }
    dir = path.dirname(dir);
  }
  throw new Error('ca-pipe: schemas/experiment.schema.json not found next to the engine');
}

export function validateExperimentDoc(doc: unknown, issues: IssueList): boolean {
  experimentFast ??= fastValidator(experimentSchema());
  if (experimentFast(doc)) return true;
  experimentValidator ??= ajv().compile(experimentSchema());
  if (experimentValidator(doc)) return true;
  reportAjvErrors(experimentValidator.errors ?? [], doc, [], issues);
  return false;
}

/** A kind's params schema without its $id: two kinds (or two registries in one process) may reuse an id. */
function paramsSchemaOf(kind: StageKind): object {
  const { $id: _id, ...schema } = kind.paramsSchema as Record<string, unknown>;
  void _id;
  return schema;
}

function invalidSchema(kind: StageKind, e: unknown): Error {
  return new Error(`stage kind "${kind.kind}": invalid paramsSchema: ${(e as Error).message}`);
}

const paramsValidators = new WeakMap<StageKind, ValidateFunction>();
const paramsFast = new WeakMap<StageKind, FastValidator>();

/** The full (explaining) validator of a kind's params; compiled on first use. */
export function paramsValidator(kind: StageKind): ValidateFunction {
  let v = paramsValidators.get(kind);
  if (!v) {
    try {
      v = ajv().compile(paramsSchemaOf(kind));
    } catch (e) {
      throw invalidSchema(kind, e);
    }
    paramsValidators.set(kind, v);
  }
  return v;
}

function fastParamsValidator(kind: StageKind): FastValidator {
  let v = paramsFast.get(kind);
  if (!v) {
    try {
      v = fastValidator(paramsSchemaOf(kind));
    } catch {
      // Not expressible as standalone code: the full validator answers (and names a broken schema).
      const full = paramsValidator(kind);
      v = (data) => full(data) as boolean;
    }
    paramsFast.set(kind, v);
  }
  return v;
}

/**
 * Validate a clone of `params` (defaults applied to the clone), reporting problems under `base`
 * (e.g. ["stages","train","params"]). Returns the defaulted clone, or undefined when invalid.
 */
export function checkParams(
  kind: StageKind,
  params: Record<string, unknown>,
  base: FieldPath,
  issues: IssueSink,
): Record<string, unknown> | undefined {
  const copy = structuredClone(params);
  if (fastParamsValidator(kind)(copy)) return copy;
  const again = structuredClone(params);
  const validate = paramsValidator(kind);
  if (validate(again)) return again;
  reportAjvErrors(validate.errors ?? [], again, base, issues);
  return undefined;
}

function typeName(t: string): string {
  return t === 'array' ? 'list' : t === 'object' ? 'map' : t;
}

function pointerToPath(pointer: string, data: unknown): FieldPath {
  if (!pointer) return [];
  const out: FieldPath = [];
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      out.push(Number(seg));
      cur = cur[Number(seg)];
    } else {
      out.push(seg);
      cur = isPlainMap(cur) ? cur[seg] : undefined;
    }
  }
  return out;
}

function messageFor(e: ErrorObject): string {
  const got = describeValue(e.data);
  switch (e.keyword) {
    case 'type': {
      const t = (e.params as { type: string | string[] }).type;
      const list = (Array.isArray(t) ? t : String(t).split(',')).map(typeName);
      return `expected ${list.join(' or ')}, got ${got}`;
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      const hint =
        typeof e.data === 'string'
          ? didYouMean(
              e.data,
              allowed.filter((a): a is string => typeof a === 'string'),
            )
          : '';
      return `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${got}${hint}`;
    }
    case 'minProperties':
    case 'minItems': {
      const limit = (e.params as { limit: number }).limit;
      const n = Array.isArray(e.data) ? e.data.length : isPlainMap(e.data) ? Object.keys(e.data).length : 0;
      const [one, many] = e.keyword === 'minItems' ? ['item', 'items'] : ['entry', 'entries'];
      return `expected at least ${limit} ${limit === 1 ? one : many}, got ${n}`;
    }
    case 'const':
      return `expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}, got ${got}`;
    default:
      return `${e.message ?? 'is invalid'}, got ${got}`;
  }
}

/** Turn ajv errors on `data` (found at `base` in the document) into located issues. */
export function reportAjvErrors(errors: ErrorObject[], data: unknown, base: FieldPath, issues: IssueSink): void {
  const consumed = new Set<ErrorObject>();
  const seen = new Set<string>();
  const emit = (p: FieldPath, message: string, at: 'key' | 'value' = 'value'): void => {
    const id = `${p.join('\u0000')}|${message}`;
    if (seen.has(id)) return;
    seen.add(id);
    issues.add(p, message, at);
  };
  // Alternatives (anyOf/oneOf): report the deepest branch errors if the value got into a branch,
  // else one combined "expected A or B" message.
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf') continue;
    const subs = errors.filter((s) => s !== e && s.schemaPath.startsWith(`${e.schemaPath}/`));
    subs.forEach((s) => consumed.add(s));
    consumed.add(e);
    const p = [...base, ...pointerToPath(e.instancePath, data)];
    const deeper = subs.filter((s) => s.instancePath.length > e.instancePath.length && s.keyword !== 'anyOf' && s.keyword !== 'oneOf');
    if (deeper.length) {
      for (const s of deeper) emit([...base, ...pointerToPath(s.instancePath, data)], messageFor(s));
      continue;
    }
    const alternatives = subs.flatMap((s) => {
      if (s.keyword === 'type') {
        const t = (s.params as { type: string | string[] }).type;
        return (Array.isArray(t) ? t : String(t).split(',')).map(typeName);
      }
      if (s.keyword === 'enum')
        return [`one of ${(s.params as { allowedValues: unknown[] }).allowedValues.map((a) => JSON.stringify(a)).join(', ')}`];
      if (s.keyword === 'const') return [JSON.stringify((s.params as { allowedValue: unknown }).allowedValue)];
      return [];
    });
    if (alternatives.length) emit(p, `expected ${[...new Set(alternatives)].join(' or ')}, got ${describeValue(e.data)}`);
    else if (subs[0]) emit(p, messageFor(subs[0]));
    else emit(p, messageFor(e));
  }
  for (const e of errors) {
    if (consumed.has(e) || e.keyword === 'if') continue;
    const p = [...base, ...pointerToPath(e.instancePath, data)];
    if (e.keyword === 'additionalProperties') {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      const parent = e.parentSchema as { properties?: Record<string, unknown> } | undefined;
      const known = Object.keys(parent?.properties ?? {});
      emit(
        [...p, prop],
        `unknown key "${prop}"${didYouMean(prop, known)}${known.length && !didYouMean(prop, known) ? ` (known keys: ${known.join(', ')})` : ''}`,
        'key',
      );
    } else if (e.keyword === 'required') {
      emit(p, `missing required key "${(e.params as { missingProperty: string }).missingProperty}"`);
    } else {
      emit(p, messageFor(e));
    }
  }
}
