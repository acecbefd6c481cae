// RISE (Petsiuk, Das & Saenko, BMVC 2018). N random masks: an s×s grid of Bernoulli(p1) cells,
// upsampled bilinearly to (s+1)·⌈H/s⌉ × (s+1)·⌈W/s⌉ (half-pixel centres, mirrored edges, like
// the official code's skimage resize), then cropped to H×W at a random shift in [0, cell) on each
// axis so the cell borders do not sit on a fixed lattice. saliency = Σ_i M_i·P_i(target) / (N·p1).
//
// Masking space: without mean/std the mask multiplies the normalised tensor, as the official code
// does (masked-out pixels become the dataset mean colour); with mean/std it multiplies the
// de-normalised image (black), like the ca-stream protocol masks AD/AI/AG inputs.
// Masks are generated batch by batch from one seeded stream, so memory stays at one batch and the
// result depends only on (seed, N, s, p1, H, W) and maxBatch does not change it.

import { axisTable, resizePlane, type AxisTable } from '../metrics/upsample.js';
import { minMaxNormalise } from './normalise.js';
import { mulberry32 } from './rng.js';
import { checkImage, checkMeanStd, checkProbs, checkTarget } from './scorecam.js';
import { checkPositiveInt, throwIfAborted, type ForwardProbs, type LongRunOptions, type SaliencyMap } from './types.js';

export interface RiseInput extends LongRunOptions {
  /** Normalised image C×H×W. */
  image: Float32Array;
  H: number;
  W: number;
  /** Image channels; defaults to mean.length when given, else 3. */
  C?: number;
  forwardProbs: ForwardProbs;
  target: number;
  /** N, the number of masks (the paper uses 4000 for ResNet-50). */
  numMasks: number;
  /** s, grid cells per side (paper: 7). */
  cells: number;
  /** p1, probability that a cell is kept (paper: 0.5). */
  p1: number;
  seed: number;
  maxBatch: number;
  mean?: readonly number[];
  std?: readonly number[];
}

export interface RiseResult extends SaliencyMap {
  /** Σ M_i·P_i / (N·p1) at H×W before min-max (the expected score given each pixel is kept). */
  raw: Float32Array;
  forwardCalls: number;
}

function sliceTable(t: AxisTable, from: number, len: number): AxisTable {
  return { i0: t.i0.subarray(from, from + len), i1: t.i1.subarray(from, from + len), t: t.t.subarray(from, from + len) };
}

/** Generates RISE masks one at a time from a seeded stream (exported for tests and previews). */
export function riseMaskGenerator(H: number, W: number, cells: number, p1: number, seed: number): () => Float64Array {
  checkPositiveInt('H', H);
  checkPositiveInt('W', W);
  checkPositiveInt('cells', cells);
  if (!(p1 > 0 && p1 <= 1)) throw new Error(`saliency: RISE p1 must be in (0, 1], got ${p1}`);
  const rand = mulberry32(seed);
  const cellH = Math.ceil(H / cells);
  const cellW = Math.ceil(W / cells);
  const rows = axisTable(cells, (cells + 1) * cellH, { alignCorners: false, edge: 'mirror' });
  const cols = axisTable(cells, (cells + 1) * cellW, { alignCorners: false, edge: 'mirror' });
  const grid = new Float64Array(cells * cells);
  return () => {
    for (let i = 0; i < grid.length; i++) grid[i] = rand() < p1 ? 1 : 0;
    const dy = Math.floor(rand() * cellH);
    const dx = Math.floor(rand() * cellW);
    const mask = new Float64Array(H * W);
    resizePlane(grid, 0, cells, sliceTable(rows, dy, H), sliceTable(cols, dx, W), mask, 0);
    return mask;
  };
}

export async function rise(input: RiseInput): Promise<RiseResult> {
  const { image, H, W, forwardProbs, target, numMasks, cells, p1, seed, maxBatch, mean, std } = input;
  checkPositiveInt('numMasks', numMasks);
  checkPositiveInt('maxBatch', maxBatch);
  checkTarget(target);
  const pixelSpace = mean !== undefined || std !== undefined;
  if (pixelSpace) checkMeanStd(mean ?? [], std ?? []);
  const C = input.C ?? mean?.length ?? 3;
  checkPositiveInt('C', C);
  if (pixelSpace && mean!.length !== C) throw new Error(`saliency: mean/std have ${mean!.length} values for ${C} channels`);
  checkImage(image, C, H, W);
  const HW = H * W;
  const nextMask = riseMaskGenerator(H, W, cells, p1, seed);

  const pixels = new Float32Array(C * HW);
  for (let c = 0; c < C; c++) {
    for (let i = 0, o = c * HW; i < HW; i++) pixels[o + i] = pixelSpace ? image[o + i] * std![c] + mean![c] : image[o + i];
  }

  const sal = new Float64Array(HW);
  let forwardCalls = 0;
  for (let start = 0; start < numMasks; start += maxBatch) {
    throwIfAborted(input.signal);
    const n = Math.min(maxBatch, numMasks - start);
    const masks: Float64Array[] = [];
    const batch = new Float32Array(n * C * HW);
    for (let b = 0; b < n; b++) {
      const m = nextMask();
      masks.push(m);
      for (let c = 0; c < C; c++) {
        const src = c * HW;
        const dst = (b * C + c) * HW;
        if (pixelSpace) {
          const mu = mean![c];
          const sd = std![c];
          for (let i = 0; i < HW; i++) batch[dst + i] = (pixels[src + i] * m[i] - mu) / sd;
        } else {
          for (let i = 0; i < HW; i++) batch[dst + i] = pixels[src + i] * m[i];
        }
      }
    }
    const probs = await forwardProbs(batch, n);
    forwardCalls++;
    const classes = checkProbs(probs, n, target, 'forwardProbs');
    for (let b = 0; b < n; b++) {
      const score = probs[b * classes + target];
      if (score === 0) continue;
      const m = masks[b];
      for (let i = 0; i < HW; i++) sal[i] += m[i] * score;
    }
    input.onProgress?.(start + n, numMasks);
  }
  const norm = numMasks * p1;
  for (let i = 0; i < HW; i++) sal[i] /= norm;
  return { ...minMaxNormalise(sal, H, W), raw: Float32Array.from(sal), forwardCalls };
}
