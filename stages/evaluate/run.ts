// The evaluate stage's work: score the saliency input's maps shard by shard (the saliency shards
// are the resume unit; per-image results of finished shards are kept in the scratch directory),
// then aggregate: means with bootstrap intervals, degenerate maps counted and left out, mean curves.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { shardRange, type ShardPart, type StageContext } from '../../engine/contract.js';
import { EVALUATE_FILES, SALIENCY_FILES, type EvaluateSummary, type Interval, type MethodScores, type SaliencyMeta } from '../artifacts.js';
import { isCoreMetric, METRICS, type CoreMetricKey } from '../../ml/metrics/table.js';
import type { EvaluateParams } from './schema.js';
import { recordEngine } from '../engine-choice.js';
import type { Protocol } from '../../ml/metrics/protocol.js';
import type { LoadedModel } from '../../ml/explain/model-dir.js';
import type { LoadedIndex } from '../../ml/data/index-file.js';
import type { ModelRunner } from '../../ml/explain/runner.js';
import type { MapShard } from '../../ml/explain/shards.js';
import type { Preprocessing } from '../../ml/data/preprocessing.js';

type Row = import('../../ml/explain/evaluate-batch.js').ImageRow;
type Curves = import('../../ml/explain/evaluate-batch.js').CurveSums;
type RoadSums = import('../../ml/explain/evaluate-batch.js').RoadSums;
type RoadProtocol = import('../../ml/metrics/road.js').RoadProtocol;
type SanityProtocol = import('../../ml/explain/sanity.js').SanityProtocol;

interface ShardResult {
  ids: number[];
  methods: string[];
  protocol: unknown;
  rows: Row[];
  curves: Record<string, Curves>;
  top1: number[];
  top5: number[];
  /** Absent in shards cached before it was recorded. */
  nonFinite?: number[];
  /** The ROAD protocol and its per-method sums, when ROAD ran. */
  roadProtocol?: RoadProtocol;
  road?: Record<string, RoadSums>;
  /** The sanity-check protocol and per-image, per-step similarities, when it ran. */
  sanityProtocol?: SanityProtocol;
  sanity?: { steps: string[]; rank: Record<string, number[]>; ssim: Record<string, number[]> };
}

const CORE_METRICS = METRICS.filter(isCoreMetric).map((m) => m.key);

/** JSON turns NaN into null; read it back as NaN. */
function revive(rows: Row[], metrics: readonly string[]): Row[] {
  for (const r of rows) {
    const fields = r as unknown as Record<string, unknown>;
    for (const k of [...metrics, 'p', 'o']) if (fields[k] === null) fields[k] = NaN;
  }
  return rows;
}

/** The whole stage, or (with `part`) only that part's shards into the scratch directory, with no outputs. */
export async function runEvaluate(ctx: StageContext<EvaluateParams>, part?: ShardPart): Promise<void> {
  const p = ctx.params;
  for (const name of ['model', 'data', 'saliency']) if (!ctx.inputs[name]) throw new Error(`evaluate: input "${name}" is required`);
  const { ModelRunner } = await import('../../ml/explain/runner.js');
  const inp = await openInputs(ctx);
  const scratch = join(ctx.scratchDir, 'evaluate-shards');
  await mkdir(scratch, { recursive: true });
  const runner = new ModelRunner(inp.model, {
    batchSize: p.batch_size,
    cacheDir: onnxCacheDir(ctx.scratchDir),
    engine: p.engine ?? 'auto',
    onCalibrate: (what) => ctx.log.info(`evaluate: engine calibration: ${what}`),
  });
  ctx.progress.total(inp.meta.ids.length, 'img');
  await recordEngine(ctx, runner, 'evaluate');

  const t0 = performance.now();
  let scored: { results: ShardResult[]; reused: number };
  try {
    scored = await scoreShards(ctx, inp, runner, scratch, part && shardRange(inp.meta.shards.length, part));
  } finally {
    await runner.release();
  }
  const { results, reused } = scored;
  ctx.provenance.evaluate = { seconds: (performance.now() - t0) / 1000, forward_images: runner.forwardImages, reused_shards: reused };
  if (part) return;
  if (reused) ctx.log.info(`evaluate: reused ${reused} finished shard(s) from an interrupted run`);
  await writeEvaluation(ctx, inp, results);
}

