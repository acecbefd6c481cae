// Exports a frozen ResNet (+ GAP / CA-Stream / CA-final head) as an ONNX opset-17 graph.
// BatchNorm is folded into the preceding convolution so ONNX Runtime sees Conv(+bias) → Relu,
// which it fuses; the CA score scale 1/√C is folded into the token that enters each block.
import { endianness } from 'node:os';
import { TAPS, tapChannels, caProjections, tapSizes, type ResNetArch, type TapName } from '../models/arch.js';
import { AttrType, DataType, encodeModel, valueInfo, type AttrMsg, type Dim, type ModelMsg, type NodeMsg, type TensorMsg } from './proto.js';
import { WeightsError, checkWeights, inferNumClasses, resnetBlocks, type HeadKind, type WeightMap } from './weights.js';
import { BN_EPS } from '../models/bn-eps.js';

/** Bumped whenever the exported graph for the same inputs changes; part of the cache digest. */
export const EXPORTER_VERSION = 'ca-pipe-onnx-export/1';
export const OPSET = 17;
export { BN_EPS };

export type { HeadKind };

export interface ExportOptions {
  arch: ResNetArch;
  head: HeadKind;
  /** CA heads (channel groups); ignored by 'gap' and 'none'. Default 1. */
  heads?: number;
  /** Default: rows of `fc.weight`. */
  numClasses?: number;
  weights: Map<string, { shape: number[]; data: Float32Array | ArrayLike<number> | BigInt64Array }>;
  /** Graph outputs; default: `logits` (taps for head 'none'). See `availableOutputs`. */
  outputs?: string[];
  /** Fix the input side (square) instead of dynamic H and W. */
  inputSize?: number;
  /** Only used in error messages. */
  weightsFile?: string;
}

/** Names a graph with this head can output. */
export function availableOutputs(head: HeadKind): string[] {
  const taps = TAPS.map((t) => `tap.${t}`);
  switch (head) {
    case 'none':
      return taps;
    case 'gap':
      return [...taps, 'logits', 'logits.gap', 'probs'];
    case 'ca-stream':
      return [...taps, ...TAPS.map((t) => `attn.${t}`), 'cls.final', 'logits', 'logits.gap', 'probs'];
    case 'ca-final':
      return [...taps, 'attn.layer4', 'cls.final', 'logits', 'logits.gap', 'probs'];
  }
}

