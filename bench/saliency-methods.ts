// Per-image cost of the two whole-model gradient methods of issue #16 on ResNet-50 at 224 with
// deterministic RANDOM weights (timings do not depend on the weights' values), GAP head, on the
// current tfjs backend (CA_PIPE_BACKEND=wasm | tensorflow). Maps are not checked here.
//   FullGrad: one forward + one backward through the whole model per batch, plus the map in TS.
//   Opti-CAM: one forward for f(x), then `steps` forward + backward passes (official default 50).
// The merge wires benchNewMethods into `npm run bench:evaluate` for both tfjs backends; run alone:
//   node dist/bench/saliency-methods.js   (BENCH_IMAGES, BENCH_OPTICAM_STEPS, BENCH_SIZE for tiny checks)
import { fileURLToPath } from 'node:url';
import { getArch, tapChannels, tapSizes } from '../ml/models/arch.js';
import { getBackbone } from '../ml/models/backbones.js';
import { initBackend } from '../ml/backend/index.js';
import { FullModel } from '../ml/explain/full-model.js';
import type { LoadedModel } from '../ml/explain/model-dir.js';
import { fullgrad } from '../ml/saliency/fullgrad.js';
import { opticam, OPTICAM_DEFAULTS } from '../ml/saliency/opticam.js';
import { randomResNetWeights } from './forward.js';

export interface NewMethodsBenchOptions {
  /** Images per batch (default 4). */
  images?: number;
  /** Opti-CAM steps (default the official 50; 0 skips Opti-CAM). */
  opticamSteps?: number;
  /** Input side (default 224). */
  size?: number;
  /** Architecture (default resnet50). */
  arch?: string;
  log?: (line: string) => void;
}

export interface NewMethodsBenchRow {
  method: 'fullgrad' | 'opticam';
  backend: string;
  images: number;
  /** Seconds per image, whole method (model passes and the map). */
  sPerImage: number;
  /** Forward passes and backward passes of the whole model per map. */
  forwards: number;
  backwards: number;
}

const MEAN = [0.485, 0.456, 0.406] as const;
const STD = [0.229, 0.224, 0.225] as const;

export async function benchNewMethods(opts: NewMethodsBenchOptions = {}): Promise<NewMethodsBenchRow[]> {
  const n = opts.images ?? 4;
  const size = opts.size ?? 224;
  const steps = opts.opticamSteps ?? OPTICAM_DEFAULTS.steps;
  const log = opts.log ?? ((l: string) => console.log(l));
  const backend = (await initBackend()).name;
  const arch = getArch(opts.arch ?? 'resnet50');
  const f = tapSizes(size).layer4;
  const K = tapChannels(arch).layer4;
  const loaded = {
    card: { head: 'gap', heads: 1, num_classes: 1000, input_size: size, mean: [...MEAN], std: [...STD] },
    arch: getBackbone(arch),
    weights: randomResNetWeights(arch, 'gap', 1000),
    weightsFile: '<random weights>',
    feature: { K, h: f, w: f },
  } as unknown as LoadedModel;
  const full = new FullModel(loaded);
  const rows: NewMethodsBenchRow[] = [];
  try {
    let s = 7;
    const images = Float32Array.from(
      { length: n * 3 * size * size },
      () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 4 - 2,
    );
    const targets = Array.from({ length: n }, (_, i) => (i * 37) % 1000);
    full.fullGradInputs(images.subarray(0, 3 * size * size), 1, size, size, targets); // warm-up (kernels, folding)
    const t0 = performance.now();
    const inputs = full.fullGradInputs(images, n, size, size, targets);
    for (let i = 0; i < n; i++) fullgrad(images.subarray(i * 3 * size * size, (i + 1) * 3 * size * size), 3, size, size, inputs[i]);
    const fg = (performance.now() - t0) / 1000 / n;
    rows.push({ method: 'fullgrad', backend, images: n, sPerImage: fg, forwards: 1, backwards: 1 });
    log(`FullGrad  ${backend}: ${fg.toFixed(3)} s/image (1 forward + 1 backward, ${inputs[0].layers.length} bias layers)`);
    if (steps > 0) {
      // Opti-CAM reads the last feature map; the activations' values only steer the optimisation.
      const A = Float32Array.from({ length: n * K * f * f }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2);
      const t1 = performance.now();
      const maps = await opticam({
        A,
        B: n,
        K,
        h: f,
        w: f,
        H: size,
        W: size,
        steps,
        maskedScores: full.maskedScores(images, n, size, size, MEAN, STD, targets),
      });
      const oc = (performance.now() - t1) / 1000 / n;
      const taken = Math.max(...maps.map((m) => m.steps));
      rows.push({ method: 'opticam', backend, images: n, sPerImage: oc, forwards: 1 + taken, backwards: taken });
      log(`Opti-CAM  ${backend}: ${oc.toFixed(3)} s/image (${taken} steps: ${1 + taken} forwards + ${taken} backwards)`);
    }
  } finally {
    full.dispose();
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await benchNewMethods({
    images: Number(process.env.BENCH_IMAGES ?? 4),
    opticamSteps: Number(process.env.BENCH_OPTICAM_STEPS ?? OPTICAM_DEFAULTS.steps),
    size: Number(process.env.BENCH_SIZE ?? 224),
  });
}
