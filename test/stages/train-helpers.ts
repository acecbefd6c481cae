// Shared fixtures of the train-stage tests: a small synthetic index, a hand-made init model
// directory (random weights with non-trivial BatchNorm statistics) and a stage context.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StageContext } from '../../engine/contract.js';
import { buildIndex } from '../../ml/data/build-index.js';
import { writeIndexFiles } from '../../ml/data/index-file.js';
import { Rng } from '../../ml/data/rng.js';
import { writeSafetensors } from '../../ml/io/safetensors.js';
import { createModel } from '../../ml/models/model.js';

export function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `ca-pipe-${prefix}-`));
}

/** A synthetic index (6 shape classes) with `perClass` images of side `size`. */
export async function syntheticIndex(dir: string, perClass: number, size = 64, classes = 6): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const built = await buildIndex(
    { source: 'synthetic', synthetic: { per_class: perClass, size, classes, seed: 3 }, split: { fraction: 0.25, seed: 0 } },
    { baseDir: dir, outDir: dir },
  );
  await writeIndexFiles(dir, built);
  return dir;
}

/**
 * An init model directory as a train stage would leave it: model.json + final.safetensors of a
 * randomly initialised GAP model whose BN running statistics are perturbed (so "unchanged" means
 * something) and whose classifier is scaled up (so its predictions are not all one class).
 */
export async function fakeInit(dir: string, arch: string, numClasses: number, size: number, seed = 5): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const m = createModel({ arch, head: 'gap', numClasses, seed });
  const rng = new Rng(seed, 77);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of m.stateDict()) {
    const data = Float32Array.from(t.data);
    if (name.endsWith('running_mean')) for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-0.2, 0.2);
    if (name.endsWith('running_var')) for (let i = 0; i < data.length; i++) data[i] = rng.uniform(0.5, 2);
    if (name === 'fc.weight') for (let i = 0; i < data.length; i++) data[i] *= 5;
    tensors[name] = { dtype: 'F32', shape: t.shape, data };
  }
  m.dispose();
  await writeSafetensors(join(dir, 'final.safetensors'), tensors);
  const card = {
    format: 'ca-pipe.model/1',
    arch,
    head: 'gap',
    heads: 1,
    num_classes: numClasses,
    input_size: size,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    classes: Array.from({ length: numClasses }, (_, i) => `c${i}`),
    weights: 'final.safetensors',
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(card));
  return dir;
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export function stageCtx<P>(
  params: P,
  inputs: Record<string, string>,
  root: string,
  signal?: AbortSignal,
): StageContext<P> & { logs: string[] } {
  const logs: string[] = [];
  const outDir = join(root, 'out');
  const scratchDir = join(root, 'scratch');
  mkdirSync(outDir, { recursive: true });
  mkdirSync(scratchDir, { recursive: true });
  return {
    params,
    inputs,
    variantInputs: {},
    outDir,
    scratchDir,
    baseDir: root,
    progress: { total() {}, tick() {}, set() {}, message() {} },
    log: { info: (m) => logs.push(m), warn: (m) => logs.push(`WARN ${m}`), error: (m) => logs.push(`ERROR ${m}`), debug() {} },
    signal: signal ?? new AbortController().signal,
    stage: { name: 'train', variantId: '', alias: '', key: 'k' },
    provenance: {},
    logs,
  };
}
