// Exports a frozen backbone (any family; its module emits its own nodes) + GAP / CA-Stream /
// CA-final head as an ONNX opset-17 graph. BatchNorm is folded into the preceding convolution so
// ONNX Runtime sees Conv(+bias) → activation, which it fuses; the CA score scale 1/√C is folded
// into the token that enters each block.
import { endianness } from 'node:os';
import { lastReading, type Backbone, type GraphEmitter, type OnnxAttrs, type Reading } from '../models/backbone.js';
import { getBackbone } from '../models/backbones.js';
import {
  AttrType,
  DataType,
  encodeModel,
  valueInfo,
  type AttrMsg,
  type Dim,
  type ModelMsg,
  type NodeMsg,
  type TensorMsg,
} from './proto.js';
import { WeightsError, checkWeights, inferNumClasses, type ArchLike, type HeadKind, type WeightMap, type WeightTensor } from './weights.js';

export { foldBatchNorm, BN_EPS } from '../models/layers.js';

/** Bumped whenever the exported graph for the same inputs changes; part of the cache digest. */
export const EXPORTER_VERSION = 'ca-pipe-onnx-export/2';
export const OPSET = 17;

export type { HeadKind };

export interface ExportOptions {
  arch: ArchLike;
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

/** Names a graph with this head can output (default architecture: the ResNets' readings). */
export function availableOutputs(head: HeadKind, arch: ArchLike = 'resnet18'): string[] {
  const bb = getBackbone(arch);
  const taps = bb.readings().map((r) => `tap.${r.tap}`);
  switch (head) {
    case 'none':
      return taps;
    case 'gap':
      return [...taps, 'logits', 'logits.gap', 'probs'];
    case 'ca-stream':
      return [...taps, ...bb.caStream().map((b) => `attn.${b.tap}`), 'cls.final', 'logits', 'logits.gap', 'probs'];
    case 'ca-final':
      return [...taps, `attn.${lastReading(bb).tap}`, 'cls.final', 'logits', 'logits.gap', 'probs'];
  }
}

export function defaultOutputs(head: HeadKind, arch: ArchLike = 'resnet18'): string[] {
  return head === 'none'
    ? getBackbone(arch)
        .readings()
        .map((r) => `tap.${r.tap}`)
    : ['logits'];
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function toAttrs(attrs: OnnxAttrs): AttrMsg[] {
  return Object.entries(attrs).map(([name, v]) =>
    Array.isArray(v)
      ? { name, type: AttrType.INTS, ints: v }
      : typeof v === 'number'
        ? { name, type: AttrType.INT, i: v }
        : { name, type: AttrType.FLOAT, f: v.float },
  );
}

class GraphBuilder implements GraphEmitter {
  nodes: NodeMsg[] = [];
  inits: TensorMsg[] = [];
  private n = 0;

  private fresh(op: string): string {
    return `${op.toLowerCase()}_${this.n++}`;
  }

  private readonly initNames = new Set<string>();

  /** An initializer; a name already present is reused (a classifier emitted for GAP and for CA, shared constants). */
  float(name: string, dims: number[], data: Float32Array): string {
    if (this.initNames.has(name)) return name;
    this.initNames.add(name);
    this.inits.push({ name, dims, dataType: DataType.FLOAT, rawData: f32Bytes(data) });
    return name;
  }

  int64(name: string, values: number[]): string {
    if (this.initNames.has(name)) return name;
    this.initNames.add(name);
    const a = new BigInt64Array(values.map((v) => BigInt(v)));
    this.inits.push({ name, dims: [values.length], dataType: DataType.INT64, rawData: new Uint8Array(a.buffer) });
    return name;
  }

  node(opType: string, input: string[], attrs: OnnxAttrs = {}, output?: string): string {
    const out = output ?? this.fresh(opType);
    this.nodes.push({ name: `${opType}:${out}`, opType, input, output: [out], attribute: toAttrs(attrs) });
    return out;
  }
}

/** `numClasses`, else the rows of `fc.weight`; 0 for a backbone-only graph without a classifier. */
export function resolveNumClasses(opts: Pick<ExportOptions, 'numClasses' | 'weights' | 'head' | 'weightsFile' | 'arch'>): number {
  const n = opts.numClasses ?? inferNumClasses(opts.weights, opts.arch) ?? (opts.head === 'none' ? 0 : undefined);
  if (n === undefined) {
    throw new WeightsError(opts.weightsFile ?? '<weights>', [
      { key: getBackbone(opts.arch).classifierWeight, problem: 'missing (needed for the classifier and to know the number of classes)' },
    ]);
  }
  return n;
}

/** What an export needs once its options are checked: the backbone, the head and the weights. */
interface ExportPlan {
  bb: Backbone;
  head: HeadKind;
  heads: number;
  numClasses: number;
  outputs: string[];
  /** Channels of each tap. */
  ch: Map<string, number>;
  last: Reading;
  w: WeightMap;
  weight: (k: string) => WeightTensor;
}

/** Checks the options (in the order their errors are reported) and the weights, strictly. */
function planExport(opts: ExportOptions): ExportPlan {
  if (endianness() !== 'LE') throw new Error('ONNX export needs a little-endian host (raw_data is little-endian)');
  const { head } = opts;
  const bb = getBackbone(opts.arch);
  const heads = head === 'ca-stream' || head === 'ca-final' ? (opts.heads ?? 1) : 1;
  const file = opts.weightsFile ?? '<weights>';
  const numClasses = resolveNumClasses(opts);
  const outputs = opts.outputs ?? defaultOutputs(head, bb);
  const avail = availableOutputs(head, bb);
  for (const o of outputs) {
    if (!avail.includes(o)) throw new Error(`output "${o}" is not available with head ${head} (available: ${avail.join(', ')})`);
  }
  if (new Set(outputs).size !== outputs.length) throw new Error(`duplicate graph outputs in [${outputs.join(', ')}]`);
  const ch = new Map(bb.readings().map((r) => [r.tap, r.channels]));
  const last = lastReading(bb);
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`heads must be a positive integer, got ${heads}`);
  const caTaps: string[] = head === 'ca-stream' ? bb.caStream().map((b) => b.tap) : head === 'ca-final' ? [last.tap] : [];
  for (const t of caTaps) {
    if (ch.get(t)! % heads !== 0) throw new Error(`heads=${heads} does not divide the ${ch.get(t)} channels of tap ${t} (${bb.name})`);
  }
  const w: WeightMap = checkWeights(opts.weights, bb, head, numClasses, file);
  const weight = (k: string) => {
    const t = w.get(k);
    if (!t) throw new Error(`exporter asked for weight "${k}", which ${bb.name} does not declare`);
    return t;
  };
  return { bb, head, heads, numClasses, outputs, ch, last, w, weight };
}

/** Builds the ModelProto bytes. Weights are checked strictly first (see weights.ts). */
export function exportModel(opts: ExportOptions): Uint8Array {
  const plan = planExport(opts);
  const { bb, head, weight, last } = plan;
  const g = new GraphBuilder();
  bb.emitOnnx(g, weight, 'input');

  if (head !== 'none') {
    const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [`tap.${last.tap}`])], { axis: 1 });
    bb.emitClassifier(g, weight, pooled, 'logits.gap');
  }
  new CaHeadEmitter(g, plan).emit();
  if (head === 'ca-stream' || head === 'ca-final') {
    bb.emitClassifier(g, weight, 'cls.final', 'logits');
  } else if (head === 'gap') {
    g.node('Identity', ['logits.gap'], {}, 'logits');
  }
  if (head !== 'none') g.node('Softmax', ['logits'], { axis: -1 }, 'probs');

  const { nodes, inits } = prune(g.nodes, g.inits, plan.outputs);
  return encodeModel(modelProto(plan, nodes, inits, opts.inputSize));
}

