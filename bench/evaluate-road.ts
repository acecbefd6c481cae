// ROAD per-image cost on ResNet-50 at 224 (deterministic random weights: the cost does not depend
// on them), on the current tfjs backend (CA_PIPE_BACKEND) through the tfjs forward engine, or on
// ONNX Runtime with engine 'onnx'. One image's ROAD = per order and percentage one noisy linear
// imputation (3 sparse solves over the removed pixels) and one forward pass. Prints the imputation
// and forward seconds per image separately, so either can be compared across machines.
//   benchRoad({ images: 2, percentages: [0.1, 0.5, 0.9] })     (bench/evaluate-tfjs.ts runs it per tfjs backend)
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeBackend } from '../ml/backend/index.js';
import { ModelRunner } from '../ml/explain/runner.js';
import type { EngineSetting } from '../ml/forward/session.js';
import { ROAD_DEFAULTS, roadEval } from '../ml/metrics/road.js';
import { IMAGENET_STD as std, randomResNet50 } from './random-model.js';

export interface RoadBenchOptions {
  /** Images (default 2). */
  images?: number;
  /** Input side (default 224). */
  size?: number;
  /** Default: the official [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9]. */
  percentages?: number[];
  /** Forward engine (default tfjs: the current tfjs backend). */
  engine?: EngineSetting;
}

export async function benchRoad(opts: RoadBenchOptions = {}): Promise<{ perImageS: number; forwardS: number }> {
  const SIZE = opts.size ?? 224;
  const N = opts.images ?? 2;
  const percentages = opts.percentages ?? ROAD_DEFAULTS.percentages;
  const engine = opts.engine ?? 'tfjs';
  const model = randomResNet50(SIZE);
  const runner = new ModelRunner(model, { batchSize: 8, engine, cacheDir: join(tmpdir(), 'ca-pipe-bench-onnx') });
  let s = 7;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) / 16777216;
  const images = new Float32Array(N * 3 * SIZE * SIZE).map(() => (rnd() - 0.5) * 2);
  // Smooth maps (a blob per image) as a CAM would give after upsampling.
  const maps = new Float32Array(N * SIZE * SIZE);
  for (let i = 0; i < N; i++)
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++)
        maps[i * SIZE * SIZE + y * SIZE + x] = Math.exp(-((x - SIZE * (0.3 + 0.1 * i)) ** 2 + (y - SIZE / 2) ** 2) / (SIZE * SIZE * 0.05));
  console.log(
    `ROAD: ResNet-50 ${SIZE}×${SIZE}, random weights, ${N} image(s), percentages ${JSON.stringify(percentages)}, MoRF + LeRF; engine ${engine}` +
      `${engine === 'tfjs' ? ` (tfjs backend ${activeBackend()})` : ''}; ${availableParallelism()} cores, load ${loadavg()[0].toFixed(2)}`,
  );
  let forwardS = 0;
  const score = async (batch: Float32Array, n: number) => {
    const t0 = performance.now();
    const p = await runner.probs(batch, n);
    forwardS += (performance.now() - t0) / 1000;
    return p;
  };
  try {
    await runner.probs(images.subarray(0, 3 * SIZE * SIZE), 1); // warm-up
    const t0 = performance.now();
    await roadEval({
      images,
      dims: { c: 3, h: SIZE, w: SIZE },
      saliency: maps,
      ids: Array.from({ length: N }, (_, i) => i),
      targets: Array.from({ length: N }, (_, i) => i),
      labels: Array.from({ length: N }, (_, i) => i),
      std,
      score,
      maxBatch: 8,
      road: { ...ROAD_DEFAULTS, percentages },
    });
    const total = (performance.now() - t0) / 1000;
    const perImageS = total / N;
    console.log(
      `ROAD per image: ${perImageS.toFixed(2)} s (imputation ${((total - forwardS) / N).toFixed(2)} s, forward ${(forwardS / N).toFixed(2)} s, ` +
        `${2 * percentages.length} perturbed images per image); load at the end ${loadavg()[0].toFixed(2)}`,
    );
    return { perImageS, forwardS: forwardS / N };
  } finally {
    await runner.release();
  }
}
