// "Why does this stage rerun?": the components of two key materials that differ, in words.
import type { KeyMaterial } from '../types.js';
import { canonicalJson } from './canonical.js';

function show(v: unknown): string {
  const s = canonicalJson(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function shortDigest(d: string): string {
  const prefix = d.startsWith('key:') ? 'key:' : '';
  const body = d.slice(prefix.length);
  return prefix + (body.length > 12 ? body.slice(0, 12) : body);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function diffParams(a: unknown, b: unknown, path: string, out: string[]): void {
  if (isMap(a) && isMap(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in b)) out.push(`param ${p}: removed (was ${show(a[k])})`);
      else if (!(k in a)) out.push(`param ${p}: added (${show(b[k])})`);
      else diffParams(a[k], b[k], p, out);
    }
    return;
  }
  if (canonicalJson(a) !== canonicalJson(b)) out.push(`param ${path}: ${show(a)} -> ${show(b)}`);
}

function diffDigests(label: string, a: Record<string, string | string[]>, b: Record<string, string | string[]>, out: string[]): void {
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[k];
    const y = b[k];
    if (y === undefined) out.push(`${label} ${k}: removed`);
    else if (x === undefined) out.push(`${label} ${k}: added (${Array.isArray(y) ? `${y.length} entries` : shortDigest(y)})`);
    else if (Array.isArray(x) || Array.isArray(y)) {
      const xs = Array.isArray(x) ? x : [x];
      const ys = Array.isArray(y) ? y : [y];
      if (xs.length !== ys.length) out.push(`${label} ${k}: ${xs.length} -> ${ys.length} entries`);
      else xs.forEach((d, i) => d !== ys[i] && out.push(`${label} ${k}[${i}]: ${shortDigest(d)} -> ${shortDigest(ys[i]!)}`));
    } else if (x !== y) {
      const what = label === 'input' ? 'upstream output changed' : 'content changed';
      out.push(`${label} ${k}: ${what} (${shortDigest(x)} -> ${shortDigest(y)})`);
    }
  }
}

/** One line per changed component: kind, version, each param, each input digest, each external entry. */
export function explainKeyDiff(prev: KeyMaterial, next: KeyMaterial): string[] {
  const out: string[] = [];
  if (prev.kind !== next.kind) out.push(`kind: ${prev.kind} -> ${next.kind}`);
  if (prev.version !== next.version) out.push(`version of kind ${next.kind}: ${prev.version} -> ${next.version}`);
  diffParams(prev.params, next.params, '', out);
  diffDigests('input', prev.inputs, next.inputs, out);
  diffDigests('external', prev.external, next.external, out);
  if (out.length === 0) out.push('no change: the key material is identical');
  return out;
}