/** The CA-Stream / CA-final blocks between the taps and `cls.final` (nothing for 'gap' and 'none'). */
class CaHeadEmitter {
  constructor(
    private readonly g: GraphBuilder,
    private readonly plan: ExportPlan,
  ) {}

  private get(k: string): Float32Array {
    return this.plan.weight(k).data;
  }

  emit(): void {
    const { head, bb, last, w } = this.plan;
    if (head === 'ca-stream') {
      const proj = bb.caStream();
      let q = this.scaledToken(proj[0].inDim);
      for (let i = 0; i < proj.length; i++) {
        const z = this.caBlock(proj[i].tap, q, i === 0);
        const lastBlock = i === proj.length - 1;
        q = this.project(
          z,
          `${proj[i].block}.to_out.1`,
          lastBlock ? 1 : 1 / Math.sqrt(proj[i + 1].inDim),
          lastBlock ? 'cls.final' : undefined,
        );
      }
    } else if (head === 'ca-final' && bb.caFinalKind === 'kv') {
      this.kvBlock(bb.caFinalBlock!);
    } else if (head === 'ca-final') {
      const z = this.caBlock(last.tap, this.scaledToken(last.channels), true);
      const block = bb.caFinalBlock!;
      if (w.has(`${block}.to_out.1.weight`)) this.project(z, `${block}.to_out.1`, 1, 'cls.final');
      else this.g.node('Identity', [z], {}, 'cls.final');
    }
  }

