// The saliency stage's work: plan the images, compute (or import) maps shard by shard with resume
// from the scratch directory, then write the shards, saliency.json and overlays to the output.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { shardRange, type ShardPart, type StageContext } from '../../engine/contract.js';
import { SALIENCY_FILES, type SaliencyMeta } from '../artifacts.js';
import { balancedSubset } from '../../ml/explain/subset.js';
import { recordEngine } from '../engine-choice.js';
import type { SaliencyParams } from './schema.js';
import type { LoadedModel } from '../../ml/explain/model-dir.js';
import type { LoadedIndex } from '../../ml/data/index-file.js';
import type { ModelRunner } from '../../ml/explain/runner.js';
import type { MapShard } from '../../ml/explain/shards.js';
import type { ImportedMaps } from '../../ml/explain/import-maps.js';
import type { BatchMaps } from '../../ml/explain/saliency-batch.js';
import type { Preprocessing } from '../../ml/data/preprocessing.js';

/**
 * The images to explain, in the order they are stored: the split's ids in a seeded class-balanced
 * round robin (ml/explain/subset.ts), cut to `limit`. The overlay sample is a prefix of this list,
 * so it is a subset of the explained images and its order interleaves classes.
 */
export function selectIds(
  splits: { train: number[]; val: number[] },
  allIds: number[],
  labelOf: (id: number) => number,
  split: 'val' | 'train' | 'all',
  seed: number,
  limit?: number,
): number[] {
  return balancedSubset(split === 'all' ? allIds : splits[split], labelOf, seed, limit);
}

/** The whole stage, or (with `part`) only that part's shards into the scratch directory, with no outputs. */
export async function runSaliency(ctx: StageContext<SaliencyParams>, part?: ShardPart): Promise<void> {
  const p = ctx.params;
  const { initBackend, setBackendLogger } = await import('../../ml/backend/index.js');
  const { ModelRunner } = await import('../../ml/explain/runner.js');
  const shards = await import('../../ml/explain/shards.js');

  const inp = await openInputs(ctx);
  const plan = shards.planShards(inp.ids, p.shard_size);
  const scratch = join(ctx.scratchDir, 'saliency-shards');
  await mkdir(scratch, { recursive: true });
  ctx.progress.total(inp.ids.length, 'img');

  setBackendLogger((line) => ctx.log.debug(line));
  const backend = p.import ? undefined : await initBackend();
  if (backend) ctx.provenance.backend = backend.name;
  const runner = new ModelRunner(inp.model, {
    batchSize: p.batch_size,
    cacheDir: onnxCacheDir(ctx.scratchDir),
    engine: p.engine ?? 'auto',
    onCalibrate: (what) => ctx.log.info(`saliency: engine calibration: ${what}`),
  });
  const imported = p.import ? await importMaps(ctx, inp) : undefined;
  // Imported maps need no forward pass unless the target is the model's prediction.
  if (!p.import || p.target === 'pred') await recordEngine(ctx, runner, 'saliency');

  let made: ShardsMade;
  try {
    made = await makeShards(ctx, inp, runner, plan, scratch, imported, part && shardRange(plan.length, part));
  } finally {
    await runner.release();
  }
  ctx.provenance.reused_shards = made.reused;
  if (part) return;
  if (imported) for (const m of inp.methods) made.degenerate[m] = imported.degenerate[m];
  if (made.reused) ctx.log.info(`saliency: reused ${made.reused} finished shard(s) from an interrupted run`);
  await writeOutputs(ctx, inp, made, scratch);
}

/** The checked inputs and settings that every shard and the outputs share. */
interface SaliencyInputs {
  model: LoadedModel;
  index: LoadedIndex;
  isCa: boolean;
  methods: string[];
  rec: (id: number) => LoadedIndex['records'][number];
  ids: number[];
  h: number;
  w: number;
  preprocessing: Preprocessing;
  /** Per computed method with a choice of definition: the one followed (empty for imports). */
  conventions: Record<string, string>;
  tf: { size: number; resize?: number; preprocessing: Preprocessing };
}

