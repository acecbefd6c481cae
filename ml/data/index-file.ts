// The on-disk form of an index (the `index` stage's output directory) and its reader.
//   index.jsonl   one IndexRecord per line, in id order
//   classes.json  class names, label = position
//   splits.json   {"train": [ids], "val": [ids]}
//   dataset.json  format tag, source, root, counts, image size / masks for synthetic data,
//                 the dataset's preprocessing convention when the index sets one
//   summary.json  per-class and per-split counts, listing digest, ignored files
// Everything written is a function of the inputs (no timestamps, no history), so an unchanged
// dataset reproduces the same bytes and downstream stages stay cached.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { BuiltIndex, IndexRecord } from './build-index.js';
import type { Preprocessing } from './preprocessing.js';
import type { Splits } from './splits.js';

export const INDEX_FORMAT = 'ca-pipe.index/1';

export interface DatasetMeta {
  format: typeof INDEX_FORMAT;
  source: BuiltIndex['source'];
  /** Absolute dataset root, or "." meaning the index directory itself. */
  root: string;
  count: number;
  num_classes: number;
  /** sha256 of index.jsonl. */
  records_digest: string;
  listing_digest: string | null;
  /** Synthetic only: square image side, and masks available for every record. */
  image_size?: number;
  masks: boolean;
  /** The pixel convention of the stages reading this index, unless they set their own. */
  preprocessing?: Preprocessing;
}

export interface IndexSummary {
  count: number;
  num_classes: number;
  per_class: Record<string, number>;
  splits: { train: number; val: number };
  per_class_split: Record<string, { train: number; val: number }>;
  records_digest: string;
  listing_digest: string | null;
  ignored: string[];
}

export async function writeIndexFiles(
  outDir: string,
  built: BuiltIndex,
  preprocessing?: Preprocessing,
): Promise<{ meta: DatasetMeta; summary: IndexSummary }> {
  const jsonl = built.records.map((r) => JSON.stringify(r)).join('\n') + (built.records.length ? '\n' : '');
  const recordsDigest = createHash('sha256').update(jsonl).digest('hex');
  const meta: DatasetMeta = {
    format: INDEX_FORMAT,
    source: built.source,
    root: built.root,
    count: built.records.length,
    num_classes: built.classes.length,
    records_digest: recordsDigest,
    listing_digest: built.listingDigest,
    ...(built.imageSize !== undefined && { image_size: built.imageSize }),
    masks: built.records.length > 0 && built.records.every((r) => r.mask !== undefined),
    // Absent when unset, so an index written before conventions existed keeps its bytes.
    ...(preprocessing !== undefined && { preprocessing }),
  };
  const perClass: Record<string, number> = Object.fromEntries(built.classes.map((c) => [c, 0]));
  const perClassSplit: Record<string, { train: number; val: number }> = Object.fromEntries(
    built.classes.map((c) => [c, { train: 0, val: 0 }]),
  );
  for (const r of built.records) perClass[r.class]!++;
  for (const id of built.splits.train) perClassSplit[built.records[id]!.class]!.train++;
  for (const id of built.splits.val) perClassSplit[built.records[id]!.class]!.val++;
  const summary: IndexSummary = {
    count: built.records.length,
    num_classes: built.classes.length,
    per_class: perClass,
    splits: { train: built.splits.train.length, val: built.splits.val.length },
    per_class_split: perClassSplit,
    records_digest: recordsDigest,
    listing_digest: built.listingDigest,
    ignored: built.ignored,
  };
  await writeFile(join(outDir, 'index.jsonl'), jsonl);
  await writeFile(join(outDir, 'classes.json'), JSON.stringify(built.classes, null, 1) + '\n');
  await writeFile(join(outDir, 'splits.json'), JSON.stringify(built.splits) + '\n');
  await writeFile(join(outDir, 'dataset.json'), JSON.stringify(meta, null, 2) + '\n');
  await writeFile(join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return { meta, summary };
}

export interface LoadedIndex {
  dir: string;
  meta: DatasetMeta;
  records: IndexRecord[];
  classes: string[];
  splits: Splits;
  /** Absolute path of a record's image. */
  imagePath(r: IndexRecord): string;
  /** Absolute path of a record's mask, if any. */
  maskPath(r: IndexRecord): string | undefined;
}

/** Reads an index directory written by writeIndexFiles (e.g. an `index` stage's output). */
export async function readIndex(dir: string): Promise<LoadedIndex> {
  const read = async (name: string): Promise<string> => {
    try {
      return await readFile(join(dir, name), 'utf8');
    } catch {
      throw new Error(`${join(dir, name)} is missing: ${dir} is not an index directory`);
    }
  };
  const meta = JSON.parse(await read('dataset.json')) as DatasetMeta;
  if (meta.format !== INDEX_FORMAT)
    throw new Error(`${join(dir, 'dataset.json')}: unsupported index format ${JSON.stringify(meta.format)}`);
  const records = (await read('index.jsonl'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as IndexRecord;
      } catch {
        throw new Error(`${join(dir, 'index.jsonl')}:${i + 1}: invalid JSON`);
      }
    });
  const classes = JSON.parse(await read('classes.json')) as string[];
  const splits = JSON.parse(await read('splits.json')) as Splits;
  const root = meta.root === '.' ? dir : meta.root;
  const abs = (p: string): string => (isAbsolute(p) ? p : join(root, p));
  return {
    dir,
    meta,
    records,
    classes,
    splits,
    imagePath: (r) => abs(r.path),
    maskPath: (r) => (r.mask ? abs(r.mask) : undefined),
  };
}

/** Loader items (absolute paths) of one split of an index, or of every record with 'all'. */
export function loaderItems(idx: LoadedIndex, split: 'train' | 'val' | 'all'): { id: number; path: string; label: number }[] {
  const ids = split === 'all' ? idx.records.map((r) => r.id) : idx.splits[split];
  return ids.map((id) => {
    const r = idx.records[id];
    if (!r || r.id !== id)
      throw new Error(`${join(idx.dir, 'splits.json')}: ${split} refers to id ${id}, which index.jsonl does not hold at that position`);
    return { id, path: idx.imagePath(r), label: r.label };
  });
}
