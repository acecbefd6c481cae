// Shared CLI plumbing: option parsing helpers, experiment loading, error → exit code mapping.
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { Registry } from '../engine/registry.js';
import type { Experiment } from '../engine/types.js';

/** An error whose message is meant for the user as is, with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface StoreOpts {
  store?: string;
  runs?: string;
}

export function minutes(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected minutes >= 0, got "${v}"`);
  return n;
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${v}"`);
  return n;
}

export function runsDirOf(opts: StoreOpts): string {
  return resolve(opts.runs ?? 'runs');
}

/** --store, else the experiment's `store:` setting (relative to its file), else <runs>/.store. */
export function storeDirOf(opts: StoreOpts, exp?: Experiment): string {
  if (opts.store) return resolve(opts.store);
  const s = exp?.settings.store;
  if (typeof s === 'string' && s) return resolve(exp!.baseDir, s);
  return join(runsDirOf(opts), '.store');
}

/** A word as a POSIX shell reads it back (for commands printed to copy). */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * Creates the runs directory before any work, so that a --runs naming a file or a place we cannot
 * write is a usage error (exit 2) naming the path, not a raw mkdir error halfway through.
 */
export async function prepareRunsDir(runsDir: string): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  try {
    await mkdir(runsDir, { recursive: true });
  } catch (e) {
    const x = e as NodeJS.ErrnoException;
    const { blockingFile } = await import('../engine/store/store.js');
    const cause =
      x.code === 'ENOTDIR' || x.code === 'EEXIST'
        ? `${(await blockingFile(runsDir)) ?? runsDir} is a file, not a directory`
        : x.code === 'ENOENT'
          ? `a part of the path does not exist or cannot be created`
          : x.message;
    throw new CliError(
      `cannot write run records under ${runsDir}: ${cause} (${x.code ?? 'error'}): choose a writable directory with --runs DIR`,
      2,
    );
  }
}

export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--store <dir>', 'content-addressed store (default: runs/.store)')
    .option('--runs <dir>', 'directory of run records (default: ./runs)');
}

export async function loadRegistry(): Promise<Registry> {
  const [{ createRegistry }, { STAGE_KINDS }] = await Promise.all([import('../engine/registry.js'), import('../stages/index.js')]);
  return createRegistry(STAGE_KINDS);
}

export async function loadExp(file: string, overrides: string[] | undefined, registry: Registry): Promise<Experiment> {
  const { loadExperiment } = await import('../engine/config/index.js');
  return loadExperiment(resolve(file), { overrides: overrides ?? [], registry, env: process.env, checkPaths: true });
}

function isConfigError(e: unknown): e is Error & { format(): string } {
  return e instanceof Error && e.name === 'ConfigError' && typeof (e as { format?: unknown }).format === 'function';
}

/** Wraps an action: config errors exit 2 with their located report, user errors with their code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (isConfigError(e)) {
        process.stderr.write(e.format().trimEnd() + '\n');
        process.exitCode = 2;
      } else if (e instanceof CliError) {
        process.stderr.write(`ca-pipe: ${e.message}\n`);
        process.exitCode = e.exitCode;
      } else {
        const { describeSystemError } = await import('../engine/run/system-errors.js');
        const located = process.env.CA_PIPE_DEBUG ? undefined : describeSystemError(e);
        process.stderr.write(
          `ca-pipe: ${located ?? (e instanceof Error ? (process.env.CA_PIPE_DEBUG ? e.stack : e.message) : String(e))}\n`,
        );
        process.exitCode = 1;
      }
    }
  };
}
