// End-to-end tests through the CLI process (crash/resume, concurrent runs, plan/why/status, gc/verify).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, executions, runFile, startCli, tempDir, testRegistry, writeExp } from './helpers.js';
import type { StageKind } from '../../engine/contract.js';
import { writeFile } from 'node:fs/promises';
import { runCommand } from '../../cli/run.js';
import { lsCommand, planCommand, statusCommand, whyCommand } from '../../cli/inspect.js';
import { gcCommand, verifyCommand } from '../../cli/maintenance.js';

function sh(script: string): string {
  return `[sh, -c, ${JSON.stringify(script)}]`;
}

/** a → b → c, each appending its name to count.txt; b's text comes from env X. */
function chainYaml(counter: string, sleep = 0): string {
  const step = (name: string, body: string) => `echo ${name} >> ${counter}; ${sleep ? `sleep ${sleep}; ` : ''}${body}`;
  return `name: chain
stages:
  a:
    kind: command
    params: { cmd: ${sh(step('a', 'echo A > "$CA_PIPE_OUT/o.txt"'))} }
  b:
    kind: command
    needs: [a]
    params:
      cmd: ${sh(step('b', 'cat "$CA_PIPE_IN_A/o.txt" > "$CA_PIPE_OUT/o.txt"; echo "$X" >> "$CA_PIPE_OUT/o.txt"'))}
      env: { X: one }
  c:
    kind: command
    needs: [b]
    params: { cmd: ${sh(step('c', 'cat "$CA_PIPE_IN_B/o.txt" > "$CA_PIPE_OUT/o.txt"'))} }
`;
}

async function entries(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'runs', '.store', 'entries'))).sort();
}

test('run --json prints parseable events; rerun executes nothing; plan and why explain a changed param', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  await writeExp(dir, 'chain.yaml', chainYaml(counter));
  const r1 = await cli(['run', 'chain.yaml', '--json'], dir);
  assert.equal(r1.code, 0, r1.stderr);
  const events = r1.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(events[0].type, 'run-start');
  assert.equal(events.at(-1).type, 'run-end');
  assert.deepEqual(events.at(-1).counts.executed, 3);
  assert.deepEqual(await executions(counter), ['a', 'b', 'c']);

  const r2 = await cli(['run', 'chain.yaml', '--quiet'], dir);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(await executions(counter), ['a', 'b', 'c']);

  const plan = await cli(['plan', 'chain.yaml', '-s', 'b.env.X=two', '--json'], dir);
  assert.equal(plan.code, 0, plan.stderr);
  const rows = JSON.parse(plan.stdout).instances as { id: string; status: string; reasons: string[] }[];
  assert.deepEqual(
    rows.map((r) => [r.id, r.status]),
    [
      ['a', 'cached'],
      ['b', 'to-run'],
      ['c', 'to-run'],
    ],
  );
  assert.match(rows[2].reasons.join(' '), /upstream changed: b/);
  const planText = await cli(['plan', 'chain.yaml'], dir);
  assert.match(planText.stdout, /3 cached/);

  const why = await cli(['why', 'chain.yaml', 'b', '-s', 'b.env.X=two'], dir);
  assert.equal(why.code, 0, why.stderr);
  assert.match(why.stdout, /param env\.X: "one" -> "two"/);
  const whyBad = await cli(['why', 'chain.yaml', 'nope'], dir);
  assert.equal(whyBad.code, 2);
  assert.match(whyBad.stderr, /no stage "nope" \(stages: a, b, c\)/);

  const status = await cli(['status', 'chain.yaml', '--json'], dir);
  assert.equal(status.code, 0, status.stderr);
  const st = JSON.parse(status.stdout);
  assert.equal(st.status, 'succeeded');
  assert.deepEqual(
    st.instances.map((i: { status: string }) => i.status),
    ['cached', 'cached', 'cached'],
  );
  const ls = await cli(['ls', '--json'], dir);
  const runs = JSON.parse(ls.stdout) as { runId: string }[];
  assert.equal(runs.length, 2);
  assert.ok(runs[0].runId > runs[1].runId, 'newest first');
});

test('config errors exit 2 with a located message and start no work', async (t) => {
  const dir = await tempDir(t);
  await writeExp(dir, 'bad.yaml', 'name: bad\nstages:\n  a:\n    kind: commandd\n    params: { cmd: [true] }\n');
  const r = await cli(['run', 'bad.yaml'], dir);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.yaml:4/);
  await assert.rejects(stat(join(dir, 'runs', 'bad')), 'no run directory created');
});

