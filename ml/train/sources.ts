// Where training batches come from: decoded images (streamed through the augmenting loader, or
// decoded once and kept in memory when there is no augmentation) or cached backbone taps.
// Every source yields batch b of epoch e as a pure function of (seed, e, b): the order is
// epochOrder(n, seed, e) and augmentation is Rng(seed, e, id), so a resumed run sees the same data.
import { createLoader, epochOrder, type LoaderItem } from '../data/loader.js';
import type { Preprocessing } from '../data/preprocessing.js';
import type { Layout } from '../data/transforms.js';

export interface SourceBatch {
  /** Batch index within the epoch. */
  index: number;
  /** Normalised images in the source's layout (image sources). */
  x?: Float32Array;
  /** Backbone taps, NHWC float32 per tap (feature sources). */
  taps?: Partial<Record<string, Float32Array>>;
  labels: Int32Array;
  ids: number[];
  n: number;
}

export interface BatchSource {
  /** Items in the split. */
  readonly count: number;
  readonly batchSize: number;
  /** Batches per epoch (train sources drop the last incomplete batch, as the original). */
  readonly numBatches: number;
  /** Batches of `epoch` from batch `start` on, in order. */
  batches(epoch: number, start?: number): AsyncIterable<SourceBatch>;
  close?(): Promise<void>;
}

export interface ImageSourceOptions {
  items: LoaderItem[];
  batchSize: number;
  size: number;
  layout: Layout;
  seed: number;
  /** Random-resized-crop + flip per (seed, epoch, item); false = the eval transform. */
  augment: boolean;
  /** Shuffle every epoch and drop the last incomplete batch (training). */
  train: boolean;
  /** Eval transform: shorter side before the centre crop. */
  resize?: number;
  /** Train transform: RandomResizedCrop scale range. */
  scale?: [number, number];
  /** Pixel convention (default fast). */
  preprocessing?: Preprocessing;
  workers?: number;
  /** Keep decoded images in memory when they fit in this many bytes (only without augmentation). */
  memoryBudget?: number;
  signal?: AbortSignal;
}

function countBatches(n: number, batch: number, dropLast: boolean): number {
  return dropLast ? Math.floor(n / batch) : Math.ceil(n / batch);
}

const DEFAULT_MEMORY_BUDGET = 1 << 30;

/** Images from disk. Without augmentation they are decoded once and kept in memory when small. */
export async function createImageSource(o: ImageSourceOptions): Promise<BatchSource> {
  const n = o.items.length;
  const per = 3 * o.size * o.size;
  const numBatches = countBatches(n, o.batchSize, o.train);
  const budget = o.memoryBudget ?? DEFAULT_MEMORY_BUDGET;
  if (!o.augment && n * per * 4 <= budget) {
    // Decoding is the slow part of an epoch on a small dataset; the eval transform is deterministic.
    const all = new Float32Array(n * per);
    const loader = createLoader({
      items: o.items,
      batchSize: 64,
      transform: 'eval',
      size: o.size,
      resize: o.resize,
      layout: o.layout,
      shuffle: false,
      workers: o.workers,
      seed: o.seed,
      preprocessing: o.preprocessing,
    });
    let off = 0;
    for await (const b of loader) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
      all.set(b.x, off);
      off += b.x.length;
    }
    const labels = Int32Array.from(o.items, (it) => it.label);
    return memorySource(n, o, (index, idx) => ({
      index,
      x: gatherRows(all, per, idx),
      labels: Int32Array.from(idx, (i) => labels[i]),
      ids: idx.map((i) => o.items[i].id),
      n: idx.length,
    }));
  }
  return {
    count: n,
    batchSize: o.batchSize,
    numBatches,
    async *batches(epoch: number, start = 0) {
      const loader = createLoader({
        items: o.items,
        batchSize: o.batchSize,
        transform: o.augment ? 'train' : 'eval',
        size: o.size,
        resize: o.resize,
        scale: o.scale,
        layout: o.layout,
        shuffle: o.train,
        dropLast: o.train,
        workers: o.workers,
        seed: o.seed,
        epoch,
        startBatch: start,
        preprocessing: o.preprocessing,
      });
      let b = start;
      for await (const batch of loader) {
        if (batch.n === 0) throw new Error(`batch ${b} of epoch ${epoch} is empty`);
        yield { index: b++, x: batch.x, labels: batch.labels, ids: batch.ids, n: batch.n };
      }
    },
  };
}

/** A source over items held in memory: batches of the loader's own (seeded) epoch order. */
function memorySource(
  n: number,
  o: { batchSize: number; seed: number; train: boolean },
  makeBatch: (index: number, idx: number[]) => SourceBatch,
): BatchSource {
  const numBatches = countBatches(n, o.batchSize, o.train);
  return {
    count: n,
    batchSize: o.batchSize,
    numBatches,
    async *batches(epoch: number, start = 0) {
      const order = epochOrder(n, o.seed, epoch, o.train);
      for (let b = start; b < numBatches; b++) yield makeBatch(b, order.slice(b * o.batchSize, (b + 1) * o.batchSize));
    },
  };
}

/** Rows `idx` (each `per` floats) of `data`, back to back. */
function gatherRows(data: Float32Array, per: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * per);
  idx.forEach((i, k) => out.set(data.subarray(i * per, (i + 1) * per), k * per));
  return out;
}

export interface TapArrays {
  /** Per tap: [count, H, W, C] float32, row-major. */
  taps: Partial<Record<string, { shape: [number, number, number]; data: Float32Array }>>;
  labels: Int32Array;
  ids: number[];
}

/** Batches of precomputed taps (the feature cache), in the same order an image source would use. */
export function createTapSource(t: TapArrays, o: { batchSize: number; seed: number; train: boolean }): BatchSource {
  const names = Object.keys(t.taps) as string[];
  return memorySource(t.labels.length, o, (index, idx) => {
    const taps: Partial<Record<string, Float32Array>> = {};
    for (const name of names) {
      const { shape, data } = t.taps[name]!;
      taps[name] = gatherRows(data, shape[0] * shape[1] * shape[2], idx);
    }
    return { index, taps, labels: Int32Array.from(idx, (i) => t.labels[i]), ids: idx.map((i) => t.ids[i]), n: idx.length };
  });
}
