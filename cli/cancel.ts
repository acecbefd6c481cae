// `ca-pipe cancel [run]`: cancels the Slurm jobs a run submitted. A driver still watching the run
// sees the request (a marker file) and stops without retrying; a run without a live driver is
// marked interrupted here.
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { CliError, action, addStoreOptions, runsDirOf, type StoreOpts } from './common.js';
import { resolveRunDir } from './inspect.js';

export function cancelCommand(): Command {
  return addStoreOptions(
    new Command('cancel')
      .description("cancel a run's cluster jobs (default: the newest run)")
      .argument('[run]', 'run directory, experiment file or experiment name')
      .option('--json', 'machine-readable output'),
  )
    .addHelpText('after', '\nExamples:\n  $ ca-pipe cancel experiments/quickstart.yaml\n  $ ca-pipe cancel runs/quickstart/latest')
    .action(
      action(async (target: string | undefined, opts: StoreOpts & { json?: boolean }) => {
        const [{ readRun, effectiveStatus }, slurm] = await Promise.all([
          import('../engine/run/records.js'),
          import('../engine/run/slurm/index.js'),
        ]);
        const dir = await resolveRunDir(target, runsDirOf(opts));
        const rec = await readRun(dir);
        if (rec.executor !== 'slurm')
          throw new CliError(
            `${dir}: run ${rec.runId} did not use a cluster executor: nothing to cancel (stop its \`ca-pipe run\` with Ctrl-C)`,
          );
        const jobs = await slurm.runJobIds(dir);
        const driverAlive = effectiveStatus(rec) === 'running';
        // The marker stops a live driver, and keeps a later `ca-pipe run` from adopting this run.
        await writeFile(slurm.cancelMarker(dir), `${new Date().toISOString()}\n`).catch(() => undefined);
        await new slurm.SlurmCommands().cancel(jobs);
        if (!driverAlive && rec.status === 'running') {
          for (const i of rec.instances) {
            if (i.status === 'pending' || i.status === 'running' || i.status === 'waiting') {
              i.status = 'skipped';
              i.error = 'cancelled by `ca-pipe cancel`';
            }
          }
          rec.status = 'interrupted';
          rec.endedAt = new Date().toISOString();
          const file = join(dir, 'run.json');
          await writeFile(`${file}.tmp.${process.pid}`, JSON.stringify(rec, null, 2) + '\n');
          await rename(`${file}.tmp.${process.pid}`, file);
        }
        if (opts.json)
          process.stdout.write(JSON.stringify({ runDir: dir, runId: rec.runId, cancelled: jobs, driverAlive }, null, 2) + '\n');
        else
          process.stdout.write(
            `cancelled ${jobs.length} job(s) of run ${rec.runId}${jobs.length ? `: ${jobs.join(' ')}` : ''}${driverAlive ? ` (its driver, pid ${rec.pid}, stops)` : ''}\n`,
          );
      }),
    );
}
