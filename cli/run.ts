// `ca-pipe run`: plan an experiment and run it against the store.
import { Command } from 'commander';
import { action, addStoreOptions, collect, loadExp, loadRegistry, positiveInt, runsDirOf, storeDirOf, type StoreOpts } from './common.js';

interface RunOpts extends StoreOpts {
  set: string[];
  jobs: number;
  keepGoing?: boolean;
  json?: boolean;
  quiet?: boolean;
  isolate?: boolean;
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
    .option('--isolate', 'run each stage in its own child process');
  addStoreOptions(cmd);
  return cmd
    .addHelpText('after', '\nExamples:\n  $ ca-pipe run experiments/quickstart.yaml\n  $ ca-pipe run exp.yaml -s train.lr=0.01 -j 2 --keep-going\n  $ ca-pipe run exp.yaml --json > events.jsonl')
    .action(
      action(async (file: string, opts: RunOpts) => {
        const registry = await loadRegistry();
        const exp = await loadExp(file, opts.set, registry);
        const [{ buildPlan }, { Store }, run, ui] = await Promise.all([
          import('../engine/plan/index.js'),
          import('../engine/store/index.js'),
          import('../engine/run/index.js'),
          import('../engine/ui/index.js'),
        ]);
        const plan = await buildPlan(exp, registry);
        const store = await Store.open(storeDirOf(opts, exp));
        if (store.readOnly) process.stderr.write(`ca-pipe: the store ${store.root} is read-only (${store.readOnly}): cached results are used, stages that must run will fail\n`);
        const renderer = await ui.createRenderer(ui.chooseMode(opts));
        const ac = new AbortController();
        let interrupts = 0;
        const onSignal = (sig: NodeJS.Signals): void => {
          interrupts++;
          if (interrupts > 1) process.exit(130);
          process.stderr.write(`\nca-pipe: ${sig} received, stopping stages (again to force)\n`);
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
            executor: opts.isolate ? new run.ChildProcessExecutor(store) : undefined,
            signal: ac.signal,
            onEvent: (e) => renderer.onEvent(e),
            argv: process.argv.slice(2),
          });
          await renderer.finish();
          if (result.status === 'interrupted') process.exitCode = 130;
          else if (result.status === 'failed') {
            if (!opts.json) {
              process.stderr.write(`\n${result.failures.length} stage(s) failed:\n`);
              for (const f of result.failures) process.stderr.write(`  ${f.id} (stage ${f.stage}): ${f.error.split('\n')[0]}\n${f.log ? `    log: ${f.log}\n` : ''}`);
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
