// Batched, prefetching image loader over a pool of worker threads. Batches come back in order;
// the epoch's order is Rng(seed, epoch)'s permutation and each item's augmentation is
// Rng(seed, epoch, id)'s, so a (seed, epoch) pair reproduces an epoch exactly whatever the
// number of workers.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { loadSharp } from '../io/image.js';
import { assembleBatch, type Batch, type BatchJob, type LoaderItem, type SkippedItem } from './batch.js';
import type { TransformSpec } from './image-tensor.js';
import type { WorkerReply, WorkerRequest } from './loader-worker.js';
import { Rng } from './rng.js';
import type { Layout } from './transforms.js';

export type { Batch, LoaderItem, SkippedItem } from './batch.js';

export interface LoaderOptions extends Omit<TransformSpec, 'transform'> {
  items: LoaderItem[];
  batchSize: number;
  transform: TransformSpec['transform'];
  seed?: number;
  epoch?: number;
  layout?: Layout;
  /** Default: true for the train transform, false for eval. */
  shuffle?: boolean;
  /** Drop the last incomplete batch (the original's drop_last=True for training). */
  dropLast?: boolean;
  /** Worker threads (default: number of cores); 0 decodes on the calling thread. */
  workers?: number;
  /** Batches in flight ahead of the consumer (default 2 per worker, at least 2). */
  prefetch?: number;
  /** Images decoded concurrently inside one batch job (default 2). */
  inFlight?: number;
  onError?: 'skip' | 'fail';
  /** Skip the first k batches of the epoch (resume inside an epoch). */
  startBatch?: number;
  /**
   * A pool from createLoaderPool() to reuse across epochs (saves starting threads and loading
   * sharp per epoch); the loader leaves it open. Without it, `workers` threads are started
   * for the epoch and stopped at its end.
   */
  pool?: LoaderPool;
}

export interface Loader extends AsyncIterable<Batch> {
  /** Item indices (into `items`) in epoch order. */
  readonly order: readonly number[];
  readonly numBatches: number;
  /** Every item skipped so far (on_error: skip), with its path and the decode error. */
  readonly skipped: SkippedItem[];
}

/** The epoch's item order: a seeded permutation of [0, n), or identity without shuffle. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): number[] {
  return shuffle ? new Rng(seed, epoch, 0x0e0c).permutation(n) : Array.from({ length: n }, (_, i) => i);
}

function spawnWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./loader-worker.js', import.meta.url));
  // Running from sources under tsx (tests, development): loader hooks are per thread, so the
  // worker registers tsx itself before importing the TypeScript entry point.
  const entry = new URL('./loader-worker.ts', import.meta.url).href;
  // Resolved here: inside an eval'd worker a bare specifier resolves against the process cwd.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true });
}

export function createLoader(opts: LoaderOptions): Loader {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize <= 0)
    throw new Error(`loader: batchSize must be a positive integer, got ${opts.batchSize}`);
  if (!Number.isInteger(opts.size) || opts.size <= 0) throw new Error(`loader: size must be a positive integer, got ${opts.size}`);
  const seed = opts.seed ?? 0;
  const epoch = opts.epoch ?? 0;
  const layout = opts.layout ?? 'NCHW';
  const order = epochOrder(opts.items.length, seed, epoch, opts.shuffle ?? opts.transform === 'train');
  const full = Math.floor(order.length / opts.batchSize);
  const numBatches = opts.dropLast || order.length % opts.batchSize === 0 ? full : full + 1;
  const nWorkers = opts.pool ? opts.pool.size : Math.max(0, opts.workers ?? availableParallelism());
  const prefetch = Math.max(1, opts.prefetch ?? Math.max(2, 2 * nWorkers));
  const spec: TransformSpec = {
    transform: opts.transform,
    size: opts.size,
    ...(opts.resize !== undefined && { resize: opts.resize }),
    ...(opts.scale !== undefined && { scale: opts.scale }),
    ...(opts.ratio !== undefined && { ratio: opts.ratio }),
    ...(opts.hflip !== undefined && { hflip: opts.hflip }),
    ...(opts.preprocessing !== undefined && { preprocessing: opts.preprocessing }),
  };
  const skipped: SkippedItem[] = [];
  const jobFor = (b: number): BatchJob => ({
    items: order.slice(b * opts.batchSize, (b + 1) * opts.batchSize).map((i) => opts.items[i]!),
    spec,
    layout,
    seed,
    epoch,
    onError: opts.onError ?? 'fail',
    inFlight: opts.inFlight ?? 2,
  });

  async function* iterate(): AsyncGenerator<Batch> {
    const first = opts.startBatch ?? 0;
    if (nWorkers === 0) {
      for (let b = first; b < numBatches; b++) {
        const batch = await assembleBatch(jobFor(b));
        skipped.push(...batch.skipped);
        yield batch;
      }
      return;
    }
    const owned = !opts.pool;
    const pool = opts.pool ?? (await createLoaderPool(nWorkers));
    try {
      const pending = new Map<number, Promise<Batch>>();
      let nextToSend = first;
      const fill = (): void => {
        while (nextToSend < numBatches && pending.size < prefetch) {
          const p = pool.run(jobFor(nextToSend));
          p.catch(() => undefined); // observed when awaited below; avoids unhandled rejections
          pending.set(nextToSend, p);
          nextToSend++;
        }
      };
      for (let b = first; b < numBatches; b++) {
        fill();
        const batch = await pending.get(b)!;
        pending.delete(b);
        fill();
        skipped.push(...batch.skipped);
        yield batch;
      }
    } finally {
      if (owned) await pool.close();
    }
  }

  return {
    order,
    numBatches,
    skipped,
    [Symbol.asyncIterator]: iterate,
  };
}

export interface LoaderPool {
  readonly size: number;
  run(job: BatchJob): Promise<Batch>;
  close(): Promise<void>;
}

/** Starts `n` loader threads (default: one per core), reusable by several loaders in turn. */
export async function createLoaderPool(n = availableParallelism()): Promise<LoaderPool> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`loader pool: need at least one worker, got ${n}`);
  // sharp must be loaded by the main thread before any worker loads it (libvips is shared).
  await loadSharp();
  return new WorkerPool(n);
}

/** Each job goes to the least-loaded worker. */
class WorkerPool implements LoaderPool {
  private workers: { w: Worker; load: number }[] = [];
  private waiting = new Map<number, { resolve: (b: Batch) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private dead: Error | null = null;

  readonly size: number;

  constructor(n: number) {
    this.size = n;
    for (let i = 0; i < n; i++) {
      const w = spawnWorker();
      const slot = { w, load: 0 };
      w.on('message', (r: WorkerReply) => {
        const h = this.waiting.get(r.seq);
        if (!h) return;
        this.waiting.delete(r.seq);
        slot.load--;
        if (r.ok) h.resolve(r.batch);
        else h.reject(new Error(r.error));
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`loader worker exited with code ${code}`));
      });
      this.workers.push(slot);
    }
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const h of this.waiting.values()) h.reject(e);
    this.waiting.clear();
  }

  run(job: BatchJob): Promise<Batch> {
    if (this.dead) return Promise.reject(this.dead);
    const slot = this.workers.reduce((a, b) => (b.load < a.load ? b : a));
    const seq = this.seq++;
    slot.load++;
    return new Promise<Batch>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      const req: WorkerRequest = { seq, job };
      slot.w.postMessage(req);
    });
  }

  async close(): Promise<void> {
    this.dead ??= new Error('loader closed');
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}
