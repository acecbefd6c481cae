// The parameter table of a model: every tensor with its torchvision / official CA-Stream name, its
// shape as stored in files (PyTorch layout) and how it is initialised. Each backbone module declares
// its own part (Backbone.params); the CA heads' part is added here. tfjs keeps convolution filters
// as HWIO (depthwise: [kh, kw, C, 1]); files hold OIHW — the conversion lives here and nowhere else.
import { lastReading, type Backbone } from './backbone.js';
import { fillNormal, fillUniform, Rng } from './rng.js';

export type HeadKind = 'gap' | 'ca-stream' | 'ca-final';

export type ParamRole =
  | 'conv' // OIHW in files, HWIO in tfjs
  | 'dwconv' // depthwise [C, 1, kh, kw] in files, [kh, kw, C, 1] in tfjs
  | 'conv-bias'
  | 'bn-weight'
  | 'bn-bias'
  | 'bn-mean' // buffers: updated by training-mode forward passes, never by an optimizer
  | 'bn-var'
  | 'ln-weight'
  | 'ln-bias'
  | 'layer-scale' // ConvNeXt's per-channel γ: [C, 1, 1] in files, [C] in tfjs
  | 'linear-weight' // [out, in] in both
  | 'linear-bias'
  | 'token';

export type ParamGroup = 'backbone' | 'fc' | 'ca';

/** Overrides the role's default initialisation (families differ: ConvNeXt draws N(0, 0.02)). */
export type ParamInit = { normal: number } | { uniform: number } | { constant: number };

export interface ParamSpec {
  name: string;
  role: ParamRole;
  group: ParamGroup;
  /** Shape in files (PyTorch layout). */
  fileShape: number[];
  /** Fan-in for Linear bias init. */
  fanIn?: number;
  init?: ParamInit;
}

/** A BatchNorm's four tensors (names `<prefix>.weight` …) for `c` channels. */
export function bnSpecs(prefix: string, c: number): ParamSpec[] {
  return (
    [
      ['weight', 'bn-weight'],
      ['bias', 'bn-bias'],
      ['running_mean', 'bn-mean'],
      ['running_var', 'bn-var'],
    ] as const
  ).map(([suffix, role]) => ({ name: `${prefix}.${suffix}`, role, group: 'backbone' as const, fileShape: [c] }));
}

/** A Linear layer's weight and bias. */
export function linearSpecs(
  prefix: string,
  out: number,
  inp: number,
  group: ParamGroup,
  init?: { weight?: ParamInit; bias?: ParamInit },
): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, role: 'linear-weight', group, fileShape: [out, inp], init: init?.weight },
    { name: `${prefix}.bias`, role: 'linear-bias', group, fileShape: [out], fanIn: inp, init: init?.bias },
  ];
}

export interface HeadOptions {
  head: HeadKind;
  numClasses: number;
  /** ca-final only: add the C4→C4 projection (`cls_surrogate.to_out.1.*`). Default false, as the original's CLI. */
  project?: boolean;
}

/** Every parameter of a model: backbone, then the CA head, then the classifier. */
export function paramSpecs(backbone: Backbone, opts: HeadOptions): ParamSpec[] {
  const own = backbone.params(opts.numClasses);
  const specs = own.filter((s) => s.group === 'backbone');
  if (opts.head === 'ca-stream') {
    const blocks = backbone.caStream();
    specs.push({ name: 'cls_token', role: 'token', group: 'ca', fileShape: [1, 1, blocks[0].inDim] });
    for (const p of blocks) specs.push(...linearSpecs(`${p.block}.to_out.1`, p.outDim, p.inDim, 'ca'));
  } else if (opts.head === 'ca-final') {
    const block = backbone.caFinalBlock;
    if (!block) throw new Error(`${backbone.name}: the ${backbone.family} family has no ca-final variant here (use ca-stream or gap)`);
    const c = lastReading(backbone).channels;
    specs.push({ name: 'cls_token', role: 'token', group: 'ca', fileShape: [1, 1, c] });
    if (backbone.caFinalKind === 'kv') {
      // CLS_KV: to_k / to_v = Rearrange + Linear(C, C) (index 1), to_out = LayerNorm(C) without projection.
      if (opts.project) throw new Error(`${backbone.name}: the CLS_KV ca-final block is built without projection here (project: false)`);
      specs.push(...linearSpecs(`${block}.to_k.1`, c, c, 'ca'), ...linearSpecs(`${block}.to_v.1`, c, c, 'ca'));
      specs.push(
        { name: `${block}.to_out.weight`, role: 'ln-weight', group: 'ca', fileShape: [c] },
        { name: `${block}.to_out.bias`, role: 'ln-bias', group: 'ca', fileShape: [c] },
      );
    } else if (opts.project) specs.push(...linearSpecs(`${block}.to_out.1`, c, c, 'ca'));
  }
  specs.push(...own.filter((s) => s.group !== 'backbone'));
  return specs;
}