/** Reads the model and index inputs, checks the methods suit the model, and selects the images. */
async function openInputs(ctx: StageContext<SaliencyParams>): Promise<SaliencyInputs> {
  const p = ctx.params;
  const { readModelDir } = await import('../../ml/explain/model-dir.js');
  const { checkMethods, methodConventions } = await import('../../ml/explain/saliency-batch.js');
  const { readIndex } = await import('../../ml/data/index-file.js');

  if (!ctx.inputs.model) throw new Error('saliency: input "model" (a train stage) is required');
  if (!ctx.inputs.data) throw new Error('saliency: input "data" (an index stage) is required');
  const model = await readModelDir(ctx.inputs.model);
  const index = await readIndex(ctx.inputs.data);
  const isCa = model.card.head !== 'gap';
  const methods = [...p.methods];
  checkMethods(methods, isCa, `saliency (${join(ctx.inputs.model, 'model.json')})`);
  for (const m of Object.keys(p.convention ?? {})) {
    if (!methods.includes(m))
      throw new Error(`saliency: convention.${m} is set but "${m}" is not among the methods (${methods.join(', ')})`);
    if (p.import) throw new Error(`saliency: convention.${m} cannot apply to imported maps (they were computed elsewhere)`);
  }
  const conventions = p.import ? {} : methodConventions(methods, p.convention);
  if (p.opticam && !methods.includes('opticam'))
    throw new Error('saliency: opticam settings are given but "opticam" is not among the methods');
  const byId = new Map(index.records.map((r) => [r.id, r]));
  const rec = (id: number) => {
    const r = byId.get(id);
    if (!r) throw new Error(`${join(index.dir, 'splits.json')}: id ${id} is not in index.jsonl`);
    return r;
  };
  const ids = selectIds(
    index.splits,
    index.records.map((r) => r.id),
    (id) => rec(id).label,
    p.split,
    p.seed,
    p.limit,
  );
  if (ids.length === 0) throw new Error(`saliency: split "${p.split}" of ${index.dir} has no images`);
  const { h, w } = model.feature;
  const size = model.card.input_size;
  const { preprocessingForModel, conventionMismatch, unrecordedNote } = await import('../../ml/data/preprocessing.js');
  const preprocessing = preprocessingForModel(p.preprocessing, model.card, index.meta.preprocessing);
  const mismatch =
    conventionMismatch('saliency', preprocessing, model.card) ??
    unrecordedNote('saliency', p.preprocessing, model.card, index.meta.preprocessing);
  if (mismatch) ctx.log.warn(mismatch);
  const tf = { size, resize: model.card.resize, preprocessing };
  return { model, index, isCa, methods, rec, ids, h, w, preprocessing, tf, conventions };
}

async function importMaps(ctx: StageContext<SaliencyParams>, inp: SaliencyInputs): Promise<ImportedMaps> {
  const imports = await import('../../ml/explain/import-maps.js');
  const { methods, ids, h, w } = inp;
  const imp = ctx.params.import!;
  if (imp.npy_dir) {
    if (methods.length !== 1)
      throw new Error(`saliency: import.npy_dir holds one method's maps; list exactly one name in methods (got ${methods.join(', ')})`);
    return imports.importNpyDir(resolve(ctx.baseDir, imp.npy_dir), methods[0], ids, h, w);
  }
  return imports.importSafetensors(resolve(ctx.baseDir, imp.safetensors!), methods, ids, h, w);
}

/** What the shards add up to, for saliency.json. */
interface ShardsMade {
  degenerate: Record<string, Record<string, number>>;
  targets: number[];
  /** Shard files relative to the output directory. */
  names: string[];
  sizes: Record<string, { h: number; w: number }>;
  reused: number;
}

/** Writes every shard into the scratch directory: a finished one from an interrupted run is kept, the rest imported or computed. */
async function makeShards(
  ctx: StageContext<SaliencyParams>,
  inp: SaliencyInputs,
  runner: ModelRunner,
  plan: number[][],
  scratch: string,
  imported: ImportedMaps | undefined,
  range?: { start: number; end: number },
): Promise<ShardsMade> {
  const p = ctx.params;
  const shards = await import('../../ml/explain/shards.js');
  const { methods } = inp;
  const made: ShardsMade = { degenerate: Object.fromEntries(methods.map((m) => [m, {}])), targets: [], names: [], sizes: {}, reused: 0 };
  let done = 0;
  let skipped = 0; // images of other parts' shards: not this worker's progress
  for (let s = 0; s < plan.length; s++) {
    ctx.signal.throwIfAborted();
    const sIds = plan[s];
    if (range && (s < range.start || s >= range.end)) {
      done += sIds.length; // the offset of later shards into an import
      skipped += sIds.length;
      continue;
    }
    const name = shards.shardName(s, 'safetensors');
    const file = join(scratch, name);
    let shard = await shards.reusableMapShard(file, sIds, methods);
    if (shard) made.reused++;
    else {
      shard = imported ? await importedShard(ctx, inp, runner, sIds, imported, done) : await computedShard(ctx, inp, runner, sIds);
      await shards.writeMapShard(file, shard, p.dtype);
    }
    for (const m of methods) {
      made.sizes[m] = { h: shard.maps[m].h, w: shard.maps[m].w };
      for (const [why, c] of Object.entries(shard.degenerate[m] ?? {})) made.degenerate[m][why] = (made.degenerate[m][why] ?? 0) + c;
    }
    made.targets.push(...shard.targets);
    made.names.push(`${SALIENCY_FILES.shardDir}/${name}`);
    done += sIds.length;
    ctx.progress.set(done - skipped);
  }
  return made;
}

