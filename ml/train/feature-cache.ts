// The feature cache: backbone taps of every image of a split under the eval transform, computed
// once by the backbone engine (ONNX Runtime or tfjs) and stored (float16 by default) so that frozen-mode training without
// augmentation — and every head-hyperparameter variant of a sweep — trains the CA head alone.
//
// Layout of a cache directory:
//   features.json                FeaturesMeta
//   <split>-<00000>.safetensors  tap.<name> [n, H, W, C] (NHWC, F16|F32), labels I32 [n], ids I32 [n],
//                                logits_gap F32 [n, K] (the init model's own GAP classifier)
// Shards are written atomically and are a pure function of (init weights, images, settings), so an
// interrupted computation resumes at the first missing shard.
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { createLoader, createLoaderPool, type LoaderItem, type LoaderPool } from '../data/loader.js';
import type { Preprocessing } from '../data/preprocessing.js';
import type { Backbone } from '../models/backbone.js';
import type { ForwardSession } from '../forward/session.js';
import { topkCorrect } from './losses.js';
import { beginPhase, EXTRACTING, type ProgressSink } from './progress.js';
import type { TapArrays } from './sources.js';

export const FEATURES_FORMAT = 'ca-pipe.features/1';
export const FEATURES_META = 'features.json';
export type FeatureDtype = 'float16' | 'float32';
export type SplitName = 'train' | 'val';

export interface FeatureSplitMeta {
  count: number;
  shards: string[];
  /** sha256 of the comma-joined item ids, to check a consumer asks for the same items. */
  ids_digest: string;
  /** Top-1 accuracy of the init model's GAP classifier on this split. */
  gap_acc: number;
}

export interface FeaturesMeta {
  format: typeof FEATURES_FORMAT;
  arch: string;
  input_size: number;
  /** Eval transform's shorter side before the centre crop. */
  resize: number | null;
  /** Pixel convention of the images (absent in caches written before conventions: fast). */
  preprocessing?: Preprocessing;
  dtype: FeatureDtype;
  taps: string[];
  /** [H, W, C] per tap. */
  tap_shapes: Partial<Record<string, [number, number, number]>>;
  num_classes: number;
  /** sha256 of the init weights file the backbone came from. */
  init_digest: string;
  splits: Partial<Record<SplitName, FeatureSplitMeta>>;
}

export interface ComputeFeaturesOptions {
  session: ForwardSession;
  arch: Backbone;
  items: LoaderItem[];
  split: SplitName;
  dir: string;
  size: number;
  resize?: number;
  preprocessing?: Preprocessing;
  dtype: FeatureDtype;
  taps: string[];
  numClasses: number;
  /** Images per forward call. Default FEATURE_BATCH. */
  batchSize?: number;
  /** Images per shard. Default 256. */
  shardSize?: number;
  /** Compute only the shards this accepts (a split stage's worker; the result's counts then cover those only). */
  onlyShards?: (s: number) => boolean;
  workers?: number;
  progress?: ProgressSink;
  /**
   * The caller declared one extraction phase spanning several splits (see extractionPhase):
   * only tick and name the split. Otherwise this split is a phase of its own.
   */
  sharedPhase?: boolean;
  signal?: AbortSignal;
}

/** Images per forward call when the feature cache is filled. */
export const FEATURE_BATCH = 16;

export function idsDigest(ids: number[]): string {
  return createHash('sha256').update(ids.join(',')).digest('hex');
}

function shardName(split: SplitName, i: number): string {
  return `${split}-${String(i).padStart(5, '0')}.safetensors`;
}

/** NCHW → NHWC for `n` images of C×H×W. */
export function nchwToNhwc(src: Float32Array, n: number, c: number, h: number, w: number, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(src.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const s = b * c * hw;
    for (let k = 0; k < c; k++) {
      const sk = s + k * hw;
      for (let p = 0; p < hw; p++) dst[s + p * c + k] = src[sk + p];
    }
  }
  return dst;
}

async function validShard(file: string, n: number): Promise<boolean> {
  try {
    await stat(file);
    const f = await readSafetensors(file);
    return f.tensors.get('labels')?.shape[0] === n;
  } catch {
    return false;
  }
}

