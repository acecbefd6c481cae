// Forward-pass throughput: ResNet-50 at 224, batch 8, deterministic random weights; then
// ConvNeXt-B and EfficientNet-B0 (GAP and CA-Stream, ONNX Runtime, GFLOP and share of the MatMul rate).
//   npm run bench:forward            (ONNX GAP, ONNX CA-Stream h=1/h=8, then tfjs on tensorflow and
//                                     on wasm, each in a child process: img/s and peak RSS per engine;
//                                     then the families)
//   node dist/bench/forward.js --sweep   also compares ONNX Runtime session options
//   node dist/bench/forward.js --no-tfjs skips the (slow) tfjs line; BENCH_RUNS=n timed batches
//   node dist/bench/forward.js --families-only / --no-families
import { availableParallelism, loadavg } from 'node:os';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { InferenceSession } from 'onnxruntime-node';
import { getArch, tapChannels, type ResNetArch } from '../ml/models/arch.js';
import { encodeModel, valueInfo, type ModelMsg } from '../ml/onnx/proto.js';
import { createSession, defaultSessionOptions, DEFAULT_CACHE_DIR } from '../ml/onnx/runtime.js';
import { expectedWeights, type HeadKind, type WeightMap } from '../ml/onnx/weights.js';
import { backboneSpec } from '../ml/models/resnet-backbone.js';
import { graphMacs, measureFamily, randomFamilyWeights } from './forward-families.js';
import { getBackbone } from '../ml/models/backbones.js';
import { mulberry32 } from '../ml/random/mulberry32.js';

const BATCH = 8;
const SIZE = 224;
const WARMUP = 3;
const RUNS = Number(process.env.BENCH_RUNS ?? 9);

const rng = mulberry32;

