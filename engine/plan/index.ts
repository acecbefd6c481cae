// Planning: the public face of engine/plan.
export { canonicalJson, sha256Hex, computeKey } from './canonical.js';
export { expandVariants, axisLabels } from './variants.js';
export { buildPlan, finaliseKey } from './build.js';
export { explainKeyDiff } from './explain.js';
export { topoOrder, type TopoResult } from '../dag.js';