/** Computes (or completes) the shards of one split; returns its metadata. */
export async function computeFeatures(o: ComputeFeaturesOptions): Promise<FeatureSplitMeta> {
  await mkdir(o.dir, { recursive: true });
  const shardSize = o.shardSize ?? 256;
  const n = o.items.length;
  const nShards = Math.ceil(n / shardSize);
  const shards: string[] = [];
  let correct = 0;
  const message = `${EXTRACTING} (${o.split})`;
  if (o.sharedPhase) o.progress?.message(message);
  else beginPhase(o.progress, { total: n, unit: 'img', message });
  // One pool for every shard: starting threads (and sharp in each) per 256 images cost more than
  // decoding them. Started at the first shard to compute: a resumed or split job may have none.
  let pool: Promise<LoaderPool> | undefined;
  const decoders = (): Promise<LoaderPool> | undefined => (o.workers === 0 ? undefined : (pool ??= createLoaderPool(o.workers)));
  try {
    for (let s = 0; s < nShards; s++) {
      correct += await computeShard(o, s, shardSize, decoders);
      shards.push(shardName(o.split, s));
    }
  } finally {
    await (await pool)?.close();
  }
  return { count: n, shards, ids_digest: idsDigest(o.items.map((i) => i.id)), gap_acc: n ? correct / n : NaN };
}

/** Writes (or verifies) shard `s`; returns how many of its images the init's GAP classifier gets right. */
async function computeShard(
  o: ComputeFeaturesOptions,
  s: number,
  shardSize: number,
  decoders: () => Promise<LoaderPool> | undefined,
): Promise<number> {
  const items = o.items.slice(s * shardSize, (s + 1) * shardSize);
  const labels = Int32Array.from(items, (it) => it.label);
  const file = join(o.dir, shardName(o.split, s));
  if (o.onlyShards && !o.onlyShards(s)) return 0;
  if (await validShard(file, items.length)) {
    const f = await readSafetensors(file);
    o.progress?.tick(items.length);
    return topkCorrect(f.tensors.get('logits_gap')!.data as Float32Array, o.numClasses, labels, [1])[0];
  }
  const ch = tapWidths(o.arch);
  const sizes = o.arch.readingSizes(o.size);
  const outputs = [...o.taps.map((t) => `tap.${t}`), 'logits'];
  const m = items.length;
  const tapData = Object.fromEntries(o.taps.map((t) => [t, new Float32Array(m * ch[t] * sizes[t] * sizes[t])])) as Record<
    string,
    Float32Array
  >;
  const logits = new Float32Array(m * o.numClasses);
  const loader = createLoader({
    items,
    batchSize: o.batchSize ?? FEATURE_BATCH,
    transform: 'eval',
    size: o.size,
    resize: o.resize,
    layout: 'NCHW',
    shuffle: false,
    workers: o.workers,
    pool: await decoders(),
    preprocessing: o.preprocessing,
  });
  let off = 0;
  for await (const b of loader) {
    if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error('aborted');
    const res = await o.session.run(b.x, b.n, o.size, o.size, outputs);
    for (const t of o.taps) {
      const per = ch[t] * sizes[t] * sizes[t];
      nchwToNhwc(res[`tap.${t}`].data as Float32Array, b.n, ch[t], sizes[t], sizes[t], tapData[t].subarray(off * per, (off + b.n) * per));
    }
    logits.set(res.logits.data, off * o.numClasses);
    off += b.n;
    o.progress?.tick(b.n);
  }
  const tensors: Record<string, TensorToWrite> = {
    labels: { shape: [m], data: labels },
    ids: { shape: [m], data: Int32Array.from(items, (it) => it.id) },
    logits_gap: { dtype: 'F32', shape: [m, o.numClasses], data: logits },
  };
  for (const t of o.taps)
    tensors[`tap.${t}`] = { dtype: o.dtype === 'float16' ? 'F16' : 'F32', shape: [m, sizes[t], sizes[t], ch[t]], data: tapData[t] };
  await writeSafetensors(file, tensors, { split: o.split, shard: String(s) });
  return topkCorrect(logits, o.numClasses, labels, [1])[0];
}

