// Evaluation throughput: ResNet-50 at 224, deterministic random weights, 16 images, protocol ca-stream.
//   npm run bench:evaluate
// Prints images/s for AD/AI/AG and for insertion+deletion, the ratio of insertion+deletion's
// forward throughput (forward passes it makes per second) to the raw ONNX forward throughput
// measured in the same run (target ≥ 0.9), and Score-CAM images/s; then Opti-CAM, FullGrad and
// ROAD seconds per image on each tfjs backend (bench/evaluate-tfjs.ts, BENCH_TFJS_IMAGES).
//   BENCH_SCORECAM_IMAGES=n (default 1; 0 skips Score-CAM, ~2048 forwards per image); BENCH_IMAGES=n (default 16)
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ModelRunner } from '../ml/explain/runner.js';
import { confidenceEval } from '../ml/metrics/confidence.js';
import { insertionDeletion } from '../ml/metrics/insdel.js';
import { resolveProtocol, stepCount } from '../ml/metrics/protocol.js';
import { scorecam } from '../ml/saliency/scorecam.js';
import { IMAGENET_MEAN as MEAN, IMAGENET_STD as STD, randomResNet50 } from './random-model.js';

const SIZE = 224;
const N = Number(process.env.BENCH_IMAGES ?? 16);
const BATCH = 16;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) / 16777216;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; s: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, s: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const model = randomResNet50(SIZE);
  const f = model.feature.h;
  const runner = new ModelRunner(model, { batchSize: BATCH, cacheDir: join(tmpdir(), 'ca-pipe-bench-onnx') });
  const r = lcg(1);
  // Smooth-ish images in normalised units, and 7×7 maps in [0, 1].
  const images = new Float32Array(N * 3 * SIZE * SIZE).map(() => (r() - 0.5) * 2);
  const maps = new Float32Array(N * f * f).map(() => r());
  const targets = Array.from({ length: N }, (_, i) => (i * 37) % 1000);
  const protocol = resolveProtocol('ca-stream');
  const dims = { c: 3, h: SIZE, w: SIZE };
  console.log(
    `ResNet-50 ${SIZE}×${SIZE}, random weights, ${N} images, batch ${BATCH}, protocol ${protocol.name}; ${availableParallelism()} cores, load ${loadavg()[0].toFixed(2)}`,
  );
  const loadAtEnd = () => console.log(`load average at the end: ${loadavg()[0].toFixed(2)}`);

  // Raw throughput is measured before and after the metrics and averaged: on a shared machine the
  // load drifts, and the ratio below should compare like with like.
  // Always full batches of BATCH images, the batch size insertion/deletion uses.
  const rawImages = new Float32Array(BATCH * 3 * SIZE * SIZE).map((_, i) => images[i % images.length]);
  await runner.probs(rawImages, BATCH); // warm-up (session + first run)
  const rawForward = async () => {
    const t = await timed(async () => {
      for (let k = 0; k < 3; k++) await runner.probs(rawImages, BATCH);
    });
    return (3 * BATCH) / t.s;
  };
  const rawBefore = await rawForward();
  console.log(`raw ONNX forward (before): ${rawBefore.toFixed(1)} img/s (${(1000 / rawBefore).toFixed(1)} ms/img)`);

  const common = {
    images,
    dims,
    saliency: maps,
    saliencySize: { h: f, w: f },
    targets,
    protocol,
    mean: MEAN,
    std: STD,
    score: runner.probs,
    maxBatch: BATCH,
  };
  const conf = await timed(() => confidenceEval(common));
  console.log(`AD/AI/AG:                  ${(N / conf.s).toFixed(2)} img/s (${((2 * N) / conf.s).toFixed(1)} forwards/s)`);

  const steps = stepCount(protocol, SIZE, SIZE);
  // Time spent inside ONNX Runtime during insertion/deletion: robust to load drift, it shows how much
  // of the wall time the metric's own work (building the perturbed states) adds.
  let inOrt = 0;
  const timedScore = async (batch: Float32Array, n: number) => {
    const t0 = performance.now();
    const r = await runner.probs(batch, n);
    inOrt += performance.now() - t0;
    return r;
  };
  const insdel = await timed(() => insertionDeletion({ ...common, score: timedScore }));
  const forwards = N * (2 * steps + 1);
  const insdelRate = forwards / insdel.s;
  console.log(`insertion+deletion:        ${(N / insdel.s).toFixed(3)} img/s (${forwards} forwards, ${insdelRate.toFixed(1)} forwards/s)`);
  const rawAfter = await rawForward();
  const rawRate = (rawBefore + rawAfter) / 2;
  console.log(`raw ONNX forward (after):  ${rawAfter.toFixed(1)} img/s; mean ${rawRate.toFixed(1)} img/s`);
  console.log(`ins+del / raw forward:     ${(insdelRate / rawRate).toFixed(3)} (target ≥ 0.9)`);
  console.log(`ONNX busy share in ins+del: ${(inOrt / 1000 / insdel.s).toFixed(3)} of the wall time`);

  const nScore = Number(process.env.BENCH_SCORECAM_IMAGES ?? 1);
  if (nScore > 0) {
    const feats = await runner.features(images.subarray(0, nScore * 3 * SIZE * SIZE), nScore);
    const K = model.feature.K;
    const hw = f * f;
    const sc = await timed(async () => {
      for (let i = 0; i < nScore; i++) {
        await scorecam({
          A: feats.taps.layer4!.data.subarray(i * K * hw, (i + 1) * K * hw),
          K,
          h: f,
          w: f,
          image: images.subarray(i * 3 * SIZE * SIZE, (i + 1) * 3 * SIZE * SIZE),
          H: SIZE,
          W: SIZE,
          mean: MEAN,
          std: STD,
          forwardProbs: runner.probs,
          target: targets[i],
          maxBatch: 64,
        });
      }
    });
    console.log(
      `Score-CAM:                 ${(nScore / sc.s).toFixed(4)} img/s (${(sc.s / nScore).toFixed(1)} s/img, ≤${K} forwards each)`,
    );
  }
  await runner.release();
  loadAtEnd();
  tfjsMethods();
}

/** Opti-CAM, FullGrad and ROAD on each tfjs backend, each in its own process (bench/evaluate-tfjs.ts). */
function tfjsMethods(): void {
  for (const b of ['wasm', 'tensorflow']) {
    console.log(`\n== Opti-CAM, FullGrad, ROAD on tfjs ${b} ==`);
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./evaluate-tfjs.js', import.meta.url)), '--backend', b], {
      stdio: 'inherit',
    });
    if (r.status !== 0)
      console.log(`${b}: not measured (exit ${r.status}${b === 'tensorflow' ? '; run `npx ca-pipe setup tensorflow`' : ''})`);
  }
}

await main();
