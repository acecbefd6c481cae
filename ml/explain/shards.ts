// Shards of per-image results, and resuming from the finished ones. A shard is written atomically
// (temp file + rename) only once complete, so any shard file found in the scratch directory after an
// interruption is whole; it is reused when it holds exactly the ids planned for it.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readSafetensors, writeSafetensors, type SafetensorsDType } from '../io/safetensors.js';

/** Consecutive chunks of at most `size` ids. */
export function planShards(ids: readonly number[], size: number): number[][] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`shard size must be a positive integer, got ${size}`);
  const out: number[][] = [];
  for (let i = 0; i < ids.length; i += size) out.push(ids.slice(i, i + size));
  return out;
}

export function shardName(i: number, ext: string): string {
  return `shard-${String(i).padStart(5, '0')}.${ext}`;
}

export interface MapShard {
  ids: number[];
  /** Target class per id. */
  targets: number[];
  maps: Record<string, { h: number; w: number; data: Float32Array }>;
  /** Per method: degenerate reason → count among this shard's images. */
  degenerate: Record<string, Record<string, number>>;
  /** Per method with a choice of definition: the convention its maps follow (absent: imported or none). */
  conventions?: Record<string, string>;
}

/** Writes a saliency shard: `ids` (I64), `map.<method>` (n×h×w), targets and counts in the metadata. */
export async function writeMapShard(file: string, s: MapShard, dtype: 'float32' | 'float16'): Promise<void> {
  const n = s.ids.length;
  const tensors: Record<string, { dtype?: SafetensorsDType; shape: number[]; data: Float32Array | BigInt64Array }> = {
    ids: { shape: [n], data: BigInt64Array.from(s.ids.map((i) => BigInt(i))) },
  };
  for (const [m, v] of Object.entries(s.maps))
    tensors[`map.${m}`] = { dtype: dtype === 'float16' ? 'F16' : 'F32', shape: [n, v.h, v.w], data: v.data };
  await mkdir(dirname(file), { recursive: true });
  await writeSafetensors(file, tensors, {
    targets: JSON.stringify(s.targets),
    degenerate: JSON.stringify(s.degenerate),
    ...(s.conventions && Object.keys(s.conventions).length > 0 && { conventions: JSON.stringify(s.conventions) }),
  });
}

/** Reads a shard written by writeMapShard (or any file with `ids` and `map.<method>` tensors). */
export async function readMapShard(file: string, methods?: readonly string[]): Promise<MapShard> {
  const f = await readSafetensors(file);
  const idsT = f.tensors.get('ids');
  if (!idsT || idsT.shape.length !== 1) throw new Error(`${file}: no 1-D "ids" tensor`);
  const ids = Array.from(idsT.data as ArrayLike<number | bigint>, (v) => Number(v));
  const maps: MapShard['maps'] = {};
  for (const [k, t] of f.tensors) {
    if (!k.startsWith('map.')) continue;
    const m = k.slice(4);
    if (methods && !methods.includes(m)) continue;
    if (t.shape.length !== 3 || t.shape[0] !== ids.length || !(t.data instanceof Float32Array))
      throw new Error(`${file} [${k}]: expected float maps of shape [${ids.length}, h, w], got ${t.dtype} [${t.shape.join(', ')}]`);
    maps[m] = { h: t.shape[1], w: t.shape[2], data: t.data };
  }
  for (const m of methods ?? []) if (!maps[m]) throw new Error(`${file}: no maps for method "${m}" (tensor "map.${m}")`);
  const parse = <T>(key: string, fallback: T): T => {
    const v = f.metadata[key];
    if (v === undefined) return fallback;
    try {
      return JSON.parse(v) as T;
    } catch {
      throw new Error(`${file}: metadata "${key}" is not valid JSON`);
    }
  };
  const conventions = parse<Record<string, string> | undefined>('conventions', undefined);
  return { ids, targets: parse<number[]>('targets', []), maps, degenerate: parse('degenerate', {}), ...(conventions && { conventions }) };
}

/** A finished shard from an earlier, interrupted run, if it holds exactly `ids`. */
export async function reusableMapShard(file: string, ids: readonly number[], methods: readonly string[]): Promise<MapShard | null> {
  if (!existsSync(file)) return null;
  try {
    const s = await readMapShard(file, methods);
    return s.ids.length === ids.length && s.ids.every((v, i) => v === ids[i]) ? s : null;
  } catch {
    return null; // unreadable leftovers are recomputed
  }
}

/** JSON shard helpers for per-image evaluation results. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, file);
}

export async function readJsonIfValid<T>(file: string, check: (v: T) => boolean): Promise<T | null> {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as T;
    return check(v) ? v : null;
  } catch {
    return null;
  }
}
