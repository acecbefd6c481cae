// Slurm executor benchmarks (`npm run bench:slurm`, needs a running Slurm: scripts/slurm-ci-up.sh):
//  (a) overhead per stage instance under Slurm versus local (in-process) on the reduced quickstart
//      (8 instances): (slurm wall − local wall) / instances, both on a clean store;
//  (b) the same on a chain of 5 trivial `command` stages, where nearly everything is overhead;
//  (c) time to submit a 100-variant sweep (one shared stage, two per-variant stages): from the
//      driver's start to the last sbatch returning, and how many sbatch calls that took. The jobs
//      are cancelled afterwards (`ca-pipe cancel`), so the machine is not kept busy;
//  (d) one evaluate stage split over its shards (issue 15): on Slurm with parallel.shards 1 vs 4
//      (the overhead of the array tasks and the merge), and locally with --executor child-process
//      and 1 vs 2 workers, each on a copy of one store where everything upstream is cached, so the
//      wall time is the evaluate stage's. BENCH_SPLIT_PER_CLASS (default 32) sets the images
//      (half of 2 × per_class are scored); BENCH_SLURM_ONLY=split runs (d) alone.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { serializeSafetensors, type TensorToWrite } from '../ml/io/safetensors.js';
import { getBackbone } from '../ml/models/backbones.js';
import { initialValue, paramSpecs } from '../ml/models/params.js';
import { Rng } from '../ml/models/rng.js';
import { REDUCED_QUICKSTART, setFlags } from '../test/e2e/helpers.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('bench/slurm: cannot find package.json above the script');
    d = up;
  }
  return d;
}

const ROOT = repoRoot();
const BIN = join(ROOT, 'bin', 'ca-pipe.js');
const ENV = { ...process.env, CA_PIPE_SLURM_POLL_MS: process.env.CA_PIPE_SLURM_POLL_MS ?? '250' };
const REDUCED = setFlags(REDUCED_QUICKSTART);

function timed(args: string[], cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: ENV });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`ca-pipe ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return ms;
}

function overhead(name: string, file: string, extra: string[], instances: number, cwd: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'ca-pipe-bench-slurm-'));
  try {
    const where = (k: string) => ['--store', join(dir, `${k}-store`), '--runs', join(dir, `${k}-runs`)];
    const local = timed(['run', file, '--quiet', ...where('local'), ...extra], cwd);
    const slurm = timed(['run', file, '--quiet', '--executor', 'slurm', ...where('slurm'), ...extra], cwd);
    console.log(
      `${name}: local ${(local / 1000).toFixed(1)} s, slurm ${(slurm / 1000).toFixed(1)} s, ${instances} instances → overhead ${((slurm - local) / instances / 1000).toFixed(2)} s per instance`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CHAIN = `name: bench-chain
