// In-process executor: calls kind.run(ctx) in this process.
import { arch, cpus, hostname, platform } from 'node:os';
import type { StageContext } from '../contract.js';
import type { Registry } from '../registry.js';
import type { Execution, Executor, JobObserver, JobSpec } from './executor.js';
import { FileLogger, ThrottledProgress } from './progress.js';

let machine: Record<string, unknown> | undefined;

/** Host facts for provenance (computed once: os.cpus() is not free). */
export function machineProvenance(): Record<string, unknown> {
  machine ??= { host: hostname(), platform: platform(), arch: arch(), cpus: cpus().length, node: process.version };
  return { ...machine };
}

/** Runs a job in the current process; shared by the in-process executor and `ca-pipe exec`. */
export async function runJob(
  spec: JobSpec,
  registry: Registry,
  observer: JobObserver,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const kind = registry.get(spec.kind);
  if (!kind) throw new Error(`unknown stage kind "${spec.kind}" (known: ${registry.kinds().join(', ')})`);
  const log = new FileLogger(spec.logFile);
  const progress = new ThrottledProgress((p) => observer.progress(p));
  const provenance: Record<string, unknown> = {};
  const ctx: StageContext = {
    params: spec.params,
    inputs: spec.inputs,
    variantInputs: spec.variantInputs,
    outDir: spec.outDir,
    scratchDir: spec.scratchDir,
    baseDir: spec.baseDir,
    progress,
    log,
    signal,
    stage: { name: spec.stage, variantId: spec.variantId, alias: spec.alias, key: spec.key },
    provenance,
  };
  if (spec.experiment) ctx.experiment = spec.experiment;
  const part = spec.part;
  if (part && !kind.split) throw new Error(`stage kind "${spec.kind}" cannot run a part of its shards (it declares no split)`);
  log.info(`stage ${spec.instanceId} (${spec.kind}) key ${spec.key}${part ? `, shard part ${part.index + 1}/${part.count}` : ''}`);
  try {
    if (part) await kind.split!.runPart(ctx, part);
    else await kind.run(ctx);
    signal.throwIfAborted();
    log.info('finished');
  } catch (e) {
    log.error(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    throw e;
  } finally {
    progress.flush();
    await log.close();
  }
  return { ...machineProvenance(), kindVersion: kind.version, ...provenance };
}

export class InProcessExecutor implements Executor {
  readonly name = 'in-process';
  constructor(private readonly registry: Registry) {}

  submit(job: JobSpec, observer: JobObserver): Execution {
    const ac = new AbortController();
    const done = runJob(job, this.registry, observer, ac.signal).then((provenance) => ({
      provenance: { executor: this.name, ...provenance },
    }));
    return { done, cancel: () => ac.abort(new Error('cancelled')) };
  }
}
