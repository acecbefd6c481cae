// Manifests: the sorted list of an output's files with their content hashes.
// The output digest is the sha256 of the manifest's canonical bytes, so two outputs with the same
// files and bytes have the same digest whatever order or time they were written in.
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { sha256Bytes, sha256File } from './hash.js';

export interface ManifestFile {
  /** Relative path with '/' separators. */
  path: string;
  sha256: string;
  size: number;
}

export interface Manifest {
  version: 1;
  files: ManifestFile[];
}

/** Canonical bytes: fixed key order, files sorted by path, no whitespace, trailing newline. */
export function serializeManifest(m: Manifest): string {
  const files = [...m.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const body = files.map((f) => `{"path":${JSON.stringify(f.path)},"sha256":"${f.sha256}","size":${f.size}}`);
  return `{"version":1,"files":[${body.join(',')}]}\n`;
}

export function manifestDigest(m: Manifest): string {
  return sha256Bytes(serializeManifest(m));
}

export function parseManifest(text: string, where: string): Manifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: manifest is not valid JSON (${(e as Error).message})`);
  }
  const m = v as Manifest;
  if (!m || m.version !== 1 || !Array.isArray(m.files)) throw new Error(`${where}: not a version-1 manifest`);
  return m;
}

/** Every regular file under `dir` (symlinks followed), as relative '/'-separated paths. */
export async function listFiles(dir: string): Promise<{ rel: string; abs: string; size: number }[]> {
  const out: { rel: string; abs: string; size: number }[] = [];
  async function walk(d: string): Promise<void> {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      const abs = join(d, e.name);
      if (e.isDirectory()) await walk(abs);
      else {
        // Symlinks are followed: the store keeps content, not links that may dangle later.
        const st = e.isSymbolicLink() ? await stat(abs).catch(() => undefined) : await lstat(abs);
        if (!st) throw new Error(`${abs}: dangling symlink in stage output (-> ${await readlink(abs)})`);
        if (st.isDirectory()) await walk(abs);
        else if (st.isFile()) out.push({ rel: relative(dir, abs).split(sep).join('/'), abs, size: st.size });
      }
    }
  }
  await walk(dir);
  out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return out;
}

/** Hashes every file of a directory into a manifest. */
export async function buildManifest(dir: string): Promise<Manifest> {
  const files = await listFiles(dir);
  const entries: ManifestFile[] = [];
  for (const f of files) entries.push({ path: f.rel, sha256: await sha256File(f.abs, f.size), size: f.size });
  return { version: 1, files: entries };
}