function gaussian(r: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/**
 * He-normal convs (fan_in), BN close to identity with the block's last BN damped (so the residual
 * sum does not blow up over 16 blocks), xavier-uniform CA projections, N(1,1) token.
 */
export function randomResNetWeights(arch: ResNetArch, head: HeadKind, numClasses: number, seed = 0): WeightMap {
  const g = gaussian(rng(seed));
  const u = rng(seed + 1);
  const out: WeightMap = new Map();
  const lastBn = arch.block === 'basic' ? /\.bn2\./ : /\.bn3\./;
  for (const [key, shape] of expectedWeights(arch, head, numClasses)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (key.endsWith('.weight') && shape.length === 4) {
      const std = Math.sqrt(2 / (shape[1] * shape[2] * shape[3]));
      for (let i = 0; i < n; i++) data[i] = g() * std;
    } else if (key.endsWith('running_var')) {
      for (let i = 0; i < n; i++) data[i] = 0.8 + 0.4 * u();
    } else if (key.endsWith('running_mean') || (key.endsWith('.bias') && !key.includes('to_out') && !key.startsWith('fc'))) {
      for (let i = 0; i < n; i++) data[i] = 0.05 * g();
    } else if (/(^bn1|\.bn\d|downsample\.1)\.weight$/.test(key)) {
      const scale = lastBn.test(key) ? 0.2 : 1;
      for (let i = 0; i < n; i++) data[i] = scale * (1 + 0.05 * g());
    } else if (key === 'cls_token') {
      for (let i = 0; i < n; i++) data[i] = 1 + g();
    } else if (key.endsWith('.weight')) {
      const bound = Math.sqrt(6 / (shape[0] + shape[1]));
      for (let i = 0; i < n; i++) data[i] = (2 * u() - 1) * bound;
    } else {
      for (let i = 0; i < n; i++) data[i] = 0.01 * g();
    }
    out.set(key, { shape, data });
  }
  return out;
}

/** Busy and total jiffies of all CPUs (Linux); undefined elsewhere. */
function cpuJiffies(): { busy: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/**
 * Cores used by OTHER processes while `fn` ran: machine-wide busy time minus our own CPU time.
 * The machine is shared, so every figure is printed with this.
 */
async function withLoad<T>(fn: () => Promise<T>): Promise<{ value: T; othersCores?: number }> {
  const j0 = cpuJiffies();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wallS = (performance.now() - t0) / 1000;
  const j1 = cpuJiffies();
  const own = process.cpuUsage(c0);
  if (!j0 || !j1) return { value };
  const cores = availableParallelism();
  const busyCores = ((j1.busy - j0.busy) / (j1.total - j0.total)) * cores;
  const ownCores = (own.user + own.system) / 1e6 / wallS;
  return { value, othersCores: Math.max(0, busyCores - ownCores) };
}

/** Multiply-adds of one forward pass (convolutions and fc), from the arch table. */
export function resnetMacs(arch: ResNetArch, size: number, numClasses = 1000): number {
  const out = (s: number, k: number, st: number, p: number) => Math.floor((s + 2 * p - k) / st) + 1;
  const layout = backboneSpec(arch);
  let side = out(size, 7, 2, 3);
  let macs = arch.stemWidth * 3 * 49 * side * side;
  side = out(side, 3, 2, 1);
  const convMacs = (shape: number[], o: number) => shape.reduce((a, b) => a * b, 1) * o * o;
  for (const stage of layout.stages) {
    for (const b of stage) {
      let s = side;
      b.convs.forEach((cb, i) => {
        s = out(s, b.shapes[i][2], cb.stride, cb.pad);
        macs += convMacs(b.shapes[i], s);
      });
      if (b.downsample) macs += convMacs(b.downsampleShape!, s);
      side = s;
    }
  }
  return macs + numClasses * tapChannels(arch).layer4;
}

/**
 * A reference fp32 rate for this machine: best-of-N time of a 2048³ MatMul in ONNX Runtime with
 * the same session options (best-of, because other processes can only slow a run down).
 */
async function matmulPeakGflops(): Promise<number> {
  const n = 2048;
  const model: ModelMsg = {
    irVersion: 8,
    producerName: 'ca-pipe-bench',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: 17 }],
    metadataProps: [],
    graph: {
      name: 'matmul',
      node: [{ name: 'mm', opType: 'MatMul', input: ['a', 'b'], output: ['c'], attribute: [] }],
      initializer: [],
      input: [valueInfo('a', [n, n]), valueInfo('b', [n, n])],
      output: [valueInfo('c', [n, n])],
    },
  };
  const session = await ort.InferenceSession.create(encodeModel(model), defaultSessionOptions());
  const g = gaussian(rng(3));
  const a = new ort.Tensor(
    'float32',
    new Float32Array(n * n).map(() => g()),
    [n, n],
  );
  const b = new ort.Tensor(
    'float32',
    new Float32Array(n * n).map(() => g()),
    [n, n],
  );
  let best = Infinity;
  for (let i = 0; i < 10; i++) {
    const s = performance.now();
    await session.run({ a, b });
    best = Math.min(best, performance.now() - s);
  }
  await session.release();
  return (2 * n * n * n) / (best / 1000) / 1e9;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

interface Measured {
  imgPerSec: number;
  msPerBatch: number;
  setupMs: number;
  cacheHit: boolean;
  othersCores?: number;
  bestMs: number;
}

async function measureOnnx(
  arch: ResNetArch,
  head: HeadKind,
  heads: number,
  input: Float32Array,
  sessionOptions?: InferenceSession.SessionOptions,
): Promise<Measured> {
  const weights = randomResNetWeights(arch, head, 1000);
  const t0 = performance.now();
  const model = await createSession({ arch, head, heads, weights, cacheDir: DEFAULT_CACHE_DIR, sessionOptions, outputs: ['logits'] });
  const setupMs = performance.now() - t0;
  for (let i = 0; i < WARMUP; i++) await model.run(input, BATCH, SIZE, SIZE);
  const times: number[] = [];
  let check = 0;
  const { othersCores } = await withLoad(async () => {
    for (let i = 0; i < RUNS; i++) {
      const s = performance.now();
      const r = await model.run(input, BATCH, SIZE, SIZE);
      times.push(performance.now() - s);
      check += r.logits.data[0];
    }
  });
  await model.release();
  if (!Number.isFinite(check)) throw new Error(`${head}: non-finite logits — the random weights are not sane`);
  const ms = median(times);
  return { bestMs: Math.min(...times), imgPerSec: (BATCH * 1000) / ms, msPerBatch: ms, setupMs, cacheHit: model.exported.hit, othersCores };
}

async function cpuCostPerImage(arch: ResNetArch, input: Float32Array): Promise<number> {
  const model = await createSession({ arch, head: 'gap', weights: randomResNetWeights(arch, 'gap', 1000) }); // default: no spinning
  await model.run(input, BATCH, SIZE, SIZE);
  const c0 = process.cpuUsage();
  for (let i = 0; i < RUNS; i++) await model.run(input, BATCH, SIZE, SIZE);
  const c = process.cpuUsage(c0);
  await model.release();
  return (c.user + c.system) / 1000 / (RUNS * BATCH);
}

function line(label: string, m: Measured): void {
  console.log(
    `${label.padEnd(44)} ${m.imgPerSec.toFixed(1).padStart(6)} img/s  (${m.msPerBatch.toFixed(0)} ms/batch of ${BATCH}, median of ${RUNS}; setup ${m.setupMs.toFixed(0)} ms${m.cacheHit ? ', export cached' : ', exported'}${m.othersCores === undefined ? '' : `; other processes used ${m.othersCores.toFixed(2)} cores meanwhile`})`,
  );
}

type TfjsResult =
  | { backend: string; imgPerSec: number; msPerBatch: number; runs: number; othersCores?: number; coreMsPerImg: number; maxRssMiB: number }
  | { skipped: string };

/**
 * Child mode (`--tfjs-child <backend>`): one tfjs backend per process, because the backend is
 * chosen once per process and peak RSS only grows. Measures the tfjs ForwardSession, the same
 * code a frozen job with `engine: tfjs` runs (NCHW in, logits out), and prints one JSON line.
 */
async function tfjsChild(backend: 'tensorflow' | 'wasm', input: Float32Array, archName = 'resnet50'): Promise<TfjsResult> {
  const { initBackend, setBackendLogger } = await import('../ml/backend/index.js');
  const { TfjsSession } = await import('../ml/forward/tfjs-session.js');
  setBackendLogger(() => {});
  const choice = await initBackend(backend);
  if (choice.name !== backend) return { skipped: `${backend} does not load here (${choice.reason})` };
  const arch = archName === 'resnet50' ? getArch('resnet50') : getBackbone(archName);
  const session = new TfjsSession({
    arch,
    head: 'gap',
    weights: archName === 'resnet50' ? randomResNetWeights(getArch('resnet50'), 'gap', 1000) : randomFamilyWeights(archName, 'gap', 1000),
    weightsFile: 'bench random weights',
    outputs: ['logits'],
  });
  const runs = backend === 'wasm' ? Math.min(RUNS, 3) : RUNS;
  await session.run(input, BATCH, SIZE, SIZE);
  const times: number[] = [];
  const c0 = process.cpuUsage();
  const { othersCores } = await withLoad(async () => {
    for (let i = 0; i < runs; i++) {
      const s = performance.now();
      await session.run(input, BATCH, SIZE, SIZE);
      times.push(performance.now() - s);
    }
  });
  const c = process.cpuUsage(c0);
  await session.release();
  const ms = median(times);
  // CPU time per image is what a loaded machine distorts least (compare ONNX Runtime's "compute cost").
  const coreMsPerImg = (c.user + c.system) / 1000 / (runs * BATCH);
  return {
    backend: `${choice.name}, ${choice.device}`,
    imgPerSec: (BATCH * 1000) / ms,
    msPerBatch: ms,
    runs,
    othersCores,
    coreMsPerImg,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

function tfjsLine(backend: 'tensorflow' | 'wasm', arch = 'resnet50'): void {
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--tfjs-child', backend, '--arch', arch],
    {
      encoding: 'utf8',
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2' },
      maxBuffer: 1 << 24,
    },
  );
  const last = child.stdout.trim().split('\n').pop() ?? '';
  let r: TfjsResult;
  try {
    r = JSON.parse(last) as TfjsResult;
  } catch {
    console.log(`tfjs ${backend}: failed (exit ${child.status}): ${(child.stderr || last).trim().split('\n').slice(-3).join(' | ')}`);
    return;
  }
  if ('skipped' in r) {
    console.log(`tfjs ${backend}: skipped — ${r.skipped}`);
    return;
  }
  const load = r.othersCores === undefined ? '' : `; other processes used ${r.othersCores.toFixed(2)} cores meanwhile`;
  console.log(
    `${`tfjs ${arch} gap (${r.backend})`.padEnd(44)} ${r.imgPerSec.toFixed(1).padStart(6)} img/s  (${r.msPerBatch.toFixed(0)} ms/batch of ${BATCH}, median of ${r.runs}${load}; ${r.coreMsPerImg.toFixed(0)} core-ms/img; peak RSS ${r.maxRssMiB.toFixed(0)} MiB)`,
  );
}

async function main(): Promise<void> {
  const arch = getArch('resnet50');
  const input = benchInput();
  console.log(
    `forward bench: resnet50 ${SIZE}×${SIZE}, batch ${BATCH}, ${availableParallelism()} cores, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  const peak = await matmulPeakGflops();
  if (process.argv.includes('--families-only')) {
    console.log(`fp32 reference: MatMul 2048³ best-of-10 ${peak.toFixed(0)} GFLOP/s`);
    await familiesSection(peak, input);
    console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
    return;
  }
  const gflopPerImg = (2 * resnetMacs(arch, SIZE)) / 1e9;
  console.log(
    `fp32 reference: MatMul 2048³ best-of-10 ${peak.toFixed(0)} GFLOP/s; ResNet-50 is ${gflopPerImg.toFixed(2)} GFLOP/img (${(peak / gflopPerImg).toFixed(1)} img/s at that rate)`,
  );
  const gap = await measureOnnx(arch, 'gap', 1, input);
  line('onnx resnet50 gap', gap);
  const bestRate = (BATCH * gflopPerImg) / (gap.bestMs / 1000);
  console.log(
    `  best batch ${gap.bestMs.toFixed(0)} ms = ${((BATCH * 1000) / gap.bestMs).toFixed(1)} img/s = ${bestRate.toFixed(0)} GFLOP/s (${((100 * bestRate) / peak).toFixed(0)}% of the MatMul rate)`,
  );
  // On a loaded machine wall time mostly measures the others. CPU time with spinning off counts
  // only our own work, so it estimates what two idle cores would give (assuming ideal scaling).
  const cost = await cpuCostPerImage(arch, input);
  console.log(
    `  compute cost ${cost.toFixed(0)} core-ms/img (spinning off) → ≈ ${((availableParallelism() * 1000) / cost).toFixed(1)} img/s on ${availableParallelism()} idle cores (estimate)`,
  );
  line('onnx resnet50 ca-stream heads=1', await measureOnnx(arch, 'ca-stream', 1, input));
  line('onnx resnet50 ca-stream heads=8', await measureOnnx(arch, 'ca-stream', 8, input));

  if (process.argv.includes('--sweep')) {
    const cores = availableParallelism();
    const variants: Array<[string, InferenceSession.SessionOptions]> = [
      ['intraOp=1', { intraOpNumThreads: 1 }],
      ['executionMode=parallel interOp=2', { executionMode: 'parallel', interOpNumThreads: 2 }],
      ['graphOptimizationLevel=extended', { graphOptimizationLevel: 'extended' }],
      ['enableCpuMemArena=false', { enableCpuMemArena: false }],
      ['enableMemPattern=false', { enableMemPattern: false }],
      [`intraOp=${cores} with spinning`, { extra: { session: { intra_op: { allow_spinning: '1' } } } }],
    ];
    for (const [label, opt] of variants) line(`onnx gap, ${label}`, await measureOnnx(arch, 'gap', 1, input, opt));
  }

  // maxRSS is in KiB and only grows; each tfjs backend runs in a child of its own.
  console.log(`peak RSS of the ONNX Runtime process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  if (process.argv.includes('--no-tfjs')) console.log('tfjs: skipped (--no-tfjs)');
  else for (const backend of ['tensorflow', 'wasm'] as const) tfjsLine(backend);
  console.log(`peak RSS overall: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  if (!process.argv.includes('--no-families')) {
    await familiesSection(peak, input);
    console.log(`peak RSS after the families: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  }
}

/** ConvNeXt-B and EfficientNet-B0, GAP and CA-Stream (one head, as the original), ONNX Runtime. */
async function familiesSection(peak: number, input: Float32Array): Promise<void> {
  for (const arch of ['convnext_base', 'efficientnet_b0']) {
    const gflop = (2 * graphMacs(arch, SIZE)) / 1e9;
    console.log(
      `${arch}: ${gflop.toFixed(2)} GFLOP/img (GAP graph; ${(peak / gflop).toFixed(1)} img/s at the MatMul rate); load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    for (const head of ['gap', 'ca-stream'] as const) {
      const m = await measureFamily(arch, head, input, BATCH, SIZE, WARMUP, RUNS);
      const rate = (BATCH * gflop) / (m.bestMs / 1000);
      console.log(
        `${m.label.padEnd(44)} ${m.imgPerSec.toFixed(1).padStart(6)} img/s  (median; best batch ${m.bestMs.toFixed(0)} ms = ${rate.toFixed(0)} GFLOP/s, ${((100 * rate) / peak).toFixed(0)}% of the MatMul rate)`,
      );
    }
    // The native TensorFlow binding on the same model (wasm would take minutes per batch here).
    if (!process.argv.includes('--no-tfjs')) tfjsLine('tensorflow', arch);
  }
}

function benchInput(): Float32Array {
  const g = gaussian(rng(42));
  return new Float32Array(BATCH * 3 * SIZE * SIZE).map(() => g());
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const child = process.argv.indexOf('--tfjs-child');
  const archAt = process.argv.indexOf('--arch');
  if (child > 0)
    console.log(
      JSON.stringify(
        await tfjsChild(process.argv[child + 1] as 'tensorflow' | 'wasm', benchInput(), archAt > 0 ? process.argv[archAt + 1] : undefined),
      ),
    );
  else await main();
}
