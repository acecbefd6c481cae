// The Slurm executor's pure parts (no cluster needed): time/memory checks, squeue/sinfo parsing,
// dependency and resource arguments, executor settings from the experiment file, and the test
// helper's skip-or-fail rule when sbatch is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadExperiment } from '../../engine/config/index.js';
import { dependencyArgs } from '../../engine/run/slurm/executor.js';
import {
  checkResources,
  executorSettings,
  parsePartitions,
  parseQueue,
  resourceArgs,
  timeProblem,
  isTerminal,
} from '../../engine/run/slurm/index.js';
import { testRegistry } from '../engine/helpers.js';
import { posOf } from '../engine/kinds.js';

test('Slurm time limits: every documented form is accepted, out-of-range fields and junk are not', () => {
  for (const ok of ['30', '0', '90:00', '1:30:00', '100:00:00', '2-0', '2-12', '2-12:30', '2-12:30:59', 'UNLIMITED', 'infinite'])
    assert.equal(timeProblem(ok), undefined, ok);
  const bad: Array<[string, RegExp]> = [
    ['1h', /malformed time limit "1h": use minutes/],
    ['', /malformed/],
    ['1:2:3:4', /malformed/],
    ['10:60', /seconds 60 out of range/], // minutes:seconds
    ['1:60:00', /minutes 60 out of range/], // hours:minutes:seconds
    ['1-24', /hours 24 out of range/],
    ['1-23:60', /minutes 60 out of range/],
    ['-5', /malformed/],
  ];
  for (const [v, re] of bad) assert.match(timeProblem(v) ?? 'accepted', re, v);
});

test('squeue and sinfo output parsing', () => {
  const q = parseQueue('12_0|COMPLETED|None|cp-ab-1-train\n12_1|RUNNING|None|cp-ab-1-train\n13|PENDING|Dependency|a|b\n\n');
  assert.deepEqual([...q.keys()], ['12_0', '12_1', '13']);
  assert.deepEqual(q.get('13'), { id: '13', state: 'PENDING', reason: 'Dependency', name: 'a|b' });
  assert.deepEqual(parsePartitions('debug*\ngpu\ngpu\n'), { names: ['debug', 'gpu'], default: 'debug' });
  assert.equal(isTerminal('CANCELLED by 0'), true, "sacct's spelling");
  assert.equal(isTerminal('COMPLETING'), false);
  assert.equal(isTerminal('PENDING'), false);
});

test('dependency and resource arguments', () => {
  assert.deepEqual(dependencyArgs([]), []);
  assert.deepEqual(dependencyArgs(['5', '6_1']), ['--dependency=afterok:5:6_1', '--kill-on-invalid-dep=yes']);
  assert.deepEqual(dependencyArgs(['5'], '9'), ['--dependency=afterok:5,aftercorr:9', '--kill-on-invalid-dep=yes']);
  assert.deepEqual(dependencyArgs([], '9'), ['--dependency=aftercorr:9', '--kill-on-invalid-dep=yes']);
  assert.deepEqual(
    resourceArgs({ partition: 'gpu', time: '1:00:00', cpus: 4, mem: '8G', gpus: 'a100:1', sbatch: ['--qos=high', '--exclusive'] }),
    ['--partition=gpu', '--time=1:00:00', '--cpus-per-task=4', '--mem=8G', '--gpus=a100:1', '--qos=high', '--exclusive'],
  );
  assert.deepEqual(resourceArgs({}), []);
});

async function load(yaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'ca-pipe-slurm-unit-'));
  const file = join(dir, 'exp.yaml');
  writeFileSync(file, yaml);
  return loadExperiment(file, { registry: testRegistry(), env: {}, checkPaths: false });
}

