// Store maintenance: `gc`, `verify`, and the internal `exec` used by child-process executors.
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
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

/**
 * Where exported ONNX graphs are cached. The CLI names them because the engine must not know ml/:
 * ml/onnx/runtime.ts DEFAULT_CACHE_DIR (relative to the working directory, used by `forward
 * --engine onnx` without --cache-dir), and the store-wide cache of the evaluate and saliency stages
 * (onnxCacheDir() in stages/{evaluate,saliency}/run.ts: scratch/_onnx-cache).
 */
export const ONNX_DEFAULT_CACHE_DIR = join('runs', '.cache', 'onnx');
export const ONNX_STORE_CACHE = '_onnx-cache';
/** `<sha256>.onnx` and the temporary file of an export in progress (or killed). */
export const ONNX_CACHE_FILE = /^[0-9a-f]{64}\.onnx(\.tmp-\d+-\d+)?$/;

function days(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected days >= 0, got "${v}"`);
  return n;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function age(ms: number): string {
  return ms >= 86_400_000 ? `${(ms / 86_400_000).toFixed(1)} d` : `${(ms / 3_600_000).toFixed(1)} h`;
}

interface GcOpts extends StoreOpts {
  force?: boolean;
  json?: boolean;
  grace: number;
  cacheDays: number;
  slurmDays: number;
  onnxCache?: string[];
}

export function gcCommand(): Command {
  return addStoreOptions(
    new Command('gc')
      .description(
        'remove store entries and blobs no run record references, job files of ended Slurm runs and ONNX graphs unused for --cache-days (dry run unless --force)',
      )
      .option('--force', 'really delete')
      .option(
        '--grace <minutes>',
        'keep unreferenced blobs younger than this (commits in progress), and job files of finished Slurm runs for this long',
        minutes,
        15,
      )
      .option(
        '--slurm-days <n>',
        'keep job files of interrupted Slurm runs (jobs may still run; a restarted driver adopts them) for n days after their last write',
        days,
        7,
      )
      .option('--cache-days <n>', 'remove exported ONNX graphs not used for n days', days, 7)
      .option(
        '--onnx-cache <dir>',
        'another ONNX export cache to collect (`forward --cache-dir`); repeatable',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option('--json', 'machine-readable output'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ ca-pipe gc                              # show what would be removed (entries, blobs, Slurm job files, ONNX graphs)\n' +
        '  $ ca-pipe gc --force                      # remove it\n' +
        '  $ ca-pipe gc --force --cache-days 1       # also drop ONNX graphs unused since yesterday\n' +
        '  $ ca-pipe gc --onnx-cache /scratch/onnx   # include a cache given to `forward --cache-dir`',
    )
    .action(
      action(async (opts: GcOpts) => {
        const { Store } = await import('../engine/store/index.js');
        const { gcStore, gcCacheDir } = await import('../engine/maintenance/gc.js');
        const store = await Store.openExisting(storeDirOf(opts));
        if (store.readOnly && opts.force) throw new CliError(`cannot collect garbage in ${store.root}: ${store.readOnly}`);
        // Run records of every project that used this store count, not only ours.
        const runsDirs = [...new Set([runsDirOf(opts), ...(await store.runsDirs())])];
        const report = await gcStore(store, () => referencedKeys(runsDirs), {
          force: opts.force,
          graceMs: opts.grace * 60_000,
          slurmIdleMs: opts.slurmDays * 86_400_000,
          runsDirs,
          sharedScratch: [ONNX_STORE_CACHE],
        });
        const cacheDirs = [
          ...new Set([
            join(store.root, 'scratch', ONNX_STORE_CACHE),
            resolve(ONNX_DEFAULT_CACHE_DIR),
            ...(opts.onnxCache ?? []).map((d) => resolve(d)),
          ]),
        ];
        const onnxCache = [];
        for (const dir of cacheDirs)
          onnxCache.push(await gcCacheDir(dir, { maxIdleMs: opts.cacheDays * 86_400_000, names: ONNX_CACHE_FILE, force: opts.force }));
        if (opts.json) {
          process.stdout.write(JSON.stringify({ ...report, onnxCache, runsDirs }, null, 2) + '\n');
          return;
        }
        const verb = report.dryRun ? 'would remove' : 'removed';
        const graphs = onnxCache.flatMap((c) => c.removed);
        const graphBytes = onnxCache.reduce((a, c) => a + c.bytes, 0);
        process.stdout.write(`run records read from: ${runsDirs.join(', ')}\n`);
        process.stdout.write(
          `${verb}: ${report.entries.length} entr${report.entries.length === 1 ? 'y' : 'ies'}, ${report.objects.length} blob(s) (${mb(report.bytes)}), ` +
            `${report.scratch.length} scratch, ${report.staging.length} staging dir(s), ${report.locks.length} stale lock(s), ` +
            (report.quarantine.length ? `${report.quarantine.length} quarantined item(s), ` : '') +
            `${report.slurmRuns.length} Slurm run dir(s), ${graphs.length} ONNX graph(s) (${mb(graphBytes)}); ` +
            `kept ${report.keptEntries} referenced entr${report.keptEntries === 1 ? 'y' : 'ies'}` +
            (report.slurmKeys ? ` (${report.slurmKeys} by Slurm completion records not yet in a run record)` : '') +
            '\n',
        );
        for (const k of report.entries) process.stdout.write(`  entry ${k}\n`);
        for (const r of report.slurmRuns)
          process.stdout.write(`  slurm ${join(store.root, 'slurm', r.runId)} (run ${r.status}, idle ${age(r.idleMs)})\n`);
        for (const g of graphs) process.stdout.write(`  onnx  ${g.file} (${mb(g.bytes)}, unused ${age(g.idleMs)})\n`);
        for (const c of onnxCache)
          if (c.keptFiles)
            process.stdout.write(
              `kept ${c.keptFiles} ONNX graph(s) (${mb(c.keptBytes)}) used in the last ${opts.cacheDays} day(s) in ${c.dir}\n`,
            );
        if (report.dryRun && (report.entries.length || report.objects.length || report.slurmRuns.length || graphs.length))
          process.stdout.write('(dry run: pass --force to delete)\n');
      }),
    );
}

export function verifyCommand(): Command {
  return addStoreOptions(
    new Command('verify')
      .description('rehash every store entry and blob and report corruption')
      .option('--json', 'machine-readable output'),
  )
    .addHelpText('after', '\nExample:\n  $ ca-pipe verify --store /shared/ca-pipe-store')
    .action(
      action(async (opts: StoreOpts & { json?: boolean }) => {
        const { Store, verifyStore } = await import('../engine/store/index.js');
        const store = await Store.openExisting(storeDirOf(opts));
        const report = await verifyStore(store);
        if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else {
          process.stdout.write(
            `checked ${report.entries} entr${report.entries === 1 ? 'y' : 'ies'} and ${report.objects} blob(s) in ${store.root}: ${report.problems.length ? `${report.problems.length} problem(s)` : 'all good'}\n`,
          );
          for (const p of report.problems)
            process.stdout.write(`  CORRUPT ${p.where} ${p.id}${p.path ? ` ${p.path}` : ''}: ${p.message}\n`);
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
    .option('--die-with-parent', 'stop when stdin reaches end-of-file (the parent run died): what `run --isolate` passes')
    .option('--part <i/N>', "compute only part i of N of the instance's shards into its scratch directory (a split stage's worker)")
    .option('--slurm-tasks <file>', 'Slurm job: resolve, run and commit the instance of task $SLURM_ARRAY_TASK_ID listed in this file')
    .addHelpText(
      'after',
      '\nExamples (what `run --isolate` and `run --executor slurm` start for each stage):\n  $ ca-pipe exec 3f2a…e1 --store runs/.store\n  $ ca-pipe exec --store runs/.store --slurm-tasks runs/.store/slurm/<run>/tasks/0.json',
    )
    .action(
      action(async (key: string | undefined, opts: { store: string; slurmTasks?: string; dieWithParent?: boolean; part?: string }) => {
        if (!key === !opts.slurmTasks) throw new CliError('exec: give either an instance key or --slurm-tasks FILE', 2);
        const { Store } = await import('../engine/store/index.js');
        const store = await Store.openExisting(opts.store);
        const ac = new AbortController();
        const stop = (): void => ac.abort(new Error('terminated'));
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
        if (opts.dieWithParent) {
          // Orphaned: nobody will commit what we compute, and a resumed run would overlap us.
          // The stage gets a moment to stop its own children, then we go regardless.
          const orphaned = (): void => {
            ac.abort(new Error('parent run died'));
            setTimeout(() => process.exit(137), 1000).unref();
          };
          process.stdin.on('end', orphaned).on('close', orphaned).on('error', orphaned);
          process.stdin.resume();
          (process.stdin as unknown as { unref?: () => void }).unref?.();
        }
        if (opts.slurmTasks) {
          const { execSlurmTask } = await import('../engine/run/slurm/job.js');
          const r = await execSlurmTask(store, opts.slurmTasks, await loadRegistry(), ac.signal);
          process.stdout.write(`ca-pipe: ${r.instance} ${r.status} (key ${r.key})\n`);
          return;
        }
        const { execStoredJob, parsePartArg } = await import('../engine/run/child.js');
        let part;
        try {
          part = opts.part === undefined ? undefined : parsePartArg(opts.part);
        } catch (e) {
          throw new CliError(`exec: ${(e as Error).message}`, 2);
        }
        await execStoredJob(store, key!, await loadRegistry(), ac.signal, part);
      }),
    );
}
