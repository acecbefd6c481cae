// Assembling one batch: shared by the in-process path and the worker threads.
import { loadImageInto, type TransformSpec } from './image-tensor.js';
import type { Layout } from './transforms.js';

export interface LoaderItem {
  id: number;
  /** Absolute path of the image file. */
  path: string;
  label: number;
}

export interface SkippedItem {
  id: number;
  path: string;
  error: string;
}

export interface Batch {
  /** n images, normalised float32, in `layout`; length n·3·size². */
  x: Float32Array;
  labels: Int32Array;
  ids: number[];
  /** Images in the batch (smaller than batchSize for the last batch or after skips). */
  n: number;
  /** Items of this batch dropped under on_error: skip. */
  skipped: SkippedItem[];
}

export interface BatchJob {
  items: LoaderItem[];
  spec: TransformSpec;
  layout: Layout;
  seed: number;
  epoch: number;
  onError: 'skip' | 'fail';
  /** Images decoded concurrently within the batch (sharp work runs on libuv threads). */
  inFlight: number;
}

export async function assembleBatch(job: BatchJob): Promise<Batch> {
  const { items, spec, layout } = job;
  const per = 3 * spec.size * spec.size;
  const x = new Float32Array(items.length * per);
  const ok = new Array<boolean>(items.length).fill(false);
  const errors = new Map<number, string>();
  let next = 0;
  const run = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      const it = items[i]!;
      try {
        await loadImageInto(it.path, spec, { seed: job.seed, epoch: job.epoch, id: it.id }, x, i, layout);
        ok[i] = true;
      } catch (e) {
        const msg = (e as Error).message;
        if (job.onError === 'fail') {
          next = items.length;
          throw new Error(`item ${it.id} (${it.path}): ${msg.includes(it.path) ? msg : `${it.path}: ${msg}`}`);
        }
        errors.set(i, msg);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, job.inFlight) }, run));
  if (errors.size === 0) {
    return { x, labels: Int32Array.from(items, (it) => it.label), ids: items.map((it) => it.id), n: items.length, skipped: [] };
  }
  // Compact the surviving images to the front so x holds exactly n images.
  const keep = items.map((_, i) => i).filter((i) => ok[i]);
  const xc = new Float32Array(keep.length * per);
  keep.forEach((src, dst) => xc.set(x.subarray(src * per, (src + 1) * per), dst * per));
  return {
    x: xc,
    labels: Int32Array.from(keep, (i) => items[i]!.label),
    ids: keep.map((i) => items[i]!.id),
    n: keep.length,
    skipped: [...errors].map(([i, error]) => ({ id: items[i]!.id, path: items[i]!.path, error })),
  };
}
