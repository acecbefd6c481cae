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

/** Two long strings, cut to a window around their first difference so the change is visible. */
function showStringChange(a: string, b: string): string {
  if (a.length <= 60 && b.length <= 60) return `${JSON.stringify(a)} -> ${JSON.stringify(b)}`;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const from = Math.max(0, i - 20);
  const cut = (s: string): string => `${from > 0 ? '…' : ''}${s.slice(from, i + 30)}${s.length > i + 30 ? '…' : ''}`;
  return `${JSON.stringify(cut(a))} -> ${JSON.stringify(cut(b))} (first difference at character ${i + 1})`;
}

function diffParams(a: unknown, b: unknown, path: string, out: string[]): void {
  // Lists of the same length (an argv, a list of layers): name the changed element.
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => diffParams(x, b[i], `${path}[${i}]`, out));
    return;
  }
  if (typeof a === 'string' && typeof b === 'string') {
    if (a !== b) out.push(`param ${path}: ${showStringChange(a, b)}`);
    return;
  }
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
