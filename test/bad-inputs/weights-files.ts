// Small but complete weight files for the weights cases: resnet-mini with a GAP head, in the
// layout a user brings (torchvision names, file shapes), with one thing made wrong on request.
import { writeFile } from 'node:fs/promises';
import { serializeSafetensors, type TensorToWrite } from '../../ml/io/safetensors.js';
import { getBackbone } from '../../ml/models/backbones.js';
import { initialValue, paramSpecs } from '../../ml/models/params.js';
import { Rng } from '../../ml/models/rng.js';

export const ARCH = 'resnet-mini';
export const CLASSES = 2;

export type Breakage = { drop: string } | { reshape: string } | { asInt32: string } | { nan: string };

export function modelTensors(breakage?: Breakage): Record<string, TensorToWrite> {
  const rng = new Rng(0);
  const out: Record<string, TensorToWrite> = {};
  for (const spec of paramSpecs(getBackbone(ARCH), { head: 'gap', numClasses: CLASSES })) {
    out[spec.name] = { shape: spec.fileShape, data: initialValue(spec, rng) };
  }
  if (!breakage) return out;
  if ('drop' in breakage) delete out[breakage.drop];
  if ('reshape' in breakage) {
    const t = out[breakage.reshape]!;
    out[breakage.reshape] = {
      shape: [...t.shape.slice(0, -1), t.shape.at(-1)! + 1],
      data: new Float32Array((t.data.length / t.shape.at(-1)!) * (t.shape.at(-1)! + 1)),
    };
  }
  if ('asInt32' in breakage) {
    const t = out[breakage.asInt32]!;
    out[breakage.asInt32] = { shape: t.shape, data: Int32Array.from(t.data as Float32Array, (v) => Math.round(v)) };
  }
  if ('nan' in breakage) (out[breakage.nan]!.data as Float32Array)[0] = NaN;
  return out;
}

export async function writeWeights(file: string, breakage?: Breakage): Promise<void> {
  await writeFile(file, serializeSafetensors(modelTensors(breakage)));
}

/** A 1×3×32×32 input batch for `ca-pipe forward`. */
export async function writeInput(file: string): Promise<void> {
  await writeFile(file, serializeSafetensors({ input: { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.5) } }));
}