/** One progress phase for extracting several splits in a row (pass sharedPhase to each). */
export function extractionPhase(progress: ProgressSink | undefined, splits: LoaderItem[][]): void {
  beginPhase(progress, { total: splits.reduce((a, s) => a + s.length, 0), unit: 'img', message: EXTRACTING });
}

export async function writeFeaturesMeta(dir: string, meta: FeaturesMeta): Promise<void> {
  await writeFile(join(dir, FEATURES_META), JSON.stringify(meta, null, 2) + '\n');
}

export async function readFeaturesMeta(dir: string): Promise<FeaturesMeta> {
  const file = join(dir, FEATURES_META);
  let meta: FeaturesMeta;
  try {
    meta = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} cannot be read (${(e as Error).message}): the "features" input must be the output of a features stage`);
  }
  if (meta.format !== FEATURES_FORMAT) throw new Error(`${file}: format ${JSON.stringify(meta.format)}, expected ${FEATURES_FORMAT}`);
  return meta;
}

export interface LoadedSplit extends TapArrays {
  gapLogits: Float32Array;
}

/**
 * Loads a split's taps (as float32) for the given items, in the items' order. Items missing from
 * the cache are an error naming the first few ids.
 */
export async function loadFeatureSplit(
  dir: string,
  meta: FeaturesMeta,
  split: SplitName,
  taps: string[],
  items: LoaderItem[],
): Promise<LoadedSplit> {
  const sm = meta.splits[split];
  if (!sm) throw new Error(`${join(dir, FEATURES_META)}: no "${split}" split in the feature cache`);
  for (const t of taps)
    if (!meta.taps.includes(t)) throw new Error(`${join(dir, FEATURES_META)}: tap "${t}" is not cached (has ${meta.taps.join(', ')})`);
  const rowOf = new Map<number, { shard: number; row: number }>();
  const files: Awaited<ReturnType<typeof readSafetensors>>[] = [];
  for (let s = 0; s < sm.shards.length; s++) {
    const f = await readSafetensors(join(dir, sm.shards[s]));
    const ids = f.tensors.get('ids')!.data as Int32Array;
    ids.forEach((id, row) => rowOf.set(id, { shard: s, row }));
    files.push(f);
  }
  const missing = items.filter((it) => !rowOf.has(it.id));
  if (missing.length)
    throw new Error(
      `${dir}: the feature cache lacks ${missing.length} ${split} item(s) (ids ${missing
        .slice(0, 5)
        .map((m) => m.id)
        .join(', ')}${missing.length > 5 ? ', …' : ''}); recompute it for this data`,
    );
  const n = items.length;
  const K = meta.num_classes;
  const out: LoadedSplit = { taps: {}, labels: new Int32Array(n), ids: items.map((i) => i.id), gapLogits: new Float32Array(n * K) };
  for (const t of taps) {
    const [h, w, c] = meta.tap_shapes[t]!;
    out.taps[t] = { shape: [h, w, c], data: new Float32Array(n * h * w * c) };
  }
  items.forEach((it, i) => {
    const { shard, row } = rowOf.get(it.id)!;
    const f = files[shard];
    const label = (f.tensors.get('labels')!.data as Int32Array)[row];
    if (label !== it.label)
      throw new Error(`${join(dir, sm.shards[shard])}: item ${it.id} has label ${label} in the cache but ${it.label} in the index`);
    out.labels[i] = label;
    out.gapLogits.set((f.tensors.get('logits_gap')!.data as Float32Array).subarray(row * K, (row + 1) * K), i * K);
    for (const t of taps) {
      const dst = out.taps[t]!;
      const per = dst.shape[0] * dst.shape[1] * dst.shape[2];
      dst.data.set((f.tensors.get(`tap.${t}`)!.data as Float32Array).subarray(row * per, (row + 1) * per), i * per);
    }
  });
  return out;
}

function tapWidths(arch: Backbone): Record<string, number> {
  return Object.fromEntries(arch.readings().map((r) => [r.tap, r.channels]));
}

export function tapShapes(arch: Backbone, size: number, taps: string[]): Partial<Record<string, [number, number, number]>> {
  const ch = tapWidths(arch);
  const sz = arch.readingSizes(size);
  return Object.fromEntries(taps.map((t) => [t, [sz[t], sz[t], ch[t]]]));
}
