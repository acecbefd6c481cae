// ONNX Runtime execution of exported graphs, with an on-disk export cache keyed by content digest.
import { createHash } from 'node:crypto';
import { mkdir, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { getBackbone } from '../models/backbones.js';
import { ResNetBackbone } from '../models/resnet-backbone.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import {
  EXPORTER_VERSION,
  availableOutputs,
  defaultOutputs,
  exportModel,
  resolveNumClasses,
  type ExportOptions,
  type HeadKind,
} from './export.js';
import { checkWeights, type ArchLike } from './weights.js';
import { cudaFailed, executionProviders, ortProvider, type OrtProvider } from './provider.js';
import { runInChunks } from '../forward/chunked.js';

export const DEFAULT_CACHE_DIR = join('runs', '.cache', 'onnx');

export interface OutputTensor {
  dims: number[];
  data: Float32Array;
}

/**
 * Options measured fastest for ResNet-50 on the 2-core machine (bench/forward.ts --sweep, idle):
 * one intra-op thread per core (1 thread: half the rate), all graph optimisations (NCHWc layout,
 * Conv+Add+Relu fusion; 'extended' is 20 % slower), the CPU arena (off: 9 % slower), sequential
 * execution (the graph is a chain). Worker spinning is off: as fast when idle (25.1 vs 24.7 img/s)
 * and it does not burn the cores that other processes on this shared machine need.
 */
