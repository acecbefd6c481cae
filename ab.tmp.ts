import * as ort from 'onnxruntime-node';
import { getArch } from './ml/models/arch.js';
import { createSession } from './ml/onnx/runtime.js';
import { randomResNetWeights } from './bench/forward.js';
const arch = getArch('resnet50');
const w = randomResNetWeights(arch, 'gap', 1000);
const input = new Float32Array(8 * 3 * 224 * 224).map(() => Math.random());
const variants: Record<string, ort.InferenceSession.SessionOptions> = {
  default: {},
  nospin: { extra: { session: { intra_op: { allow_spinning: '0' } } } },
};
const models: Record<string, Awaited<ReturnType<typeof createSession>>> = {};
for (const [k, o] of Object.entries(variants)) { models[k] = await createSession({ arch, head: 'gap', weights: w, sessionOptions: o }); await models[k].run(input, 8, 224, 224); }
const times: Record<string, number[]> = {};
for (let r = 0; r < Number(process.argv[2] ?? 4); r++) for (const k of Object.keys(variants)) { const s = performance.now(); await models[k].run(input, 8, 224, 224); (times[k] ??= []).push(performance.now() - s); }
for (const [k, t] of Object.entries(times)) console.log(k.padEnd(12), t.map((x) => x.toFixed(0)).join(' '), 'median', [...t].sort((a, b) => a - b)[t.length >> 1].toFixed(0), 'best', Math.min(...t).toFixed(0));