/** The checked inputs and settings that scoring and the summary share. */
interface EvaluateInputs {
  protocol: Protocol;
  model: LoadedModel;
  index: LoadedIndex;
  meta: SaliencyMeta;
  metaFile: string;
  pooling: 'gap' | 'ca';
  methods: string[];
  rec: (id: number) => LoadedIndex['records'][number];
  localise: boolean;
  preprocessing: Preprocessing;
  tf: { size: number; resize: LoadedModel['card']['resize']; preprocessing: Preprocessing };
  /** The resolved ROAD protocol, when the params ask for it. */
  road?: RoadProtocol;
  /** The resolved sanity-check protocol, when the params ask for it. */
  sanity?: SanityProtocol;
}

/** Reads the model, index and saliency inputs, checks they fit together and warns where they disagree. */
async function openInputs(ctx: StageContext<EvaluateParams>): Promise<EvaluateInputs> {
  const p = ctx.params;
  const { resolveProtocol } = await import('../../ml/metrics/protocol.js');
  const { readModelDir } = await import('../../ml/explain/model-dir.js');
  const { readIndex } = await import('../../ml/data/index-file.js');
  const { readFile } = await import('node:fs/promises');

  const protocol = resolveProtocol(p.protocol, p.protocol_overrides, `evaluate (${ctx.stage.name}): params.protocol_overrides`);
  const model = await readModelDir(ctx.inputs.model);
  const index = await readIndex(ctx.inputs.data);
  const metaFile = join(ctx.inputs.saliency, SALIENCY_FILES.meta);
  let meta: SaliencyMeta;
  try {
    meta = JSON.parse(await readFile(metaFile, 'utf8')) as SaliencyMeta;
  } catch (e) {
    throw new Error(`${metaFile}: cannot read the saliency input (${(e as Error).message})`);
  }
  if (meta.format !== 'ca-pipe.saliency/1') throw new Error(`${metaFile}: unsupported format ${JSON.stringify(meta.format)}`);
  const pooling = model.card.head === 'gap' ? 'gap' : 'ca';
  if (meta.pooling !== pooling)
    throw new Error(`${metaFile}: maps were computed with ${meta.pooling} pooling but the model input pools with ${pooling}`);
  if (meta.h !== model.feature.h || meta.w !== model.feature.w)
    throw new Error(
      `${metaFile}: maps are on a ${meta.h}×${meta.w} grid but the model's feature grid is ${model.feature.h}×${model.feature.w}`,
    );
  const methods = p.methods ?? meta.methods;
  for (const m of methods)
    if (!meta.methods.includes(m)) throw new Error(`${metaFile}: no maps for method "${m}" (has: ${meta.methods.join(', ')})`);
  if (meta.target !== protocol.target)
    ctx.log.warn(
      `evaluate: the maps explain the ${meta.target === 'gt' ? 'ground-truth' : 'predicted'} class but protocol ${protocol.name} scores the ${protocol.target === 'gt' ? 'ground-truth' : 'predicted'} class`,
    );
  const byId = new Map(index.records.map((r) => [r.id, r]));
  const rec = (id: number) => {
    const r = byId.get(id);
    if (!r) throw new Error(`${metaFile}: image id ${id} is not in ${join(index.dir, 'index.jsonl')}`);
    return r;
  };
  const localise = p.localisation === 'auto' && (index.meta.masks || index.records.some((r) => r.box !== undefined));
  const preprocessing = await checkPreprocessing(ctx, model, index, meta);
  const tf = { size: model.card.input_size, resize: model.card.resize, preprocessing };
  const { ROAD_DEFAULTS } = await import('../../ml/metrics/road.js');
  const road = p.road ? { ...ROAD_DEFAULTS, ...p.road } : undefined;
  const sanity = p.sanity ? await sanityProtocol(p.sanity, model, p.batch_size, p.engine) : undefined;
  return { protocol, model, index, meta, metaFile, pooling, methods, rec, localise, preprocessing, tf, road, sanity };
}

