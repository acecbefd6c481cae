// Training throughput (npm run bench:train). A few steps of each:
//   1. frozen CA-Stream on ResNet-50 at 224 (random weights), batch 32, augmentation on: every
//      step runs the backbone through ONNX Runtime, then the CA head forward + backward in tfjs;
//   2. the same from the feature cache (augment: false): the head alone per step, plus the
//      one-off cost of computing the cache;
//   3. scratch training of resnet-mini (and the quickstart's resnet-mini-hr) at 64×64 in tfjs.
// Images/s count step time only (data loading overlaps or is cached); wall times are printed too.
// Every available tfjs backend is measured in one run (each in its own process: the backend is
// chosen once per process), then the tensorflow / wasm ratios are printed.
// Throughput comes from the run's provenance: the train outputs carry no timings (so that reruns
// are byte-identical).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, type BackendName } from '../ml/backend/index.js';
import { buildIndex } from '../ml/data/build-index.js';
import { writeIndexFiles } from '../ml/data/index-file.js';
import { writeSafetensors } from '../ml/io/safetensors.js';
import { createModel } from '../ml/models/model.js';
import { withTrainDefaults, type TrainParams } from '../ml/train/params.js';
import { runTraining } from '../ml/train/run.js';

async function index(dir: string, perClass: number, size: number): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await writeIndexFiles(
    dir,
    await buildIndex(
      { source: 'synthetic', synthetic: { per_class: perClass, size, seed: 1 }, split: { fraction: 0.25, seed: 0 } },
      { baseDir: dir, outDir: dir },
    ),
  );
  return dir;
}

async function randomInit(dir: string, arch: string, classes: number, size: number): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const m = createModel({ arch, head: 'gap', numClasses: classes, seed: 1 });
  const t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of m.stateDict()) t[k] = { dtype: 'F32', ...v };
  m.dispose();
  await writeSafetensors(join(dir, 'final.safetensors'), t);
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({
      format: 'ca-pipe.model/1',
      arch,
      head: 'gap',
      heads: 1,
      num_classes: classes,
      input_size: size,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      classes: Array.from({ length: classes }, (_, i) => `c${i}`),
      weights: 'final.safetensors',
    }),
  );
  return dir;
}

/** `--only <text>`: measure only the cases whose name contains it (e.g. `--only scratch`). */
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i > 0 ? (process.argv[i + 1] ?? '') : '';
})();

interface Rates {
  /** Over every step (the figure recorded in provenance). */
  all: number;
  /** Over the last epoch's steps. */
  last: number;
}

/** The img/s of the run's last epoch log line: TensorFlow's warm-up (first steps of each shape) is behind it. */
function lastEpochRate(logs: string[]): number {
  const last = logs.filter((l) => /^epoch \d+\/\d+:/.test(l)).pop();
  const m = last?.match(/([\d.]+) img\/s/);
  return m ? Number(m[1]) : NaN;
}

async function measure(name: string, p: Partial<TrainParams>, data: string, init: string | undefined, root: string): Promise<Rates> {
  if (ONLY && !name.includes(ONLY)) return { all: NaN, last: NaN };
  const prov: Record<string, unknown> = {};
  const t0 = performance.now();
  const logs: string[] = [];
  const { summary } = await runTraining({
    params: withTrainDefaults({ workers: 2, log_every: 0, ...p }),
    data,
    init,
    outDir: join(root, `${name}-out`),
    scratchDir: join(root, `${name}-scratch`),
    provenance: prov,
    log: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
  });
  const wall = (performance.now() - t0) / 1000;
  const feat = logs.find((l) => l.includes('backbone features computed'));
  const all = (prov.train_images_per_s as number | null) ?? NaN;
  const last = lastEpochRate(logs);
  console.log(
    `${name.padEnd(34)} ${all.toFixed(1).padStart(7)} img/s, last epoch ${last.toFixed(1).padStart(7)}   ` +
      `(${summary.iterations} steps of ${p.batch_size}; wall ${wall.toFixed(1)} s${feat ? `; ${feat.replace(/^train: /, '')}` : ''})`,
  );
  return { all, last };
}