  // CA blocks: F (B×C×H×W) split into h groups of d = C/h channels; q (B×C, already scaled by
  // 1/√C) → dots = q_gᵀF_g, a = softmax_N(dots), z_g = F_g a_g, q' = W concat(z) + b.
  private caBlock(tap: string, q: string, qIsConstant: boolean): string {
    const { g } = this;
    const { heads } = this.plan;
    const C = this.plan.ch.get(tap)!;
    const d = C / heads;
    const F = g.node('Reshape', [`tap.${tap}`, g.int64(`ca.${tap}.groups_shape`, [0, heads, d, -1])]);
    const qg = qIsConstant ? q : g.node('Reshape', [q, g.int64(`ca.${tap}.q_shape`, [0, heads, 1, d])]);
    const dots = g.node('MatMul', [qg, F]); // B×h×1×N (a constant token broadcasts over B)
    const hw = g.node('Shape', [`tap.${tap}`], { start: 2, end: 4 });
    const mapShape = g.node('Concat', [g.int64(`ca.${tap}.bh`, [0, heads]), hw], { axis: 0 });
    g.node('Reshape', [dots, mapShape], {}, `attn.${tap}`);
    const a = g.node('Softmax', [dots], { axis: -1 });
    const aCol = g.node('Reshape', [a, g.int64(`ca.${tap}.col_shape`, [0, heads, -1, 1])]);
    const z = g.node('MatMul', [F, aCol]); // B×h×d×1
    return g.node('Reshape', [z, g.int64(`ca.${tap}.flat_shape`, [0, C])]);
  }

  /** Linear projection, with the next block's 1/√C folded in when there is one. */
  private project(z: string, key: string, scale: number, out?: string): string {
    const { g } = this;
    const { w } = this.plan;
    const W = this.get(`${key}.weight`);
    const B = this.get(`${key}.bias`);
    const Ws = scale === 1 ? W : W.map((v) => v * scale);
    const Bs = scale === 1 ? B : B.map((v) => v * scale);
    const wName = g.float(scale === 1 ? `${key}.weight` : `${key}.weight:scaled`, w.get(`${key}.weight`)!.shape, Ws);
    const bName = g.float(scale === 1 ? `${key}.bias` : `${key}.bias:scaled`, w.get(`${key}.bias`)!.shape, Bs);
    return g.node('Gemm', [z, wName, bName], { transB: 1 }, out);
  }

  private scaledToken(C: number): string {
    const { heads } = this.plan;
    const t = this.get('cls_token');
    const s = 1 / Math.sqrt(C);
    return this.g.float(
      'cls_token:scaled',
      [1, heads, 1, C / heads],
      t.map((v) => v * s),
    );
  }

