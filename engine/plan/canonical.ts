// Cache keys (design §2).
import { canonicalJson, sha256Hex } from '../canonical.js';
import type { KeyMaterial } from '../types.js';

export { canonicalJson, sha256Hex };

/** key = sha256(canonical JSON of {kind, version, params, inputs, external}). */
export function computeKey(m: KeyMaterial): string {
  return sha256Hex(canonicalJson({ kind: m.kind, version: m.version, params: m.params, inputs: m.inputs, external: m.external }));
}
