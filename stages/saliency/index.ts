// The `saliency` stage kind: maps of several attribution methods for a trained model on an index.
// ml/ is imported lazily (in run.ts) so that loading the stage table stays cheap for the CLI.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { PlannedInput, StageKind } from '../../engine/contract.js';
import { describeInput, plannedIndex } from '../planned-index.js';
import { saliencyParamsSchema, type SaliencyParams } from './schema.js';

export type { SaliencyParams };

/** The import source's listing (names, sizes, mtimes): new or changed files change the key. */
async function importDigest(params: SaliencyParams, baseDir: string): Promise<Record<string, string>> {
  const imp = params.import;
  if (!imp) return {};
  const { createHash } = await import('node:crypto');
  const { readdir } = await import('node:fs/promises');
  const h = createHash('sha256');
  if (imp.safetensors) {
    const f = resolve(baseDir, imp.safetensors);
    const s = await stat(f).catch(() => null);
    h.update(`${f}\0${s ? `${s.size}\0${s.mtimeMs}` : 'missing'}`);
  } else if (imp.npy_dir) {
    const d = resolve(baseDir, imp.npy_dir);
    const names = (await readdir(d).catch(() => [] as string[])).filter((n) => n.endsWith('.npy')).sort();
    h.update(d);
    for (const n of names) {
      const s = await stat(resolve(d, n));
      h.update(`\n${n}\0${s.size}\0${s.mtimeMs}`);
    }
  }
  return { import: h.digest('hex') };
}

/** A split with no images would only be found once the model is loaded; say it at plan time. */
function checkInputs(p: SaliencyParams, inputs: Record<string, PlannedInput>): void {
  const data = plannedIndex(inputs.data);
  if (!data || p.import) return;
  const split = p.split ?? 'val';
  const images = split === 'all' ? data.train + data.val : data[split];
  if (images === 0) {
    throw new Error(
      `split "${split}" of ${describeInput('data', inputs.data!)} has no images${split === 'val' ? " (set that index's split.fraction > 0, or explain split: all)" : ''}`,
    );
  }
}

export const saliencyStage: StageKind<SaliencyParams> = {
  kind: 'saliency',
  // 2: images are chosen and stored in a seeded class-balanced order (1: the first of the split).
  version: 2,
  paramsSchema: saliencyParamsSchema,
  nonKeyParams: ['batch_size', 'method_batch'],
  inputs: { required: ['model', 'data'], optional: [] },
  externalDigest: importDigest,
  checkInputs,
  requiredPaths(params) {
    const imp = params.import;
    return imp ? [imp.npy_dir ?? imp.safetensors!] : [];
  },
  async run(ctx) {
    const { runSaliency } = await import('./run.js');
    await runSaliency(ctx);
  },
  async cost(params, inputs) {
    return (await import('./cost.js')).saliencyCost(params, inputs);
  },
  split: {
    async runPart(ctx, part) {
      const { runSaliency } = await import('./run.js');
      await runSaliency(ctx, part);
    },
  },
};

export default saliencyStage;