/** The sanity check's resolved settings: every cascade step of the model unless some are named. */
async function sanityProtocol(
  s: NonNullable<EvaluateParams['sanity']>,
  model: LoadedModel,
  batch: number,
  engine: EvaluateParams['engine'],
): Promise<SanityProtocol> {
  const { sanitySteps } = await import('../../ml/explain/sanity.js');
  const all = sanitySteps(model);
  for (const name of s.steps ?? [])
    if (!all.includes(name))
      throw new Error(`evaluate: params.sanity.steps: no cascade step "${name}" for this model (has: ${all.join(', ')})`);
  return {
    seed: s.seed,
    steps: s.steps ?? all,
    ssimWindow: 7,
    engine: engine === 'onnx' ? 'onnx' : 'tfjs',
    saliency: { maxBatch: batch, rise: { numMasks: s.rise.masks, cells: s.rise.cells, p1: s.rise.p1 }, seed: s.saliency_seed },
  };
}

/** The pixel convention to score with, warning when it differs from the model's or the maps'. */
async function checkPreprocessing(
  ctx: StageContext<EvaluateParams>,
  model: LoadedModel,
  index: LoadedIndex,
  meta: SaliencyMeta,
): Promise<Preprocessing> {
  const p = ctx.params;
  const { preprocessingForModel, conventionMismatch, unrecordedNote } = await import('../../ml/data/preprocessing.js');
  const preprocessing = preprocessingForModel(p.preprocessing, model.card, index.meta.preprocessing);
  const mismatch =
    conventionMismatch('evaluate', preprocessing, model.card) ??
    unrecordedNote('evaluate', p.preprocessing, model.card, index.meta.preprocessing);
  if (mismatch) ctx.log.warn(mismatch);
  if ((meta.preprocessing ?? 'fast') !== preprocessing)
    ctx.log.warn(
      `evaluate: the maps were computed on '${meta.preprocessing ?? 'fast'}' pixels but this stage scores '${preprocessing}' pixels (set the same preprocessing on both stages)`,
    );
  return preprocessing;
}

/** Every saliency shard's per-image results: from the scratch directory when a finished one fits, else scored now. */
async function scoreShards(
  ctx: StageContext<EvaluateParams>,
  inp: EvaluateInputs,
  runner: ModelRunner,
  scratch: string,
  range?: { start: number; end: number },
): Promise<{ results: ShardResult[]; reused: number }> {
  const shards = await import('../../ml/explain/shards.js');
  const { meta, methods } = inp;
  const results: ShardResult[] = [];
  let done = 0;
  let reused = 0;
  const protoJson = JSON.stringify(inp.protocol);
  const roadJson = JSON.stringify(inp.road ?? null);
  const sanityJson = JSON.stringify(inp.sanity ?? null);
  for (let s = 0; s < meta.shards.length; s++) {
    ctx.signal.throwIfAborted();
    if (range && (s < range.start || s >= range.end)) continue;
    const file = join(ctx.inputs.saliency, meta.shards[s]);
    const cache = join(scratch, shards.shardName(s, 'json'));
    const shard = await shards.readMapShard(file, methods);
    let res = await shards.readJsonIfValid<ShardResult>(
      cache,
      (v) =>
        JSON.stringify(v.ids) === JSON.stringify(shard.ids) &&
        JSON.stringify(v.methods) === JSON.stringify(methods) &&
        JSON.stringify(v.protocol) === protoJson &&
        JSON.stringify(v.roadProtocol ?? null) === roadJson &&
        JSON.stringify(v.sanityProtocol ?? null) === sanityJson &&
        // A shard scored before a metric was added lacks it: score it again.
        v.rows.every((r) => CORE_METRICS.every((k) => k in r)),
    );
    if (res) {
      reused++;
      revive(
        res.rows,
        METRICS.map((m) => m.key),
      );
    } else {
      res = await scoreShard(ctx, inp, runner, shard, s);
      await shards.writeJsonAtomic(cache, res);
    }
    results.push(res);
    done += shard.ids.length;
    ctx.progress.set(done);
  }
  return { results, reused };
}

