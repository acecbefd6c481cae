// The Slurm executor against a real (single-node) Slurm, through the real CLI, with tiny `command`
// stages so each case takes seconds: arrays and dependencies of a 2×2 sweep (same digests as the
// local executor), located resource errors before any submission, a failing stage cancelling its
// dependents, a scancelled job being retried, a killed driver restarted without duplicate jobs,
// and `ca-pipe status` / `ca-pipe cancel`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { cli, executions, tempDir, writeExp } from '../engine/helpers.js';
import { posOf } from '../engine/kinds.js';
import { finished, jobOf, latestDir, needSlurm, readJson, runCli, slurmState, submissions, waitFor, SLURM_ENV } from './helpers.js';

/** A `command` stage running `script` with sh; it first appends its name to the counter file. */
function sh(name: string, counter: string, script: string): string {
  return JSON.stringify(['sh', '-c', `echo ${name} >> ${counter}; ${script}`]);
}

interface RunJson {
  runId: string;
  status: string;
  instances: Array<{
    id: string;
    stage: string;
    status: string;
    digest?: string;
    error?: string;
    job?: { id: string; state?: string; history?: Array<{ id: string; state: string }> };
  }>;
}

const count = (lines: string[], name: string): number => lines.filter((l) => l === name).length;

test(
  '2×2 sweep: shared stage submitted once, per-variant stages as arrays, same digests as local, cached rerun submits nothing',
  { timeout: 120_000 },
  async (t) => {
    if (!needSlurm(t)) return;
    const dir = await tempDir(t, 'ca-pipe-slurm-');
    const counter = join(dir, 'counter');
    const yaml = `name: sweep
executor: slurm
sweep:
  train.env.LR: ["1", "2"]
  train.env.H: ["a", "b"]
stages:
  prep:
    kind: command
    params: { cmd: ${sh('prep', counter, 'echo data > $CA_PIPE_OUT/d.txt')} }
  train:
    kind: command
    needs: [prep]
    params:
      cmd: ${sh('train', counter, 'cat $CA_PIPE_IN_PREP/d.txt > $CA_PIPE_OUT/m.txt; echo $LR$H >> $CA_PIPE_OUT/m.txt')}
      env: { LR: "0", H: "z" }
  eval:
    kind: command
    needs: [train]
    params: { cmd: ${sh('eval', counter, 'tr a-z A-Z < $CA_PIPE_IN_TRAIN/m.txt > $CA_PIPE_OUT/e.txt')} }
  report:
    kind: command
    scope: experiment
    needs: [eval]
    params: { cmd: ${sh('report', counter, 'for d in $(echo $CA_PIPE_IN_EVAL | tr : " "); do cat $d/e.txt; done > $CA_PIPE_OUT/r.txt')} }
`;
    const file = await writeExp(dir, 'sweep.yaml', yaml);
    const r = await finished(runCli(['run', file, '--quiet'], dir).done, 'slurm run');
    assert.equal(r.code, 0, r.stderr);
    const runDir = latestDir(join(dir, 'runs'), 'sweep');
    const run = readJson<RunJson>(join(runDir, 'run.json'));
    assert.equal(run.status, 'succeeded');
    assert.equal(run.instances.length, 1 + 4 + 4 + 1);
    assert.ok(
      run.instances.every((i) => i.status === 'executed'),
      JSON.stringify(run.instances.map((i) => [i.id, i.status])),
    );

    const subs = submissions(runDir);
    const byStage = (stage: string) => subs.filter((s) => Object.values(s.tasks).some((id) => id.split('@')[0] === stage));
    assert.equal(byStage('prep').length, 1, 'the shared stage is submitted once');
    assert.equal(Object.keys(byStage('prep')[0]!.tasks).length, 1);
    assert.equal(byStage('train').length, 1, 'the four train variants go out as one submission');
    assert.equal(Object.keys(byStage('train')[0]!.tasks).length, 4, 'train is a 4-task array');
    assert.deepEqual(byStage('train')[0]!.deps, [byStage('prep')[0]!.job], 'train waits on the prep job (afterok)');
    assert.equal(byStage('eval').length, 1, 'the four eval variants go out as one array');
    assert.equal(byStage('eval')[0]!.corr, byStage('train')[0]!.job, 'eval task i waits on train task i (aftercorr)');
    assert.equal(byStage('report').length, 1);
    assert.equal(subs.length, 4, 'no other submission');

    let runs = await executions(counter);
    assert.deepEqual([count(runs, 'prep'), count(runs, 'train'), count(runs, 'eval'), count(runs, 'report')], [1, 4, 4, 1]);
    const report = readFileSync(join(runDir, 'outputs', 'report', 'r.txt'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .sort();
    assert.deepEqual(report, ['1A', '1B', '2A', '2B', 'DATA', 'DATA', 'DATA', 'DATA'].sort());

    // The same experiment run locally into another store gives the same digests, instance by instance.
    const local = await cli(
      ['run', file, '--executor', 'in-process', '--quiet', '--store', join(dir, 'local-store'), '--runs', join(dir, 'local-runs')],
      dir,
    );
    assert.equal(local.code, 0, local.stderr);
    const lrun = readJson<RunJson>(join(dir, 'local-runs', 'sweep', 'latest', 'run.json'));
    const digests = (x: RunJson) => Object.fromEntries(x.instances.map((i) => [i.id, i.digest]));
    assert.deepEqual(digests(run), digests(lrun));

    // Everything cached: the driver settles it without a single job.
    runs = await executions(counter);
    const again = await finished(runCli(['run', file, '--quiet'], dir).done, 'cached rerun');
    assert.equal(again.code, 0, again.stderr);
    const rerun = readJson<RunJson>(join(latestDir(join(dir, 'runs'), 'sweep'), 'run.json'));
    assert.notEqual(rerun.runId, run.runId);
    assert.ok(rerun.instances.every((i) => i.status === 'cached'));
    assert.equal(submissions(latestDir(join(dir, 'runs'), 'sweep')).length, 0);
    assert.equal((await executions(counter)).length, runs.length);
  },
);

test('bad resources (unknown partition, malformed time) fail before submission with located errors', { timeout: 60_000 }, async (t) => {
  if (!needSlurm(t)) return;
  const dir = await tempDir(t, 'ca-pipe-slurm-');
  const yaml = `name: badres
executor:
  type: slurm
  resources: { time: "2:75" }
stages:
  a:
    kind: command
    params: { cmd: ["true"] }
    resources: { partition: debgu, cpus: 1 }
  b:
    kind: command
    needs: [a]
    params: { cmd: ["true"] }
    resources: { time: "1-30:00" }
`;
  const file = await writeExp(dir, 'badres.yaml', yaml);
  const r = await finished(runCli(['run', file], dir).done, 'run with bad resources');
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `badres\\.yaml:${posOf(yaml, 'debgu')}: stages\\.a\\.resources\\.partition: unknown partition "debgu" \\(did you mean "debug"\\?\\)`,
    ),
  );
  assert.match(
    r.stderr,
    new RegExp(
      `badres\\.yaml:${posOf(yaml, '"1-30:00"')}: stages\\.b\\.resources\\.time: malformed time limit "1-30:00": hours 30 out of range`,
    ),
  );
  // Stage a takes the executor's default time: the error points there.
  assert.match(
    r.stderr,
    new RegExp(`badres\\.yaml:${posOf(yaml, '"2:75"')}: executor\\.resources\\.time: malformed time limit "2:75": seconds 75 out of range`),
  );
  assert.equal(existsSync(join(dir, 'runs', 'badres')), false, 'no run was started, so nothing was submitted');

  // A type error is caught by the schema, located as well.
  const yaml2 = yaml.replace('cpus: 1', 'cpus: many');
  const file2 = await writeExp(dir, 'badres2.yaml', yaml2);
  const r2 = await cli(['run', file2], dir, SLURM_ENV);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, new RegExp(`badres2\\.yaml:${posOf(yaml2, 'many')}: stages\\.a\\.resources\\.cpus: expected integer`));
});

