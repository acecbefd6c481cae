// Child-process executor: `ca-pipe exec <key> --store DIR` runs the instance whose JobSpec was
// written to the store. The child reports progress as JSON lines on stdout; the parent commits.
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ShardPart } from '../contract.js';
import type { Registry } from '../registry.js';
import type { Store } from '../store/index.js';
import type { Execution, Executor, JobObserver, JobResult, JobSpec, ProgressUpdate } from './executor.js';
import { runJob } from './inprocess.js';

const MARK = '{"ca_pipe":';

/** How to start the CLI again: node plus the compiled main.js, or tsx plus main.ts from source. */
export function cliCommand(): { file: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const main = fileURLToPath(new URL(`../../cli/main.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  // Resolved here, not by the child: `--import tsx` would resolve against the child's cwd.
  return { file: process.execPath, args: fromSource ? ['--import', import.meta.resolve('tsx'), main] : [main] };
}

export class ChildProcessExecutor implements Executor {
  readonly name = 'child-process';
  constructor(
    private readonly store: Store,
    private readonly cli = cliCommand(),
  ) {}

  submit(job: JobSpec, observer: JobObserver): Execution {
    let cancelled = false;
    let cancel = (): void => {
      cancelled = true;
    };
    const done = (async (): Promise<JobResult> => {
      // The parts of one instance share its key: each gets its own spec file.
      await writeFile(specFileOf(this.store, job.key, job.part), JSON.stringify(job, null, 2) + '\n');
      const { execa } = await import('execa');
      const part = job.part ? ['--part', `${job.part.index + 1}/${job.part.count}`] : [];
      // The child's stdin is a pipe the parent never writes: it reaches end-of-file when the
      // parent dies (even by SIGKILL), and --die-with-parent makes the child stop then.
      const child = execa(this.cli.file, [...this.cli.args, 'exec', job.key, ...part, '--store', this.store.root, '--die-with-parent'], {
        reject: false,
        stdin: 'pipe',
        buffer: false,
        forceKillAfterDelay: 5000,
      });
      cancel = () => void child.kill('SIGTERM');
      if (cancelled) cancel();
      // The child logs to the same file itself (O_APPEND); this stream adds its stray output.
      const log = createWriteStream(job.logFile, { flags: 'a' });
      let provenance: Record<string, unknown> = {};
      let stageError: string | undefined;
      const stderrTail: string[] = [];
      child.stdout?.setEncoding('utf8');
      let pending = '';
      child.stdout?.on('data', (chunk: string) => {
        pending += chunk;
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.startsWith(MARK)) {
            try {
              const msg = JSON.parse(line) as {
                ca_pipe: string;
                progress?: ProgressUpdate;
                provenance?: Record<string, unknown>;
                message?: string;
              };
              if (msg.ca_pipe === 'error' && typeof msg.message === 'string') stageError = msg.message;
              if (msg.ca_pipe === 'progress' && msg.progress) observer.progress(msg.progress);
              if (msg.ca_pipe === 'result' && msg.provenance) provenance = msg.provenance;
              continue;
            } catch {
              /* not ours: falls through to the log */
            }
          }
          log.write(line + '\n');
        }
      });
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        log.write(chunk);
        stderrTail.push(...chunk.split('\n').filter(Boolean));
        stderrTail.splice(0, Math.max(0, stderrTail.length - 10));
      });
      const res = await child;
      await new Promise((r) => log.end(r));
      if (stageError !== undefined) throw new Error(stageError);
      if (res.exitCode !== 0) {
        const why = stderrTail.at(-1) ?? `exit code ${res.exitCode ?? res.signal}`;
        throw new Error(`child process failed: ${why}`);
      }
      return { provenance: { executor: this.name, ...provenance } };
    })();
    return { done, cancel: () => cancel() };
  }
}

/** specs/<key>.json, or specs/<key>.part-<i>-of-<n>.json for a part (gc reads the key before the first dot). */
export function specFileOf(store: Store, key: string, part?: ShardPart): string {
  return part ? store.specFile(key).replace(/\.json$/, `.part-${part.index + 1}-of-${part.count}.json`) : store.specFile(key);
}

/** `--part i/N` (1-based, as the user reads it) → the 0-based part. */
export function parsePartArg(text: string): ShardPart {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = m ? Number(m[1]) - 1 : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!(count >= 1 && index >= 0 && index < count)) throw new Error(`--part ${text}: expected i/N with 1 <= i <= N (e.g. 2/4)`);
  return { index, count };
}

/** Body of `ca-pipe exec`: runs the JobSpec stored for `key` (or for one part of it), reporting on stdout. */
export async function execStoredJob(store: Store, key: string, registry: Registry, signal: AbortSignal, part?: ShardPart): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const file = specFileOf(store, key, part);
  let spec: JobSpec;
  try {
    spec = JSON.parse(await readFile(file, 'utf8')) as JobSpec;
  } catch (e) {
    throw new Error(`${file}: cannot read the job spec (${(e as Error).message})`);
  }
  const send = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');
  try {
    const provenance = await runJob(spec, registry, { progress: (p) => send({ ca_pipe: 'progress', progress: p }) }, signal);
    send({ ca_pipe: 'result', provenance });
  } catch (e) {
    // The parent reports this message as the stage's error (stderr holds only the CLI's summary).
    send({ ca_pipe: 'error', message: e instanceof Error ? e.message : String(e) });
    throw e;
  }
}
