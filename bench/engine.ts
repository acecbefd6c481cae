// Engine benchmarks (`npm run bench:engine`):
//  (a) planning a 1,000-variant sweep of a 5-stage experiment (benchPlan from engine-plan.ts);
//  (b) overhead of a fully cached rerun of a 5-stage `command` experiment through the real CLI
//      (`node bin/ca-pipe.js run`), minus the cost of starting node itself (`node -e 0`). The
//      first (executing) run also fills the tool cache (compiled validators, parsed YAML), as any
//      first run of an experiment does; the timed reruns are what a user sees afterwards.
// Targets: (a) < 1 s, (b) < 300 ms.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchPlan } from './engine-plan.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('bench/engine: cannot find package.json above the script');
    d = up;
  }
  return d;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function timeRun(cmd: string, args: string[], cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

const FIVE_STAGES = `name: bench-rerun
stages:
  s1: { kind: command, params: { cmd: [sh, -c, 'echo 1 > "$CA_PIPE_OUT/o"'] } }
  s2: { kind: command, needs: [s1], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_S1/o" > "$CA_PIPE_OUT/o"; echo 2 >> "$CA_PIPE_OUT/o"'] } }
  s3: { kind: command, needs: [s2], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_S2/o" > "$CA_PIPE_OUT/o"; echo 3 >> "$CA_PIPE_OUT/o"'] } }
  s4: { kind: command, needs: [s3], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_S3/o" > "$CA_PIPE_OUT/o"; echo 4 >> "$CA_PIPE_OUT/o"'] } }
  s5: { kind: command, needs: [s4], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_S4/o" > "$CA_PIPE_OUT/o"; echo 5 >> "$CA_PIPE_OUT/o"'] } }
`;

export async function benchCachedRerun(n = 10): Promise<{ medianMs: number; nodeMs: number; overheadMs: number; runs: number[] }> {
  const bin = join(repoRoot(), 'bin', 'ca-pipe.js');
  const dir = mkdtempSync(join(tmpdir(), 'ca-pipe-bench-rerun-'));
  try {
    writeFileSync(join(dir, 'exp.yaml'), FIVE_STAGES);
    timeRun(process.execPath, [bin, 'run', 'exp.yaml', '--quiet'], dir); // first run executes
    const runs: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < n; i++) {
      bare.push(timeRun(process.execPath, ['-e', '0'], dir));
      runs.push(timeRun(process.execPath, [bin, 'run', 'exp.yaml', '--quiet'], dir));
    }
    const medianMs = median(runs);
    const nodeMs = median(bare);
    return { medianMs, nodeMs, overheadMs: medianMs - nodeMs, runs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Other work on the machine inflates every wall-clock figure: print the load next to each.
const load = (): string =>
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
const plan = await benchPlan();
console.log(
  `(a) plan: ${plan.variants} variants, ${plan.instances} stage instances in ${plan.ms.toFixed(0)} ms (target < 1000 ms) [${load()}]`,
);
const rerun = await benchCachedRerun();
console.log(
  `(b) fully cached rerun of 5 command stages: median ${rerun.medianMs.toFixed(0)} ms, node -e 0 ${rerun.nodeMs.toFixed(0)} ms, ` +
    `overhead ${rerun.overheadMs.toFixed(0)} ms (target < 300 ms) [${load()}]`,
);
