// Maps computed elsewhere, brought into the saliency output format: a folder of `<id>.npy` arrays
// (the original CA-Stream layout: one float map per image at feature resolution, named by dataset
// index) or a safetensors file with `ids` and `map.<method>` tensors (our shard layout).
// Every problem names the file it comes from.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../io/npy.js';
import { classifyMap } from '../metrics/maps.js';
import { readMapShard } from './shards.js';

export interface ImportedMaps {
  /** Per method: maps in the order of `ids`, h×w each. */
  maps: Record<string, Float32Array>;
  /** Per method: degenerate reason → count. */
  degenerate: Record<string, Record<string, number>>;
}

function countDegenerate(data: Float32Array, n: number, hw: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const s = classifyMap(data, 1e-6, i * hw, hw);
    const why = s === 'nan' ? 'non-finite' : s;
    if (why !== 'ok') out[why] = (out[why] ?? 0) + 1;
  }
  return out;
}

/** One `<id>.npy` per image; each must be h×w (or 1×h×w) numbers. */
export async function importNpyDir(dir: string, method: string, ids: readonly number[], h: number, w: number): Promise<ImportedMaps> {
  const hw = h * w;
  const data = new Float32Array(ids.length * hw);
  for (let i = 0; i < ids.length; i++) {
    const file = join(dir, `${ids[i]}.npy`);
    if (!existsSync(file))
      throw new Error(`${file}: missing saliency map for image ${ids[i]} (import.npy_dir needs one <id>.npy per image)`);
    const a = await readNpy(file);
    const shape = a.shape.length === 3 && a.shape[0] === 1 ? a.shape.slice(1) : a.shape;
    if (shape.length !== 2 || shape[0] !== h || shape[1] !== w)
      throw new Error(`${file}: map of shape (${a.shape.join(', ')}), but the model's feature grid is ${h}×${w}`);
    if (a.data instanceof BigInt64Array) data.set(Array.from(a.data, Number), i * hw);
    else data.set(a.data, i * hw);
  }
  return { maps: { [method]: data }, degenerate: { [method]: countDegenerate(data, ids.length, hw) } };
}

/** A safetensors file with `ids` and `map.<method>` (n×h×w) for every requested method. */
export async function importSafetensors(
  file: string,
  methods: readonly string[],
  ids: readonly number[],
  h: number,
  w: number,
): Promise<ImportedMaps> {
  if (!existsSync(file)) throw new Error(`${file}: import.safetensors file does not exist`);
  const s = await readMapShard(file, methods);
  const row = new Map<number, number>();
  s.ids.forEach((id, i) => row.set(id, i));
  const hw = h * w;
  const out: ImportedMaps = { maps: {}, degenerate: {} };
  for (const m of methods) {
    const src = s.maps[m];
    if (src.h !== h || src.w !== w)
      throw new Error(`${file} [map.${m}]: maps are ${src.h}×${src.w}, but the model's feature grid is ${h}×${w}`);
    const data = new Float32Array(ids.length * hw);
    ids.forEach((id, i) => {
      const r = row.get(id);
      if (r === undefined) throw new Error(`${file} [map.${m}]: no map for image ${id}`);
      data.set(src.data.subarray(r * hw, (r + 1) * hw), i * hw);
    });
    out.maps[m] = data;
    out.degenerate[m] = countDegenerate(data, ids.length, hw);
  }
  return out;
}
