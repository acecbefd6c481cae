// The saliency methods, one line each: the saliency stage's params schema, its input planning and
// its dispatch all read this table. Adding a method = one module in methods/ + one line here.
import ablationcam from './methods/ablationcam.js';
import caAttention from './methods/ca-attention.js';
import center from './methods/center.js';
import eigencam from './methods/eigencam.js';
import eigengradcam from './methods/eigengradcam.js';
import fem from './methods/fem.js';
import finercam from './methods/finercam.js';
import fullgrad from './methods/fullgrad.js';
import gradcam from './methods/gradcam.js';
import gradcamElementwise from './methods/gradcam-elementwise.js';
import gradcampp from './methods/gradcampp.js';
import hirescam from './methods/hirescam.js';
import kpcacam from './methods/kpcacam.js';
import layercam from './methods/layercam.js';
import ones from './methods/ones.js';
import opticam from './methods/opticam.js';
import random from './methods/random.js';
import rise from './methods/rise.js';
import scorecam from './methods/scorecam.js';
import shapleycam from './methods/shapleycam.js';
import xgradcam from './methods/xgradcam.js';
import type { SaliencyInputs, SaliencyMethod, SaliencyMethodInfo } from './method.js';
import type { SaliencyMap } from './types.js';

export type { SaliencyInputField, SaliencyInputs, SaliencyMethodInfo, SaliencyNeed } from './method.js';

/** In the order the schema lists them. */
export const SALIENCY_METHOD_TABLE = [
  caAttention,
  gradcam,
  gradcampp,
  scorecam,
  xgradcam,
  layercam,
  eigencam,
  ablationcam,
  hirescam,
  gradcamElementwise,
  eigengradcam,
  fem,
  kpcacam,
  shapleycam,
  finercam,
  fullgrad,
  opticam,
  rise,
  random,
  center,
  ones,
] as const;

export type SaliencyMethodName = (typeof SALIENCY_METHOD_TABLE)[number]['info']['name'];

/** Name → info, for callers that plan inputs from a method's declaration. */
export const SALIENCY_METHODS = byName(SALIENCY_METHOD_TABLE) as Readonly<
  Record<SaliencyMethodName, SaliencyMethodInfo<SaliencyMethodName>>
>;

export const SALIENCY_METHOD_NAMES = SALIENCY_METHOD_TABLE.map((m) => m.info.name);

export function byName(table: readonly SaliencyMethod[]): Record<string, SaliencyMethodInfo> {
  const out: Record<string, SaliencyMethodInfo> = {};
  for (const m of table) {
    if (Object.prototype.hasOwnProperty.call(out, m.info.name)) throw new Error(`saliency: method '${m.info.name}' is registered twice`);
    out[m.info.name] = m.info;
  }
  return out;
}

export function isSaliencyMethod(name: string): name is SaliencyMethodName {
  return Object.prototype.hasOwnProperty.call(SALIENCY_METHODS, name);
}

/** One image's map with the named method of `table`; extra fields of the result are diagnostics. */
export function computeSaliency(
  method: string,
  inp: SaliencyInputs,
  table: readonly SaliencyMethod[] = SALIENCY_METHOD_TABLE,
): Promise<SaliencyMap> {
  const m = table.find((t) => t.info.name === method);
  if (!m) return Promise.reject(new Error(`saliency: unknown method '${method}' (known: ${table.map((t) => t.info.name).join(', ')})`));
  return m.compute(inp);
}
