// A hand-constructed resnet-mini whose layer4 channel 0 measures "large region of uniform colour"
// — the synthetic benchmark's objects are uniformly painted while every background pixel carries
// grain — computed by the network itself from the pixels (no mask is ever read):
//   stem: 12 filters = ± horizontal / vertical differences of each colour channel (ReLU, max-pool)
//   layer1: channel 12 = ReLU(τ − Σ 3×3 of those roughness channels)   (smoothness S)
//   layer2..4: channel 0 = 3×3 stride-2 average of the previous smoothness channel
//   GAP head: fc row t = (1 + t/10)·e0 — every class reads the smoothness channel;
//   CA head: the l4 token is β·e0 (l3's bias), l4 projection = identity.
// Residual branches of unused channels are exactly zero and BatchNorm is the identity.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { getArch } from '../../ml/models/arch.js';
import { expectedWeights } from '../../ml/onnx/weights.js';
import { serializeSafetensors } from '../../ml/io/safetensors.js';
import { writeCard } from './helpers.js';

export function smoothnessWeights(numClasses: number, tau = 1, beta = 40): Map<string, { shape: number[]; data: Float32Array }> {
  const arch = getArch('resnet-mini');
  const w = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, shape] of expectedWeights(arch, 'ca-stream', numClasses)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (k.endsWith('running_var') || /(^bn1|\.bn\d|downsample\.1)\.weight$/.test(k)) data.fill(1);
    w.set(k, { shape, data });
  }
  const set = (key: string, idx: number[], v: number) => {
    const t = w.get(key)!;
    let off = 0;
    for (let i = 0; i < idx.length; i++) off = off * t.shape[i] + idx[i];
    t.data[off] = v;
  };
  // stem conv1 [16, 3, 7, 7], centre tap (3, 3): ±(x(y,x) − x(y,x+1)) and ±(x(y,x) − x(y+1,x)) per colour.
  for (let c = 0; c < 3; c++) {
    const base = c * 4;
    for (const [o, sign, dy, dx] of [
      [0, 1, 0, 1],
      [1, -1, 0, 1],
      [2, 1, 1, 0],
      [3, -1, 1, 0],
    ] as const) {
      set('conv1.weight', [base + o, c, 3, 3], sign);
      set('conv1.weight', [base + o, c, 3 + dy, 3 + dx], -sign);
    }
  }
  // layer1: channel 12 = ReLU(τ − Σ_{k<12} Σ_3×3 x_k), carried by conv2's centre tap.
  for (let k = 0; k < 12; k++) for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) set('layer1.0.conv1.weight', [12, k, a, b], -1);
  set('layer1.0.bn1.bias', [12], tau);
  set('layer1.0.conv2.weight', [12, 12, 1, 1], 1);
  // layer2..4: average the smoothness channel over 3×3 (stride 2) into channel 0.
  for (const [layer, src] of [
    ['layer2', 12],
    ['layer3', 0],
    ['layer4', 0],
  ] as const) {
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) set(`${layer}.0.conv1.weight`, [0, src, a, b], 1 / 9);
    set(`${layer}.0.conv2.weight`, [0, 0, 1, 1], 1);
  }
  for (let t = 0; t < numClasses; t++) set('fc.weight', [t, 0], 1 + t / 10);
  w.get('cls_token')!.data.fill(1);
  set('l3.to_out.1.bias', [0], beta);
  for (let i = 0; i < 128; i++) set('l4.to_out.1.weight', [i, i], 1);
  return w;
}

/** A model directory with these weights; images are used at their own size (resize = input size). */
export function smoothnessModelDir(dir: string, head: 'gap' | 'ca-stream', numClasses: number, inputSize: number): string {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of smoothnessWeights(numClasses)) tensors[k] = v;
  writeFileSync(join(dir, 'final.safetensors'), serializeSafetensors(tensors));
  writeCard(dir, { arch: 'resnet-mini', head, heads: 1, num_classes: numClasses, input_size: inputSize, resize: inputSize });
  return dir;
}
