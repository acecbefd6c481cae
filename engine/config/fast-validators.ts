// Fast JSON Schema validators for the happy path. Loading ajv and compiling the experiment schema
// costs ~200 ms of every CLI start-up, a fully cached rerun included. So each schema is compiled
// once to standalone code (ajv's code generator), kept on disk under a hash of the schema, and
// later runs evaluate that code without loading ajv at all. These validators only answer yes/no
// (applying defaults like the full validator); when the answer is no, validate.ts re-validates
// with a full ajv instance to produce the located error messages.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { installedVersion, readCached, writeCached } from './tool-cache.js';

/** Validates (and defaults) in place; true when valid. */
export type FastValidator = (data: unknown) => boolean;

const require = createRequire(import.meta.url);

/** Bump when the generated code or the options below change meaning. */
const CODEGEN_VERSION = 1;
// Must agree with the full validator in validate.ts on everything that affects a valid value.
const FAST_OPTIONS = { allErrors: false, useDefaults: true, strict: false } as const;

/** JSON with sorted keys: equal schemas hash equally whatever their key order. */
function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

/** Whether a schema uses the `format` keyword anywhere (property *names* "format" do not count). */
export function usesFormat(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(usesFormat);
  if (schema === null || typeof schema !== 'object') return false;
  const s = schema as Record<string, unknown>;
  if (typeof s.format === 'string') return true;
  for (const [k, v] of Object.entries(s)) {
    if (k === 'properties' || k === 'patternProperties' || k === '$defs' || k === 'definitions' || k === 'dependentSchemas') {
      if (v && typeof v === 'object' && Object.values(v).some(usesFormat)) return true;
    } else if (k !== 'enum' && k !== 'const' && k !== 'default' && k !== 'examples' && usesFormat(v)) return true;
  }
  return false;
}

type Ajv2020Class = new (opts: object) => { compile(s: object): unknown };

function generate(schema: object, withFormats: boolean): string {
  const Ajv2020 = (require('ajv/dist/2020.js') as { default: Ajv2020Class }).default;
  const { default: standaloneCode } = require('ajv/dist/standalone/index.js') as { default: (ajv: unknown, v: unknown) => string };
  const { _ } = require('ajv/dist/compile/codegen/index.js') as { _: (s: TemplateStringsArray) => unknown };
  const ajv = new Ajv2020({
    ...FAST_OPTIONS,
    code: { source: true, ...(withFormats ? { formats: _`require("ajv-formats/dist/formats").fullFormats` } : {}) },
  });
  if (withFormats) (require('ajv-formats') as { default: (a: unknown) => void }).default(ajv);
  return standaloneCode(ajv, ajv.compile(schema));
}

/** Evaluates generated CommonJS code with this package's `require` (so ajv's runtime helpers resolve). */
function instantiate(code: string): FastValidator {
  const module = { exports: {} as unknown };
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the code is ajv's standalone output, built from our own schemas
  new Function('require', 'module', 'exports', code)(require, module, module.exports);
  const fn = module.exports as FastValidator;
  if (typeof fn !== 'function') throw new Error('generated validator exports no function');
  return fn;
}

const memo = new Map<string, FastValidator>();

/**
 * A yes/no validator for `schema`: from the disk cache when present, else generated (loading ajv)
 * and cached. Writes are atomic (tmp + rename), so concurrent processes never read half a file.
 */
export function fastValidator(schema: object): FastValidator {
  const withFormats = usesFormat(schema);
  const hash = createHash('sha256')
    .update(stableJson({ v: CODEGEN_VERSION, ajv: installedVersion('ajv'), opts: FAST_OPTIONS, withFormats, schema }))
    .digest('hex');
  const hit = memo.get(hash);
  if (hit) return hit;
  const name = `${hash.slice(0, 32)}.cjs`;
  const cached = readCached('validators', name);
  let fn: FastValidator | undefined;
  if (cached !== undefined) {
    try {
      fn = instantiate(cached);
    } catch {
      fn = undefined; // unreadable or stale: regenerate below
    }
  }
  if (!fn) {
    const code = generate(schema, withFormats);
    fn = instantiate(code);
    writeCached('validators', name, code);
  }
  memo.set(hash, fn);
  return fn;
}