stages:
  s1: { kind: command, params: { cmd: [sh, -c, 'echo 1 > "$CA_PIPE_OUT/o"'] } }
  s2: { kind: command, needs: [s1], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_S1/o" > "$CA_PIPE_OUT/o"'] } }
  s3: { kind: command, needs: [s2], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_S2/o" > "$CA_PIPE_OUT/o"'] } }
  s4: { kind: command, needs: [s3], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_S3/o" > "$CA_PIPE_OUT/o"'] } }
  s5: { kind: command, needs: [s4], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_S4/o" > "$CA_PIPE_OUT/o"'] } }
`;

function sweep(n: number): string {
  const values = Array.from({ length: n }, (_, i) => `"${i}"`).join(', ');
  return `name: bench-sweep
executor: slurm
sweep:
  train.env.V: [${values}]
stages:
  prep: { kind: command, params: { cmd: [sh, -c, 'sleep 30; echo d > "$CA_PIPE_OUT/d"'] } }
  train: { kind: command, needs: [prep], params: { cmd: [sh, -c, 'echo $V > "$CA_PIPE_OUT/m"'], env: { V: "x" } } }
  eval: { kind: command, needs: [train], params: { cmd: [sh, -c, 'cat "$CA_PIPE_IN_TRAIN/m" > "$CA_PIPE_OUT/e"'] } }
`;
}

async function submitSweep(n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ca-pipe-bench-sweep-'));
  try {
    writeFileSync(join(dir, 'exp.yaml'), sweep(n));
    const t0 = performance.now();
    const driver = spawn(process.execPath, [BIN, 'run', 'exp.yaml', '--quiet'], { cwd: dir, env: ENV, stdio: 'ignore' });
    const journal = join(dir, 'runs', 'bench-sweep', 'latest', 'slurm', 'jobs.jsonl');
    const total = 1 + 2 * n;
    let lines: Array<{ t: string; job?: string; tasks: Record<string, string> }> = [];
    for (;;) {
      try {
        lines = readFileSync(journal, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l));
      } catch {
        lines = [];
      }
      const covered = lines.filter((l) => l.job).reduce((s, l) => s + Object.keys(l.tasks).length, 0);
      if (covered >= total) break;
      if (performance.now() - t0 > 120_000) throw new Error(`only ${covered}/${total} instances submitted after 120 s`);
      await sleep(20);
    }
    const ms = performance.now() - t0;
    const run = JSON.parse(readFileSync(join(dir, 'runs', 'bench-sweep', 'latest', 'run.json'), 'utf8')) as { startedAt: string };
    const last = Math.max(...lines.filter((l) => l.job).map((l) => Date.parse(l.t)));
    const sbatch = lines.filter((l) => l.job).length;
    console.log(
      `${n}-variant sweep (${total} instances): all submitted ${(ms / 1000).toFixed(2)} s after starting ca-pipe run ` +
        `(${((last - Date.parse(run.startedAt)) / 1000).toFixed(2)} s after the run record was created), ${sbatch} sbatch call(s)`,
    );
    timed(['cancel', join(dir, 'runs', 'bench-sweep', 'latest')], dir);
    await new Promise((r) => driver.on('close', r));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A saliency + evaluate experiment on a seeded resnet-mini (64 px), evaluate split `shards` ways (0: no evaluate stage). */
function splitExperiment(dir: string, perClass: number, shards: number): string {
  const tensors: Record<string, TensorToWrite> = {};
  const rng = new Rng(0);
  for (const spec of paramSpecs(getBackbone('resnet-mini'), { head: 'gap', numClasses: 2 }))
    tensors[spec.name] = { shape: spec.fileShape, data: initialValue(spec, rng) };
  writeFileSync(join(dir, 'w.safetensors'), serializeSafetensors(tensors));
  writeFileSync(
    join(dir, 'wrap.mjs'),
    `import { copyFileSync, writeFileSync } from 'node:fs';
const out = process.argv[2];
copyFileSync('w.safetensors', out + '/final.safetensors');
writeFileSync(out + '/model.json', JSON.stringify({ format: 'ca-pipe.model/1', arch: 'resnet-mini', head: 'gap', heads: 1, num_classes: 2,
  input_size: 64, resize: 64, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], classes: ['circle', 'square'], weights: 'final.safetensors' }));
`,
  );
  const file = join(dir, `split-${shards}.yaml`);
  writeFileSync(
    file,
    `name: bench-split
stages:
  data: { kind: index, params: { source: synthetic, synthetic: { classes: 2, per_class: ${perClass}, size: 64 }, split: { fraction: 0.5 } } }
  weights: { kind: command, params: { cmd: [node, wrap.mjs, "{out}"], deps: [w.safetensors, wrap.mjs], outs: [model.json, final.safetensors] } }
  saliency: { kind: saliency, needs: { model: weights, data: data }, params: { methods: [gradcam, random, center], shard_size: 2, overlays: 0 } }
${shards ? '' : '#'}  evaluate:
    kind: evaluate
    needs: { model: weights, data: data, saliency: saliency }
    params: { protocol_overrides: { insdel: { step: { count: 1 } } }, bootstrap: { samples: 100 } }
    parallel: { shards: ${shards || 1} }
`.replace(/\n#[^]*$/, '\n'),
  );
  return file;
}

/** (d): wall time of the evaluate stage alone, split n ways, on Slurm or on local workers. */
function splitBench(): void {
  const perClass = Number(process.env.BENCH_SPLIT_PER_CLASS) || 32;
  const dir = mkdtempSync(join(tmpdir(), 'ca-pipe-bench-split-'));
  try {
    // Everything but evaluate (the same keys: a stage's key does not depend on its dependents), once:
    // every measured run starts from a copy of this store.
    const base = splitExperiment(dir, perClass, 0);
    timed(['run', base, '--quiet', '--store', join(dir, 'base-store'), '--runs', join(dir, 'base-runs')], dir);
    const measure = (shards: number, executor: string): number => {
      const file = splitExperiment(dir, perClass, shards);
      const store = join(dir, `${executor}-${shards}-store`);
      cpSync(join(dir, 'base-store'), store, { recursive: true });
      return timed(
        ['run', file, '--quiet', '--executor', executor, '--store', store, '--runs', join(dir, `${executor}-${shards}-runs`)],
        dir,
      );
    };
    const images = perClass; // 2 classes × per_class × fraction 0.5
    const s1 = measure(1, 'slurm');
    const s4 = measure(4, 'slurm');
    console.log(
      `evaluate of ${images} images on Slurm: shards 1 ${(s1 / 1000).toFixed(1)} s, shards 4 ${(s4 / 1000).toFixed(1)} s (ratio ${(s1 / s4).toFixed(2)}; ` +
        `4 array tasks + a merge vs one job)`,
    );
    const c1 = measure(1, 'child-process');
    const c2 = measure(2, 'child-process');
    console.log(
      `evaluate of ${images} images on local child-process workers: 1 worker ${(c1 / 1000).toFixed(1)} s, 2 workers ${(c2 / 1000).toFixed(1)} s (speed-up ${(c1 / c2).toFixed(2)}×)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const have = spawnSync('sh', ['-c', 'command -v sbatch'], { encoding: 'utf8' });
if (have.status !== 0) {
  console.log('bench:slurm: sbatch is not on PATH; start a one-node Slurm with `sudo bash scripts/slurm-ci-up.sh`');
  process.exit(1);
}
if (process.env.BENCH_SLURM_ONLY !== 'split') {
  const chainDir = mkdtempSync(join(tmpdir(), 'ca-pipe-bench-chain-'));
  writeFileSync(join(chainDir, 'exp.yaml'), CHAIN);
  overhead('5-stage trivial chain', join(chainDir, 'exp.yaml'), [], 5, chainDir);
  rmSync(chainDir, { recursive: true, force: true });
  overhead('reduced quickstart', join(ROOT, 'experiments', 'quickstart.yaml'), REDUCED, 8, ROOT);
  await submitSweep(100);
}
splitBench();
