// The parameter table of a model: every tensor with its torchvision / official CA-Stream name, its
// shape as stored in files (PyTorch layout) and how it is initialised. tfjs keeps convolution
// filters as HWIO; files hold OIHW — the conversion lives here and nowhere else.
import { caProjections, EXPANSION, stageStride, tapChannels, TAPS, type ResNetArch, type TapName } from './arch.js';
import { fillNormal, fillUniform, Rng } from './rng.js';

export type HeadKind = 'gap' | 'ca-stream' | 'ca-final';

export type ParamRole =
  | 'conv' // OIHW in files, HWIO in tfjs
  | 'bn-weight'
  | 'bn-bias'
  | 'bn-mean' // buffers: updated by training-mode forward passes, never by an optimizer
  | 'bn-var'
  | 'linear-weight' // [out, in] in both
  | 'linear-bias'
  | 'token';

export type ParamGroup = 'backbone' | 'fc' | 'ca';

export interface ParamSpec {
  name: string;
  role: ParamRole;
  group: ParamGroup;
  /** Shape in files (PyTorch layout). */
  fileShape: number[];
  /** Fan-in for Linear bias init. */
  fanIn?: number;
}

/** A convolution followed by its BatchNorm, as the backbone applies them. */
export interface ConvBn {
  conv: string; // parameter name of the conv weight
  bn: string; // BN module prefix
  stride: number;
  pad: number;
}

export interface BlockSpec {
  prefix: string; // e.g. layer2.0
  convs: ConvBn[]; // in order; the last one's output is added to the shortcut
  downsample?: ConvBn;
}

export interface BackboneSpec {
  stem: ConvBn;
  stages: BlockSpec[][]; // layer1..layer4
}

export function backboneSpec(arch: ResNetArch): BackboneSpec {
  const e = EXPANSION[arch.block];
  const stages: BlockSpec[][] = [];
  let inplanes = arch.stemWidth;
  for (let s = 0; s < 4; s++) {
    const width = arch.widths[s];
    const blocks: BlockSpec[] = [];
    for (let i = 0; i < arch.layers[s]; i++) {
      const stride = i === 0 ? stageStride(arch, s) : 1;
      const p = `layer${s + 1}.${i}`;
      const convs: ConvBn[] =
        arch.block === 'basic'
          ? [
              { conv: `${p}.conv1.weight`, bn: `${p}.bn1`, stride, pad: 1 },
              { conv: `${p}.conv2.weight`, bn: `${p}.bn2`, stride: 1, pad: 1 },
            ]
          : [
              { conv: `${p}.conv1.weight`, bn: `${p}.bn1`, stride: 1, pad: 0 },
              { conv: `${p}.conv2.weight`, bn: `${p}.bn2`, stride, pad: 1 },
              { conv: `${p}.conv3.weight`, bn: `${p}.bn3`, stride: 1, pad: 0 },
            ];
      const needDown = i === 0 && (stride !== 1 || inplanes !== width * e);
      blocks.push({ prefix: p, convs, downsample: needDown ? { conv: `${p}.downsample.0.weight`, bn: `${p}.downsample.1`, stride, pad: 0 } : undefined });
      inplanes = width * e;
    }
    stages.push(blocks);
  }
  return { stem: { conv: 'conv1.weight', bn: 'bn1', stride: 2, pad: 3 }, stages };
}

/** Conv weight shapes [out, in, kh, kw] keyed by parameter name. */
function convShapes(arch: ResNetArch): Map<string, number[]> {
  const e = EXPANSION[arch.block];
  const m = new Map<string, number[]>();
  m.set('conv1.weight', [arch.stemWidth, 3, 7, 7]);
  let inplanes = arch.stemWidth;
  const spec = backboneSpec(arch);
  spec.stages.forEach((blocks, s) => {
    const w = arch.widths[s];
    for (const b of blocks) {
      if (arch.block === 'basic') {
        m.set(b.convs[0].conv, [w, inplanes, 3, 3]);
        m.set(b.convs[1].conv, [w, w, 3, 3]);
      } else {
        m.set(b.convs[0].conv, [w, inplanes, 1, 1]);
        m.set(b.convs[1].conv, [w, w, 3, 3]);
        m.set(b.convs[2].conv, [w * e, w, 1, 1]);
      }
      if (b.downsample) m.set(b.downsample.conv, [w * e, inplanes, 1, 1]);
      inplanes = w * e;
    }
  });
  return m;
}

