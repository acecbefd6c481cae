// The engine calibration: a few timed forwards of one model on both engines at the job's batch
// size, recorded once per machine in a small JSON file. Reruns read the record instead of timing
// again, so `engine: auto` resolves the same way every time on that machine (a fresh timing near a
// tie could flip the engine and, through 1e-6 differences, the outputs' digests).
import { createHash } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, homedir, loadavg } from 'node:os';
import { join } from 'node:path';
import type { Throughputs } from './rule.js';
import type { ForwardSession } from './session.js';

export const CALIBRATION_FORMAT = 'ca-pipe.engine-calibration/1';

/** Everything the timing depends on; a record is used only for exactly this key. */
export interface CalibrationKey {
  format: typeof CALIBRATION_FORMAT;
  arch: string;
  head: string;
  heads: number;
  input_size: number;
  batch: number;
  outputs: string[];
  tfjs: { backend: string; device: 'gpu' | 'cpu' };
  onnx: { provider: 'cpu' | 'cuda' };
  /** A shared home directory (clusters) holds records of several kinds of machine. */
  machine: { cpu: string; cores: number };
  /** TensorFlow's settings read when its library loads (tensorflow backend only; absent elsewhere). */
  tensorflow?: TensorflowSettings;
}

export interface TensorflowSettings {
  /** TF_ENABLE_ONEDNN_OPTS: oneDNN's kernels or Eigen's (~1.3× apart here). */
  onednn: string | null;
  /** TF_NUM_INTRAOP_THREADS (null: one per core). */
  intra_op_threads: string | null;
}

/** The environment TensorFlow sized itself by: a record timed under other settings is not this one's. */
export function tensorflowSettings(env: NodeJS.ProcessEnv = process.env): TensorflowSettings {
  return { onednn: env.TF_ENABLE_ONEDNN_OPTS ?? null, intra_op_threads: env.TF_NUM_INTRAOP_THREADS ?? null };
}

export interface CalibrationRecord extends Throughputs {
  key: CalibrationKey;
  /** Timed forwards per engine (after one warm-up each). */
  forwards: number;
  measured_at: string;
  /** 1-minute load average when measured: a busy machine makes both figures smaller. */
  load: number;
}

export function machineFacts(): CalibrationKey['machine'] {
  return { cpu: cpus()[0]?.model?.trim() ?? 'unknown', cores: availableParallelism() };
}

/** CA_PIPE_CALIBRATION_DIR, else $XDG_CACHE_HOME/ca-pipe/engine-calibration, else ~/.cache/…: per user and machine, not per store. */
export function calibrationDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CA_PIPE_CALIBRATION_DIR?.trim()) return env.CA_PIPE_CALIBRATION_DIR.trim();
  const base = env.XDG_CACHE_HOME?.trim() || join(homedir(), '.cache');
  return join(base, 'ca-pipe', 'engine-calibration');
}

export function calibrationFile(dir: string, key: CalibrationKey): string {
  const digest = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 20);
  return join(dir, `${key.arch}-${key.input_size}-b${key.batch}-${digest}.json`);
}

/** The record in `file` if it is readable, well-formed and for exactly `key`. */
export async function readCalibration(file: string, key: CalibrationKey): Promise<CalibrationRecord | undefined> {
  let rec: CalibrationRecord;
  try {
    rec = JSON.parse(await readFile(file, 'utf8')) as CalibrationRecord;
  } catch {
    return undefined;
  }
  const ok =
    JSON.stringify(rec?.key) === JSON.stringify(key) &&
    rec.onnx_img_s > 0 &&
    rec.tfjs_img_s > 0 &&
    Number.isFinite(rec.onnx_img_s) &&
    Number.isFinite(rec.tfjs_img_s);
  return ok ? rec : undefined;
}

/**
 * Publishes `rec` unless another process published one first (link() fails on an existing name);
 * returns the record now on disk, so concurrent jobs on one machine all follow the same one.
 */
export async function publishCalibration(file: string, rec: CalibrationRecord): Promise<CalibrationRecord> {
  await mkdir(join(file, '..'), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, JSON.stringify(rec, null, 1) + '\n');
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const existing = await readCalibration(file, rec.key);
    // A damaged or foreign file under our name is replaced rather than trusted.
    if (!existing) {
      await unlink(file).catch(() => undefined);
      await link(tmp, file);
    } else {
      await unlink(tmp).catch(() => undefined);
      return existing;
    }
  }
  await unlink(tmp).catch(() => undefined);
  return rec;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Seeded N(0,1)-like input: the values do not matter for timing, only that no engine sees zeros. */
function timingInput(n: number): Float32Array {
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = (s / 2 ** 32) * 2 - 1;
  }
  return x;
}

export interface TimingOptions {
  batch: number;
  size: number;
  outputs: string[];
  /** Timed forwards per engine, after one warm-up each. Default 3. */
  forwards?: number;
}

/** Times both sessions, interleaved so that a change of machine load hits both alike. */
export async function timeEngines(
  onnx: ForwardSession,
  tfjs: ForwardSession,
  o: TimingOptions,
): Promise<Throughputs & { forwards: number }> {
  const forwards = Math.max(1, o.forwards ?? 3);
  const x = timingInput(o.batch * 3 * o.size * o.size);
  const once = async (s: ForwardSession): Promise<number> => {
    const t0 = performance.now();
    await s.run(x, o.batch, o.size, o.size, o.outputs);
    return performance.now() - t0;
  };
  await once(onnx);
  await once(tfjs);
  const ms = { onnx: [] as number[], tfjs: [] as number[] };
  for (let i = 0; i < forwards; i++) {
    ms.onnx.push(await once(onnx));
    ms.tfjs.push(await once(tfjs));
  }
  const rate = (v: number[]) => o.batch / (Math.max(median(v), 1e-3) / 1000);
  return { onnx_img_s: rate(ms.onnx), tfjs_img_s: rate(ms.tfjs), forwards };
}

/** The recorded calibration for `key`, measuring (and publishing) it on the first call on this machine. */
export async function calibrated(
  key: CalibrationKey,
  dir: string,
  measure: () => Promise<Throughputs & { forwards: number }>,
): Promise<{ record: CalibrationRecord; file: string; fresh: boolean }> {
  const file = calibrationFile(dir, key);
  const known = await readCalibration(file, key);
  if (known) return { record: known, file, fresh: false };
  const t = await measure();
  const rec: CalibrationRecord = { key, ...t, measured_at: new Date().toISOString(), load: Math.round(loadavg()[0] * 100) / 100 };
  const record = await publishCalibration(file, rec);
  return { record, file, fresh: record === rec };
}
