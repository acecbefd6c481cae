// Shared plumbing of the end-to-end tests: the repository root (the same from test/ under tsx and
// from dist/test/ after a build), running the real CLI in a child process, and reading run records.
// Not a test file itself.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliCommand } from '../../engine/run/child.js';
import { Store } from '../../engine/store/index.js';

function findRepoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(d, 'experiments', 'quickstart.yaml')) && existsSync(join(d, 'package.json'))) return d;
    const up = dirname(d);
    if (up === d) throw new Error('test/e2e: cannot find the repository root (experiments/quickstart.yaml) above this file');
    d = up;
  }
}

export const REPO = findRepoRoot();
export const EXPERIMENTS = join(REPO, 'experiments');

/** experiments/quickstart.yaml made small (72 images, 2 epochs per training): the tests' and bench:slurm's reduced run. */
export const REDUCED_QUICKSTART = [
  'data.synthetic.per_class=12',
  'data.split.fraction=0.15',
  'pretrain.epochs=2',
  'pretrain.batch_size=16',
  'ca.epochs=2',
  'ca.batch_size=16',
];

/** Overrides as CLI arguments: `-s` before each. */
export function setFlags(overrides: readonly string[]): string[] {
  return overrides.flatMap((s) => ['-s', s]);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs `ca-pipe <args>` (compiled or from source, like the engine's own child processes). */
export function cli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  const { file, args: pre } = cliCommand();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...pre, ...args], {
      cwd: opts.cwd ?? REPO,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`ca-pipe ${args.join(' ')} did not finish within ${opts.timeoutMs} ms\n${stderr.slice(-2000)}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

export interface PlanJson {
  experiment: string;
  variants: Array<{ id: string; alias: string; values: Record<string, unknown> }>;
  instances: Array<{ id: string; stage: string; alias: string; status: string; key: string; reasons: string[] }>;
}

export interface RunRecord {
  runId: string;
  status: string;
  store: string;
  instances: Array<{ id: string; stage: string; kind: string; status: string; key: string }>;
}

export function readRun(runsDir: string, experiment: string): RunRecord {
  return JSON.parse(readFileSync(join(runsDir, experiment, 'latest', 'run.json'), 'utf8')) as RunRecord;
}

/** Committed output directory of a stage instance of a run, looked up in the store by its key. */
export async function outputDir(run: RunRecord, storeDir: string, id: string): Promise<string> {
  const inst = run.instances.find((i) => i.id === id);
  if (!inst) throw new Error(`run ${run.runId} has no instance "${id}" (has: ${run.instances.map((i) => i.id).join(', ')})`);
  const entry = await (await Store.openExisting(storeDir)).lookup(inst.key);
  if (!entry) throw new Error(`${storeDir}: no committed entry for ${id} (key ${inst.key})`);
  return entry.dir;
}
