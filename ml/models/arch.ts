// Declarative ResNet descriptions (torchvision v1.5: the stride sits on the 3×3 conv).
// Both the tfjs model builder and the ONNX exporter read these, so they can never disagree.

export type BlockType = 'basic' | 'bottleneck';

export interface ResNetArch {
  name: string;
  block: BlockType;
  /** Blocks per stage (layer1..layer4). */
  layers: [number, number, number, number];
  /** Stem width (conv1 output channels); torchvision: 64. */
  stemWidth: number;
  /** Inner width of each stage (torchvision `planes`): 64, 128, 256, 512. */
  widths: [number, number, number, number];
  /** Stride of each stage's first block; torchvision: 1, 2, 2, 2. A stride-1 layer4 keeps
   * layer3's resolution, so attention and CAM maps of small inputs are not a 2×2 grid. */
  stageStrides?: [number, number, number, number];
  /** Bottleneck 3×3 conv groups (ResNeXt); default 1. */
  groups?: number;
  /** torchvision `width_per_group` (64; ResNeXt 4 or 8; Wide ResNet 128). */
  widthPerGroup?: number;
}

const STD_STRIDES: [number, number, number, number] = [1, 2, 2, 2];

/** Stride of the first block of stage `s` (0 = layer1). */
export function stageStride(arch: ResNetArch, s: number): number {
  return (arch.stageStrides ?? STD_STRIDES)[s]!;
}

export const EXPANSION: Record<BlockType, number> = { basic: 1, bottleneck: 4 };

const STD_WIDTHS: [number, number, number, number] = [64, 128, 256, 512];

export const ARCHS: Record<string, ResNetArch> = {
  resnet18: { name: 'resnet18', block: 'basic', layers: [2, 2, 2, 2], stemWidth: 64, widths: STD_WIDTHS },
  resnet34: { name: 'resnet34', block: 'basic', layers: [3, 4, 6, 3], stemWidth: 64, widths: STD_WIDTHS },
  resnet50: { name: 'resnet50', block: 'bottleneck', layers: [3, 4, 6, 3], stemWidth: 64, widths: STD_WIDTHS },
  resnet101: { name: 'resnet101', block: 'bottleneck', layers: [3, 4, 23, 3], stemWidth: 64, widths: STD_WIDTHS },
  resnet152: { name: 'resnet152', block: 'bottleneck', layers: [3, 8, 36, 3], stemWidth: 64, widths: STD_WIDTHS },
  resnext50_32x4d: {
    name: 'resnext50_32x4d',
    block: 'bottleneck',
    layers: [3, 4, 6, 3],
    stemWidth: 64,
    widths: STD_WIDTHS,
    groups: 32,
    widthPerGroup: 4,
  },
  resnext101_32x8d: {
    name: 'resnext101_32x8d',
    block: 'bottleneck',
    layers: [3, 4, 23, 3],
    stemWidth: 64,
    widths: STD_WIDTHS,
    groups: 32,
    widthPerGroup: 8,
  },
  wide_resnet50_2: {
    name: 'wide_resnet50_2',
    block: 'bottleneck',
    layers: [3, 4, 6, 3],
    stemWidth: 64,
    widths: STD_WIDTHS,
    widthPerGroup: 128,
  },
  wide_resnet101_2: {
    name: 'wide_resnet101_2',
    block: 'bottleneck',
    layers: [3, 4, 23, 3],
    stemWidth: 64,
    widths: STD_WIDTHS,
    widthPerGroup: 128,
  },
  // Small variants for quick experiments: same block types and names, fewer blocks, narrower.
  'resnet-basic-1111': { name: 'resnet-basic-1111', block: 'basic', layers: [1, 1, 1, 1], stemWidth: 64, widths: STD_WIDTHS },
  'resnet-mini': { name: 'resnet-mini', block: 'basic', layers: [1, 1, 1, 1], stemWidth: 16, widths: [16, 32, 64, 128] },
  // resnet-mini with a stride-1 layer4: a 4×4 layer4 at 64 px (same parameters, ~1.5× the FLOPs).
  'resnet-mini-hr': {
    name: 'resnet-mini-hr',
    block: 'basic',
    layers: [1, 1, 1, 1],
    stemWidth: 16,
    widths: [16, 32, 64, 128],
    stageStrides: [1, 2, 2, 1],
  },
  'resnet-mini-bottleneck': {
    name: 'resnet-mini-bottleneck',
    block: 'bottleneck',
    layers: [1, 1, 1, 1],
    stemWidth: 16,
    widths: [8, 16, 32, 64],
  },
};

export const TAPS = ['stem', 'layer1', 'layer2', 'layer3', 'layer4'] as const;
export type TapName = (typeof TAPS)[number];

/** Official CA-Stream block names, one per tap. */
export const CA_BLOCK_NAMES: Record<TapName, string> = { stem: 'base', layer1: 'l1', layer2: 'l2', layer3: 'l3', layer4: 'l4' };

/** Channel count of each tap. */
export function tapChannels(arch: ResNetArch): Record<TapName, number> {
  const e = EXPANSION[arch.block];
  return {
    stem: arch.stemWidth,
    layer1: arch.widths[0] * e,
    layer2: arch.widths[1] * e,
    layer3: arch.widths[2] * e,
    layer4: arch.widths[3] * e,
  };
}

/** Spatial size of each tap for a square input of side `size` (conv1 /2, maxpool /2, then each
 * stage's stride: layer2..4 /2 each for torchvision's ResNets). */
export function tapSizes(size: number, arch?: ResNetArch): Record<TapName, number> {
  const conv = (s: number, k: number, st: number, p: number) => Math.floor((s + 2 * p - k) / st) + 1;
  const stride = (s: number) => (arch ? stageStride(arch, s) : STD_STRIDES[s]!);
  const stem = conv(conv(size, 7, 2, 3), 3, 2, 1);
  const l1 = conv(stem, 3, stride(0), 1);
  const l2 = conv(l1, 3, stride(1), 1);
  const l3 = conv(l2, 3, stride(2), 1);
  const l4 = conv(l3, 3, stride(3), 1);
  return { stem, layer1: l1, layer2: l2, layer3: l3, layer4: l4 };
}

export function getArch(name: string): ResNetArch {
  const a = ARCHS[name];
  if (!a) throw new Error(`unknown architecture "${name}" (known: ${Object.keys(ARCHS).join(', ')})`);
  return a;
}