const RESULT = '#result ';

async function onBackend(want: BackendName): Promise<void> {
  const backend = await initBackend(want);
  if (backend.name !== want) throw new Error(`asked for ${want}, got ${backend.name}: ${backend.reason}`);
  const rates: Record<string, Rates> = {};
  const root = mkdtempSync(join(tmpdir(), 'ca-pipe-bench-train-'));
  try {
    console.log(`tfjs backend: ${backend.name}; ONNX Runtime for frozen backbones`);
    const d224 = await index(join(root, 'd224'), 12, 224); // 54 train images → 1 step of 32 per epoch
    const r50 = await randomInit(join(root, 'r50'), 'resnet50', 6, 224);
    const frozen: Partial<TrainParams> = {
      arch: 'resnet50',
      head: 'ca-stream',
      mode: 'frozen',
      batch_size: 32,
      input_size: 224,
      epochs: 3,
      optimizer: 'sgd',
      lr: 0.01,
      schedule: 'constant',
      crop_scale: [0.08, 1],
    };
    rates['frozen R50@224, ONNX/step'] = await measure(
      'frozen R50@224 CA-Stream, ONNX/step',
      { ...frozen, augment: true },
      d224,
      r50,
      root,
    );
    rates['frozen R50@224, cache'] = await measure(
      'frozen R50@224 CA-Stream, cache',
      { ...frozen, augment: false, resize: 224 },
      d224,
      r50,
      root,
    );
    const d64 = await index(join(root, 'd64'), 64, 64); // 288 train images → 9 steps of 32 per epoch
    const scratch: Partial<TrainParams> = {
      head: 'gap',
      mode: 'scratch',
      batch_size: 32,
      input_size: 64,
      resize: 64,
      augment: true,
      crop_scale: [0.35, 1],
      epochs: 4, // 36 steps: enough for a stable rate (the first steps warm the kernels up)
      optimizer: 'adamw',
      lr: 0.003,
      schedule: 'constant',
    };
    rates['scratch resnet-mini@64'] = await measure('scratch resnet-mini@64', { ...scratch, arch: 'resnet-mini' }, d64, undefined, root);
    // The quickstart's backbone (stride-1 layer4), without augmentation as the quickstart trains it.
    rates['scratch resnet-mini-hr@64'] = await measure(
      'scratch resnet-mini-hr@64',
      { ...scratch, arch: 'resnet-mini-hr', augment: false },
      d64,
      undefined,
      root,
    );
    console.log(RESULT + JSON.stringify(Object.fromEntries(Object.entries(rates).filter(([, r]) => !Number.isNaN(r.all)))));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--backend');
  if (i > 0) return onBackend(process.argv[i + 1] as BackendName);
  const only = process.env.CA_PIPE_BACKEND?.trim();
  const backends: BackendName[] = only ? [only as BackendName] : ['wasm', 'tensorflow'];
  const all: Partial<Record<BackendName, Record<string, Rates>>> = {};
  for (const b of backends) {
    console.log(`\n== tfjs backend ${b} ==`);
    try {
      const out = execFileSync(process.execPath, [process.argv[1]!, '--backend', b, ...(ONLY ? ['--only', ONLY] : [])], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      for (const line of out.split('\n')) {
        if (line.startsWith(RESULT)) all[b] = JSON.parse(line.slice(RESULT.length)) as Record<string, Rates>;
        else if (line) console.log(line);
      }
    } catch (e) {
      console.log(
        `${b}: not measured (${String((e as Error).message).split('\n')[0]}; for tensorflow run \`npx ca-pipe setup tensorflow\`)`,
      );
    }
  }
  if (all.wasm && all.tensorflow) {
    console.log('\ntensorflow / wasm (all steps; last epoch):');
    for (const [name, r] of Object.entries(all.tensorflow)) {
      const w = all.wasm[name]!;
      console.log(`  ${name.padEnd(30)} ${(r.all / w.all).toFixed(2)}×; ${(r.last / w.last).toFixed(2)}×`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