  /** CLS_KV (ConvNeXt's ca-final, one head): K, V = Linear maps of the feature tokens, LayerNorm output. */
  private kvBlock(block: string): void {
    const { g } = this;
    const { bb, heads, last, weight } = this.plan;
    if (heads !== 1) throw new Error(`${bb.name}: the CLS_KV ca-final block has one head, got heads=${heads}`);
    const C = last.channels;
    const tap = `tap.${last.tap}`;
    const tokens = g.node('Transpose', [g.node('Reshape', [tap, g.int64('kv.flat', [0, C, -1])])], { perm: [0, 2, 1] }); // B×N×C
    const linearLast = (prefix: string) => {
      const W = weight(`${prefix}.weight`);
      const wt = new Float32Array(C * C);
      for (let o = 0; o < C; o++) for (let i = 0; i < C; i++) wt[i * C + o] = W.data[o * C + i];
      return g.node('Add', [
        g.node('MatMul', [tokens, g.float(`${prefix}.weight:t`, [C, C], wt)]),
        g.float(`${prefix}.bias`, [C], this.get(`${prefix}.bias`)),
      ]);
    };
    const K = linearLast(`${block}.to_k.1`);
    const V = linearLast(`${block}.to_v.1`);
    const t = this.get('cls_token');
    const q = g.float(
      'cls_token:scaled',
      [C, 1],
      t.map((v) => v / Math.sqrt(C)),
    );
    const dots = g.node('Transpose', [g.node('MatMul', [K, q])], { perm: [0, 2, 1] }); // B×1×N
    const hw = g.node('Shape', [tap], { start: 2, end: 4 });
    g.node('Reshape', [dots, g.node('Concat', [g.int64('kv.b1', [0, 1]), hw], { axis: 0 })], {}, `attn.${last.tap}`);
    const z = g.node('Reshape', [g.node('MatMul', [g.node('Softmax', [dots], { axis: -1 }), V]), g.int64('kv.bc', [0, C])]);
    const lw = weight(`${block}.to_out.weight`);
    const lb = weight(`${block}.to_out.bias`);
    g.node(
      'LayerNormalization',
      [z, g.float(`${block}.to_out.weight`, lw.shape, lw.data), g.float(`${block}.to_out.bias`, lb.shape, lb.data)],
      { axis: -1, epsilon: { float: 1e-5 } },
      'cls.final',
    );
  }
}

/** The model message: metadata, the pruned graph, and its input and output shapes (fixed when `inputSize` is). */
function modelProto(plan: ExportPlan, nodes: NodeMsg[], inits: TensorMsg[], inputSize: number | undefined): ModelMsg {
  const { bb, head, heads, numClasses, outputs, ch, last } = plan;
  const side: Dim = inputSize ?? 'height';
  const sizes = inputSize ? bb.readingSizes(inputSize) : undefined;
  const outDims = (o: string): Dim[] => {
    const dot = o.indexOf('.');
    const kind = o.slice(0, dot);
    const tap = o.slice(dot + 1);
    const hw = (t: string): Dim[] => [sizes?.[t] ?? `${t}_h`, sizes?.[t] ?? `${t}_w`];
    if (kind === 'tap') return ['batch', ch.get(tap)!, ...hw(tap)];
    if (kind === 'attn') return ['batch', heads, ...hw(tap)];
    if (o === 'cls.final') return ['batch', head === 'ca-stream' ? bb.caStream().at(-1)!.outDim : last.channels];
    return ['batch', numClasses];
  };
  return {
    irVersion: 8,
    producerName: 'ca-pipe',
    producerVersion: EXPORTER_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    metadataProps: [
      { key: 'arch', value: bb.name },
      { key: 'head', value: head },
      { key: 'heads', value: String(heads) },
      { key: 'num_classes', value: String(numClasses) },
    ],
    graph: {
      name: `${bb.name}-${head}`,
      node: nodes,
      initializer: inits,
      input: [valueInfo('input', ['batch', 3, side, inputSize ?? 'width'])],
      output: outputs.map((o) => valueInfo(o, outDims(o))),
    },
  };
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
