// A tiny saliency + evaluate experiment for the split-stage tests (not a test file itself): a
// synthetic index (2 classes, 32 px), a resnet-mini written by a `command` stage, Grad-CAM and
// random maps in shards of one image, and an evaluate stage over them. `parallel` and the executor
// are the only things the tests vary, so every variant must give the same digests.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serializeSafetensors } from '../../ml/io/safetensors.js';
import { modelTensors } from '../bad-inputs/weights-files.js';

const WRAP = `
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const out = process.argv[2];
copyFileSync('w.safetensors', join(out, 'final.safetensors'));
writeFileSync(join(out, 'model.json'), JSON.stringify({ format: 'ca-pipe.model/1', arch: 'resnet-mini', head: 'gap', heads: 1, num_classes: 2,
  input_size: 32, resize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], classes: ['circle', 'square'], weights: 'final.safetensors' }));
`;

export interface ShardWorldOptions {
  name: string;
  /** `parallel.shards` of both split stages (omitted: no `parallel`). */
  shards?: number;
  executor?: string;
  /** Val images (per_class × 2 × fraction 0.5). */
  perClass?: number;
  /** RISE masks: more masks, slower parts (for tests that must catch a part running). */
  riseMasks?: number;
}

/** Writes the weights, the wrapper and `<name>.yaml` into `dir`; returns the experiment file. */
export async function writeShardWorld(dir: string, o: ShardWorldOptions): Promise<string> {
  await writeFile(join(dir, 'w.safetensors'), serializeSafetensors(modelTensors()));
  await writeFile(join(dir, 'wrap.mjs'), WRAP);
  const parallel = o.shards ? `\n    parallel: { shards: ${o.shards} }` : '';
  const methods = o.riseMasks ? '[gradcam, random, rise]' : '[gradcam, random]';
  const yaml = `name: ${o.name}
${o.executor ? `executor: ${o.executor}\n` : ''}stages:
  data:
    kind: index
    params: { source: synthetic, synthetic: { classes: 2, per_class: ${o.perClass ?? 6}, size: 32 }, split: { fraction: 0.5 } }
  weights:
    kind: command
    params: { cmd: [node, wrap.mjs, "{out}"], deps: [w.safetensors, wrap.mjs], outs: [model.json, final.safetensors] }
  saliency:
    kind: saliency
    needs: { model: weights, data: data }
    params: { methods: ${methods}, shard_size: 1, overlays: 2, engine: tfjs, rise: { masks: ${o.riseMasks ?? 16}, cells: 2 } }${parallel}
  evaluate:
    kind: evaluate
    needs: { model: weights, data: data, saliency: saliency }
    params: { engine: tfjs, bootstrap: { samples: 20 } }${parallel}
`;
  const file = join(dir, `${o.name}.yaml`);
  await writeFile(file, yaml);
  return file;
}

/** Instance id → output digest of a run's run.json. */
export function runDigests(runJson: string): Record<string, string | undefined> {
  const run = JSON.parse(readFileSync(runJson, 'utf8')) as { instances: Array<{ id: string; digest?: string }> };
  return Object.fromEntries(run.instances.map((i) => [i.id, i.digest]));
}
