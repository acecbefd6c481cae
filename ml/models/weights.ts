// Matching a tensor file against a model's parameter table. Strict by default: any missing,
// unexpected, wrongly-shaped or non-float key is an error that lists all of them at once.
import { describeNonFinite } from '../io/finite.js';
import type { ParamSpec } from './params.js';
import { WeightsError } from './weights-error.js';

export interface TensorLike {
  dtype?: string;
  shape: number[];
  data: ArrayLike<number> | ArrayLike<bigint>;
}

export interface LoadReport {
  loaded: string[];
  missing: string[];
  unexpected: string[];
  /** "name: file [..] vs model [..]" or "name: dtype I64" */
  mismatched: string[];
  /** Keys present but deliberately ignored (BatchNorm's num_batches_tracked). */
  ignored: string[];
  /** "name: 2 of 9 values are not finite (…)": refused even when not strict. */
  nonFinite: string[];
}

export { WeightsError } from './weights-error.js';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64', '<f4', '<f8', '<f2']);

function listSome(keys: string[], max = 20): string {
  return keys.length <= max ? keys.join(', ') : `${keys.slice(0, max).join(', ')}, … (${keys.length - max} more)`;
}

/**
 * Match `tensors` against `specs`. Keys lose a leading `module.` (DataParallel checkpoints).
 * Returns the matched float data per parameter (file layout) and the report; throws in strict mode
 * when anything does not match.
 */
export function matchWeights(
  specs: ParamSpec[],
  tensors: Map<string, TensorLike>,
  opts: { strict?: boolean; file?: string; model?: string } = {},
): { values: Map<string, Float32Array>; report: LoadReport } {
  const strict = opts.strict ?? true;
  const file = opts.file ?? '<weights>';
  const byName = new Map(specs.map((s) => [s.name, s]));
  const report: LoadReport = { loaded: [], missing: [], unexpected: [], mismatched: [], ignored: [], nonFinite: [] };
  const values = new Map<string, Float32Array>();
  const seen = new Set<string>();
  for (const [rawKey, t] of tensors) {
    const key = rawKey.startsWith('module.') ? rawKey.slice('module.'.length) : rawKey;
    if (key.endsWith('.num_batches_tracked')) {
      report.ignored.push(rawKey);
      continue;
    }
    const spec = byName.get(key);
    if (!spec) {
      report.unexpected.push(rawKey);
      continue;
    }
    seen.add(key);
    if ((t.dtype && !FLOAT_DTYPES.has(t.dtype)) || !(t.data instanceof Float32Array || t.data instanceof Float64Array)) {
      report.mismatched.push(`${rawKey}: dtype ${t.dtype ?? t.data.constructor.name}, expected a float type`);
      continue;
    }
    if (t.shape.length !== spec.fileShape.length || t.shape.some((d, i) => d !== spec.fileShape[i])) {
      report.mismatched.push(`${rawKey}: file [${t.shape.join(', ')}] vs model [${spec.fileShape.join(', ')}]`);
      continue;
    }
    const bad = describeNonFinite(t.data as ArrayLike<number>);
    if (bad) {
      report.nonFinite.push(`${rawKey}: ${bad}`);
      continue;
    }
    values.set(key, t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Float64Array));
    report.loaded.push(key);
  }
  for (const s of specs) if (!seen.has(s.name)) report.missing.push(s.name);
  // Loading the other keys would still give a model whose every output is NaN.
  if (report.nonFinite.length) throw new WeightsError(file, `non-finite weights: ${listSome(report.nonFinite)}`, report);
  if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
    const parts: string[] = [];
    if (report.missing.length) parts.push(`missing keys: ${listSome(report.missing)}`);
    if (report.unexpected.length) parts.push(`unexpected keys: ${listSome(report.unexpected)}`);
    if (report.mismatched.length) parts.push(`wrong shape or dtype: ${listSome(report.mismatched)}`);
    throw new WeightsError(file, `weights do not match the model${opts.model ? ` ${opts.model}` : ''} (${parts.join('; ')})`, report);
  }
  return { values, report };
}
