// Checks a cache hit before it is reused. Every committed file's size, mtime and inode are recorded
// at commit (stat.json next to the manifest); a hit compares them with what is on disk now, which
// costs one stat per file and catches any ordinary edit, truncation or replacement. The full check
// rehashes every file against the manifest (`run --verify-hits`), for edits that kept all three.
import { statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { sha256File } from './hash.js';
import type { Manifest } from './manifest.js';

/** stat.json: one [size, mtimeMs, inode] per manifest file, in the manifest's (sorted) order. */
export interface StatRecord {
  version: 1;
  files: Array<[number, number, number]>;
}

function filePath(outDir: string, rel: string): string {
  // Manifest paths are normalised already: plain concatenation costs a third of path.join here.
  return sep === '/' ? `${outDir}/${rel}` : join(outDir, ...rel.split('/'));
}

/** What to record for the files of a staging dir about to be renamed (rename keeps all three). */
export function recordStats(outDir: string, manifest: Manifest): StatRecord {
  return {
    version: 1,
    files: manifest.files.map((f) => {
      const st = statSync(filePath(outDir, f.path));
      return [st.size, Math.floor(st.mtimeMs), st.ino];
    }),
  };
}

export function parseStatRecord(text: string): StatRecord | undefined {
  try {
    const v = JSON.parse(text) as StatRecord;
    return v && v.version === 1 && Array.isArray(v.files) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The first difference between the recorded stats and the files now, as "<path>: <what>"; undefined
 * when all match. Synchronous stats on purpose: thousands of them (a synthetic dataset) cost a few
 * milliseconds this way, ten times that through the thread pool.
 */
export function cheapCheck(outDir: string, manifest: Manifest, record: StatRecord): string | undefined {
  if (record.files.length !== manifest.files.length) return `stat.json lists ${record.files.length} files, the manifest ${manifest.files.length}`;
  for (let i = 0; i < manifest.files.length; i++) {
    const f = manifest.files[i]!;
    const [size, mtimeMs, ino] = record.files[i]!;
    const st = statSync(filePath(outDir, f.path), { throwIfNoEntry: false });
    if (!st) return `${f.path}: missing`;
    if (st.size !== size || st.size !== f.size) return `${f.path}: size ${st.size}, committed with ${f.size}`;
    // Milliseconds: what every tool that saves and restores times (cp -p, tar, utimes) keeps.
    if (Math.floor(st.mtimeMs) !== mtimeMs) return `${f.path}: modified after commit (mtime ${new Date(st.mtimeMs).toISOString()}, committed ${new Date(mtimeMs).toISOString()})`;
    if (st.ino !== ino) return `${f.path}: replaced after commit (another inode)`;
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
