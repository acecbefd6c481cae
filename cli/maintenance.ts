// Store maintenance: `gc`, `verify`, and the internal `exec` used by child-process executors.
import { Command } from 'commander';
import { CliError, action, addStoreOptions, minutes, loadRegistry, runsDirOf, storeDirOf, type StoreOpts } from './common.js';

/** Every key any run record mentions, under each of the runs dirs. */
async function referencedKeys(runsDirs: string[]): Promise<Set<string>> {
  const { listRuns, runKeys } = await import('../engine/run/records.js');
  const keys = new Set<string>();
  for (const runsDir of runsDirs) {
    for (const ref of await listRuns(runsDir)) for (const k of await runKeys(ref.dir)) keys.add(k);
  }
  return keys;
}

export function gcCommand(): Command {
  return addStoreOptions(new Command('gc')
      .description('remove store entries and blobs no run record references (dry run unless --force)')
      .option('--force', 'really delete')
      .option('--grace <minutes>', 'keep unreferenced blobs younger than this (commits in progress)', minutes, 15)
      .option('--json', 'machine-readable output'),
  )
    .addHelpText('after', '\nExamples:\n  $ ca-pipe gc            # show what would be removed\n  $ ca-pipe gc --force    # remove it')
    .action(
      action(async (opts: StoreOpts & { force?: boolean; json?: boolean; grace: number }) => {
        const { Store, gcStore } = await import('../engine/store/index.js');
        const store = await Store.openExisting(storeDirOf(opts));
        if (store.readOnly && opts.force) throw new CliError(`cannot collect garbage in ${store.root}: ${store.readOnly}`);
        // Run records of every project that used this store count, not only ours.
        const runsDirs = [...new Set([runsDirOf(opts), ...(await store.runsDirs())])];
        const report = await gcStore(store, await referencedKeys(runsDirs), { force: opts.force, graceMs: opts.grace * 60_000 });
        if (opts.json) {
          process.stdout.write(JSON.stringify({ ...report, runsDirs }, null, 2) + '\n');
          return;
        }
        const verb = report.dryRun ? 'would remove' : 'removed';
        process.stdout.write(`run records read from: ${runsDirs.join(', ')}\n`);
        process.stdout.write(
          `${verb}: ${report.entries.length} entr${report.entries.length === 1 ? 'y' : 'ies'}, ${report.objects.length} blob(s) (${(report.bytes / 1e6).toFixed(1)} MB), ` +
            `${report.scratch.length} scratch, ${report.staging.length} staging dir(s), ${report.locks.length} stale lock(s); kept ${report.keptEntries} referenced entr${report.keptEntries === 1 ? 'y' : 'ies'}\n`,
        );
        for (const k of report.entries) process.stdout.write(`  entry ${k}\n`);
        if (report.dryRun && (report.entries.length || report.objects.length)) process.stdout.write('(dry run: pass --force to delete)\n');
      }),
    );
}

export function verifyCommand(): Command {
  return addStoreOptions(new Command('verify').description('rehash every store entry and blob and report corruption').option('--json', 'machine-readable output'))
    .addHelpText('after', '\nExample:\n  $ ca-pipe verify --store /shared/ca-pipe-store')
    .action(
      action(async (opts: StoreOpts & { json?: boolean }) => {
        const { Store, verifyStore } = await import('../engine/store/index.js');
        const store = await Store.openExisting(storeDirOf(opts));
        const report = await verifyStore(store);
        if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else {
          process.stdout.write(`checked ${report.entries} entr${report.entries === 1 ? 'y' : 'ies'} and ${report.objects} blob(s) in ${store.root}: ${report.problems.length ? `${report.problems.length} problem(s)` : 'all good'}\n`);
          for (const p of report.problems) process.stdout.write(`  CORRUPT ${p.where} ${p.id}${p.path ? ` ${p.path}` : ''}: ${p.message}\n`);
        }
        if (report.problems.length) process.exitCode = 1;
      }),
    );
}

export function execCommand(): Command {
  return new Command('exec')
    .description('(internal) run one stage instance from the job spec stored under its key, or a Slurm task')
    .argument('[key]', 'instance key (not with --slurm-tasks)')
    .requiredOption('--store <dir>', 'store holding specs/<key>.json')
    .option('--slurm-tasks <file>', 'Slurm job: resolve, run and commit the instance of task $SLURM_ARRAY_TASK_ID listed in this file')
    .addHelpText('after', '\nExamples (what `run --isolate` and `run --executor slurm` start for each stage):\n  $ ca-pipe exec 3f2a…e1 --store runs/.store\n  $ ca-pipe exec --store runs/.store --slurm-tasks runs/.store/slurm/<run>/tasks/0.json')
    .action(
      action(async (key: string | undefined, opts: { store: string; slurmTasks?: string }) => {
        if (!key === !opts.slurmTasks) throw new CliError('exec: give either an instance key or --slurm-tasks FILE', 2);
        const { Store } = await import('../engine/store/index.js');
        const store = await Store.openExisting(opts.store);
        const ac = new AbortController();
        const stop = (): void => ac.abort(new Error('terminated'));
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
        if (opts.slurmTasks) {
          const { execSlurmTask } = await import('../engine/run/slurm/job.js');
          const r = await execSlurmTask(store, opts.slurmTasks, await loadRegistry(), ac.signal);
          process.stdout.write(`ca-pipe: ${r.instance} ${r.status} (key ${r.key})\n`);
          return;
        }
        const { execStoredJob } = await import('../engine/run/child.js');
        await execStoredJob(store, key!, await loadRegistry(), ac.signal);
      }),
    );
}
