// The executor's sacct path against a real slurmdbd (MariaDB + slurmdbd, started by
// `SLURM_WITH_DBD=1 .ci/slurm.sh up`): sacct's states of finished and cancelled jobs and array
// tasks, and a driver whose squeue has forgotten a killed job learning its fate from sacct.
// Skipped (with the reason) when accounting is off, unless CA_PIPE_REQUIRE_SLURMDBD=1.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { loadExperiment } from '../../engine/config/index.js';
import { buildPlan } from '../../engine/plan/index.js';
import { createRegistry } from '../../engine/registry.js';
import { runPlan } from '../../engine/run/index.js';
import { isTerminal, SlurmCommands, type JobState } from '../../engine/run/slurm/commands.js';
import { SlurmExecutor } from '../../engine/run/slurm/index.js';
import { Store } from '../../engine/store/index.js';
import { STAGE_KINDS } from '../../stages/index.js';
import { tempDir, writeExp } from '../engine/helpers.js';
import { needSlurm, slurmState, waitFor } from './helpers.js';

function accountingOn(): boolean {
  try {
    execFileSync('sacct', ['-n', '-X', '-S', 'now'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function needAccounting(t: TestContext): boolean {
  if (!needSlurm(t)) return false;
  if (accountingOn()) return true;
  const why = 'sacct does not answer (start the cluster with `SLURM_WITH_DBD=1 bash .ci/slurm.sh up`)';
  if (process.env.CA_PIPE_REQUIRE_SLURMDBD === '1') throw new Error(`CA_PIPE_REQUIRE_SLURMDBD=1 but ${why}`);
  t.skip(why);
  return false;
}

const sbatch = (args: string[]): string =>
  execFileSync('sbatch', ['--parsable', ...args], { encoding: 'utf8' })
    .trim()
    .split(';')[0]!;

test('sacct: states of a completed job, a cancelled one and array tasks, as the executor reads them', { timeout: 60_000 }, async (t) => {
  if (!needAccounting(t)) return;
  const dir = await tempDir(t, 'ca-pipe-sacct-');
  const out = join(dir, '%j.out');
  const ok = sbatch([`--output=${out}`, '--wrap=true']);
  const long = sbatch([`--output=${out}`, '--wrap=sleep 60']);
  const array = sbatch([`--output=${join(dir, '%A_%a.out')}`, '--array=0-1', '--wrap=true']);
  await waitFor(() => slurmState(long) === 'RUNNING', 'long running');
  execFileSync('scancel', [long]);
  const commands = new SlurmCommands();
  const ids = [ok, long, `${array}_0`, `${array}_1`];
  // slurmctld hands records to slurmdbd asynchronously: poll until every one is final there.
  const acct = await waitFor(
    async () => {
      const a = await commands.accounting(ids);
      return a && ids.every((id) => a.get(id) && isTerminal(a.get(id)!.state)) ? a : undefined;
    },
    'final states in accounting',
    40_000,
  );
  assert.equal(acct.get(ok)!.state, 'COMPLETED');
  assert.match(acct.get(long)!.state, /^CANCELLED/);
  assert.equal(acct.get(`${array}_0`)!.state, 'COMPLETED');
  assert.equal(acct.get(`${array}_1`)!.state, 'COMPLETED');
  assert.equal(acct.get(ok)!.name, 'wrap');
});

/** An squeue that has forgotten every finished job (as after MinJobAge): only sacct knows their fate. */
class ForgetfulQueue extends SlurmCommands {
  accountingCalls = 0;
  override async queue(): Promise<Map<string, JobState>> {
    const q = await super.queue();
    for (const [id, s] of q) if (isTerminal(s.state)) q.delete(id);
    return q;
  }
  override async accounting(ids: string[]): Promise<Map<string, JobState> | undefined> {
    this.accountingCalls++;
    return super.accounting(ids);
  }
}

test(
  'a killed job squeue no longer lists: the driver reads CANCELLED from sacct, not "no longer listed"',
  { timeout: 90_000 },
  async (t) => {
    if (!needAccounting(t)) return;
    const dir = await tempDir(t, 'ca-pipe-sacct-');
    const file = await writeExp(
      dir,
      'forgot.yaml',
      `name: forgot
stages:
  long:
    kind: command
    params: { cmd: [sleep, "30"] }
`,
    );
    const registry = createRegistry(STAGE_KINDS);
    const exp = await loadExperiment(file, { registry, env: process.env });
    const plan = await buildPlan(exp, registry);
    const store = await Store.open(join(dir, 'store'));
    const commands = new ForgetfulQueue();
    const executor = new SlurmExecutor({ retries: 0, pollMs: 200, commands });
    const running = runPlan(plan, { store, runsDir: join(dir, 'runs'), registry, executor });
    const job = await waitFor(() => {
      const q = execFileSync('squeue', ['-h', '-o', '%i|%j|%T'], { encoding: 'utf8' });
      return q
        .split('\n')
        .map((l) => l.split('|'))
        .find(([, name, state]) => name?.endsWith('-long') && state === 'RUNNING')?.[0];
    }, 'long running');
    execFileSync('scancel', [job]);
    const r = await running;
    assert.equal(r.status, 'failed');
    assert.ok(commands.accountingCalls > 0, 'the driver asked sacct');
    assert.match(r.failures[0]!.error, new RegExp(`job ${job} ended CANCELLED`), r.failures[0]!.error);
    assert.doesNotMatch(r.failures[0]!.error, /no longer listed by squeue/);
  },
);