test(
  'a failing stage: its dependents are cancelled (not left pending) and the error names the job and its logs',
  { timeout: 90_000 },
  async (t) => {
    if (!needSlurm(t)) return;
    const dir = await tempDir(t, 'ca-pipe-slurm-');
    const counter = join(dir, 'counter');
    const yaml = `name: failing
executor: slurm
stages:
  a:
    kind: command
    params: { cmd: ${sh('a', counter, 'sleep 1; echo broken >&2; exit 3')} }
  b:
    kind: command
    needs: [a]
    params: { cmd: ${sh('b', counter, 'true')} }
  c:
    kind: command
    needs: [b]
    params: { cmd: ${sh('c', counter, 'true')} }
`;
    const file = await writeExp(dir, 'failing.yaml', yaml);
    const r = await finished(runCli(['run', file], dir).done, 'failing run');
    assert.equal(r.code, 1, r.stderr);
    const runDir = realpathSync(latestDir(join(dir, 'runs'), 'failing'));
    const subs = submissions(runDir);
    const job = (id: string) => subs.map((s) => jobOf(s, id)).find(Boolean)!;
    const [ja, jb, jc] = [job('a'), job('b'), job('c')];
    assert.ok(ja && jb && jc, 'all three were submitted up front');
    const run = readJson<RunJson>(join(runDir, 'run.json'));
    const a = run.instances.find((i) => i.id === 'a')!;
    assert.equal(a.status, 'failed');
    assert.match(a.error!, new RegExp(`^job ${ja} FAILED \\(Slurm log .*\\): command "sh" exited with code 3`));
    const stageLog = join(runDir, 'logs', 'a.log');
    const slurmLog = join(runDir, 'slurm', `a-${ja}.out`);
    assert.ok(a.error!.includes(stageLog) && a.error!.includes(slurmLog), a.error);
    assert.ok(existsSync(stageLog) && existsSync(slurmLog));
    assert.match(readFileSync(stageLog, 'utf8'), /broken/);
    // The summary's first line names the job and the Slurm log, the next one the stage log.
    assert.ok(r.stderr.includes(`a (stage a): job ${ja} FAILED (Slurm log ${slurmLog}, stage log ${stageLog})`), r.stderr);
    assert.ok(r.stderr.includes(`log: ${stageLog}`), r.stderr);
    for (const id of ['b', 'c']) {
      const i = run.instances.find((x) => x.id === id)!;
      assert.equal(i.status, 'skipped');
      assert.match(i.error!, /cancelled: upstream (a|b)/);
    }
    // Slurm itself no longer holds them: cancelled, not PENDING (DependencyNeverSatisfied) forever.
    for (const j of [jb, jc]) await waitFor(() => slurmState(j) === 'CANCELLED' || slurmState(j) === '', `job ${j} cancelled`, 10_000);
    assert.deepEqual(await executions(counter), ['a']);
  },
);

