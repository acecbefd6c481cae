// Issue 12, engine/CLI items 5, 6, 13, 15, 16, 17 through the real CLI: run records stay inside
// --runs, system errors name the path, the cause and the remedy, `status` takes the run id `ls`
// prints, Ctrl-C says "interrupted" and how to resume, a killed run's staging is cleaned by the
// next run of its key, and an isolated stage's child process dies with its parent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StageKind } from '../../engine/contract.js';
import { safeName } from '../../engine/run/records.js';
import { markdownSummary } from '../../stages/report/build.js';
import { cli, runFile, startCli, tempDir, testRegistry, writeExp } from './helpers.js';

function sh(script: string): string {
  return `[sh, -c, ${JSON.stringify(script)}]`;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('an experiment file named "...yaml" is refused before any work: records never land above --runs', async (t) => {
  const dir = await tempDir(t);
  const runs = join(dir, 'project', 'runs');
  await writeExp(
    join(dir, 'project'),
    '...yaml',
    `stages:\n  a:\n    kind: command\n    params: { cmd: ${sh('echo hi > "$CA_PIPE_OUT/o.txt"')} }\n`,
  );
  const r = await cli(['run', '...yaml', '--runs', runs], join(dir, 'project'));
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /defaults to the file name "\.\."/);
  assert.match(r.stderr, /add `name: my-study`/);
  assert.deepEqual((await readdir(join(dir, 'project'))).sort(), ['...yaml'], 'nothing written beside the runs dir');
  // And whatever a name is, its records directory is a child of --runs.
  for (const n of ['..', '.', '', '...']) assert.ok(!/^\.*$/.test(safeName(n)), `safeName(${JSON.stringify(n)}) = ${safeName(n)}`);
});

test('summary.md writes a report title as literal text (no Markdown or HTML injection)', () => {
  const md = markdownSummary({
    title: 'Mine <script>alert(1)</script> [x](javascript:alert(1))\n# owned',
    evaluations: [],
    paired: [],
  } as unknown as Parameters<typeof markdownSummary>[0]);
  const first = md.split('\n')[0]!;
  assert.equal(md.split('\n')[1], '', 'the title stays on one line');
  assert.ok(!first.includes('<script>'), first);
  assert.ok(first.includes('&lt;script&gt;'), first);
  assert.ok(first.includes('\\[x\\]'), first);
  assert.ok(!/^# owned/m.test(md), md);
});

test('--store or --runs naming a file: exit 2 with the path, the cause and the option to fix it', async (t) => {
  const dir = await tempDir(t);
  await writeExp(dir, 'e.yaml', `name: e\nstages:\n  a:\n    kind: command\n    params: { cmd: ['true'] }\n`);
  await writeFile(join(dir, 'afile'), 'x');
  const s = await cli(['run', 'e.yaml', '--store', join(dir, 'afile')], dir);
  assert.equal(s.code, 2, s.stderr);
  assert.match(s.stderr, /afile is a file, not a directory/);
  assert.match(s.stderr, /--store DIR/);
  assert.doesNotMatch(s.stderr, /^ca-pipe: ENOTDIR/m);
  const r = await cli(['run', 'e.yaml', '--runs', join(dir, 'afile', 'runs')], dir);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /cannot write run records under .*afile\/runs: .*afile is a file, not a directory/);
  assert.match(r.stderr, /--runs DIR/);
});