/** A shard of imported maps; `off` is the position of its first image in the import. */
async function importedShard(
  ctx: StageContext<SaliencyParams>,
  inp: SaliencyInputs,
  runner: ModelRunner,
  sIds: number[],
  imported: ImportedMaps,
  off: number,
): Promise<MapShard> {
  const p = ctx.params;
  const { loadEvalBatch } = await import('../../ml/explain/images.js');
  const { model, index, rec, methods, h, w } = inp;
  const hw = h * w;
  // The class the imported maps explain: the label, or (target: pred) the model's prediction.
  let tgt = sIds.map((id) => rec(id).label);
  if (p.target === 'pred') {
    const images = await loadEvalBatch(
      sIds.map((id) => index.imagePath(rec(id))),
      inp.tf,
      model.card.mean,
      model.card.std,
      ctx.signal,
    );
    const probs = await runner.probs(images, sIds.length);
    const C = model.card.num_classes;
    tgt = sIds.map((_, i) => {
      let best = 0;
      for (let j = 1; j < C; j++) if (probs[i * C + j] > probs[i * C + best]) best = j;
      return best;
    });
  }
  return {
    ids: sIds,
    targets: tgt,
    maps: Object.fromEntries(methods.map((m) => [m, { h, w, data: imported.maps[m].slice(off * hw, (off + sIds.length) * hw) }])),
    degenerate: {},
  };
}

/** A shard of maps computed now; images are loaded and explained batch_size at a time, the shard is written once whole. */
async function computedShard(
  ctx: StageContext<SaliencyParams>,
  inp: SaliencyInputs,
  runner: ModelRunner,
  sIds: number[],
): Promise<MapShard> {
  const p = ctx.params;
  const { computeBatchMaps } = await import('../../ml/explain/saliency-batch.js');
  const { loadEvalBatch } = await import('../../ml/explain/images.js');
  const { model, index, rec, methods } = inp;
  const paths = sIds.map((id) => index.imagePath(rec(id)));
  const labels = sIds.map((id) => rec(id).label);
  const parts: BatchMaps[] = [];
  for (let b = 0; b < sIds.length; b += p.batch_size) {
    const bIds = sIds.slice(b, b + p.batch_size);
    const images = await loadEvalBatch(paths.slice(b, b + p.batch_size), inp.tf, model.card.mean, model.card.std, ctx.signal);
    parts.push(
      await computeBatchMaps(
        runner,
        images,
        bIds,
        labels.slice(b, b + p.batch_size),
        p.target,
        methods,
        {
          maxBatch: p.method_batch,
          rise: { numMasks: p.rise.masks, cells: p.rise.cells, p1: p.rise.p1 },
          seed: p.seed,
          conventions: p.convention,
          opticam: p.opticam,
        },
        { signal: ctx.signal, onImage: () => ctx.progress.tick() },
      ),
    );
  }
  const shard = joinBatches(sIds, methods, parts);
  if (Object.keys(inp.conventions).length > 0) shard.conventions = inp.conventions;
  return shard;
}