test('a run killed with SIGKILL resumes: finished stages cached, no partial entry, scratch handed back', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  const started = join(dir, 'started');
  const slow = `echo s >> ${counter}; if [ -f "$CA_PIPE_SCRATCH/ckpt" ]; then cp "$CA_PIPE_SCRATCH/ckpt" "$CA_PIPE_OUT/resumed-from.txt"; else echo half-done > "$CA_PIPE_SCRATCH/ckpt"; touch ${started}; sleep 30; fi`;
  await writeExp(
    dir,
    'crash.yaml',
    `name: crash
stages:
  first: { kind: command, params: { cmd: ${sh(`echo f >> ${counter}; echo F > "$CA_PIPE_OUT/f.txt"`)} } }
  slow: { kind: command, needs: [first], params: { cmd: ${sh(slow)} } }
  last: { kind: command, needs: [slow], params: { cmd: ${sh(`echo l >> ${counter}; cp "$CA_PIPE_IN_SLOW/resumed-from.txt" "$CA_PIPE_OUT/"`)} } }
`,
  );
  const run = startCli(['run', 'crash.yaml'], dir);
  const t0 = Date.now();
  while (!(await stat(started).catch(() => undefined))) {
    assert.ok(Date.now() - t0 < 20_000, `slow stage never started: ${run.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(-run.child.pid!, 'SIGKILL');
  const killed = await run.done;
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal((await entries(dir)).length, 1, 'only the finished stage is committed');

  const status = await cli(['status', 'crash.yaml'], dir);
  assert.match(status.stdout, /interrupted \(process gone\)/);

  const again = await cli(['run', 'crash.yaml'], dir);
  assert.equal(again.code, 0, again.stderr + again.stdout);
  assert.deepEqual(await executions(counter), ['f', 's', 's', 'l'], 'first not recomputed');
  const st = JSON.parse((await cli(['status', 'crash.yaml', '--json'], dir)).stdout);
  assert.deepEqual(
    st.instances.map((i: { status: string }) => i.status),
    ['cached', 'executed', 'executed'],
  );
  const last = st.instances[2];
  const out = await readFile(join(dir, 'runs', '.store', 'entries', last.key, 'out', 'resumed-from.txt'), 'utf8');
  assert.equal(out, 'half-done\n', 'the checkpoint written before the kill was handed back');
  assert.equal(st.instances[1].attempt, 2);
  assert.equal((await entries(dir)).length, 3);
});

test('SIGINT stops the running stage and exits 130 with the run recorded as interrupted', async (t) => {
  const dir = await tempDir(t);
  const pidFile = join(dir, 'stage.pid');
  await writeExp(
    dir,
    'int.yaml',
    `name: int\nstages:\n  s: { kind: command, params: { cmd: ${sh(`echo $$ > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; exec sleep 30`)} } }\n`,
  );
  const run = startCli(['run', 'int.yaml'], dir);
  const t0 = Date.now();
  while (!(await stat(pidFile).catch(() => undefined))) {
    assert.ok(Date.now() - t0 < 20_000, `stage never started: ${run.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const stagePid = Number(await readFile(pidFile, 'utf8'));
  process.kill(run.child.pid!, 'SIGINT');
  const res = await run.done;
  assert.equal(res.code, 130, res.stderr);
  assert.ok(Date.now() - t0 < 15_000);
  assert.throws(() => process.kill(stagePid, 0), 'the stage process is gone');
  const st = JSON.parse((await cli(['status', '--json'], dir)).stdout);
  assert.equal(st.status, 'interrupted');
  assert.equal(st.instances[0].status, 'interrupted');
});

test('two concurrent runs on one store execute every stage exactly once', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  // Stages slow enough (1 s each) that the two processes overlap even on a loaded machine.
  await writeExp(dir, 'chain.yaml', chainYaml(counter, 1));
  const [r1, r2] = await Promise.all([cli(['run', 'chain.yaml'], dir), cli(['run', 'chain.yaml'], dir)]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual((await executions(counter)).sort(), ['a', 'b', 'c']);
  // Whichever started second found the stages computed or in progress by the other.
  const executed = [r1.stdout, r2.stdout].map((o) => (o.match(/^ {2}done /gm) ?? []).length);
  assert.equal(executed[0] + executed[1], 3);
});

test('--isolate runs stages in child processes; gc keeps referenced entries; verify finds a flipped byte', async (t) => {
  const dir = await tempDir(t);
  const counter = join(dir, 'count.txt');
  await writeExp(dir, 'chain.yaml', chainYaml(counter));
  const r = await cli(['run', 'chain.yaml', '--isolate'], dir);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.deepEqual(await executions(counter), ['a', 'b', 'c']);
  const st = JSON.parse((await cli(['status', '--json'], dir)).stdout);
  assert.equal(st.instances[0].provenance.executor, 'child-process');

  // A changed experiment run with another runs dir on the same store: its keys are unreferenced here.
  const other = await cli(['run', 'chain.yaml', '-s', 'b.env.X=two', '--runs', 'other-runs', '--store', 'runs/.store'], dir);
  assert.equal(other.code, 0, other.stderr);
  assert.equal((await entries(dir)).length, 5);
  const referenced = st.instances.map((i: { key: string }) => i.key).sort();
  // While the other runs dir exists, its records protect its entries (it registered with the store).
  const guarded = JSON.parse((await cli(['gc', '--json'], dir)).stdout);
  assert.deepEqual(guarded.entries, []);
  assert.equal(guarded.runsDirs.length, 2);
  await rm(join(dir, 'other-runs'), { recursive: true });
  const dry = await cli(['gc', '--json'], dir);
  const rep = JSON.parse(dry.stdout);
  assert.equal(rep.dryRun, true);
  assert.equal(rep.entries.length, 2);
  for (const k of rep.entries) assert.ok(!referenced.includes(k));
  assert.equal((await entries(dir)).length, 5, 'dry run removes nothing');
  const gc = await cli(['gc', '--force', '--grace', '0'], dir);
  assert.equal(gc.code, 0, gc.stderr);
  assert.deepEqual(await entries(dir), referenced);
  const kept = new Set<string>();
  for (const k of referenced) {
    const m = JSON.parse(await readFile(join(dir, 'runs', '.store', 'entries', k, 'manifest.json'), 'utf8'));
    for (const f of m.files) kept.add(f.sha256);
  }
  const blobs: string[] = [];
  for (const p of await readdir(join(dir, 'runs', '.store', 'objects')))
    blobs.push(...(await readdir(join(dir, 'runs', '.store', 'objects', p))));
  assert.deepEqual(blobs.sort(), [...kept].sort(), 'exactly the blobs of kept entries remain');
  const rerun = await cli(['run', 'chain.yaml', '--quiet'], dir);
  assert.match(rerun.stdout, /0 executed, 3 cached/);

  const ok = await cli(['verify'], dir);
  assert.equal(ok.code, 0, ok.stdout);
  const f = join(dir, 'runs', '.store', 'entries', referenced[0], 'out', 'o.txt');
  await chmod(f, 0o644);
  const fh = await open(f, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, 0);
  await fh.write(Buffer.from([b[0] ^ 0x20]), 0, 1, 0);
  await fh.close();
  const bad = await cli(['verify'], dir);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, new RegExp(`CORRUPT entry ${referenced[0]} o\\.txt`));
});

test('a stage failing in a child process reports its own error and log', async (t) => {
  const dir = await tempDir(t);
  await writeExp(
    dir,
    'f.yaml',
    `name: f\nstages:\n  boom: { kind: command, params: { cmd: ${sh('echo "child says no" >&2; exit 3')} } }\n`,
  );
  const r = await cli(['run', 'f.yaml', '--isolate'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /boom \(stage boom\): command "sh" exited with code 3/);
  const log = r.stderr.match(/log: (\S+)/)![1];
  assert.match(await readFile(log, 'utf8'), /child says no/);
});

test('status shows live progress of a running run from its journal', async (t) => {
  const dir = await tempDir(t);
  const gateFile = join(dir, 'open-gate');
  let reached!: () => void;
  const atGate = new Promise<void>((r) => (reached = r));
  const gate: StageKind = {
    kind: 'gate',
    version: 1,
    paramsSchema: { type: 'object' },
    async run(ctx) {
      ctx.progress.total(4, 'shard');
      ctx.progress.set(3);
      ctx.progress.message('shard 3 written');
      reached();
      while (!(await stat(gateFile).catch(() => undefined))) await new Promise((r) => setTimeout(r, 20));
      await writeFile(join(ctx.outDir, 'done'), 'ok');
    },
  };
  const file = await writeExp(dir, 'live.yaml', 'name: live\nstages:\n  g: { kind: gate }\n');
  const running = runFile(dir, file, testRegistry([gate]));
  await atGate;
  await new Promise((r) => setTimeout(r, 1300)); // the journal is flushed in batches
  const st = JSON.parse((await cli(['status', 'live', '--json'], dir)).stdout);
  await writeFile(gateFile, '');
  const res = await running;
  assert.equal(res.status, 'succeeded');
  assert.equal(st.status, 'running');
  assert.equal(st.instances[0].status, 'running');
  assert.deepEqual(
    { ...st.instances[0].progress, rate: undefined, etaMs: undefined },
    { done: 3, total: 4, unit: 'shard', message: 'shard 3 written', rate: undefined, etaMs: undefined },
  );
});

test('every command has a usage example in its help', () => {
  const cmds = [runCommand(), planCommand(), statusCommand(), whyCommand(), lsCommand(), gcCommand(), verifyCommand()];
  for (const c of cmds) {
    let text = '';
    c.configureOutput({ writeOut: (s) => (text += s) });
    c.outputHelp();
    assert.match(text, new RegExp(`\\$ ca-pipe ${c.name()} `), `${c.name()} --help has an example`);
  }
});
