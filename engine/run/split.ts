// One instance split over its shards on local workers: N part jobs side by side (each computes a
// contiguous range of the shards into the shared scratch directory), then the merge job, which is
// the stage's ordinary run: it finds every shard finished and writes the outputs a single run
// writes. The parts go through the executor like any job, so they are separate processes only
// with the child-process executor (in one process they would just take turns).
import type { Execution, Executor, JobObserver, JobResult, JobSpec } from './executor.js';

/** Whether `executor` runs each job in its own process, so parts of one instance really overlap. */
export function runsPartsApart(executor: Executor): boolean {
  return executor.name === 'child-process';
}

export function submitSplit(executor: Executor, job: JobSpec, shards: number, observer: JobObserver): Execution {
  let cancelled = false;
  const running = new Set<Execution>();
  const start = (spec: JobSpec, obs: JobObserver): Execution => {
    const e = executor.submit(spec, obs);
    running.add(e);
    if (cancelled) e.cancel();
    void e.done.catch(() => undefined).finally(() => running.delete(e));
    return e;
  };
  const done = (async (): Promise<JobResult> => {
    const t0 = Date.now();
    const doneBy = new Array<number>(shards).fill(0);
    let total: number | undefined;
    let unit: string | undefined;
    const parts = Array.from({ length: shards }, (_, index) =>
      start(
        { ...job, part: { index, count: shards } },
        {
          progress: (p) => {
            doneBy[index] = p.done;
            total = p.total ?? total;
            unit = p.unit ?? unit;
            const sum = doneBy.reduce((a, b) => a + b, 0);
            observer.progress({ done: sum, total, unit, message: `${shards} workers` });
          },
        },
      ),
    );
    // Every part runs to its end even when one fails: a shard half computed is wasted work.
    const settled = await Promise.allSettled(parts.map((p) => p.done));
    const failed = settled.findIndex((s) => s.status === 'rejected');
    if (failed >= 0) {
      const why = (settled[failed] as PromiseRejectedResult).reason as unknown;
      throw new Error(`shard part ${failed + 1}/${shards} failed: ${why instanceof Error ? why.message : String(why)}`);
    }
    const partsSeconds = (Date.now() - t0) / 1000;
    if (cancelled) throw new Error('cancelled');
    const merged = await start(job, observer).done;
    return {
      provenance: {
        ...merged.provenance,
        split: { shards, parts_seconds: partsSeconds, merge_seconds: (Date.now() - t0) / 1000 - partsSeconds },
      },
    };
  })();
  return {
    done,
    cancel: () => {
      cancelled = true;
      for (const e of running) e.cancel();
    },
  };
}
