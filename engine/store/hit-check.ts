// Checks a cache hit before it is reused. Every committed file's size, mtime and inode are recorded
// at commit (stat.json next to the manifest); a hit compares them with what is on disk now, which
// costs one stat per file and catches any ordinary edit, truncation or replacement. The full check
// rehashes every file against the manifest (`run --verify-hits`), for edits that kept all three.
import { statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { sha256File } from './hash.js';
import type { Manifest } from './manifest.js';

/**
 * stat.json: the entry's file paths (as in the manifest, whose digest it names) with each file's
 * size, mtime (ms) and inode, as flat arrays: a hit then parses one small document and reads
 * plain numbers, which keeps a fresh process's check of ~10,000 files cheap.
 */
export interface StatRecord {
  version: 2;
  /** sha256 of the manifest these stats were taken for (the entry's output digest). */
  digest: string;
  paths: string[];
  size: number[];
  mtime: number[];
  ino: number[];
}

function filePath(outDir: string, rel: string): string {
  // Manifest paths are normalised already: plain concatenation costs a third of path.join here.
  return sep === '/' ? `${outDir}/${rel}` : join(outDir, ...rel.split('/'));
}

/** What to record for the files of a staging dir about to be renamed (rename keeps all three). */
export function recordStats(outDir: string, manifest: Manifest, digest: string): StatRecord {
  const rec: StatRecord = { version: 2, digest, paths: [], size: [], mtime: [], ino: [] };
  for (const f of manifest.files) {
    const st = statSync(filePath(outDir, f.path));
    rec.paths.push(f.path);
    rec.size.push(st.size);
    rec.mtime.push(Math.floor(st.mtimeMs));
    rec.ino.push(st.ino);
  }
  return rec;
}

export function parseStatRecord(text: string): StatRecord | undefined {
  try {
    const v = JSON.parse(text) as StatRecord;
    const n = v?.paths?.length;
    return v && v.version === 2 && typeof v.digest === 'string' && n === v.size?.length && n === v.mtime?.length && n === v.ino?.length
      ? v
      : undefined;
  } catch {
    return undefined;
  }
}

const NO_THROW = { throwIfNoEntry: false } as const;

/**
 * The first difference between the recorded stats and the files now, as "<path>: <what>"; undefined
 * when all match. `digest`: the entry's output digest (of its manifest as read now). Synchronous
 * stats on purpose: thousands of them (a synthetic dataset) cost a few milliseconds this way, ten
 * times that through the thread pool.
 */
export function cheapCheck(outDir: string, digest: string, rec: StatRecord): string | undefined {
  if (rec.digest !== digest) return `manifest.json changed after commit (digest ${digest}, committed ${rec.digest})`;
  const { paths, size, mtime, ino } = rec;
  const prefix = sep === '/' ? `${outDir}/` : undefined;
  for (let i = 0; i < paths.length; i++) {
    const rel = paths[i]!;
    const st = statSync(prefix ? prefix + rel : filePath(outDir, rel), NO_THROW);
    if (!st) return `${rel}: missing`;
    if (st.size !== size[i]) return `${rel}: size ${st.size}, committed with ${size[i]}`;
    // Milliseconds: what every tool that saves and restores times (cp -p, tar, utimes) keeps.
    if (Math.floor(st.mtimeMs) !== mtime[i])
      return `${rel}: modified after commit (mtime ${new Date(st.mtimeMs).toISOString()}, committed ${new Date(mtime[i]!).toISOString()})`;
    if (st.ino !== ino[i]) return `${rel}: replaced after commit (another inode)`;
  }
  return undefined;
}

/** Rehashes every file against its manifest sha256; the first mismatch, or undefined. */
export async function fullCheck(outDir: string, manifest: Manifest): Promise<string | undefined> {
  for (const f of manifest.files) {
    const p = filePath(outDir, f.path);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) return `${f.path}: missing`;
    if (st.size !== f.size) return `${f.path}: size ${st.size}, committed with ${f.size}`;
    if ((await sha256File(p, st.size)) !== f.sha256) return `${f.path}: content does not match its sha256 ${f.sha256}`;
  }
  return undefined;
}
