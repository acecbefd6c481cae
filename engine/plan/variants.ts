// Sweep expansion: grid axes (cartesian product) × zip rows (paired lists).
import type { Experiment, Variant } from '../types.js';
import { canonicalJson, sha256Hex } from './canonical.js';

function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : canonicalJson(v);
}

/** Shortest dotted suffix of each axis path that tells the axes apart ("lr", or "train.lr" vs "finetune.lr"). */
export function axisLabels(paths: string[]): Map<string, string> {
  const segs = paths.map((p) => p.split('.'));
  const depth = paths.map(() => 1);
  for (;;) {
    const labels = segs.map((s, i) => s.slice(-depth[i]!).join('.'));
    let changed = false;
    labels.forEach((l, i) => {
      if (labels.filter((x) => x === l).length > 1 && depth[i]! < segs[i]!.length) {
        depth[i]!++;
        changed = true;
      }
    });
    if (!changed) return new Map(paths.map((p, i) => [p, labels[i]!]));
  }
}

export function expandVariants(exp: Experiment): Variant[] {
  const grid = exp.sweep;
  const zip = exp.zip;
  if (grid.length === 0 && zip.length === 0) return [{ id: '', alias: '', values: {} }];

  const rows: Record<string, unknown>[] = [];
  const zipLen = zip.length ? zip[0]!.values.length : 1;
  const combine = (i: number, acc: Record<string, unknown>): void => {
    if (i === grid.length) {
      for (let r = 0; r < zipLen; r++) {
        const values = { ...acc };
        for (const z of zip) values[z.path] = z.values[r];
        rows.push(values);
      }
      return;
    }
    const axis = grid[i]!;
    for (const v of axis.values) combine(i + 1, { ...acc, [axis.path]: v });
  };
  combine(0, {});

  const labels = axisLabels([...grid, ...zip].map((a) => a.path));
  const hashes = rows.map((values) => sha256Hex(canonicalJson(values)));
  // 8 hex digits unless two variants collide, then as many as it takes.
  let len = 8;
  while (len < 64 && new Set(hashes.map((h) => h.slice(0, len))).size < hashes.length) len += 4;
  return rows.map((values, i) => ({
    id: hashes[i]!.slice(0, len),
    alias: Object.entries(values)
      .map(([p, v]) => `${labels.get(p)}=${formatValue(v)}`)
      .join(','),
    values,
  }));
}