test('executor settings and per-stage resources from the experiment file, with located errors', async () => {
  const yaml = `executor:
  type: slurm
  retries: 3
  poll_seconds: 0.5
  resources: { partition: debug, time: 10, mem: 2G }
stages:
  a:
    kind: command
    params: { cmd: ["true"] }
    resources: { time: "1:00:00", cpus: 2, sbatch: ["--qos=low"] }
  b:
    kind: command
    params: { cmd: ["true"] }
    resources: { partition: gpu, gpus: 2, mem: lots, sbatch: [qos] }
`;
  const exp = await load(yaml);
  const s = executorSettings(exp);
  assert.deepEqual(s, { type: 'slurm', retries: 3, pollMs: 500, resources: { partition: 'debug', time: '10', mem: '2G' } });
  try {
    checkResources(exp, ['a', 'b'], s.resources, ['debug', 'long']);
    assert.fail('expected a ConfigError');
  } catch (e) {
    const msg = (e as Error).message;
    assert.match(
      msg,
      new RegExp(
        `exp\\.yaml:${posOf(yaml, 'gpu,')}: stages\\.b\\.resources\\.partition: unknown partition "gpu" \\(sinfo lists: debug, long\\)`,
      ),
    );
    assert.match(msg, new RegExp(`exp\\.yaml:${posOf(yaml, 'lots')}: stages\\.b\\.resources\\.mem: malformed memory "lots"`));
    assert.match(
      msg,
      new RegExp(`exp\\.yaml:${posOf(yaml, 'qos]')}: stages\\.b\\.resources\\.sbatch\\[0\\]: extra sbatch argument "qos" is not an option`),
    );
    assert.doesNotMatch(msg, /stages\.a/, 'stage a is fine');
  }
  const merged = checkResources(exp, ['a'], s.resources, undefined);
  assert.deepEqual(
    merged.get('a'),
    { partition: 'debug', time: '1:00:00', mem: '2G', cpus: 2, sbatch: ['--qos=low'] },
    "the stage's keys override the executor's",
  );

  assert.deepEqual(
    executorSettings(await load('executor: child-process\nstages: { a: { kind: command, params: { cmd: ["true"] } } }\n')).type,
    'child-process',
  );
  const bad = 'executor: slurmm\nstages: { a: { kind: command, params: { cmd: ["true"] } } }\n';
  await assert.rejects(
    load(bad),
    /exp\.yaml:1:11: executor: expected one of "in-process", "child-process", "slurm", got string "slurmm" \(did you mean "slurm"\?\)/,
  );
  const badKey = 'executor: { type: slurm, retires: 2 }\nstages: { a: { kind: command, params: { cmd: ["true"] } } }\n';
  await assert.rejects(load(badKey), /exp\.yaml:1:\d+: executor\.retires: unknown key "retires" \(did you mean "retries"\?\)/);
});

test('without sbatch the Slurm tests skip with a printed reason, and fail when CA_PIPE_REQUIRE_SLURM=1', { timeout: 60_000 }, () => {
  // A PATH holding node only: sbatch is absent there whatever this machine has.
  const bin = mkdtempSync(join(tmpdir(), 'ca-pipe-nosbatch-'));
  symlinkSync(process.execPath, join(bin, 'node'));
  const probe = fileURLToPath(new URL(`./probe.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
  const pre = import.meta.url.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
  const run = (env: Record<string, string>) =>
    spawnSync(join(bin, 'node'), [...pre, '--test', '--test-reporter=tap', probe], {
      encoding: 'utf8',
      env: { PATH: bin, HOME: process.env.HOME ?? '/tmp', CA_PIPE_SLURM_PROBE: '1', ...env },
    });
  const skipped = run({});
  assert.equal(skipped.status, 0, skipped.stdout + skipped.stderr);
  assert.match(skipped.stdout, /# SKIP sbatch is not on PATH/);
  assert.match(skipped.stdout, /# skipped: sbatch is not on PATH/, 'the reason is printed');
  const required = run({ CA_PIPE_REQUIRE_SLURM: '1' });
  assert.notEqual(required.status, 0);
  assert.match(required.stdout, /CA_PIPE_REQUIRE_SLURM=1 but sbatch is not on PATH/);
});