/** Scores one shard's maps on its images (and object regions, when localising). */
async function scoreShard(
  ctx: StageContext<EvaluateParams>,
  inp: EvaluateInputs,
  runner: ModelRunner,
  shard: MapShard,
  s: number,
): Promise<ShardResult> {
  const p = ctx.params;
  const { loadEvalBatch, loadEvalMask, boxToEval } = await import('../../ml/explain/images.js');
  const { boxesToMask } = await import('../../ml/metrics/localisation.js');
  const { imageSize } = await import('../../ml/io/image.js');
  const { scoreBatch } = await import('../../ml/explain/evaluate-batch.js');
  const { model, index, tf, protocol, methods } = inp;
  const size = tf.size;
  /** The object region on the eval grid: the mask if the index has one, else the box (source pixels). */
  const regionOf = async (r: LoadedIndex['records'][number]): Promise<Uint8Array | null> => {
    const mp = index.maskPath(r);
    if (mp) return loadEvalMask(mp, tf);
    if (!r.box) return null;
    // PIL does not apply EXIF orientation, so under torchvision boxes refer to the stored pixels.
    const source = await imageSize(index.imagePath(r), undefined, { autoOrient: inp.preprocessing !== 'torchvision' });
    return boxesToMask([boxToEval(r.box, source, tf)], size, size);
  };
  const recs = shard.ids.map(inp.rec);
  const images = await loadEvalBatch(
    recs.map((r) => index.imagePath(r)),
    tf,
    model.card.mean,
    model.card.std,
    ctx.signal,
  );
  const regions = inp.localise ? await Promise.all(recs.map((r) => regionOf(r))) : undefined;
  const sanity = inp.sanity ? await sanityShard(ctx, inp, images, shard.ids) : undefined;
  const last = (v: number[]) => v.filter((_, j) => j % sanity!.steps.length === sanity!.steps.length - 1);
  const scored = await scoreBatch({
    images,
    size,
    ids: shard.ids,
    labels: recs.map((r) => r.label),
    maps: shard.maps,
    regions,
    protocol,
    mean: model.card.mean,
    std: model.card.std,
    score: runner.probs,
    maxBatch: p.batch_size,
    keepConstant: p.keep_constant,
    road: inp.road,
    sanity: sanity && Object.fromEntries(methods.map((m) => [m, { rank: last(sanity.rank[m]!), ssim: last(sanity.ssim[m]!) }])),
    signal: ctx.signal,
    onProgress: (f) => ctx.progress.message(`shard ${s + 1}/${inp.meta.shards.length}: ${Math.round(f * 100)}% of the methods scored`),
  });
  return {
    ids: shard.ids,
    methods,
    protocol,
    ...scored,
    ...(inp.road ? { roadProtocol: inp.road } : {}),
    ...(sanity ? { sanityProtocol: inp.sanity, sanity } : {}),
  };
}

/** The sanity check on one shard's images: the explained classes of the saliency input, every step. */
async function sanityShard(
  ctx: StageContext<EvaluateParams>,
  inp: EvaluateInputs,
  images: Float32Array,
  ids: number[],
): Promise<NonNullable<ShardResult['sanity']>> {
  const { sanityBatch } = await import('../../ml/explain/sanity.js');
  const { ModelRunner } = await import('../../ml/explain/runner.js');
  const p = ctx.params;
  const pos = new Map(inp.meta.ids.map((id, k) => [id, k]));
  const targets = ids.map((id) => inp.meta.targets[pos.get(id)!]!);
  ctx.progress.message(`sanity check: ${inp.sanity!.steps.length} randomised model(s)`);
  const r = await sanityBatch({
    model: inp.model,
    open: (m) => new ModelRunner(m, { batchSize: p.batch_size, cacheDir: onnxCacheDir(ctx.scratchDir), engine: inp.sanity!.engine }),
    images,
    ids,
    targets,
    methods: inp.methods,
    protocol: inp.protocol,
    sanity: inp.sanity!,
    signal: ctx.signal,
  });
  const plain = (rec: Record<string, Float64Array>) => Object.fromEntries(Object.entries(rec).map(([m, v]) => [m, Array.from(v)]));
  return { steps: r.steps, rank: plain(r.rank), ssim: plain(r.ssim) };
}

