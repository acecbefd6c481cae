// A listing is the cheap fingerprint of a dataset: (relative path, size, mtime) per file.
// Hashing it — never the image bytes — is what makes a rerun on an unchanged folder a cache hit.
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile, mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export interface ListedFile {
  /** Path relative to the dataset root, with forward slashes. */
  path: string;
  size: number;
  mtimeMs: number;
  /** Content hash, when an index with verify: content computed it (kept in the history only). */
  sha256?: string;
}

export interface ListingChanges {
  added: string[];
  removed: string[];
  modified: string[];
}

/** sha256 of the listing, independent of the order the files were discovered in. */
export function listingDigest(files: readonly ListedFile[]): string {
  const lines = files.map((f) => `${f.path}\t${f.size}\t${f.mtimeMs}\n`).sort();
  const h = createHash('sha256');
  for (const l of lines) h.update(l);
  return h.digest('hex');
}

/** Stats every path (relative to `root`); a missing/unreadable file throws naming `describe(i)`. */
export async function statAll(
  root: string,
  relPaths: readonly string[],
  resolve: (root: string, rel: string) => string,
  describe: (i: number) => string,
  onDone?: (n: number) => void,
): Promise<ListedFile[]> {
  const out: ListedFile[] = new Array(relPaths.length);
  let next = 0;
  // The first bad line is the one reported, whichever stat fails first: indices are handed out in
  // order and a failure stops new ones, so every earlier line has been checked when we choose.
  const failures: { i: number; error: Error }[] = [];
  // A few stats in flight hide filesystem latency without flooding the thread pool.
  const workers = Array.from({ length: 16 }, async () => {
    while (failures.length === 0) {
      const i = next++;
      if (i >= relPaths.length) return;
      const rel = relPaths[i] as string;
      const abs = resolve(root, rel);
      let st;
      try {
        st = await stat(abs);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        failures.push({
          i,
          error: new Error(`${describe(i)}: cannot read ${abs}${code === 'ENOENT' ? ' (no such file)' : `: ${(e as Error).message}`}`),
        });
        return;
      }
      if (!st.isFile()) {
        failures.push({ i, error: new Error(`${describe(i)}: ${abs} is not a regular file`) });
        return;
      }
      out[i] = { path: rel, size: st.size, mtimeMs: st.mtimeMs };
      onDone?.(1);
    }
  });
  await Promise.all(workers);
  if (failures.length) throw failures.reduce((a, b) => (b.i < a.i ? b : a)).error;
  return out;
}

export function diffListings(prev: readonly ListedFile[], cur: readonly ListedFile[]): ListingChanges {
  const before = new Map(prev.map((f) => [f.path, f]));
  const after = new Map(cur.map((f) => [f.path, f]));
  const added: string[] = [];
  const removed: string[] = [];
  const modified: string[] = [];
  for (const [p, f] of after) {
    const b = before.get(p);
    if (!b) added.push(p);
    else if (b.size !== f.size || b.mtimeMs !== f.mtimeMs) modified.push(p);
  }
  for (const p of before.keys()) if (!after.has(p)) removed.push(p);
  return { added: added.sort(), removed: removed.sort(), modified: modified.sort() };
}

/** One-line human summary, naming up to `max` files per category. */
export function describeChanges(c: ListingChanges, max = 5): string {
  const part = (what: string, list: string[]): string | null => {
    if (list.length === 0) return null;
    const shown = list.slice(0, max).join(', ');
    return `${list.length} ${what} (${shown}${list.length > max ? ', …' : ''})`;
  };
  const parts = [part('added', c.added), part('removed', c.removed), part('modified', c.modified)].filter(Boolean);
  return parts.length ? parts.join('; ') : 'no file changes';
}

export async function saveListing(file: string, digest: string, files: readonly ListedFile[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  // Gzipped: an ImageNet-size listing is ~80 MB of JSON, ~10 MB compressed.
  await writeFile(tmp, await gzipAsync(JSON.stringify({ digest, files })));
  await rename(tmp, file);
}

export async function loadListing(file: string): Promise<{ digest: string; files: ListedFile[] } | null> {
  try {
    const data = JSON.parse((await gunzipAsync(await readFile(file))).toString('utf8')) as { digest?: unknown; files?: unknown };
    if (typeof data.digest !== 'string' || !Array.isArray(data.files)) return null;
    return { digest: data.digest, files: data.files as ListedFile[] };
  } catch {
    return null;
  }
}
