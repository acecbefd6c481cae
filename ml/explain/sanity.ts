// The model-randomisation sanity check on one batch: the maps of the trained model and of every
// cascade step's randomised model (randomise.ts), computed by the same method code
// (computeBatchMaps → the saliency registry's computeSaliency) and compared image by image with
// Spearman's ρ (at the map's own resolution) and SSIM (maps brought to the image size by the
// protocol's upsampling and min-max normalised, so data_range = 1).
import { saliencyToImage } from '../metrics/maps.js';
import type { Protocol } from '../metrics/protocol.js';
import { spearman, ssim } from '../metrics/similarity.js';
import { minMaxNormalise } from '../metrics/upsample.js';
import type { LoadedModel } from './model-dir.js';
import { cascadeSteps, randomisedModel } from './randomise.js';
import type { ModelRunner } from './runner.js';
import { computeBatchMaps, type SaliencyOptions } from './saliency-batch.js';

export interface SanityProtocol {
  /** Seed of the re-initialisation. */
  seed: number;
  /** Cascade steps, top down (recorded: which groups each step adds). */
  steps: string[];
  /** SSIM window (scikit-image default 7) on maps at image size, min-max normalised. */
  ssimWindow: number;
  /** Forward engine of both models' maps (tfjs unless ONNX Runtime is asked for: it would export one graph per randomised model). */
  engine: 'tfjs' | 'onnx';
  /** The seeded methods' settings (RISE, random baseline), as the saliency stage takes them. */
  saliency: SaliencyOptions;
}

export interface SanityBatch {
  steps: string[];
  /** Per method: N×S values, image-major (S = steps). NaN where a map is constant. */
  rank: Record<string, Float64Array>;
  ssim: Record<string, Float64Array>;
}

export interface SanityInput {
  model: LoadedModel;
  /**
   * Opens a runner on a model; the check releases it after its maps. The trained model's maps are
   * recomputed through it too, so both sides of every comparison run on the same engine.
   */
  open: (m: LoadedModel) => ModelRunner;
  images: Float32Array;
  ids: readonly number[];
  /** The explained classes (the same class is explained on every randomised model). */
  targets: readonly number[];
  methods: string[];
  protocol: Protocol;
  sanity: SanityProtocol;
  signal?: AbortSignal;
}

/** The cascade step names of a model, top down. */
export function sanitySteps(model: LoadedModel): string[] {
  return cascadeSteps(model.weights, model.card.head !== 'gap').map((s) => s.name);
}

export async function sanityBatch(o: SanityInput): Promise<SanityBatch> {
  const n = o.ids.length;
  const H = o.model.card.input_size;
  const all = cascadeSteps(o.model.weights, o.model.card.head !== 'gap');
  const steps = o.sanity.steps.map((name) => {
    const s = all.find((x) => x.name === name);
    if (!s) throw new Error(`sanity: no cascade step "${name}" for this model (has: ${all.map((x) => x.name).join(', ')})`);
    return s;
  });
  const S = steps.length;
  const mapsOf = (r: ModelRunner) =>
    computeBatchMaps(r, o.images, o.ids, o.targets, 'gt', o.methods, o.sanity.saliency, { signal: o.signal });
  const trainedRunner = o.open(o.model);
  let trained;
  try {
    trained = await mapsOf(trainedRunner);
  } finally {
    await trainedRunner.release();
  }
  const up = (m: { h: number; w: number; data: Float32Array }) =>
    minMaxNormalise(saliencyToImage(m.data, n, m.h, m.w, H, H, o.protocol), H * H);
  const trainedUp = Object.fromEntries(o.methods.map((m) => [m, up(trained.maps[m]!)]));
  const rank: SanityBatch['rank'] = {};
  const sim: SanityBatch['ssim'] = {};
  for (const m of o.methods) {
    rank[m] = new Float64Array(n * S);
    sim[m] = new Float64Array(n * S);
  }
  for (let s = 0; s < S; s++) {
    o.signal?.throwIfAborted();
    const runner = o.open(randomisedModel(o.model, steps[s]!, o.sanity.seed));
    let rand;
    try {
      rand = await mapsOf(runner);
    } finally {
      await runner.release();
    }
    for (const m of o.methods) {
      const a = trained.maps[m]!;
      const b = rand.maps[m]!;
      const hw = a.h * a.w;
      const bUp = up(b);
      for (let i = 0; i < n; i++) {
        rank[m][i * S + s] = spearman(a.data.subarray(i * hw, (i + 1) * hw), b.data.subarray(i * hw, (i + 1) * hw));
        sim[m][i * S + s] = ssim(trainedUp[m]!.subarray(i * H * H, (i + 1) * H * H), bUp.subarray(i * H * H, (i + 1) * H * H), H, H, {
          win: o.sanity.ssimWindow,
        });
      }
    }
  }
  return { steps: steps.map((s) => s.name), rank, ssim: sim };
}
