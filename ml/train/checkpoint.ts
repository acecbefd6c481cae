// Training checkpoints: one safetensors file per checkpoint holding the weights, optimizer and EMA
// state as F32 tensors, and everything else (position, RNG state, best-so-far, metrics) as JSON in
// the header metadata, together with a SHA-256 of the tensor data so that a corrupt file is caught
// even when it still parses. Files are written to a temp file in the same directory, fsynced and
// renamed (and the directory fsynced), so a crash leaves either the old set or the new file.
// Loading takes the newest file that verifies and warns about each one it has to skip.
import { createHash } from 'node:crypto';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from '../io/safetensors.js';

export const CHECKPOINT_FORMAT = 1;
const META_KEY = 'ca-pipe.checkpoint';
const NAME_RE = /^ckpt-(\d{12})\.safetensors$/;

export interface ArrayTensor {
  shape: number[];
  data: Float32Array;
}

export interface CheckpointMeta {
  /** Epoch in progress (0-based). */
  epoch: number;
  /** Batches of `epoch` already trained (0 = the epoch starts from its beginning). */
  batchInEpoch: number;
  /** Optimizer steps done so far: the schedule position. */
  iteration: number;
  /** Serialised RNG states by role, e.g. { mixup: rng.state(), shuffle: … }. */
  rng: Record<string, unknown>;
  /** Best validation result so far. */
  best: { metric: string; value: number; epoch: number } | null;
  /** Per-epoch summaries so far (what a resumed run must still report). */
  metrics: Array<Record<string, number | string | null>>;
  /** Anything else the loop needs back (config digest, sampler order seed, …). */
  extra?: Record<string, unknown>;
}

export interface CheckpointData {
  weights: Record<string, ArrayTensor>;
  optimizer: Record<string, Float32Array>;
  ema?: Record<string, Float32Array> | null;
  meta: CheckpointMeta;
}

export interface LoadedCheckpoint extends CheckpointData {
  path: string;
}

export interface CheckpointOptions {
  /** How many checkpoints to keep (newest first). Default 2. */
  keep?: number;
  /** Called with a message for each skipped (corrupt) checkpoint. Default console.warn. */
  warn?: (message: string) => void;
}

function checkpointName(iteration: number): string {
  if (!Number.isInteger(iteration) || iteration < 0 || iteration >= 1e12)
    throw new Error(`checkpoint: iteration must be an integer in [0, 1e12), got ${iteration}`);
  return `ckpt-${String(iteration).padStart(12, '0')}.safetensors`;
}

/** SHA-256 over the F32 bytes of all tensors, in sorted-name order (as the file lays them out). */
function digestTensors(tensors: Record<string, { data: Float32Array }>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(tensors).sort()) {
    const d = tensors[name].data;
    h.update(name);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex');
}

function flatten(data: CheckpointData): Record<string, TensorToWrite & { data: Float32Array }> {
  const out: Record<string, TensorToWrite & { data: Float32Array }> = {};
  for (const [n, t] of Object.entries(data.weights)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`checkpoint: weight '${n}' has shape [${t.shape}] but ${t.data.length} values`);
    out[`weights/${n}`] = { dtype: 'F32', shape: t.shape, data: t.data };
  }
  for (const [k, a] of Object.entries(data.optimizer)) out[`optim/${k}`] = { dtype: 'F32', shape: [a.length], data: a };
  for (const [k, a] of Object.entries(data.ema ?? {})) out[`ema/${k}`] = { dtype: 'F32', shape: [a.length], data: a };
  return out;
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic there.
  }
}

/** Checkpoint files in `dir`, newest (highest iteration) first. */
export async function listCheckpoints(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return entries
    .filter((f) => NAME_RE.test(f))
    .sort()
    .reverse()
    .map((f) => join(dir, f));
}

/** Write a checkpoint atomically, then prune all but the newest `keep`. Returns its path. */
export async function saveCheckpoint(dir: string, data: CheckpointData, o: CheckpointOptions = {}): Promise<string> {
  const keep = o.keep ?? 2;
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`checkpoint: keep must be a positive integer, got ${keep}`);
  const tensors = flatten(data);
  const header = { format: CHECKPOINT_FORMAT, sha256: digestTensors(tensors), meta: data.meta, hasEma: data.ema != null };
  const buf = serializeSafetensors(tensors, { [META_KEY]: JSON.stringify(header) });
  const file = join(dir, checkpointName(data.meta.iteration));
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(buf);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await fsyncDir(dir);
  const all = await listCheckpoints(dir);
  for (const old of all.slice(keep)) await unlink(old).catch(() => undefined);
  // Temp files of crashed writers: never valid, safe to drop.
  for (const f of await readdir(dir)) {
    if (/^ckpt-\d{12}\.safetensors\.tmp-\d+$/.test(f) && !f.endsWith(`.tmp-${process.pid}`))
      await unlink(join(dir, f)).catch(() => undefined);
  }
  return file;
}

/** Parse and verify one checkpoint file; throws with the file named on any defect. */
export async function readCheckpoint(file: string): Promise<LoadedCheckpoint> {
  const buf = await readFile(file);
  const parsed = parseSafetensors(buf, file);
  const raw = parsed.metadata[META_KEY];
  if (typeof raw !== 'string') throw new Error(`${file}: not a ca-pipe checkpoint (no '${META_KEY}' metadata)`);
  let header: { format: number; sha256: string; meta: CheckpointMeta; hasEma: boolean };
  try {
    header = JSON.parse(raw);
  } catch (e) {
    throw new Error(`${file}: checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
  if (header.format !== CHECKPOINT_FORMAT)
    throw new Error(`${file}: checkpoint format ${header.format}, this version reads ${CHECKPOINT_FORMAT}`);
  const tensors: Record<string, { data: Float32Array }> = {};
  const out: LoadedCheckpoint = { path: file, weights: {}, optimizer: {}, ema: header.hasEma ? {} : null, meta: header.meta };
  for (const [key, t] of parsed.tensors) {
    if (t.dtype !== 'F32') throw new Error(`${file}: tensor '${key}' is ${t.dtype}, checkpoints hold F32 only`);
    const data = t.data as Float32Array;
    tensors[key] = { data };
    const cut = key.indexOf('/');
    const section = key.slice(0, cut);
    const name = key.slice(cut + 1);
    if (section === 'weights') out.weights[name] = { shape: t.shape, data };
    else if (section === 'optim') out.optimizer[name] = data;
    else if (section === 'ema' && out.ema) out.ema[name] = data;
    else throw new Error(`${file}: unexpected tensor '${key}'`);
  }
  if (digestTensors(tensors) !== header.sha256) throw new Error(`${file}: tensor data does not match its SHA-256 (corrupt file)`);
  return out;
}

/** The newest checkpoint in `dir` that verifies, or null when there is none. */
export async function loadLatestCheckpoint(dir: string, o: CheckpointOptions = {}): Promise<LoadedCheckpoint | null> {
  const warn = o.warn ?? ((m: string) => console.warn(m));
  for (const file of await listCheckpoints(dir)) {
    try {
      return await readCheckpoint(file);
    } catch (e) {
      warn(`skipping checkpoint ${file}: ${(e as Error).message}`);
    }
  }
  return null;
}
