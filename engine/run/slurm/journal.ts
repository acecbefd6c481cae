// runs/<exp>/<run>/slurm/jobs.jsonl: every submission of a Slurm run, an intent line before sbatch
// and the job id after, so a restarted driver (or `ca-pipe cancel`) finds every job.
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { now } from '../events.js';

/** One line of runs/<exp>/<run>/slurm/jobs.jsonl. */
export interface JournalLine {
  t: string;
  seq: number;
  name: string;
  /** Array task index -> instance id. */
  tasks: Record<string, string>;
  /** Absent on the intent line written just before sbatch. */
  job?: string;
  deps?: string[];
  /** Upstream array whose task i task i waits for (aftercorr). */
  corr?: string;
  /** Slurm output file pattern (%A/%a/%j as given to --output). */
  output?: string;
}

export function jobsJournal(runDir: string): string {
  return join(runDir, 'slurm', 'jobs.jsonl');
}

export function cancelMarker(runDir: string): string {
  return join(runDir, 'slurm', 'cancel-requested');
}

export async function readJournal(runDir: string): Promise<JournalLine[]> {
  const text = await readFile(jobsJournal(runDir), 'utf8').catch(() => '');
  const out: JournalLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as JournalLine);
    } catch {
      /* torn last line of a killed driver */
    }
  }
  return out;
}

export async function appendJournal(runDir: string, l: Omit<JournalLine, 't'>): Promise<void> {
  await appendFile(jobsJournal(runDir), JSON.stringify({ t: now(), ...l }) + '\n');
}

/** Every job id a run submitted. */
export async function runJobIds(runDir: string): Promise<string[]> {
  return [...new Set((await readJournal(runDir)).flatMap((l) => (l.job ? [l.job] : [])))];
}
