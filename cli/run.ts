// `ca-pipe run`: plan an experiment and run it against the store.
import { Command, InvalidArgumentError } from 'commander';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../engine/store/index.js';
import type { InstanceRecord } from '../engine/run/records.js';
import type { RunOptions } from '../engine/run/scheduler.js';
import {
  CliError,
  action,
  addStoreOptions,
  collect,
  loadExp,
  loadRegistry,
  positiveInt,
  prepareRunsDir,
  runsDirOf,
  shellWord,
  storeDirOf,
  type StoreOpts,
} from './common.js';

interface RunOpts extends StoreOpts {
  set: string[];
  jobs: number;
  keepGoing?: boolean;
  json?: boolean;
  quiet?: boolean;
  isolate?: boolean;
  executor?: string;
  verifyHits?: boolean;
}

const EXECUTORS = ['in-process', 'child-process', 'slurm'];

function executorName(v: string): string {
  if (!EXECUTORS.includes(v)) throw new InvalidArgumentError(`expected one of ${EXECUTORS.join(', ')}, got "${v}"`);
  return v;
}

export function runCommand(): Command {
  const cmd = new Command('run')
    .description('run an experiment: execute what is not cached, reuse what is')
    .argument('<experiment>', 'experiment YAML file')
    .option('-s, --set <path=value>', 'override a value, e.g. -s train.lr=0.01 (repeatable)', collect, [])
    .option('-j, --jobs <n>', 'stage instances running at once', positiveInt, 1)
    .option('--keep-going', 'let independent branches finish when a stage fails')
    .option('--json', 'print run events as JSON lines')
    .option('--quiet', 'print only failures and the summary')
    .option('--verify-hits', 'rehash every file of each cache hit before reusing it (default: sizes, mtimes and inodes are compared)')
    .option('--isolate', 'run each stage in its own child process (same as --executor child-process)')
    .option(
      '--executor <name>',
      `where stages run: ${EXECUTORS.join(', ')} (default: the experiment's \`executor:\`, else in-process)`,
      executorName,
    );
  addStoreOptions(cmd);
  return cmd
    .addHelpText(
      'after',
      '\nExamples:\n  $ ca-pipe run experiments/quickstart.yaml\n  $ ca-pipe run exp.yaml -s train.lr=0.01 -j 2 --keep-going\n  $ ca-pipe run exp.yaml --json > events.jsonl\n  $ ca-pipe run exp.yaml --executor slurm     # one Slurm job (or array) per stage',
    )
    .action(
      action(async (file: string, opts: RunOpts) => {
        const registry = await loadRegistry();
        const exp = await loadExp(file, opts.set, registry);
        const [{ buildPlan }, { Store, StoreLocationError }, run, ui] = await Promise.all([
          import('../engine/plan/index.js'),
          import('../engine/store/index.js'),
          import('../engine/run/index.js'),
          import('../engine/ui/index.js'),
        ]);
        const plan = await buildPlan(exp, registry);
        const { executorSettings } = await import('../engine/run/slurm/resources.js');
        const settings = executorSettings(exp);
        const which = opts.executor ?? (opts.isolate ? 'child-process' : settings.type);
        let executor: RunOptions['executor'];
        if (which === 'slurm') {
          const { SlurmExecutor } = await import('../engine/run/slurm/index.js');
          const pollMs = Number(process.env.CA_PIPE_SLURM_POLL_MS) || settings.pollMs;
          executor = new SlurmExecutor({ retries: settings.retries, pollMs, resources: settings.resources });
        }
        await prepareRunsDir(runsDirOf(opts));
        const store = await Store.open(storeDirOf(opts, exp)).catch((e: unknown) => {
          throw e instanceof StoreLocationError ? new CliError(e.message, 2) : e;
        });
        if (store.readOnly)
          process.stderr.write(
            `ca-pipe: the store ${store.root} is read-only (${store.readOnly}): cached results are used, stages that must run will fail\n`,
          );
        const renderer = await ui.createRenderer(ui.chooseMode(opts));
        const ac = new AbortController();
        let interrupts = 0;
        const onSignal = (sig: NodeJS.Signals): void => {
          interrupts++;
          if (interrupts > 1) process.exit(130);
          process.stderr.write(
            which === 'slurm'
              ? `\nca-pipe: ${sig} received, detaching from the Slurm jobs (again to force)\n`
              : `\nca-pipe: ${sig} received, stopping stages (again to force)\n`,
          );
          ac.abort(new Error(`${sig} received`));
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          const result = await run.runPlan(plan, {
            store,
            runsDir: runsDirOf(opts),
            registry,
            jobs: opts.jobs,
            keepGoing: opts.keepGoing,
            executor: executor ?? (which === 'child-process' ? new run.ChildProcessExecutor(store) : undefined),
            signal: ac.signal,
            onEvent: (e) => renderer.onEvent(e),
            argv: process.argv.slice(2),
            verifyHits: opts.verifyHits,
          });
          await renderer.finish();
          const outputs = await linkOutputs(store, result.runDir, result.record.instances);
          const reports = outputs.filter((o) => o.kind === 'report');
          if (!opts.json) for (const r of reports) process.stdout.write(`report: ${join(r.link, 'report.html')}\n`);
          if (result.status === 'interrupted') {
            if (which === 'slurm' && ac.signal.aborted) {
              process.stderr.write(
                `ca-pipe: the run's Slurm jobs keep running; \`ca-pipe run ${file}\` again adopts them, \`ca-pipe cancel ${result.runDir}\` cancels them\n`,
              );
            }
            if (which !== 'slurm') {
              const stopped = result.record.instances.filter((i) => i.status === 'interrupted').map((i) => i.id);
              process.stderr.write(
                `ca-pipe: interrupted${stopped.length ? ` (${stopped.join(', ')} stopped)` : ''}; finished stages are kept. ` +
                  `Resume with the same command: ca-pipe ${process.argv.slice(2).map(shellWord).join(' ')}\n`,
              );
            }
            process.exitCode = 130;
          } else if (result.status === 'failed') {
            if (!opts.json) {
              process.stderr.write(`\n${result.failures.length} stage(s) failed:\n`);
              for (const f of result.failures)
                process.stderr.write(`  ${f.id} (stage ${f.stage}): ${f.error.split('\n')[0]}\n${f.log ? `    log: ${f.log}\n` : ''}`);
            }
            process.exitCode = 1;
          }
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }),
    );
}

/**
 * Gives every committed output of the run a readable path, runs/<exp>/<run>/outputs/<instance>,
 * so users find report.html without knowing the store's layout.
 */
async function linkOutputs(
  store: Store,
  runDir: string,
  instances: InstanceRecord[],
): Promise<Array<{ id: string; kind: string; link: string }>> {
  const out: Array<{ id: string; kind: string; link: string }> = [];
  const dir = join(runDir, 'outputs');
  for (const inst of instances) {
    if (!inst.key || (inst.status !== 'cached' && inst.status !== 'executed')) continue;
    const entry = await store.lookup(inst.key);
    if (!entry) continue;
    const link = join(dir, inst.id.replace(/[^A-Za-z0-9._@=,-]/g, '_'));
    try {
      await mkdir(dir, { recursive: true });
      await rm(link, { force: true });
      await symlink(entry.dir, link);
      out.push({ id: inst.id, kind: inst.kind, link });
    } catch {
      // A filesystem without symlinks still has the outputs in the store; the path is only a convenience.
      out.push({ id: inst.id, kind: inst.kind, link: entry.dir });
    }
  }
  return out;
}
