// Read-only commands: `plan`, `why`, `status`, `ls`.
import { stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { CliError, action, addStoreOptions, collect, loadExp, loadRegistry, runsDirOf, storeDirOf, type StoreOpts } from './common.js';

interface PlanOpts extends StoreOpts {
  set: string[];
  json?: boolean;
  rate?: string;
}

async function analyse(file: string, opts: PlanOpts) {
  const registry = await loadRegistry();
  const exp = await loadExp(file, opts.set, registry);
  const [{ buildPlan }, { Store }, { analysePlan }] = await Promise.all([
    import('../engine/plan/index.js'),
    import('../engine/store/index.js'),
    import('../engine/run/analyse.js'),
  ]);
  const plan = await buildPlan(exp, registry);
  const store = Store.at(storeDirOf(opts, exp));
  return { exp, plan, registry, rows: await analysePlan(plan, store, runsDirOf(opts)) };
}

type Rate = import('../engine/plan/cost.js').Rate;

/**
 * Forwards per second for the estimates: `--rate`, else the fastest evaluate stage an earlier run
 * of this experiment measured (its forward passes over its scoring time), else none.
 */
async function planRate(opts: PlanOpts, experiment: string): Promise<Rate | undefined> {
  if (opts.rate !== undefined) {
    const v = Number(opts.rate);
    if (!(v > 0) || !Number.isFinite(v))
      throw new CliError(`plan: --rate ${opts.rate}: expected a positive number of forwards per second`, 2);
    return { forwardsPerSecond: v, source: '--rate' };
  }
  const { previousRecords } = await import('../engine/run/analyse.js');
  let best: Rate | undefined;
  for (const i of (await previousRecords(runsDirOf(opts), experiment)).values()) {
    const ev = i.provenance?.evaluate as { seconds?: number; forward_images?: number } | undefined;
    if (i.status !== 'executed' || !ev?.seconds || !ev.forward_images) continue;
    const rate = ev.forward_images / ev.seconds;
    if (!best || rate > best.forwardsPerSecond)
      best = {
        forwardsPerSecond: rate,
        source: `measured by ${i.id} in run ${i.runId} (${ev.forward_images} forwards in ${ev.seconds.toFixed(1)} s)`,
      };
  }
  return best;
}

function withSet(cmd: Command): Command {
  return addStoreOptions(
    cmd.option('-s, --set <path=value>', 'override a value (repeatable)', collect, []).option('--json', 'machine-readable output'),
  );
}

export function planCommand(): Command {
  return withSet(
    new Command('plan')
      .description(
        'show what a run would execute, what is cached, and why; per saliency/evaluate stage the forward passes it needs and a time estimate',
      )
      .argument('<experiment>', 'experiment YAML file')
      .option('--rate <forwards/s>', 'forward passes per second for the time estimates (default: the rate an earlier run measured)'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ ca-pipe plan experiments/quickstart.yaml -s train.lr=0.01\n  $ ca-pipe plan experiments/resnet50-imagenet.yaml --rate 25',
    )
    .action(
      action(async (file: string, opts: PlanOpts) => {
        const { exp, plan, rows, registry } = await analyse(file, opts);
        const { planCosts, estimateSeconds, formatCost, formatEstimate } = await import('../engine/plan/cost.js');
        const [costs, rate] = await Promise.all([planCosts(plan, registry), planRate(opts, exp.name)]);
        const costOf = (id: string) => {
          const c = costs.get(id);
          const seconds = c && rate ? estimateSeconds(c, rate) : undefined;
          return c && { ...c, facts: undefined, ...(seconds !== undefined ? { estimate: { seconds, ...rate } } : {}) };
        };
        if (opts.json) {
          const instances = rows.map((r) => ({ ...r, cost: costOf(r.id) }));
          process.stdout.write(JSON.stringify({ experiment: exp.name, variants: plan.variants, rate, instances }, null, 2) + '\n');
          return;
        }
        const toRun = rows.filter((r) => r.status === 'to-run').length;
        process.stdout.write(
          `plan for ${exp.name}: ${rows.length} instance(s), ${plan.variants.length} variant(s); ${toRun} to run, ${rows.length - toRun} cached\n`,
        );
        const w = Math.max(...rows.map((r) => r.id.length), 5);
        for (const r of rows) {
          const why =
            r.status === 'cached' ? '' : [...r.reasons, ...(r.reasons.some((x) => x.startsWith('new key')) ? r.changes : [])].join('; ');
          process.stdout.write(`  ${r.status.padEnd(7)} ${r.id.padEnd(w)} ${r.alias ? `[${r.alias}] ` : ''}${why}\n`);
          const c = costOf(r.id);
          if (!c) continue;
          const lower = c.unknown.length && c.forwards !== undefined ? 'at least ' : '';
          const est = c.estimate
            ? `; ≈ ${lower}${formatEstimate(c.estimate.seconds)} at ${rate!.forwardsPerSecond.toFixed(1)} forwards/s`
            : '';
          process.stdout.write(`          cost: ${lower}${formatCost(c)}${est} [${c.detail.join('; ')}]\n`);
          if (c.unknown.length) process.stdout.write(`          not counted: ${c.unknown.join('; ')}\n`);
        }
        if (costs.size)
          process.stdout.write(
            rate
              ? `estimates at ${rate.forwardsPerSecond.toFixed(1)} forwards/s, ${rate.source}; a backward counts as two forwards\n`
              : 'no time estimates: no earlier run measured a rate; give one with --rate <forwards/s>\n',
          );
      }),
    );
}

export function whyCommand(): Command {
  return withSet(
    new Command('why')
      .description("explain which part of a stage's key changed since the last run")
      .argument('<experiment>', 'experiment YAML file')
      .argument('<stage>', 'stage name (or instance id stage@variant)'),
  )
    .addHelpText('after', '\nExample:\n  $ ca-pipe why experiments/quickstart.yaml train')
    .action(
      action(async (file: string, stage: string, opts: PlanOpts) => {
        const { rows, plan } = await analyse(file, opts);
        const mine = rows.filter((r) => r.stage === stage || r.id === stage);
        if (!mine.length) {
          const names = [...new Set(plan.instances.map((i) => i.stage))].join(', ');
          throw new CliError(`${file}: no stage "${stage}" (stages: ${names})`, 2);
        }
        if (opts.json) {
          process.stdout.write(JSON.stringify(mine, null, 2) + '\n');
          return;
        }
        for (const r of mine) {
          process.stdout.write(`${r.id}${r.alias ? ` [${r.alias}]` : ''}: ${r.status} — ${r.reasons.join('; ')}\n`);
          if (!r.previous) process.stdout.write('  no earlier run recorded this instance\n');
          else if (!r.changes.length) process.stdout.write(`  key material unchanged since run ${r.previous.runId}\n`);
          else {
            process.stdout.write(`  changed since run ${r.previous.runId}:\n`);
            for (const c of r.changes) process.stdout.write(`    ${c}\n`);
          }
        }
      }),
    );
}

interface StatusOpts extends StoreOpts {
  json?: boolean;
}

/** A run dir, an experiment file or name (→ its latest run), or nothing (→ the newest run). */
export async function resolveRunDir(target: string | undefined, runsDir: string): Promise<string> {
  const { latestRun, listRuns } = await import('../engine/run/records.js');
  if (!target) {
    const newest = (await listRuns(runsDir))[0];
    if (!newest) throw new CliError(`no runs under ${runsDir}`);
    return newest.dir;
  }
  if (await stat(join(target, 'run.json')).catch(() => undefined)) return resolve(target);
  let name = target;
  if (/\.ya?ml$/i.test(target)) {
    try {
      const registry = await loadRegistry();
      name = (await loadExp(target, [], registry)).name;
    } catch {
      name = basename(target, extname(target));
    }
  }
  const dir = await latestRun(runsDir, name);
  if (dir) return dir;
  // A run id as `ca-pipe ls` prints it (a prefix is enough when it names a single run).
  const runs = await listRuns(runsDir);
  const exact = runs.filter((r) => r.runId === target);
  const byId = exact.length ? exact : target.length >= 8 ? runs.filter((r) => r.runId.startsWith(target)) : [];
  if (byId.length === 1) return byId[0]!.dir;
  if (byId.length > 1)
    throw new CliError(
      `"${target}" matches ${byId.length} runs under ${runsDir} (${byId
        .slice(0, 3)
        .map((r) => `${r.experiment}/${r.runId}`)
        .join(', ')}${byId.length > 3 ? ', …' : ''}): give more of the run id`,
      2,
    );
  throw new CliError(
    `no run of "${name}" and no run with id "${target}" under ${runsDir}: \`ca-pipe ls${runsDir !== resolve('runs') ? ` --runs ${runsDir}` : ''}\` lists the runs (give a run id, a run directory, an experiment name or file)`,
    2,
  );
}

export function statusCommand(): Command {
  return addStoreOptions(
    new Command('status')
      .description('show the state of a run (default: the newest), with live progress')
      .argument('[run]', 'run directory, experiment file or experiment name')
      .option('--json', 'machine-readable output'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ ca-pipe status\n  $ ca-pipe status experiments/quickstart.yaml --json\n  $ ca-pipe status runs/quickstart/latest',
    )
    .action(
      action(async (target: string | undefined, opts: StatusOpts) => {
        const { readRun, readEvents, effectiveStatus } = await import('../engine/run/records.js');
        const { RateTracker, formatDuration } = await import('../engine/ui/format.js');
        const dir = await resolveRunDir(target, runsDirOf(opts));
        const rec = await readRun(dir);
        const progress = new Map<string, InstanceType<typeof RateTracker>>();
        for (const e of await readEvents(dir)) {
          if (e.type !== 'progress') continue;
          if (!progress.has(e.id)) progress.set(e.id, new RateTracker());
          progress.get(e.id)!.update(e, Date.parse(e.t));
        }
        const status = effectiveStatus(rec);
        const live = await liveJobs(rec);
        if (opts.json) {
          const instances = rec.instances.map((i) => {
            const p = progress.get(i.id);
            return {
              ...i,
              material: undefined,
              job: live.get(i.id) ?? i.job,
              progress: p && {
                done: p.done,
                total: p.total,
                unit: p.unit,
                message: p.message,
                rate: p.rate(),
                etaMs: rec.status === 'running' ? p.etaAt(Date.now()) : undefined,
              },
            };
          });
          process.stdout.write(
            JSON.stringify(
              {
                runDir: dir,
                runId: rec.runId,
                experiment: rec.experiment,
                status,
                startedAt: rec.startedAt,
                endedAt: rec.endedAt,
                instances,
              },
              null,
              2,
            ) + '\n',
          );
          return;
        }
        const took = rec.endedAt ? ` in ${formatDuration(Date.parse(rec.endedAt) - Date.parse(rec.startedAt))}` : '';
        process.stdout.write(`run ${rec.runId} of ${rec.experiment}: ${status}${took} (started ${rec.startedAt})\n`);
        const w = Math.max(...rec.instances.map((i) => i.id.length), 5);
        for (const i of rec.instances) {
          let detail = '';
          if (i.start && i.end) detail = formatDuration(Date.parse(i.end) - Date.parse(i.start));
          if (i.status === 'running') detail = progress.get(i.id)?.text(true, Date.now()) ?? 'running';
          if (i.status === 'failed' || i.status === 'skipped' || i.status === 'interrupted') detail = (i.error ?? '').split('\n')[0];
          process.stdout.write(`  ${i.status.padEnd(8)} ${i.id.padEnd(w)} ${i.variant.alias ? `[${i.variant.alias}] ` : ''}${detail}\n`);
          if (i.status === 'failed' && i.log) process.stdout.write(`           log: ${i.log}\n`);
          const job = live.get(i.id) ?? i.job;
          if (job && i.status !== 'cached' && i.status !== 'executed') {
            const reason = job.reason && job.reason !== 'None' ? ` (${job.reason})` : '';
            process.stdout.write(`           slurm job ${job.id} ${job.state ?? ''}${reason}${job.log ? `, log ${job.log}` : ''}\n`);
          }
          for (const h of i.job?.history ?? [])
            process.stdout.write(`           earlier slurm job ${h.id} ended ${h.state} without committing\n`);
          if (i.split && i.status !== 'cached' && i.status !== 'executed') process.stdout.write(`           ${splitLine(i, live)}\n`);
        }
      }),
    );
}

/**
 * Current Slurm states of an unfinished run's jobs (squeue), by instance id; empty when the run
 * used no cluster or squeue cannot answer (status must work on a laptop holding a copy of runs/).
 */
async function liveJobs(
  rec: import('../engine/run/records.js').RunRecord,
): Promise<Map<string, NonNullable<import('../engine/run/records.js').InstanceRecord['job']>>> {
  const out = new Map<string, NonNullable<import('../engine/run/records.js').InstanceRecord['job']>>();
  const open = rec.instances.filter((i) => (i.job || i.split) && i.status !== 'cached' && i.status !== 'executed');
  if (rec.executor !== 'slurm' || !open.length) return out;
  try {
    const { SlurmCommands } = await import('../engine/run/slurm/commands.js');
    const q = await new SlurmCommands().queue();
    for (const i of open) {
      const s = i.job && q.get(i.job.id);
      if (s) out.set(i.id, { ...i.job!, state: s.state, reason: s.reason });
      // A split's tasks, keyed "<instance>#<part>" (see splitLine).
      for (const [label, p] of Object.entries(i.split?.parts ?? {})) {
        const ps = !p.done && p.id ? q.get(p.id) : undefined;
        if (ps) out.set(`${i.id}#${label}`, { ...p, state: ps.state, reason: ps.reason });
      }
    }
  } catch {
    /* no Slurm here: the recorded states are shown */
  }
  return out;
}

/** "shard parts: 1 of 4 done; tasks 2 RUNNING, 1 PENDING (2/4 job 12_1 RUNNING, ...)": a split instance's array. */
function splitLine(
  i: import('../engine/run/records.js').InstanceRecord,
  live: Map<string, NonNullable<import('../engine/run/records.js').InstanceRecord['job']>>,
): string {
  const split = i.split!;
  let done = 0;
  const byState = new Map<string, number>();
  const tasks: string[] = [];
  for (let n = 1; n <= split.shards; n++) {
    const label = `${n}/${split.shards}`;
    const p = split.parts[label];
    if (p?.done) {
      done++;
      continue;
    }
    const state = (live.get(`${i.id}#${label}`)?.state ?? p?.state ?? 'not submitted').split(' ')[0]!;
    byState.set(state, (byState.get(state) ?? 0) + 1);
    tasks.push(`${label}${p?.id ? ` job ${p.id}` : ''} ${state}`);
  }
  const states = [...byState].map(([s, n]) => `${n} ${s}`).join(', ');
  return `shard parts: ${done} of ${split.shards} done${states ? `; tasks ${states} (${tasks.join(', ')})` : ''}`;
}

export function lsCommand(): Command {
  return addStoreOptions(
    new Command('ls')
      .description('list runs, newest first')
      .argument('[experiment]', 'only runs of this experiment name')
      .option('--json', 'machine-readable output'),
  )
    .addHelpText('after', '\nExample:\n  $ ca-pipe ls quickstart')
    .action(
      action(async (experiment: string | undefined, opts: StatusOpts) => {
        const { listRuns, readRun, effectiveStatus } = await import('../engine/run/records.js');
        const rows = [];
        for (const ref of await listRuns(runsDirOf(opts), experiment)) {
          const rec = await readRun(ref.dir).catch(() => undefined);
          if (!rec) continue;
          const counts: Record<string, number> = {};
          for (const i of rec.instances) counts[i.status] = (counts[i.status] ?? 0) + 1;
          rows.push({
            runId: rec.runId,
            experiment: rec.experiment,
            status: effectiveStatus(rec),
            startedAt: rec.startedAt,
            endedAt: rec.endedAt,
            counts,
            dir: ref.dir,
          });
        }
        if (opts.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        if (!rows.length) process.stdout.write(`no runs under ${runsDirOf(opts)}\n`);
        for (const r of rows) {
          const c = Object.entries(r.counts)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ');
          process.stdout.write(`${r.runId}  ${r.experiment.padEnd(20)} ${r.status.padEnd(11)} ${c}\n`);
        }
      }),
    );
}