/** Aggregates the shards' results and writes per_image.jsonl, the mean curves and evaluation.json. */
async function writeEvaluation(ctx: StageContext<EvaluateParams>, inp: EvaluateInputs, results: ShardResult[]): Promise<void> {
  const p = ctx.params;
  const { summarise } = await import('../../ml/metrics/stats.js');
  const { protocol, meta, methods } = inp;
  const rows = results.flatMap((r) => r.rows);
  const top1 = results.flatMap((r) => r.top1);
  const top5 = results.flatMap((r) => r.top5);
  const nonFiniteScores = results.reduce((a, r) => a + (r.nonFinite ?? []).reduce((x, y) => x + y, 0), 0);
  const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
  const boot = { B: p.bootstrap.samples, seed: p.bootstrap.seed, level: p.bootstrap.level };
  const summary: EvaluateSummary & Record<string, unknown> = {
    format: 'ca-pipe.evaluate/1',
    protocol: protocol as unknown as Record<string, unknown>,
    pooling: inp.pooling,
    accuracy: { top1: mean(top1), top5: mean(top5), n: top1.length, non_finite: nonFiniteScores },
    methods: {},
    split: meta.split,
    saliency_target: meta.target,
    bootstrap: { samples: boot.B, seed: boot.seed, level: boot.level, method: 'percentile' },
    saliency_degenerate: Object.fromEntries(methods.map((m) => [m, meta.degenerate[m] ?? {}])),
  };
  const curves: Record<string, { insertion: number[]; deletion: number[]; n: number }> = {};
  const roadCurves: Record<string, ReturnType<typeof meanRoad>> = {};
  for (const m of methods) {
    const opts = { ...boot, includeConstant: p.keep_constant.includes(m) };
    const entry = methodScores(
      rows.filter((r) => r.method === m),
      opts,
      summarise,
    );
    summary.methods[m] = entry;
    curves[m] = meanCurves(results.map((r) => r.curves[m]));
    if (inp.road)
      roadCurves[m] = meanRoad(
        inp.road,
        results.map((r) => r.road?.[m]),
      );
    const left = Object.entries(entry.excluded);
    if (left.length) ctx.log.warn(`evaluate: ${m}: left out of the means: ${left.map(([k, v]) => `${v} ${k} map(s)`).join(', ')}`);
  }
  // The ROAD protocol (percentages, order semantics, noise, jitter, seed, solver tolerance) next to
  // its per-percentage mean probability and accuracy (the official benchmark's two curves).
  if (inp.road) summary.road = { protocol: inp.road, methods: roadCurves };
  // Per cascade step: mean ρ and SSIM over the images with a defined value (constant maps have no ρ).
  if (inp.sanity) summary.sanity = { protocol: inp.sanity, methods: sanityCurves(inp.sanity, methods, results, boot, summarise) };
  const lines = rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
  await writeFile(join(ctx.outDir, EVALUATE_FILES.perImage), lines);
  await writeFile(join(ctx.outDir, EVALUATE_FILES.curves), JSON.stringify(curves) + '\n');
  await writeFile(join(ctx.outDir, EVALUATE_FILES.summary), JSON.stringify(summary, null, 1) + '\n');
  if (nonFiniteScores)
    ctx.log.warn(
      `evaluate: the model gave non-finite scores (NaN or ±Inf) for ${nonFiniteScores} of ${top1.length} images; they count as wrong in top-1/top-5 (accuracy.non_finite in ${EVALUATE_FILES.summary})`,
    );
  ctx.log.info(
    `evaluate: ${top1.length} images, top-1 ${(summary.accuracy.top1 * 100).toFixed(2)}%, protocol ${protocol.name}, ${methods.length} method(s)`,
  );
}

type Summarise = typeof import('../../ml/metrics/stats.js').summarise;

const interval = (s: { mean: number; lo: number; hi: number; n: number }): Interval => ({ mean: s.mean, lo: s.lo, hi: s.hi, n: s.n });

