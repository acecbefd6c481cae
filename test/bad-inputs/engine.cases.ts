// Bad-input catalogue, engine and CLI area: the store, run records and run control (issue 12).
// Each case makes the mistake for real in its scratch directory and runs the real CLI.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BadInputCase } from './case.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'bin', 'ca-pipe.js'))) {
    const up = dirname(d);
    if (up === d) throw new Error('engine.cases: cannot find bin/ca-pipe.js above this file');
    d = up;
  }
  return d;
}

const BIN = join(repoRoot(), 'bin', 'ca-pipe.js');

interface Started {
  done: Promise<{ exitCode: number | null; output: string }>;
  output: () => string;
  signal: (s: NodeJS.Signals) => void;
}

function start(args: string[], cwd: string): Started {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const done = new Promise<{ exitCode: number | null; output: string }>((res) =>
    child.on('close', (code) => res({ exitCode: code, output })),
  );
  return { done, output: () => output, signal: (s) => void child.kill(s) };
}

function run(args: string[], cwd: string): Promise<{ exitCode: number | null; output: string }> {
  return start(args, cwd).done;
}

function sh(script: string): string {
  return `[sh, -c, ${JSON.stringify(script)}]`;
}

const ONE_STAGE = `name: e\nstages:\n  a:\n    kind: command\n    params: { cmd: ${sh('echo 41 > "$CA_PIPE_OUT/evaluation.json"')} }\n`;

export const cases: BadInputCase[] = [
  {
    id: 'engine-name-dots',
    area: 'store',
    mistake: 'An experiment file named `...yaml` (its default name `..` would put run records above --runs).',
    async run(dir) {
      await writeFile(join(dir, '...yaml'), ONE_STAGE.replace('name: e\n', ''));
      return run(['run', '...yaml'], dir);
    },
    expect: /the experiment name defaults to the file name "\.\.", which cannot name a directory under --runs: add `name: my-study`/,
    exitCode: 2,
  },
  {
    id: 'engine-store-is-a-file',
    area: 'store',
    mistake: '`--store` names a file, not a directory.',
    async run(dir) {
      await writeFile(join(dir, 'e.yaml'), ONE_STAGE);
      await writeFile(join(dir, 'store'), 'not a directory\n');
      return run(['run', 'e.yaml', '--store', 'store'], dir);
    },
    expect: /cannot use .*store as the store: .*store is a file, not a directory \(ENOTDIR\): choose a directory with --store DIR/,
    exitCode: 2,
  },
  {
    id: 'engine-runs-under-a-file',
    area: 'store',
    mistake: '`--runs` names a path below a file.',
    async run(dir) {
      await writeFile(join(dir, 'e.yaml'), ONE_STAGE);
      await writeFile(join(dir, 'notes.txt'), 'a file\n');
      return run(['run', 'e.yaml', '--runs', 'notes.txt/runs', '--store', 'store'], dir);
    },
    expect:
      /cannot write run records under .*notes\.txt\/runs: .*notes\.txt is a file, not a directory \(ENOTDIR\): choose a writable directory with --runs DIR/,
    exitCode: 2,
  },
  {
    id: 'engine-output-link-outside',
    area: 'store',
    mistake: "A `command` stage's output is a symbolic link to a file outside its output directory.",
    async run(dir) {
      await writeFile(join(dir, 'mine.txt'), 'my own file\n');
      await writeFile(
        join(dir, 'e.yaml'),
        `name: e\nstages:\n  a:\n    kind: command\n    params:\n      cmd: ${sh(`ln -s ${join(dir, 'mine.txt')} "$CA_PIPE_OUT/result.txt"`)}\n      outs: [result.txt]\n`,
      );
      return run(['run', 'e.yaml', '--quiet'], dir);
    },
    expect:
      /result\.txt is a symbolic link to .*mine\.txt, outside the stage's output directory .*: the store cannot keep it without touching that file\. Copy the file into the output directory instead of linking it/,
    exitCode: 1,
  },
  {
    id: 'engine-edited-cache-entry',
    area: 'store',
    mistake: 'A file of a committed store entry was edited by hand (the run recomputes it instead of using the edit).',
    async run(dir) {
      await writeFile(join(dir, 'e.yaml'), ONE_STAGE);
      const first = await run(['run', 'e.yaml', '--quiet'], dir);
      if (first.exitCode !== 0) return first;
      const rec = JSON.parse(await readFile(join(dir, 'runs', 'e', 'latest', 'run.json'), 'utf8')) as { instances: Array<{ key: string }> };
      const f = join(dir, 'runs', '.store', 'entries', rec.instances[0]!.key, 'out', 'evaluation.json');
      await chmod(f, 0o644);
      await writeFile(f, '99\n');
      return run(['run', 'e.yaml'], dir);
    },
    expect:
      /damaged {3}a: its cached entry changed after commit \(evaluation\.json: modified after commit .*\); moved to .*quarantine.*, recomputing/,
    exitCode: 0,
  },
  {
    id: 'engine-status-unknown-run',
    area: 'cli',
    mistake: '`ca-pipe status` given a run id that does not exist.',
    async run(dir) {
      await mkdir(join(dir, 'runs'), { recursive: true });
      return run(['status', '20990101-000000000-beef'], dir);
    },
    expect: /no run of "20990101-000000000-beef" and no run with id "20990101-000000000-beef" under .*runs: `ca-pipe ls` lists the runs/,
    exitCode: 2,
  },
  {
    id: 'engine-ctrl-c',
    area: 'cli',
    mistake: 'Ctrl-C during a run (not a failure: the run can be resumed).',
    async run(dir) {
      const marker = join(dir, 'started');
      await writeFile(
        join(dir, 'e.yaml'),
        `name: e\nstages:\n  slow:\n    kind: command\n    params: { cmd: ${sh(`touch ${marker}; sleep 30`)} }\n  after:\n    kind: command\n    needs: [slow]\n    params: { cmd: ['true'] }\n`,
      );
      const r = start(['run', 'e.yaml'], dir);
      const until = Date.now() + 20_000;
      while (!existsSync(marker) && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
      r.signal('SIGINT');
      return r.done;
    },
    expect:
      /interrupted slow \(the same command resumes it\)[\s\S]*skipped {3}after \(run interrupted\)[\s\S]*Resume with the same command: ca-pipe run e\.yaml/,
    exitCode: 130,
  },
];
