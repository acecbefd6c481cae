// Shared plumbing of the Slurm tests: whether a real Slurm is here (skip with a reason when sbatch
// is absent, unless CA_PIPE_REQUIRE_SLURM=1 makes that a failure), the real CLI, and reading the
// run's journal. Not a test file itself.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { startCli, type CliResult } from '../engine/helpers.js';
import type { JournalLine } from '../../engine/run/slurm/index.js';

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const HAVE_SLURM = onPath('sbatch');
const REQUIRED = process.env.CA_PIPE_REQUIRE_SLURM === '1';

/**
 * Call first in every Slurm test: returns false (test skipped, reason printed) when there is no
 * sbatch, and throws instead when CA_PIPE_REQUIRE_SLURM=1.
 */
export function needSlurm(t: TestContext): boolean {
  if (HAVE_SLURM) return true;
  const why = 'sbatch is not on PATH (start a one-node Slurm with `sudo bash scripts/slurm-ci-up.sh`)';
  if (REQUIRED) throw new Error(`CA_PIPE_REQUIRE_SLURM=1 but ${why}`);
  console.log(`# skipped: ${why}`);
  t.skip(why);
  return false;
}

/** Fast polling: the tests' jobs last a second or two. */
export const SLURM_ENV = { CA_PIPE_SLURM_POLL_MS: '200' };

export function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  return startCli(args, cwd, { ...SLURM_ENV, ...env });
}

export async function finished(p: Promise<CliResult>, what: string, ms = 90_000): Promise<CliResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One line of a run's slurm/jobs.jsonl, as the executor writes it. */
export type Journal = JournalLine;

/** Submissions (lines with a job id) of a run dir's slurm/jobs.jsonl. */
export function submissions(runDir: string): Journal[] {
  let text = '';
  try {
    text = readFileSync(join(runDir, 'slurm', 'jobs.jsonl'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Journal)
    .filter((l) => l.job);
}

/** The Slurm id tracking an instance in a submission ("12" or "12_3"). */
export function jobOf(s: Journal, instance: string): string | undefined {
  const idx = Object.entries(s.tasks).find(([, id]) => id === instance)?.[0];
  if (idx === undefined) return undefined;
  return s.output?.includes('%a') ? `${s.job}_${idx}` : s.job;
}

/** squeue's state of one job or array task ("" when squeue does not list it). */
export function slurmState(job: string): string {
  try {
    return (
      execFileSync('squeue', ['-h', '-r', '-t', 'all', '-j', job, '-o', '%T'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n')[0] ?? ''
    );
  } catch {
    return '';
  }
}

/** Polls `probe` every 100 ms until it returns a value (not undefined/false). */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The newest run dir of an experiment under runsDir (via the `latest` link). */
export function latestDir(runsDir: string, experiment: string): string {
  return join(runsDir, experiment, 'latest');
}

export function readJson<T = any>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}
