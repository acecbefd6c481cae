// The Slurm client commands the executor uses (sbatch, squeue, scancel, sinfo, sacct), called
// through execa with argv arrays: user values never pass through a shell.
import { userInfo } from 'node:os';

/** What squeue (or sacct) says about one job or array task, keyed "123" or "123_4". */
export interface JobState {
  id: string;
  state: string;
  reason: string;
  name: string;
}

/** States after which a job will not run again (squeue/sacct spelling; sacct adds "by <uid>"). */
const TERMINAL = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'SPECIAL_EXIT',
  'REVOKED',
]);

export function isTerminal(state: string): boolean {
  return TERMINAL.has(state.split(' ')[0]!);
}

export class SlurmError extends Error {}

async function run(cmd: string, args: string[], what: string): Promise<string> {
  const { execa } = await import('execa');
  let res;
  try {
    res = await execa(cmd, args, { reject: false, stdin: 'ignore', timeout: 60_000 });
  } catch (e) {
    throw new SlurmError(`${what}: cannot run ${cmd} (${(e as Error).message})`);
  }
  if ((res as { code?: string }).code === 'ENOENT' || (res.failed && res.exitCode === undefined)) {
    throw new SlurmError(`${what}: cannot run ${cmd} (${res.shortMessage ?? 'not found'}); is Slurm installed and on PATH?`);
  }
  if (res.exitCode !== 0) {
    const msg = (String(res.stderr).trim() || String(res.stdout).trim() || `exit code ${res.exitCode}`).split('\n').slice(-3).join(' ');
    throw new SlurmError(`${what}: ${cmd} ${args.join(' ')} failed: ${msg}`);
  }
  return String(res.stdout);
}

/** squeue -o lines "%i|%T|%r|%j" (array tasks one per line with -r). */
export function parseQueue(text: string): Map<string, JobState> {
  const out = new Map<string, JobState>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [id, state, reason, ...name] = line.trim().split('|');
    if (!id || !state) continue;
    out.set(id, { id, state, reason: reason ?? '', name: name.join('|') });
  }
  return out;
}

/** Partition names from `sinfo -h -o %P` (the default one carries a trailing "*"). */
export function parsePartitions(text: string): { names: string[]; default?: string } {
  const names: string[] = [];
  let def: string | undefined;
  for (const raw of text.split('\n')) {
    const p = raw.trim();
    if (!p) continue;
    const name = p.replace(/\*$/, '');
    if (p.endsWith('*')) def = name;
    if (!names.includes(name)) names.push(name);
  }
  return { names, default: def };
}

export class SlurmCommands {
  private sacctWorks: boolean | undefined;
  constructor(readonly user = userInfo().username) {}

  /** Submits and returns the job id (`--parsable` prints "id" or "id;cluster"). */
  async sbatch(args: string[]): Promise<string> {
    const out = await run('sbatch', ['--parsable', ...args], 'submitting a job');
    const id = out.trim().split('\n').at(-1)!.split(';')[0]!.trim();
    if (!/^\d+$/.test(id)) throw new SlurmError(`submitting a job: sbatch printed "${out.trim()}" instead of a job id`);
    return id;
  }

  /** Every job of this user that slurmctld still knows, finished ones included (`-t all`). */
  async queue(): Promise<Map<string, JobState>> {
    return parseQueue(await run('squeue', ['-h', '-r', '-t', 'all', '-u', this.user, '-o', '%i|%T|%r|%j'], 'reading the queue'));
  }

  /** scancel exits 0 for unknown or finished jobs, which is what cancelling wants. */
  async cancel(ids: string[]): Promise<void> {
    if (ids.length) await run('scancel', ids, 'cancelling jobs');
  }

  async partitions(): Promise<{ names: string[]; default?: string }> {
    return parsePartitions(await run('sinfo', ['-h', '-o', '%P'], 'listing partitions'));
  }

  /**
   * States from accounting, for jobs squeue no longer lists (after MinJobAge); undefined when
   * sacct is missing or accounting is disabled, which is common on small clusters.
   */
  async accounting(ids: string[]): Promise<Map<string, JobState> | undefined> {
    if (!ids.length || this.sacctWorks === false) return undefined;
    try {
      const text = await run('sacct', ['-n', '-X', '-P', '-j', ids.join(','), '-o', 'JobID,State,Reason,JobName'], 'reading accounting');
      this.sacctWorks = true;
      return parseQueue(text);
    } catch {
      this.sacctWorks = false;
      return undefined;
    }
  }
}