test('a full disk during a stage names where it wrote, the scratch it holds and how to free it', async (t) => {
  const dir = await tempDir(t);
  // A real ENOSPC: /dev/full refuses every write with it, after the stage filled 2 MB of scratch.
  const filler: StageKind<Record<string, never>> = {
    kind: 'filler',
    version: 1,
    paramsSchema: { type: 'object', additionalProperties: false },
    async run(ctx) {
      await writeFile(join(ctx.scratchDir, 'checkpoint.bin'), Buffer.alloc(2_000_000));
      await writeFile('/dev/full', Buffer.alloc(10));
    },
  };
  const file = await writeExp(dir, 'full.yaml', `name: full\nstages:\n  fill: { kind: filler }\n`);
  const r = await runFile(dir, file, testRegistry([filler as StageKind]));
  assert.equal(r.status, 'failed');
  const msg = r.failures[0]!.error;
  assert.match(msg, /no space left on the device \(ENOSPC/);
  assert.match(msg, /while stage fill wrote its outputs \(.*staging/);
  assert.match(msg, /holds 2\.0 MB of scratch in .*scratch/);
  assert.match(msg, /rm -rf .*scratch/);
  assert.match(msg, /ca-pipe gc --force/);
});

test('`ca-pipe status <id>` takes the run id `ca-pipe ls` prints', async (t) => {
  const dir = await tempDir(t);
  await writeExp(dir, 'e.yaml', `name: e\nstages:\n  a:\n    kind: command\n    params: { cmd: ['true'] }\n`);
  assert.equal((await cli(['run', 'e.yaml', '--quiet'], dir)).code, 0);
  const ls = await cli(['ls'], dir);
  const id = ls.stdout.trim().split(/\s+/)[0]!;
  const s = await cli(['status', id], dir);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, new RegExp(`^run ${id} of e: succeeded`));
  const bad = await cli(['status', 'no-such-run'], dir);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no run with id "no-such-run".*`ca-pipe ls` lists the runs/);
});

function slowPair(marker: string): string {
  return `name: slow
stages:
  s:
    kind: command
    params: { cmd: ${sh(`touch ${marker}.started; if [ -f ${marker} ]; then sleep 30; fi; echo done > "$CA_PIPE_OUT/o.txt"`)} }
  after:
    kind: command
    needs: [s]
    params: { cmd: ['true'] }
`;
}

test('Ctrl-C: the stage is shown interrupted (not FAILED), its dependents as skipped by the interruption, and how to resume', async (t) => {
  const dir = await tempDir(t);
  const marker = join(dir, 'slow');
  await writeFile(marker, '');
  await writeExp(dir, 'slow.yaml', slowPair(marker));
  const run = startCli(['run', 'slow.yaml'], dir);
  await waitFor('the stage to start', () => existsSync(`${marker}.started`));
  run.child.kill('SIGINT');
  const r = await run.done;
  const said = r.stdout + r.stderr;
  assert.equal(r.code, 130, said);
  assert.doesNotMatch(said, /FAILED|upstream .* failed/);
  assert.match(said, /interrupted s \(the same command resumes it\)/);
  assert.match(said, /skipped {3}after \(run interrupted\)/);
  assert.match(said, /Resume with the same command: ca-pipe run slow\.yaml/);
  const st = await cli(['status'], dir);
  assert.match(st.stdout, /^ {2}interrupted s /m);
});

test('a SIGKILLed run leaves its staging dir; the next run of that key removes it', async (t) => {
  const dir = await tempDir(t);
  const marker = join(dir, 'slow');
  await writeFile(marker, '');
  await writeExp(dir, 'slow.yaml', slowPair(marker));
  const run = startCli(['run', 'slow.yaml', '--quiet'], dir);
  await waitFor('the stage to start', () => existsSync(`${marker}.started`));
  process.kill(-run.child.pid!, 'SIGKILL');
  await run.done;
  const staging = join(dir, 'runs', '.store', 'staging');
  const orphans = await readdir(staging);
  assert.equal(orphans.length, 1, 'the killed attempt left its staging dir');
  await rm(marker);
  const again = await cli(['run', 'slow.yaml', '--quiet'], dir);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await readdir(staging), [], `left: ${orphans}`);
});

test('run --isolate: kill -9 of the parent takes its `ca-pipe exec` child (and the stage command) with it', async (t) => {
  const dir = await tempDir(t);
  const marker = join(dir, 'slow');
  await writeFile(marker, '');
  await mkdir(join(dir, 'runs'), { recursive: true });
  await writeExp(dir, 'slow.yaml', slowPair(marker));
  const run = startCli(['run', 'slow.yaml', '--quiet', '--isolate'], dir);
  t.after(() => {
    try {
      process.kill(-run.child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  await waitFor('the stage to start', () => existsSync(`${marker}.started`));
  const exec = childrenOf(run.child.pid!).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('exec'));
  assert.equal(exec.length, 1, 'one ca-pipe exec child');
  const grandchildren = childrenOf(exec[0]!);
  run.child.kill('SIGKILL'); // the parent only, not its process group
  await run.done;
  await waitFor('the exec child to exit', () => !alive(exec[0]!), 5000);
  await waitFor('the stage command to exit', () => grandchildren.every((p) => !alive(p)), 5000);
});