export function defaultSessionOptions(): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: true,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** sha256 over exporter version, graph options and the (checked) weights' names, shapes and bytes. */
export function exportDigest(opts: ExportOptions): string {
  const numClasses = resolveNumClasses(opts);
  const bb = getBackbone(opts.arch);
  const checked = checkWeights(opts.weights, bb, opts.head, numClasses, opts.weightsFile);
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      exporter: EXPORTER_VERSION,
      // A ResNet description can be ad hoc (strides differ at equal parameters): hash all of it.
      arch: bb instanceof ResNetBackbone ? bb.arch : bb.name,
      head: opts.head,
      heads: opts.head === 'ca-stream' || opts.head === 'ca-final' ? (opts.heads ?? 1) : 1,
      numClasses,
      outputs: opts.outputs ?? defaultOutputs(opts.head, bb),
      inputSize: opts.inputSize ?? null,
    }),
  );
  for (const key of [...checked.keys()].sort()) {
    const t = checked.get(key)!;
    h.update(`\n${key}:${t.shape.join('x')}\n`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}

export interface CachedExport {
  path: string;
  digest: string;
  /** True when the graph was already on disk and no export ran. */
  hit: boolean;
}

/** Returns the cached .onnx for these options, exporting (atomically) only on a miss or when `force`d. */
export async function exportCached(opts: ExportOptions & { cacheDir?: string; force?: boolean }): Promise<CachedExport> {
  const dir = opts.cacheDir ?? DEFAULT_CACHE_DIR;
  const digest = exportDigest(opts);
  const path = join(dir, `${digest}.onnx`);
  if (!opts.force) {
    try {
      if ((await stat(path)).isFile()) {
        // `ca-pipe gc --cache-days` ages graphs by mtime: reading them moves atime at most once a
        // day (relatime) or never (noatime, many cluster filesystems), so a hit renews mtime.
        // A read-only cache still serves hits.
        const t = new Date();
        await utimes(path, t, t).catch(() => undefined);
        return { path, digest, hit: true };
      }
    } catch {
      // not cached yet
    }
  }
  const bytes = exportModel(opts);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
  return { path, digest, hit: false };
}

export interface SessionOptions extends ExportOptions {
  cacheDir?: string;
  /** Overrides merged over `defaultSessionOptions()`. */
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

export class OnnxModel {
  readonly engine = 'onnx' as const;
  constructor(
    readonly session: ort.InferenceSession,
    readonly outputs: string[],
    readonly exported: CachedExport,
    /** The execution provider the session was created with. */
    readonly provider: OrtProvider = 'cpu',
  ) {}

  /** One forward pass of an NCHW float32 batch; returns every graph output (or the named subset). */
  async run(
    input: Float32Array,
    batch: number,
    h: number,
    w: number,
    outputs: string[] = this.outputs,
  ): Promise<Record<string, OutputTensor>> {
    if (input.length !== batch * 3 * h * w) {
      throw new Error(`input has ${input.length} values but batch ${batch}×3×${h}×${w} needs ${batch * 3 * h * w}`);
    }
    for (const o of outputs)
      if (!this.outputs.includes(o)) throw new Error(`output "${o}" is not in this graph (has: ${this.outputs.join(', ')})`);
    const feeds = { input: new ort.Tensor('float32', input, [batch, 3, h, w]) };
    const res = await this.session.run(feeds, outputs);
    const out: Record<string, OutputTensor> = {};
    for (const o of outputs) out[o] = { dims: [...res[o].dims], data: res[o].data as Float32Array };
    return out;
  }

  /** Runs `n` images in chunks of `chunk` and concatenates the outputs along the batch axis. */
  async runChunked(
    input: Float32Array,
    n: number,
    h: number,
    w: number,
    chunk: number,
    outputs: string[] = this.outputs,
  ): Promise<Record<string, OutputTensor>> {
    return runInChunks((x, b, hh, ww, o) => this.run(x, b, hh, ww, o), input, n, h, w, chunk, outputs);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Exports (or reuses the cached export) and opens an ONNX Runtime session on it. */
export async function createSession(opts: SessionOptions): Promise<OnnxModel> {
  let provider = opts.sessionOptions?.executionProviders ? undefined : ortProvider().provider;
  const options = (): ort.InferenceSession.SessionOptions => ({
    ...defaultSessionOptions(),
    ...(provider && { executionProviders: executionProviders(provider) }),
    ...opts.sessionOptions,
  });
  let exported = await exportCached(opts);
  const open = async (path: string): Promise<ort.InferenceSession> => {
    try {
      return await ort.InferenceSession.create(path, options());
    } catch (e) {
      if (provider !== 'cuda') throw e;
      provider = cudaFailed(e as Error).provider;
      return ort.InferenceSession.create(path, options());
    }
  };
  let session: ort.InferenceSession;
  try {
    session = await open(exported.path);
  } catch (e) {
    if (!exported.hit) throw e;
    // A cached file that ONNX Runtime cannot load (damaged on disk) is rebuilt once, not trusted.
    exported = await exportCached({ ...opts, force: true });
    session = await open(exported.path);
  }
  return new OnnxModel(session, opts.outputs ?? defaultOutputs(opts.head, opts.arch), exported, provider ?? 'cpu');
}

/** Converts NHWC (e.g. decoded images) to the graph's NCHW layout. */
export function nhwcToNchw(data: Float32Array | Uint8Array, n: number, h: number, w: number, c = 3): Float32Array {
  const out = new Float32Array(n * c * h * w);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const src = b * hw * c;
    const dst = b * c * hw;
    for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[dst + k * hw + p] = data[src + p * c + k];
  }
  return out;
}

export interface RunForwardOptions {
  /** Architecture name from the backbone registry (or the arch itself). */
  arch: ArchLike;
  head: HeadKind;
  heads?: number;
  numClasses?: number;
  weightsFile: string;
  /** Safetensors holding an NCHW float32 batch. */
  inputFile: string;
  /** Default "input". */
  inputKey?: string;
  outFile: string;
  /** Default: every output the head offers. */
  outputs?: string[];
  cacheDir?: string;
  /** Images per ONNX Runtime call (default 8). */
  batchSize?: number;
}

/** Reads a safetensors checkpoint as the exporter's weight map (checked later, at export). */
export async function readWeights(file: string): Promise<ExportOptions['weights']> {
  return (await readSafetensors(file)).tensors as ExportOptions['weights'];
}

/** Backing of `ca-pipe forward --engine onnx`: weights + input safetensors in, all outputs (NCHW) out. */
export async function runForward(opts: RunForwardOptions): Promise<{ outputs: string[]; digest: string; cacheHit: boolean }> {
  const arch = getBackbone(opts.arch);
  const weights = await readWeights(opts.weightsFile);
  const inputs = (await readSafetensors(opts.inputFile)).tensors;
  const key = opts.inputKey ?? 'input';
  const x = inputs.get(key);
  if (!x) throw new Error(`${opts.inputFile}: no tensor "${key}" (has: ${[...inputs.keys()].join(', ')})`);
  if (x.shape.length !== 4 || x.shape[1] !== 3)
    throw new Error(`${opts.inputFile} [${key}]: expected an NCHW batch B×3×H×W, got shape [${x.shape.join(', ')}]`);
  if (!(x.data instanceof Float32Array)) throw new Error(`${opts.inputFile} [${key}]: expected floating point data, got ${x.dtype}`);
  const outputs = opts.outputs ?? availableOutputs(opts.head, arch);
  const model = await createSession({
    arch,
    head: opts.head,
    heads: opts.heads,
    numClasses: opts.numClasses,
    weights,
    weightsFile: opts.weightsFile,
    outputs,
    cacheDir: opts.cacheDir,
  });
  try {
    const [n, , h, w] = x.shape;
    const res = await model.runChunked(x.data, n, h, w, opts.batchSize ?? 8);
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const o of outputs) tensors[o] = { shape: res[o].dims, data: res[o].data };
    await writeSafetensors(opts.outFile, tensors, {
      engine: 'onnxruntime',
      arch: arch.name,
      head: opts.head,
      heads: String(opts.heads ?? 1),
      export_digest: model.exported.digest,
    });
    return { outputs, digest: model.exported.digest, cacheHit: model.exported.hit };
  } finally {
    await model.release();
  }
}
