// Reads a model directory (the train stage's output: model.json + safetensors weights) and checks
// the card, so every consumer (saliency, evaluation, benchmarks) fails the same clear way.
// The file names and card fields follow stages/artifacts.ts; they are repeated here as plain
// strings because ml/ must not import stages/.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeNonFinite } from '../io/finite.js';
import { readSafetensors } from '../io/safetensors.js';
import { lastReading, type Backbone } from '../models/backbone.js';
import { getBackbone } from '../models/backbones.js';
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
  /** Pixel convention it was trained with (absent in cards older than the conventions: fast). */
  preprocessing?: 'torchvision' | 'fast';
  mean: [number, number, number];
  std: [number, number, number];
  /** Class names, label = position (copied from the index). */
  classes: string[];
  /** File name of the weights inside the model directory. */
  weights: string;
  /** The user's weights file this directory was made from (absent for trained models): errors name it. */
  source?: string;
}

export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

export interface LoadedModel {
  dir: string;
  card: ModelCardLike;
  arch: Backbone;
  weightsFile: string;
  /** How errors name the weights: the user's own file when the card records one, not the store's copy (absent: weightsFile). */
  weightsName?: string;
  weights: Map<string, FloatTensor>;
  /** The last feature map's (ResNet: layer4) channels and grid at the card's input size. */
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
    getBackbone(c.arch as string);
  } catch (e) {
    bad('arch', (e as Error).message);
  }
  if (!['gap', 'ca-stream', 'ca-final'].includes(c.head as string))
    bad('head', `must be gap, ca-stream or ca-final, got ${JSON.stringify(c.head)}`);
  for (const f of ['heads', 'num_classes', 'input_size'] as const) {
    if (!Number.isInteger(c[f]) || (c[f] as number) < 1) bad(f, `must be a positive integer, got ${JSON.stringify(c[f])}`);
  }
  if (c.resize !== undefined && (!Number.isInteger(c.resize) || (c.resize as number) < (c.input_size as number)))
    bad('resize', `must be an integer ≥ input_size (${c.input_size}), got ${JSON.stringify(c.resize)}`);
  if (c.preprocessing !== undefined && c.preprocessing !== 'torchvision' && c.preprocessing !== 'fast')
    bad('preprocessing', `must be torchvision or fast, got ${JSON.stringify(c.preprocessing)}`);
  for (const f of ['mean', 'std'] as const) {
    const v = c[f];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) bad(f, 'must be 3 numbers');
  }
  if ((c.std as number[]).some((s) => !(s > 0))) bad('std', 'values must be > 0');
  if (!Array.isArray(c.classes) || c.classes.length !== c.num_classes) bad('classes', `must list num_classes (${c.num_classes}) names`);
  if (typeof c.weights !== 'string' || c.weights.includes('/') || c.weights.includes('\\'))
    bad('weights', 'must be a file name inside the model directory');
  if (c.source !== undefined && (typeof c.source !== 'string' || c.source === ''))
    bad('source', 'must be the path of the weights file the directory was made from');
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
  const weightsName = weightsDisplayName(weightsFile, card);
  const file = await readSafetensors(weightsFile).catch((e: Error) => {
    throw card.source ? new Error(e.message.replace(weightsFile, weightsName)) : e;
  });
  const weights = new Map<string, FloatTensor>();
  const problems: string[] = [];
  for (const [k, t] of file.tensors) {
    if (t.data instanceof Float32Array) {
      const bad = describeNonFinite(t.data);
      if (bad) problems.push(`[${k}] ${bad}`);
      else weights.set(k, { shape: t.shape, data: t.data });
    } else if (!k.endsWith('.num_batches_tracked')) {
      // Dropping it would only resurface later as a baffling "missing" key.
      problems.push(`[${k}] dtype ${t.dtype}, expected a float type`);
    }
  }
  if (problems.length) {
    const shown = problems.slice(0, 8).join('; ') + (problems.length > 8 ? `; … (${problems.length - 8} more)` : '');
    throw new Error(`${weightsName}: unusable weights: ${shown}`);
  }
  const arch = getBackbone(card.arch);
  const last = lastReading(arch);
  const size = arch.readingSizes(card.input_size)[last.tap];
  return { dir, card, arch, weightsFile, weightsName, weights, feature: { K: last.channels, h: size, w: size } };
}

/** `weightsFile`, or the user's file it was copied from (with the copy in brackets) when the card records it. */
export function weightsDisplayName(weightsFile: string, card: Pick<ModelCardLike, 'source'>): string {
  return card.source ? `${card.source} (copied to ${weightsFile})` : weightsFile;
}
