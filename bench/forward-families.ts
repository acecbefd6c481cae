// The bench:forward lines for the other backbone families: ConvNeXt-B and EfficientNet-B0 at
// 224, batch 8, GAP and CA-Stream, on ONNX Runtime; with their GFLOP count (multiply-adds ×2 of
// every Conv / MatMul / Gemm in the exported GAP graph, from a small shape walk over it) and the
// fraction of the measured MatMul rate they reach.
import { getBackbone } from '../ml/models/backbones.js';
import { initialValue, paramSpecs } from '../ml/models/params.js';
import { Rng } from '../ml/models/rng.js';
import { exportModel } from '../ml/onnx/export.js';
import { decodeModel } from '../ml/onnx/proto.js';
import { createSession, DEFAULT_CACHE_DIR } from '../ml/onnx/runtime.js';
import type { HeadKind, WeightMap } from '../ml/onnx/weights.js';

/**
 * The family's own initialisation (ConvNeXt N(0, 0.02), EfficientNet kaiming), with ConvNeXt's
 * layer scales raised from 1e-6 to 0.1 so the blocks are not the identity; BatchNorm at identity.
 */
export function randomFamilyWeights(arch: string, head: HeadKind, numClasses: number, seed = 0): WeightMap {
  const rng = new Rng(seed);
  const out: WeightMap = new Map();
  for (const s of paramSpecs(getBackbone(arch), { head: head === 'none' ? 'gap' : head, numClasses })) {
    const data = s.role === 'layer-scale' ? new Float32Array(s.fileShape[0]).fill(0.1) : initialValue(s, rng);
    out.set(s.name, { shape: s.fileShape, data });
  }
  return out;
}

/** Multiply-adds of one image through the exported GAP graph (Conv, MatMul, Gemm). */
export function graphMacs(arch: string, size: number, numClasses = 1000): number {
  const bytes = exportModel({
    arch,
    head: 'gap',
    weights: randomFamilyWeights(arch, 'gap', numClasses),
    inputSize: size,
    outputs: ['logits'],
  });
  const g = decodeModel(bytes).graph;
  const dims = new Map<string, number[]>(g.initializer.map((t) => [t.name, t.dims.map(Number)]));
  const shape = new Map<string, number[]>([['input', [1, 3, size, size]]]);
  const attr = (n: (typeof g.node)[number], name: string) => n.attribute.find((a) => a.name === name);
  let macs = 0;
  for (const n of g.node) {
    const x = shape.get(n.input[0]) ?? dims.get(n.input[0]);
    if (!x) throw new Error(`graphMacs: no shape for ${n.input[0]} (${n.opType})`);
    let y: number[];
    switch (n.opType) {
      case 'Conv': {
        const w = dims.get(n.input[1])!;
        const st = attr(n, 'strides')!.ints!.map(Number);
        const p = attr(n, 'pads')!.ints!.map(Number);
        const ho = Math.floor((x[2] + p[0] + p[2] - w[2]) / st[0]) + 1;
        const wo = Math.floor((x[3] + p[1] + p[3] - w[3]) / st[1]) + 1;
        y = [x[0], w[0], ho, wo];
        macs += w.reduce((a, b) => a * b, 1) * ho * wo;
        break;
      }
      case 'MaxPool': {
        const k = attr(n, 'kernel_shape')!.ints!.map(Number);
        const st = attr(n, 'strides')!.ints!.map(Number);
        const p = attr(n, 'pads')!.ints!.map(Number);
        y = [x[0], x[1], Math.floor((x[2] + 2 * p[0] - k[0]) / st[0]) + 1, Math.floor((x[3] + 2 * p[1] - k[1]) / st[1]) + 1];
        break;
      }
      case 'GlobalAveragePool':
        y = [x[0], x[1], 1, 1];
        break;
      case 'Flatten':
        y = [x[0], x.slice(1).reduce((a, b) => a * b, 1)];
        break;
      case 'Transpose':
        y = attr(n, 'perm')!.ints!.map((i) => x[Number(i)]);
        break;
      case 'MatMul': {
        const w = dims.get(n.input[1])!;
        y = [...x.slice(0, -1), w[1]];
        macs += x.slice(0, -1).reduce((a, b) => a * b, 1) * w[0] * w[1];
        break;
      }
      case 'Gemm': {
        const w = dims.get(n.input[1])!;
        y = [x[0], w[0]];
        macs += x[0] * w[0] * w[1];
        break;
      }
      case 'Add':
      case 'Mul': {
        // Elementwise with broadcasting: the larger operand's shape.
        const b = shape.get(n.input[1]) ?? dims.get(n.input[1]) ?? [];
        y = b.length > x.length || (b.length === x.length && b.reduce((a, c) => a * c, 1) > x.reduce((a, c) => a * c, 1)) ? b : x;
        break;
      }
      default:
        y = x; // Relu, Sigmoid, Erf, Div, LayerNormalization, Identity, Softmax: same shape
    }
    shape.set(n.output[0], y);
  }
  return macs;
}

export interface FamilyLine {
  label: string;
  imgPerSec: number;
  bestMs: number;
}

/** img/s (median of `runs` batches) of one family and head on ONNX Runtime. */
export async function measureFamily(
  arch: string,
  head: HeadKind,
  input: Float32Array,
  batch: number,
  size: number,
  warmup: number,
  runs: number,
): Promise<FamilyLine> {
  const model = await createSession({
    arch,
    head,
    heads: 1,
    weights: randomFamilyWeights(arch, head, 1000),
    cacheDir: DEFAULT_CACHE_DIR,
    outputs: ['logits'],
  });
  for (let i = 0; i < warmup; i++) await model.run(input, batch, size, size);
  const times: number[] = [];
  let check = 0;
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    const r = await model.run(input, batch, size, size);
    times.push(performance.now() - s);
    check += r.logits.data[0];
  }
  await model.release();
  if (!Number.isFinite(check)) throw new Error(`${arch} ${head}: non-finite logits — the random weights are not sane`);
  const ms = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
  return { label: `onnx ${arch} ${head}`, imgPerSec: (batch * 1000) / ms, bestMs: Math.min(...times) };
}