export interface HeadOptions {
  head: HeadKind;
  numClasses: number;
  /** ca-final only: add the C4→C4 projection (`cls_surrogate.to_out.1.*`). Default false, as the original's CLI. */
  project?: boolean;
}

/** Every parameter of a model, backbone first, in a stable order. */
export function paramSpecs(arch: ResNetArch, opts: HeadOptions): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const shapes = convShapes(arch);
  const bb = backboneSpec(arch);
  const addConvBn = (cb: ConvBn) => {
    const shape = shapes.get(cb.conv)!;
    specs.push({ name: cb.conv, role: 'conv', group: 'backbone', fileShape: shape });
    for (const [suffix, role] of [['weight', 'bn-weight'], ['bias', 'bn-bias'], ['running_mean', 'bn-mean'], ['running_var', 'bn-var']] as const) {
      specs.push({ name: `${cb.bn}.${suffix}`, role, group: 'backbone', fileShape: [shape[0]] });
    }
  };
  addConvBn(bb.stem);
  for (const blocks of bb.stages) {
    for (const b of blocks) {
      b.convs.forEach(addConvBn);
      if (b.downsample) addConvBn(b.downsample);
    }
  }
  const ch = tapChannels(arch);
  const c4 = ch.layer4;
  if (opts.head === 'ca-stream') {
    specs.push({ name: 'cls_token', role: 'token', group: 'ca', fileShape: [1, 1, ch.stem] });
    for (const p of caProjections(arch)) {
      specs.push({ name: `${p.block}.to_out.1.weight`, role: 'linear-weight', group: 'ca', fileShape: [p.outDim, p.inDim] });
      specs.push({ name: `${p.block}.to_out.1.bias`, role: 'linear-bias', group: 'ca', fileShape: [p.outDim], fanIn: p.inDim });
    }
  } else if (opts.head === 'ca-final') {
    specs.push({ name: 'cls_token', role: 'token', group: 'ca', fileShape: [1, 1, c4] });
    if (opts.project) {
      specs.push({ name: 'cls_surrogate.to_out.1.weight', role: 'linear-weight', group: 'ca', fileShape: [c4, c4] });
      specs.push({ name: 'cls_surrogate.to_out.1.bias', role: 'linear-bias', group: 'ca', fileShape: [c4], fanIn: c4 });
    }
  }
  specs.push({ name: 'fc.weight', role: 'linear-weight', group: 'fc', fileShape: [opts.numClasses, c4] });
  specs.push({ name: 'fc.bias', role: 'linear-bias', group: 'fc', fileShape: [opts.numClasses], fanIn: c4 });
  return specs;
}

/** Shape of the parameter as held in tfjs. */
export function tfShape(spec: ParamSpec): number[] {
  if (spec.role === 'conv') {
    const [o, i, h, w] = spec.fileShape;
    return [h, w, i, o];
  }
  return spec.fileShape;
}

/** OIHW → HWIO. */
export function oihwToHwio(data: Float32Array, shape: number[]): Float32Array {
  const [o, i, h, w] = shape;
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let c = 0; c < h; c++)
        for (let d = 0; d < w; d++) out[((c * w + d) * i + b) * o + a] = data[((a * i + b) * h + c) * w + d];
  return out;
}

/** HWIO → OIHW; `shape` is the OIHW (file) shape. */
export function hwioToOihw(data: Float32Array, shape: number[]): Float32Array {
  const [o, i, h, w] = shape;
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let c = 0; c < h; c++)
        for (let d = 0; d < w; d++) out[((a * i + b) * h + c) * w + d] = data[((c * w + d) * i + b) * o + a];
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
  switch (spec.role) {
    case 'conv': {
      const [o, , h, w] = spec.fileShape;
      return fillNormal(n, 0, Math.sqrt(2 / (o * h * w)), r);
    }
    case 'bn-weight':
    case 'bn-var':
      return new Float32Array(n).fill(1);
    case 'bn-bias':
    case 'bn-mean':
      return new Float32Array(n);
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

export { TAPS, type TapName };