/** Shape of the parameter as held in tfjs. */
export function tfShape(spec: ParamSpec): number[] {
  if (spec.role === 'conv') {
    const [o, i, h, w] = spec.fileShape;
    return [h, w, i, o];
  }
  if (spec.role === 'dwconv') {
    const [c, , h, w] = spec.fileShape;
    return [h, w, c, 1];
  }
  if (spec.role === 'layer-scale') return [spec.fileShape[0]];
  return spec.fileShape;
}

/** File layout → tfjs layout. */
export function toTfLayout(spec: ParamSpec, data: Float32Array): Float32Array {
  if (spec.role === 'conv') return oihwToHwio(data, spec.fileShape);
  // [C, 1, kh, kw] → [kh, kw, C, 1] is OIHW → HWIO with I and O swapped: treat C as the input axis.
  if (spec.role === 'dwconv') return oihwToHwio(data, [1, spec.fileShape[0], spec.fileShape[2], spec.fileShape[3]]);
  return data;
}

/** tfjs layout → file layout. */
export function toFileLayout(spec: ParamSpec, data: Float32Array): Float32Array {
  if (spec.role === 'conv') return hwioToOihw(data, spec.fileShape);
  if (spec.role === 'dwconv') return hwioToOihw(data, [1, spec.fileShape[0], spec.fileShape[2], spec.fileShape[3]]);
  return Float32Array.from(data);
}

/** OIHW → HWIO. */
export function oihwToHwio(data: Float32Array, shape: number[]): Float32Array {
  const [o, i, h, w] = shape;
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let c = 0; c < h; c++) for (let d = 0; d < w; d++) out[((c * w + d) * i + b) * o + a] = data[((a * i + b) * h + c) * w + d];
  return out;
}

/** HWIO → OIHW; `shape` is the OIHW (file) shape. */
export function hwioToOihw(data: Float32Array, shape: number[]): Float32Array {
  const [o, i, h, w] = shape;
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let c = 0; c < h; c++) for (let d = 0; d < w; d++) out[((a * i + b) * h + c) * w + d] = data[((c * w + d) * i + b) * o + a];
  return out;
}

/**
 * Initial values in file layout, following torchvision and the original CA-Stream code:
 * conv kaiming-normal (fan_out, relu gain), BN γ=1 β=0 μ=0 σ²=1, Linear weight U(±1/√in) (torch's
 * default) except CA projections (xavier-uniform), Linear bias U(±1/√in), token i.i.d. N(1, 1).
 */
export function initialValue(spec: ParamSpec, rng: Rng): Float32Array {
  const n = spec.fileShape.reduce((a, b) => a * b, 1);
  const r = rng.fork(spec.name);
  const init = spec.init;
  if (init) {
    if ('normal' in init) return fillNormal(n, 0, init.normal, r);
    if ('uniform' in init) return fillUniform(n, init.uniform, r);
    return new Float32Array(n).fill(init.constant);
  }
  switch (spec.role) {
    case 'conv':
    case 'dwconv': {
      const [o, , h, w] = spec.fileShape;
      return fillNormal(n, 0, Math.sqrt(2 / (o * h * w)), r);
    }
    case 'bn-weight':
    case 'bn-var':
    case 'ln-weight':
      return new Float32Array(n).fill(1);
    case 'bn-bias':
    case 'bn-mean':
    case 'ln-bias':
    case 'conv-bias':
      return new Float32Array(n);
    case 'layer-scale':
      return new Float32Array(n).fill(1e-6);
    case 'token':
      return fillNormal(n, 1, 1, r);
    case 'linear-weight': {
      const [out, inp] = spec.fileShape;
      const bound = spec.group === 'ca' ? Math.sqrt(6 / (inp + out)) : 1 / Math.sqrt(inp);
      return fillUniform(n, bound, r);
    }
    case 'linear-bias':
      return fillUniform(n, 1 / Math.sqrt(spec.fanIn ?? spec.fileShape[0]), r);
  }
}
