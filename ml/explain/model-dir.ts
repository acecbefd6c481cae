// Reads a model directory (the train stage's output: model.json + safetensors weights) and checks
// the card, so every consumer (saliency, evaluation, benchmarks) fails the same clear way.
// The file names and card fields follow stages/artifacts.ts; they are repeated here as plain
// strings because ml/ must not import stages/.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSafetensors } from '../io/safetensors.js';
import { getArch, tapChannels, tapSizes, type ResNetArch } from '../models/arch.js';
import type { HeadKind } from '../models/params.js';

export type PoolingHead = HeadKind;

/** The fields of a model card this module relies on (ca-pipe.model/1). */
export interface ModelCardLike {
  format: string;
  arch: string;
  head: PoolingHead;
  heads: number;
  num_classes: number;
  /** Square input side the model was trained/evaluated at. */
  input_size: number;
  /** Eval transform's shorter side before the centre crop (absent: floor(input_size / 0.875)). Saliency and evaluation use it. */
  resize?: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Class names, label = position (copied from the index). */
  classes: string[];
  /** File name of the weights inside the model directory. */
  weights: string;
}

export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

export interface LoadedModel {
  dir: string;
  card: ModelCardLike;
  arch: ResNetArch;
  weightsFile: string;
  weights: Map<string, FloatTensor>;
  /** layer4 grid and channels at the card's input size. */
  feature: { K: number; h: number; w: number };
}

export const MODEL_CARD_FILE = 'model.json';
export const MODEL_CARD_FORMAT = 'ca-pipe.model/1';

/** Checks a parsed card; `file` names the card in errors. */
export function checkCard(raw: unknown, file: string): ModelCardLike {
  if (typeof raw !== 'object' || raw === null) throw new Error(`${file}: expected a JSON object`);
  const c = raw as Record<string, unknown>;
  const bad = (field: string, why: string): never => {
    throw new Error(`${file}: field "${field}" ${why}`);
  };
  if (c.format !== MODEL_CARD_FORMAT) bad('format', `must be "${MODEL_CARD_FORMAT}", got ${JSON.stringify(c.format)}`);
  if (typeof c.arch !== 'string') bad('arch', 'must be a string');
  try {
    getArch(c.arch as string);
  } catch (e) {
    bad('arch', (e as Error).message);
  }
  if (!['gap', 'ca-stream', 'ca-final'].includes(c.head as string)) bad('head', `must be gap, ca-stream or ca-final, got ${JSON.stringify(c.head)}`);
  for (const f of ['heads', 'num_classes', 'input_size'] as const) {
    if (!Number.isInteger(c[f]) || (c[f] as number) < 1) bad(f, `must be a positive integer, got ${JSON.stringify(c[f])}`);
  }
  if (c.resize !== undefined && (!Number.isInteger(c.resize) || (c.resize as number) < (c.input_size as number)))
    bad('resize', `must be an integer ≥ input_size (${c.input_size}), got ${JSON.stringify(c.resize)}`);
  for (const f of ['mean', 'std'] as const) {
    const v = c[f];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) bad(f, 'must be 3 numbers');
  }
  if ((c.std as number[]).some((s) => !(s > 0))) bad('std', 'values must be > 0');
  if (!Array.isArray(c.classes) || c.classes.length !== c.num_classes) bad('classes', `must list num_classes (${c.num_classes}) names`);
  if (typeof c.weights !== 'string' || c.weights.includes('/') || c.weights.includes('\\')) bad('weights', 'must be a file name inside the model directory');
  return c as unknown as ModelCardLike;
}

/** Reads `<dir>/model.json` and its weights file (float tensors only). */
export async function readModelDir(dir: string): Promise<LoadedModel> {
  const cardFile = join(dir, MODEL_CARD_FILE);
  let text: string;
  try {
    text = await readFile(cardFile, 'utf8');
  } catch {
    throw new Error(`${cardFile} is missing: ${dir} is not a model directory (the output of a train stage)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${cardFile}: invalid JSON (${(e as Error).message})`);
  }
  const card = checkCard(parsed, cardFile);
  const weightsFile = join(dir, card.weights);
  const file = await readSafetensors(weightsFile);
  const weights = new Map<string, FloatTensor>();
  for (const [k, t] of file.tensors) {
    if (t.data instanceof Float32Array) weights.set(k, { shape: t.shape, data: t.data });
  }
  const arch = getArch(card.arch);
  const size = tapSizes(card.input_size, arch).layer4;
  return { dir, card, arch, weightsFile, weights, feature: { K: tapChannels(arch).layer4, h: size, w: size } };
}