/** One method's means with intervals over its images; degenerate maps are left out and counted. */
function methodScores(mr: Row[], opts: Parameters<Summarise>[2], summarise: Summarise): MethodScores {
  const statuses = mr.map((r) => r.status);
  const core = METRICS.filter(isCoreMetric).map((k) => ({
    key: k.key,
    s: summarise(
      mr.map((r) => r[k.key as CoreMetricKey]),
      statuses,
      opts,
    ),
  }));
  const excluded: Record<string, number> = {};
  // The map statuses are the same for every core metric: count them once.
  const ex = core[0]!.s.excluded;
  if (ex.constant) excluded.constant = ex.constant;
  if (ex.nan) excluded['non-finite'] = ex.nan;
  if (ex.nonFinite) excluded['non-finite-score'] = ex.nonFinite;
  const entry: MethodScores = { ...Object.fromEntries(core.map(({ key, s }) => [key, interval(s)])), excluded };
  // Opt-in metrics (ROAD) follow the map statuses like the core ones, where they were computed.
  for (const k of METRICS.filter((x) => 'optIn' in x)) {
    if (mr.some((r) => r[k.key] !== undefined))
      entry[k.key] = interval(
        summarise(
          mr.map((r) => r[k.key] ?? NaN),
          statuses,
          opts,
        ),
      );
  }
  for (const k of METRICS.filter((x) => x.needsRegion)) {
    // NaN = no usable value (degenerate map, empty mask): dropped and counted by n.
    if (mr.some((r) => r[k.key] !== undefined))
      entry[k.key] = interval(
        summarise(
          mr.map((r) => r[k.key] ?? NaN),
          mr.map(() => 'ok'),
          opts,
        ),
      );
  }
  return entry;
}

function sanityCurves(
  s: SanityProtocol,
  methods: string[],
  results: ShardResult[],
  boot: { B: number; seed: number; level: number },
  summarise: Summarise,
) {
  const S = s.steps.length;
  const out: Record<string, Array<{ step: string; spearman: Interval; ssim: Interval }>> = {};
  for (const m of methods) {
    const col = (k: 'rank' | 'ssim', t: number) =>
      results.flatMap((r) => (r.sanity?.[k][m] ?? []).filter((_, j) => j % S === t).map((v) => (v === null ? NaN : v)));
    out[m] = s.steps.map((step, t) => {
      const iv = (v: number[]) =>
        interval(
          summarise(
            v,
            v.map(() => 'ok'),
            boot,
          ),
        );
      return { step, spearman: iv(col('rank', t)), ssim: iv(col('ssim', t)) };
    });
  }
  return out;
}

/** Mean target probability and accuracy per ROAD order and percentage, over the images summed. */
function meanRoad(road: RoadProtocol, sums: Array<RoadSums | undefined>) {
  const n = sums.reduce((a, s) => a + (s?.n ?? 0), 0);
  const out: Record<string, { prob: number[]; accuracy: number[] }> & { n?: number } = {};
  for (const which of road.orders) {
    const avg = (k: 'prob' | 'correct') =>
      road.percentages.map((_, t) => (n ? sums.reduce((a, s) => a + (s?.[which]?.[k][t] ?? 0), 0) / n : NaN));
    out[which] = { prob: avg('prob'), accuracy: avg('correct') };
  }
  return { ...out, n };
}

/** The mean insertion and deletion curves of one method over every shard's sums. */
function meanCurves(cs: Curves[]): { insertion: number[]; deletion: number[]; n: number } {
  const n = cs.reduce((a, c) => a + c.n, 0);
  const pts = cs[0]?.insertion.length ?? 0;
  const avg = (k: 'insertion' | 'deletion') => Array.from({ length: pts }, (_, t) => (n ? cs.reduce((a, c) => a + c[k][t]!, 0) / n : NaN));
  return { insertion: avg('insertion'), deletion: avg('deletion'), n };
}

/** Exported graphs are content-addressed, so every stage shares one cache next to the per-key scratch dirs. */
function onnxCacheDir(scratchDir: string): string {
  return join(dirname(scratchDir), '_onnx-cache');
}