/** Concatenates the batches' maps per method and sums their degenerate counts. */
function joinBatches(sIds: number[], methods: string[], parts: BatchMaps[]): MapShard {
  const shard: MapShard = { ids: sIds, targets: [], maps: {}, degenerate: {} };
  for (const part of parts) shard.targets.push(...part.targets);
  for (const m of methods) {
    const first = parts[0].maps[m];
    const data = new Float32Array(sIds.length * first.h * first.w);
    let o = 0;
    for (const part of parts) {
      data.set(part.maps[m].data, o);
      o += part.maps[m].data.length;
    }
    shard.maps[m] = { h: first.h, w: first.w, data };
    shard.degenerate[m] = {};
    for (const part of parts)
      for (const [why, c] of Object.entries(part.degenerate[m])) shard.degenerate[m][why] = (shard.degenerate[m][why] ?? 0) + c;
  }
  return shard;
}

/** Copies the shards to the output, then writes the overlays and saliency.json, and warns of degenerate maps. */
async function writeOutputs(ctx: StageContext<SaliencyParams>, inp: SaliencyInputs, made: ShardsMade, scratch: string): Promise<void> {
  const p = ctx.params;
  const { ids, methods, index, rec, tf } = inp;
  const { names, degenerate } = made;
  await mkdir(join(ctx.outDir, SALIENCY_FILES.shardDir), { recursive: true });
  for (const n of names) await copyFile(join(scratch, n.slice(SALIENCY_FILES.shardDir.length + 1)), join(ctx.outDir, n));
  const overlays = await writeOverlays(ctx, ids.slice(0, p.overlays), methods, (id) => index.imagePath(rec(id)), tf, names);
  const meta: SaliencyMeta = {
    format: 'ca-pipe.saliency/1',
    methods,
    h: inp.h,
    w: inp.w,
    sizes: made.sizes,
    split: p.split,
    target: p.target,
    preprocessing: inp.preprocessing,
    pooling: inp.isCa ? 'ca' : 'gap',
    ids,
    targets: made.targets,
    shards: names,
    degenerate,
    overlays,
    ...(Object.keys(inp.conventions).length > 0 && { conventions: inp.conventions }),
    ...(p.import && { imported: true }),
  };
  await writeFile(join(ctx.outDir, SALIENCY_FILES.meta), JSON.stringify(meta, null, 1) + '\n');
  for (const [m, d] of Object.entries(degenerate)) {
    const total = Object.values(d).reduce((a, b) => a + b, 0);
    if (total)
      ctx.log.warn(
        `saliency: ${m}: ${total} degenerate map(s) (${Object.entries(d)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')})`,
      );
  }
}

async function writeOverlays(
  ctx: StageContext<SaliencyParams>,
  ids: number[],
  methods: string[],
  pathOf: (id: number) => string,
  tf: { size: number; resize?: number; preprocessing: 'torchvision' | 'fast' },
  shardFiles: string[],
): Promise<SaliencyMeta['overlays']> {
  if (ids.length === 0) return [];
  const { decodeEvalRgb } = await import('../../ml/data/image-tensor.js');
  const { overlay } = await import('../../ml/saliency/overlay.js');
  const { encodePng } = await import('../../ml/io/image.js');
  const { readMapShard } = await import('../../ml/explain/shards.js');
  const want = new Set(ids);
  const made = new Map<number, SaliencyMeta['overlays']>();
  await mkdir(join(ctx.outDir, SALIENCY_FILES.overlayDir), { recursive: true });
  for (const f of shardFiles) {
    if (want.size === 0) break;
    const shard = await readMapShard(join(ctx.outDir, f), methods);
    for (let i = 0; i < shard.ids.length; i++) {
      const id = shard.ids[i];
      if (!want.has(id)) continue;
      want.delete(id);
      const size = tf.size;
      const img = await decodeEvalRgb(pathOf(id), size, tf.resize, undefined, tf.preprocessing);
      for (const m of methods) {
        const { h, w, data } = shard.maps[m];
        const rgb = overlay(img.data, size, size, data.subarray(i * h * w, (i + 1) * h * w), h, w);
        const file = `${SALIENCY_FILES.overlayDir}/${id}-${m}.png`;
        await writeFile(join(ctx.outDir, file), await encodePng(rgb, size, size, 3));
        const list = made.get(id) ?? [];
        list.push({ id, method: m, file });
        made.set(id, list);
      }
    }
  }
  // Listed in selection order (classes interleaved), whatever order the shards hold them in.
  return ids.flatMap((id) => made.get(id) ?? []);
}

/** Exported graphs are content-addressed, so every stage shares one cache next to the per-key scratch dirs. */
function onnxCacheDir(scratchDir: string): string {
  return join(dirname(scratchDir), '_onnx-cache');
}