export function defaultOutputs(head: HeadKind): string[] {
  return head === 'none' ? TAPS.map((t) => `tap.${t}`) : ['logits'];
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

class GraphBuilder {
  nodes: NodeMsg[] = [];
  inits: TensorMsg[] = [];
  private n = 0;

  private fresh(op: string): string {
    return `${op.toLowerCase()}_${this.n++}`;
  }

  float(name: string, dims: number[], data: Float32Array): string {
    this.inits.push({ name, dims, dataType: DataType.FLOAT, rawData: f32Bytes(data) });
    return name;
  }

  int64(name: string, values: number[]): string {
    const a = new BigInt64Array(values.map((v) => BigInt(v)));
    this.inits.push({ name, dims: [values.length], dataType: DataType.INT64, rawData: new Uint8Array(a.buffer) });
    return name;
  }

  node(opType: string, input: string[], attribute: AttrMsg[] = [], output?: string): string {
    const out = output ?? this.fresh(opType);
    this.nodes.push({ name: `${opType}:${out}`, opType, input, output: [out], attribute });
    return out;
  }
}

const ints = (name: string, v: number[]): AttrMsg => ({ name, type: AttrType.INTS, ints: v });
const int = (name: string, v: number): AttrMsg => ({ name, type: AttrType.INT, i: v });

/** Conv weight and bias with an eval-mode BatchNorm folded in (computed in float64). */
export function foldBatchNorm(
  w: Float32Array,
  outC: number,
  bn: { weight: Float32Array; bias: Float32Array; mean: Float32Array; var: Float32Array },
  eps = BN_EPS,
): { weight: Float32Array; bias: Float32Array } {
  const per = w.length / outC;
  const weight = new Float32Array(w.length);
  const bias = new Float32Array(outC);
  for (let o = 0; o < outC; o++) {
    const s = bn.weight[o] / Math.sqrt(bn.var[o] + eps);
    for (let i = o * per; i < (o + 1) * per; i++) weight[i] = w[i] * s;
    bias[o] = bn.bias[o] - bn.mean[o] * s;
  }
  return { weight, bias };
}

/** `numClasses`, else the rows of `fc.weight`; 0 for a backbone-only graph without a classifier. */
export function resolveNumClasses(opts: Pick<ExportOptions, 'numClasses' | 'weights' | 'head' | 'weightsFile'>): number {
  const n = opts.numClasses ?? inferNumClasses(opts.weights) ?? (opts.head === 'none' ? 0 : undefined);
  if (n === undefined) throw new WeightsError(opts.weightsFile ?? '<weights>', [{ key: 'fc.weight', problem: 'missing (needed for the classifier and to know the number of classes)' }]);
  return n;
}

/** Builds the ModelProto bytes. Weights are checked strictly first (see weights.ts). */
export function exportModel(opts: ExportOptions): Uint8Array {
  if (endianness() !== 'LE') throw new Error('ONNX export needs a little-endian host (raw_data is little-endian)');
  const { arch, head } = opts;
  const heads = head === 'ca-stream' || head === 'ca-final' ? (opts.heads ?? 1) : 1;
  const file = opts.weightsFile ?? '<weights>';
  const numClasses = resolveNumClasses(opts);
  const outputs = opts.outputs ?? defaultOutputs(head);
  const avail = availableOutputs(head);
  for (const o of outputs) {
    if (!avail.includes(o)) throw new Error(`output "${o}" is not available with head ${head} (available: ${avail.join(', ')})`);
  }
  if (new Set(outputs).size !== outputs.length) throw new Error(`duplicate graph outputs in [${outputs.join(', ')}]`);
  const ch = tapChannels(arch);
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`heads must be a positive integer, got ${heads}`);
  const caTaps: TapName[] = head === 'ca-stream' ? [...TAPS] : head === 'ca-final' ? ['layer4'] : [];
  for (const t of caTaps) {
    if (ch[t] % heads !== 0) throw new Error(`heads=${heads} does not divide the ${ch[t]} channels of tap ${t} (${arch.name})`);
  }
  const w: WeightMap = checkWeights(opts.weights, arch, head, numClasses, file);
  const get = (k: string) => w.get(k)!.data;

  const g = new GraphBuilder();
  const convBn = (x: string, convKey: string, bnKey: string, stride: number, pad: number, out?: string): string => {
    const shape = w.get(convKey)!.shape;
    const { weight, bias } = foldBatchNorm(get(convKey), shape[0], {
      weight: get(`${bnKey}.weight`),
      bias: get(`${bnKey}.bias`),
      mean: get(`${bnKey}.running_mean`),
      var: get(`${bnKey}.running_var`),
    });
    const wName = g.float(`${convKey}:folded`, shape, weight);
    const bName = g.float(`${convKey}:bias`, [shape[0]], bias);
    const k = shape[2];
    return g.node('Conv', [x, wName, bName], [ints('kernel_shape', [k, k]), ints('strides', [stride, stride]), ints('pads', [pad, pad, pad, pad])], out);
  };
  const relu = (x: string, out?: string) => g.node('Relu', [x], [], out);

  // Backbone.
  let x = relu(convBn('input', 'conv1.weight', 'bn1', 2, 3));
  x = g.node('MaxPool', [x], [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])], 'tap.stem');
  const stages = resnetBlocks(arch);
  for (let s = 0; s < 4; s++) {
    for (let j = 0; j < stages[s].length; j++) {
      const b = stages[s][j];
      const p = b.prefix;
      let y: string;
      if (arch.block === 'basic') {
        y = relu(convBn(x, `${p}.conv1.weight`, `${p}.bn1`, b.stride, 1));
        y = convBn(y, `${p}.conv2.weight`, `${p}.bn2`, 1, 1);
      } else {
        y = relu(convBn(x, `${p}.conv1.weight`, `${p}.bn1`, 1, 0));
        y = relu(convBn(y, `${p}.conv2.weight`, `${p}.bn2`, b.stride, 1));
        y = convBn(y, `${p}.conv3.weight`, `${p}.bn3`, 1, 0);
      }
      const idn = b.downsample ? convBn(x, `${p}.downsample.0.weight`, `${p}.downsample.1`, b.stride, 0) : x;
      const last = j === stages[s].length - 1;
      x = relu(g.node('Add', [y, idn]), last ? `tap.layer${s + 1}` : undefined);
    }
  }

  if (head !== 'none') {
    g.float('fc.weight', w.get('fc.weight')!.shape, get('fc.weight'));
    g.float('fc.bias', [numClasses], get('fc.bias'));
    const pooled = g.node('Flatten', [g.node('GlobalAveragePool', ['tap.layer4'])], [int('axis', 1)]);
    g.node('Gemm', [pooled, 'fc.weight', 'fc.bias'], [int('transB', 1)], 'logits.gap');
  }

  // CA blocks: F (B×C×H×W) split into h groups of d = C/h channels; q (B×C, already scaled by
  // 1/√C) → dots = q_gᵀF_g, a = softmax_N(dots), z_g = F_g a_g, q' = W concat(z) + b.
  const caBlock = (tap: TapName, q: string, qIsConstant: boolean): string => {
    const C = ch[tap];
    const d = C / heads;
    const F = g.node('Reshape', [`tap.${tap}`, g.int64(`ca.${tap}.groups_shape`, [0, heads, d, -1])]);
    const qg = qIsConstant ? q : g.node('Reshape', [q, g.int64(`ca.${tap}.q_shape`, [0, heads, 1, d])]);
    const dots = g.node('MatMul', [qg, F]); // B×h×1×N (a constant token broadcasts over B)
    const hw = g.node('Shape', [`tap.${tap}`], [int('start', 2), int('end', 4)]);
    const mapShape = g.node('Concat', [g.int64(`ca.${tap}.bh`, [0, heads]), hw], [int('axis', 0)]);
    g.node('Reshape', [dots, mapShape], [], `attn.${tap}`);
    const a = g.node('Softmax', [dots], [int('axis', -1)]);
    const aCol = g.node('Reshape', [a, g.int64(`ca.${tap}.col_shape`, [0, heads, -1, 1])]);
    const z = g.node('MatMul', [F, aCol]); // B×h×d×1
    return g.node('Reshape', [z, g.int64(`ca.${tap}.flat_shape`, [0, C])]);
  };
  /** Linear projection, with the next block's 1/√C folded in when there is one. */
  const project = (z: string, key: string, scale: number, out?: string): string => {
    const W = get(`${key}.weight`);
    const B = get(`${key}.bias`);
    const Ws = scale === 1 ? W : W.map((v) => v * scale);
    const Bs = scale === 1 ? B : B.map((v) => v * scale);
    const wName = g.float(scale === 1 ? `${key}.weight` : `${key}.weight:scaled`, w.get(`${key}.weight`)!.shape, Ws);
    const bName = g.float(scale === 1 ? `${key}.bias` : `${key}.bias:scaled`, w.get(`${key}.bias`)!.shape, Bs);
    return g.node('Gemm', [z, wName, bName], [int('transB', 1)], out);
  };
  const scaledToken = (C: number) => {
    const t = get('cls_token');
    const s = 1 / Math.sqrt(C);
    return g.float('cls_token:scaled', [1, heads, 1, C / heads], t.map((v) => v * s));
  };

  if (head === 'ca-stream') {
    const proj = caProjections(arch);
    let q = scaledToken(ch.stem);
    for (let i = 0; i < proj.length; i++) {
      const z = caBlock(proj[i].tap, q, i === 0);
      const last = i === proj.length - 1;
      q = project(z, `${proj[i].block}.to_out.1`, last ? 1 : 1 / Math.sqrt(proj[i + 1].inDim), last ? 'cls.final' : undefined);
    }
  } else if (head === 'ca-final') {
    const z = caBlock('layer4', scaledToken(ch.layer4), true);
    if (w.has('cls_surrogate.to_out.1.weight')) project(z, 'cls_surrogate.to_out.1', 1, 'cls.final');
    else g.node('Identity', [z], [], 'cls.final');
  }
  if (head === 'ca-stream' || head === 'ca-final') {
    g.node('Gemm', ['cls.final', 'fc.weight', 'fc.bias'], [int('transB', 1)], 'logits');
  } else if (head === 'gap') {
    g.node('Identity', ['logits.gap'], [], 'logits');
  }
  if (head !== 'none') g.node('Softmax', ['logits'], [int('axis', -1)], 'probs');

  const { nodes, inits } = prune(g.nodes, g.inits, outputs);
  const side: Dim = opts.inputSize ?? 'height';
  const sizes = opts.inputSize ? tapSizes(opts.inputSize, arch) : undefined;
  const outDims = (o: string): Dim[] => {
    const [kind, tap] = o.split('.') as [string, TapName];
    if (kind === 'tap') return ['batch', ch[tap], sizes?.[tap] ?? `${tap}_h`, sizes?.[tap] ?? `${tap}_w`];
    if (kind === 'attn') return ['batch', heads, sizes?.[tap] ?? `${tap}_h`, sizes?.[tap] ?? `${tap}_w`];
    if (o === 'cls.final') return ['batch', ch.layer4];
    return ['batch', numClasses];
  };
  const model: ModelMsg = {
    irVersion: 8,
    producerName: 'ca-pipe',
    producerVersion: EXPORTER_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    metadataProps: [
      { key: 'arch', value: arch.name },
      { key: 'head', value: head },
      { key: 'heads', value: String(heads) },
      { key: 'num_classes', value: String(numClasses) },
    ],
    graph: {
      name: `${arch.name}-${head}`,
      node: nodes,
      initializer: inits,
      input: [valueInfo('input', ['batch', 3, side, opts.inputSize ?? 'width'])],
      output: outputs.map((o) => valueInfo(o, outDims(o))),
    },
  };
  return encodeModel(model);
}

/** Keeps only the nodes and initializers that the requested outputs depend on. */
function prune(nodes: NodeMsg[], inits: TensorMsg[], outputs: string[]): { nodes: NodeMsg[]; inits: TensorMsg[] } {
  const needed = new Set(outputs);
  const keep: boolean[] = new Array(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (nodes[i].output.some((o) => needed.has(o))) {
      keep[i] = true;
      for (const inp of nodes[i].input) needed.add(inp);
    }
  }
  return { nodes: nodes.filter((_, i) => keep[i]), inits: inits.filter((t) => needed.has(t.name)) };
}