test('scancel of a running stage job: reported, resubmitted with its dependent, run completes', { timeout: 90_000 }, async (t) => {
  if (!needSlurm(t)) return;
  const dir = await tempDir(t, 'ca-pipe-slurm-');
  const counter = join(dir, 'counter');
  const yaml = `name: retry
executor: { type: slurm, retries: 1 }
stages:
  slow:
    kind: command
    params: { cmd: ${sh('slow', counter, 'sleep 6 && echo ok > $CA_PIPE_OUT/x.txt')} }
  after:
    kind: command
    needs: [slow]
    params: { cmd: ${sh('after', counter, 'cp $CA_PIPE_IN_SLOW/x.txt $CA_PIPE_OUT/y.txt')} }
`;
  const file = await writeExp(dir, 'retry.yaml', yaml);
  const driver = runCli(['run', file, '--json'], dir);
  const runDir = latestDir(join(dir, 'runs'), 'retry');
  const first = await waitFor(
    () =>
      submissions(runDir)
        .map((s) => jobOf(s, 'slow'))
        .find(Boolean),
    'slow submitted',
  );
  await waitFor(async () => slurmState(first) === 'RUNNING' && (await executions(counter)).includes('slow'), 'slow running');
  execFileSync('scancel', [first]);
  const r = await finished(driver.done, 'retried run');
  assert.equal(r.code, 0, r.stderr);
  const run = readJson<RunJson>(join(runDir, 'run.json'));
  const slow = run.instances.find((i) => i.id === 'slow')!;
  assert.equal(slow.status, 'executed');
  assert.notEqual(slow.job!.id, first, 'a new job ran it');
  assert.equal(slow.job!.history?.[0]?.id, first);
  assert.match(slow.job!.history![0]!.state, /^CANCELLED/);
  assert.equal(run.instances.find((i) => i.id === 'after')!.status, 'executed');
  assert.deepEqual(await executions(counter), ['slow', 'slow', 'after']);
  const st = await cli(['status', runDir], dir);
  assert.match(st.stdout, new RegExp(`earlier slurm job ${first} ended CANCELLED`), st.stdout);
  assert.match(
    r.stdout,
    new RegExp(`job ${first} ended CANCELLED[^"]*without committing[^"]*resubmitting \\(retry 1/1\\)`),
    'the run reports the death',
  );
  // Journal: slow twice (the original and the retry); after twice (its first job waited on the dead one).
  const subs = submissions(runDir);
  assert.equal(subs.filter((s) => jobOf(s, 'slow')).length, 2);
});

