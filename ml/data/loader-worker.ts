// Worker-thread side of the loader pool: receives batch jobs, returns batches (buffers transferred).
import { parentPort } from 'node:worker_threads';
import { loadSharp } from '../io/image.js';
import { assembleBatch, type BatchJob } from './batch.js';

export interface WorkerRequest {
  seq: number;
  job: BatchJob;
}

export type WorkerReply = { seq: number; ok: true; batch: import('./batch.js').Batch } | { seq: number; ok: false; error: string };

if (!parentPort) throw new Error('loader-worker must run in a worker thread');
const port = parentPort;

const sharp = await loadSharp();
// One libvips thread per operation: parallelism comes from the pool, not from inside an image.
sharp.concurrency(1);
sharp.cache(false);

// Jobs run one after another, so the oldest batch (the one the consumer waits for) finishes first.
let queue: Promise<void> = Promise.resolve();

port.on('message', (req: WorkerRequest) => {
  queue = queue.then(() => handle(req));
});

function handle(req: WorkerRequest): Promise<void> {
  return assembleBatch(req.job).then(
    (batch) => {
      const reply: WorkerReply = { seq: req.seq, ok: true, batch };
      port.postMessage(reply, [batch.x.buffer as ArrayBuffer, batch.labels.buffer as ArrayBuffer]);
    },
    (e: unknown) => {
      const reply: WorkerReply = { seq: req.seq, ok: false, error: (e as Error).message };
      port.postMessage(reply);
    },
  );
}
