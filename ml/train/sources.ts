// Where training batches come from: decoded images (streamed through the augmenting loader, or
// decoded once and kept in memory when there is no augmentation) or cached backbone taps.
// Every source yields batch b of epoch e as a pure function of (seed, e, b): the order is
// epochOrder(n, seed, e) and augmentation is Rng(seed, e, id), so a resumed run sees the same data.
import { createLoader, epochOrder, type LoaderItem } from '../data/loader.js';
import type { Layout } from '../data/transforms.js';
import type { TapName } from '../models/arch.js';

export interface SourceBatch {
  /** Batch index within the epoch. */
  index: number;
  /** Normalised images in the source's layout (image sources). */
  x?: Float32Array;
  /** Backbone taps, NHWC float32 per tap (feature sources). */
  taps?: Partial<Record<TapName, Float32Array>>;
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
      items: o.items, batchSize: 64, transform: 'eval', size: o.size, resize: o.resize, layout: o.layout,
      shuffle: false, workers: o.workers, seed: o.seed,
    });
    let off = 0;
    for await (const b of loader) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
      all.set(b.x, off);
      off += b.x.length;
    }
    const labels = Int32Array.from(o.items, (it) => it.label);
    return {
      count: n,
      batchSize: o.batchSize,
      numBatches,
      async *batches(epoch: number, start = 0) {
        for (const { b, idx } of indexBatches(n, o.batchSize, numBatches, o.seed, epoch, o.train, start)) {
          const x = new Float32Array(idx.length * per);
          idx.forEach((i, k) => x.set(all.subarray(i * per, (i + 1) * per), k * per));
          yield { index: b, x, labels: Int32Array.from(idx, (i) => labels[i]), ids: idx.map((i) => o.items[i].id), n: idx.length };
        }
      },
    };
  }
  return {
    count: n,
    batchSize: o.batchSize,
    numBatches,
    async *batches(epoch: number, start = 0) {
      const loader = createLoader({
        items: o.items, batchSize: o.batchSize, transform: o.augment ? 'train' : 'eval', size: o.size, resize: o.resize,
        scale: o.scale, layout: o.layout, shuffle: o.train, dropLast: o.train, workers: o.workers, seed: o.seed, epoch,
        startBatch: start,
      });
      let b = start;
      for await (const batch of loader) {
        if (batch.n === 0) throw new Error(`batch ${b} of epoch ${epoch} is empty`);
        yield { index: b++, x: batch.x, labels: batch.labels, ids: batch.ids, n: batch.n };
      }
    },
  };
}

/** Item indices of batches start…numBatches−1 of an epoch, in the loader's own (seeded) order. */
function* indexBatches(n: number, batchSize: number, numBatches: number, seed: number, epoch: number, shuffle: boolean, start: number): Generator<{ b: number; idx: number[] }> {
  const order = epochOrder(n, seed, epoch, shuffle);
  for (let b = start; b < numBatches; b++) yield { b, idx: order.slice(b * batchSize, (b + 1) * batchSize) };
}

export interface TapArrays {
  /** Per tap: [count, H, W, C] float32, row-major. */
  taps: Partial<Record<TapName, { shape: [number, number, number]; data: Float32Array }>>;
  labels: Int32Array;
  ids: number[];
}

/** Batches of precomputed taps (the feature cache), in the same order an image source would use. */
export function createTapSource(t: TapArrays, o: { batchSize: number; seed: number; train: boolean }): BatchSource {
  const n = t.labels.length;
  const numBatches = countBatches(n, o.batchSize, o.train);
  const names = Object.keys(t.taps) as TapName[];
  return {
    count: n,
    batchSize: o.batchSize,
    numBatches,
    async *batches(epoch: number, start = 0) {
      for (const { b, idx } of indexBatches(n, o.batchSize, numBatches, o.seed, epoch, o.train, start)) {
        const taps: Partial<Record<TapName, Float32Array>> = {};
        for (const name of names) {
          const { shape, data } = t.taps[name]!;
          const per = shape[0] * shape[1] * shape[2];
          const out = new Float32Array(idx.length * per);
          idx.forEach((i, k) => out.set(data.subarray(i * per, (i + 1) * per), k * per));
          taps[name] = out;
        }
        yield { index: b, taps, labels: Int32Array.from(idx, (i) => t.labels[i]), ids: idx.map((i) => t.ids[i]), n: idx.length };
      }
    },
  };
}