test(
  'killing the driver mid-run: a restart adopts the queued and running jobs, no job is submitted twice',
  { timeout: 90_000 },
  async (t) => {
    if (!needSlurm(t)) return;
    const dir = await tempDir(t, 'ca-pipe-slurm-');
    const counter = join(dir, 'counter');
    const yaml = `name: restart
executor: slurm
sweep:
  b.env.V: ["1", "2"]
stages:
  a:
    kind: command
    params: { cmd: ${sh('a', counter, 'sleep 3; echo a > $CA_PIPE_OUT/a.txt')} }
  b:
    kind: command
    needs: [a]
    params: { cmd: ${sh('b', counter, 'sleep 1; cat $CA_PIPE_IN_A/a.txt > $CA_PIPE_OUT/b.txt; echo $V >> $CA_PIPE_OUT/b.txt')}, env: { V: "0" } }
`;
    const file = await writeExp(dir, 'restart.yaml', yaml);
    const first = runCli(['run', file, '--quiet'], dir);
    const runDir = latestDir(join(dir, 'runs'), 'restart');
    await waitFor(() => submissions(runDir).length === 2, 'both stages submitted');
    const ja = jobOf(submissions(runDir)[0]!, 'a')!;
    await waitFor(() => slurmState(ja) === 'RUNNING', 'a running');
    const runId = readJson<RunJson>(join(runDir, 'run.json')).runId;
    process.kill(-first.child.pid!, 'SIGKILL');
    await first.done;

    const st = await cli(['status', runDir], dir);
    assert.match(st.stdout, /interrupted \(process gone\)/);
    assert.match(st.stdout, new RegExp(`slurm job ${ja} RUNNING`), st.stdout);

    const second = await finished(runCli(['run', file, '--quiet'], dir).done, 'restarted run');
    assert.equal(second.code, 0, second.stderr);
    const run = readJson<RunJson>(join(runDir, 'run.json'));
    assert.equal(run.runId, runId, 'the restart continued the same run');
    assert.equal(run.status, 'succeeded');
    assert.ok(
      run.instances.every((i) => i.status === 'executed'),
      JSON.stringify(run.instances),
    );
    assert.equal(submissions(runDir).length, 2, 'no job was submitted again');
    const lines = await executions(counter);
    assert.deepEqual([count(lines, 'a'), count(lines, 'b')], [1, 2]);
  },
);

test('ca-pipe status shows the jobs of a running run; ca-pipe cancel cancels them and stops the driver', { timeout: 90_000 }, async (t) => {
  if (!needSlurm(t)) return;
  const dir = await tempDir(t, 'ca-pipe-slurm-');
  const yaml = `name: cancelme
executor: slurm
stages:
  long:
    kind: command
    params: { cmd: [sleep, "60"] }
  next:
    kind: command
    needs: [long]
    params: { cmd: ["true"] }
`;
  const file = await writeExp(dir, 'cancelme.yaml', yaml);
  const driver = runCli(['run', file, '--quiet'], dir);
  const runDir = latestDir(join(dir, 'runs'), 'cancelme');
  await waitFor(() => submissions(runDir).length === 2, 'both submitted');
  const [jl, jn] = [jobOf(submissions(runDir)[0]!, 'long')!, jobOf(submissions(runDir)[1]!, 'next')!];
  await waitFor(() => slurmState(jl) === 'RUNNING', 'long running');
  const st = await cli(['status', runDir], dir);
  assert.match(st.stdout, new RegExp(`slurm job ${jl} RUNNING`), st.stdout);
  assert.match(st.stdout, new RegExp(`slurm job ${jn} PENDING \\(Dependency\\)`), st.stdout);
  const c = await cli(['cancel', runDir], dir);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /cancelled 2 job\(s\)/);
  const r = await finished(driver.done, 'cancelled driver', 30_000);
  assert.equal(r.code, 130, r.stderr);
  await waitFor(() => slurmState(jl) === 'CANCELLED', 'long cancelled', 10_000);
  const run = readJson<RunJson>(join(runDir, 'run.json'));
  assert.equal(run.status, 'interrupted');
  assert.ok(
    run.instances.every((i) => i.status === 'skipped' && /cancel/.test(i.error ?? '')),
    JSON.stringify(run.instances),
  );
});

test('with retries: 0 a killed job fails the run, naming its Slurm state and logs', { timeout: 60_000 }, async (t) => {
  if (!needSlurm(t)) return;
  const dir = await tempDir(t, 'ca-pipe-slurm-');
  const yaml = `name: noretry
executor: { type: slurm, retries: 0 }
stages:
  long:
    kind: command
    params: { cmd: [sleep, "30"] }
`;
  const file = await writeExp(dir, 'noretry.yaml', yaml);
  const driver = runCli(['run', file, '--quiet'], dir);
  const runDir = latestDir(join(dir, 'runs'), 'noretry');
  const job = await waitFor(
    () =>
      submissions(runDir)
        .map((s) => jobOf(s, 'long'))
        .find(Boolean),
    'long submitted',
  );
  await waitFor(() => slurmState(job) === 'RUNNING', 'long running');
  execFileSync('scancel', [job]);
  const r = await finished(driver.done, 'run with a killed job');
  assert.equal(r.code, 1, r.stderr);
  const real = realpathSync(runDir);
  assert.ok(r.stderr.includes(`long (stage long): job ${job} ended CANCELLED`), r.stderr);
  assert.ok(
    r.stderr.includes(
      `without committing its output (Slurm log ${join(real, 'slurm', `long-${job}.out`)}, stage log ${join(real, 'logs', 'long.log')}) (retried 0 time(s))`,
    ),
    r.stderr,
  );
  assert.equal(submissions(runDir).length, 1, 'not resubmitted');
});
