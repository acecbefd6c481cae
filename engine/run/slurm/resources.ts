// Executor settings and per-stage resources from the experiment file, checked before anything is
// submitted: every problem becomes a located ConfigError (file:line:column plus the field path).
import { ConfigError, configErrorAt, didYouMean, type ConfigIssue } from '../../config/index.js';
import type { Experiment } from '../../types.js';

export interface Resources {
  partition?: string;
  time?: string;
  cpus?: number;
  mem?: string;
  gpus?: string;
  /** Extra sbatch arguments, passed as they are. */
  sbatch?: string[];
}

export type ExecutorName = 'in-process' | 'child-process' | 'slurm';

export interface ExecutorSettings {
  type: ExecutorName;
  retries: number;
  pollMs: number;
  resources: Resources;
}

type FieldPath = (string | number)[];

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `executor:` of the experiment (already schema-checked), with defaults. */
export function executorSettings(exp: Experiment): ExecutorSettings {
  const raw = exp.settings.executor;
  const out: ExecutorSettings = { type: 'in-process', retries: 1, pollMs: 1000, resources: {} };
  if (typeof raw === 'string') out.type = raw as ExecutorName;
  else if (isMap(raw)) {
    out.type = raw.type as ExecutorName;
    if (typeof raw.retries === 'number') out.retries = raw.retries;
    if (typeof raw.poll_seconds === 'number') out.pollMs = Math.round(raw.poll_seconds * 1000);
    if (isMap(raw.resources)) out.resources = normalise(raw.resources);
  }
  return out;
}

function normalise(r: Record<string, unknown>): Resources {
  const out: Resources = {};
  if (typeof r.partition === 'string') out.partition = r.partition;
  if (typeof r.time === 'string' || typeof r.time === 'number') out.time = String(r.time);
  if (typeof r.cpus === 'number') out.cpus = r.cpus;
  if (typeof r.mem === 'string' || typeof r.mem === 'number') out.mem = String(r.mem);
  if (typeof r.gpus === 'string' || typeof r.gpus === 'number') out.gpus = String(r.gpus);
  if (Array.isArray(r.sbatch)) out.sbatch = r.sbatch.map(String);
  return out;
}

/** A stage's resources: the executor's defaults overridden key by key by the stage's own. */
export function stageResources(exp: Experiment, stage: string, defaults: Resources): Resources {
  const stages = exp.resolved.stages;
  const own =
    isMap(stages) && isMap(stages[stage]) && isMap((stages[stage] as Record<string, unknown>).resources)
      ? normalise((stages[stage] as Record<string, unknown>).resources as Record<string, unknown>)
      : {};
  return { ...defaults, ...own };
}

// Slurm's time formats: "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
// "days-hours:minutes" and "days-hours:minutes:seconds", plus UNLIMITED/INFINITE.
const TIME = /^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|UNLIMITED|INFINITE)$/i;
const MEM = /^\d+(?:\.\d+)?[KMGT]?B?$/i;
const GPUS = /^(?:[A-Za-z0-9_.-]+:)?\d+$/;

export function timeProblem(v: string): string | undefined {
  if (!TIME.test(v))
    return `malformed time limit "${v}": use minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. "90", "1:30:00", "2-00:00:00")`;
  if (/^(UNLIMITED|INFINITE)$/i.test(v)) return undefined;
  // The leading field is unbounded; the ones after it are hours, minutes or seconds.
  const dash = v.indexOf('-');
  const rest = (dash >= 0 ? v.slice(dash + 1) : v).split(':').map(Number);
  const names = dash >= 0 ? ['hours', 'minutes', 'seconds'] : rest.length === 3 ? ['hours', 'minutes', 'seconds'] : ['minutes', 'seconds'];
  const first = dash >= 0 ? 0 : 1;
  for (let i = first; i < rest.length; i++) {
    const limit = names[i] === 'hours' ? 24 : 60;
    if (rest[i]! >= limit) return `malformed time limit "${v}": ${names[i]} ${rest[i]} out of range (must be below ${limit})`;
  }
  return undefined;
}

/** Where a resource key came from: the stage's own `resources`, else the executor's. */
function sourceOf(exp: Experiment, stage: string, key: string): FieldPath {
  const stages = exp.resolved.stages as Record<string, Record<string, unknown>>;
  const own = stages?.[stage]?.resources as Record<string, unknown> | undefined;
  if (own && key in own) return ['stages', stage, 'resources', key];
  return ['executor', 'resources', key];
}

/**
 * Checks every stage's resources. `partitions` is what sinfo lists (undefined: not checked).
 * Throws one ConfigError holding every problem.
 */
export function checkResources(
  exp: Experiment,
  stages: string[],
  defaults: Resources,
  partitions: string[] | undefined,
): Map<string, Resources> {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  const add = (p: FieldPath, msg: string): void => {
    const id = p.join('.');
    if (seen.has(id)) return;
    seen.add(id);
    issues.push(...configErrorAt(exp, p, msg).issues);
  };
  const out = new Map<string, Resources>();
  for (const stage of stages) {
    const r = stageResources(exp, stage, defaults);
    out.set(stage, r);
    if (r.time !== undefined) {
      const why = timeProblem(r.time);
      if (why) add(sourceOf(exp, stage, 'time'), why);
    }
    if (r.mem !== undefined && !MEM.test(r.mem))
      add(sourceOf(exp, stage, 'mem'), `malformed memory "${r.mem}": use megabytes or a number with K, M, G or T (e.g. 4G)`);
    if (r.gpus !== undefined && !GPUS.test(r.gpus))
      add(sourceOf(exp, stage, 'gpus'), `malformed gpus "${r.gpus}": use a count or type:count (e.g. 2, a100:1)`);
    if (r.partition !== undefined && partitions && !partitions.includes(r.partition)) {
      add(
        sourceOf(exp, stage, 'partition'),
        `unknown partition "${r.partition}"${didYouMean(r.partition, partitions)} (sinfo lists: ${partitions.join(', ') || 'none'})`,
      );
    }
    for (const [i, a] of (r.sbatch ?? []).entries()) {
      if (!a.startsWith('-'))
        add(
          [...sourceOf(exp, stage, 'sbatch'), i],
          `extra sbatch argument "${a}" is not an option (each item is one argument such as "--qos=high")`,
        );
    }
  }
  if (issues.length) throw new ConfigError(issues);
  return out;
}

/** sbatch options for a stage's resources. */
export function resourceArgs(r: Resources): string[] {
  const a: string[] = [];
  if (r.partition) a.push(`--partition=${r.partition}`);
  if (r.time) a.push(`--time=${r.time}`);
  if (r.cpus) a.push(`--cpus-per-task=${r.cpus}`);
  if (r.mem) a.push(`--mem=${r.mem}`);
  if (r.gpus) a.push(`--gpus=${r.gpus}`);
  a.push(...(r.sbatch ?? []));
  return a;
}
