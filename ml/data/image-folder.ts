// torchvision ImageFolder semantics: classes are the sorted names of root's sub-folders; every image
// anywhere below a class folder belongs to it. Discovery returns sizes and mtimes for the listing.
import fg from 'fast-glob';
import { stat, readdir } from 'node:fs/promises';
import type { ListedFile } from './listing.js';

export const DEFAULT_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'];

export interface FolderFile extends ListedFile {
  label: number;
}

export interface DiscoveredFolder {
  classes: string[];
  files: FolderFile[];
  /** Files lying directly in root (not in a class folder): ignored, reported. */
  ignored: string[];
}

export async function discoverImageFolder(root: string, extensions: readonly string[] = DEFAULT_EXTENSIONS): Promise<DiscoveredFolder> {
  let st;
  try {
    st = await stat(root);
  } catch {
    throw new Error(`imagefolder root ${root} does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`imagefolder root ${root} is not a directory`);
  const exts = normaliseExtensions(extensions);
  const dirents = await readdir(root, { withFileTypes: true });
  const classes = dirents
    .filter((d) => (d.isDirectory() || d.isSymbolicLink()) && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort(compareCodePoints);
  if (classes.length === 0) throw new Error(`imagefolder root ${root} has no class sub-folders`);

  const pattern = `*/**/*.${exts.length === 1 ? exts[0] : `{${exts.join(',')}}`}`;
  const entries = await fg(pattern, {
    cwd: root,
    onlyFiles: true,
    stats: true,
    caseSensitiveMatch: false,
    followSymbolicLinks: true,
    dot: false,
  });
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const files: FolderFile[] = [];
  for (const e of entries) {
    const cls = e.path.slice(0, e.path.indexOf('/'));
    const label = classIndex.get(cls);
    if (label === undefined || !e.stats) continue;
    files.push({ path: e.path, size: e.stats.size, mtimeMs: e.stats.mtimeMs, label });
  }
  files.sort((a, b) => compareCodePoints(a.path, b.path));
  const counts = new Array<number>(classes.length).fill(0);
  for (const f of files) counts[f.label]!++;
  const empty = classes.filter((_, i) => counts[i] === 0);
  if (empty.length) {
    throw new Error(
      `imagefolder ${root}: class folder${empty.length > 1 ? 's' : ''} ${empty.map((c) => JSON.stringify(c)).join(', ')} ` +
        `contain${empty.length > 1 ? '' : 's'} no images with extensions ${exts.join(',')}`,
    );
  }
  const ignored = (
    await fg(`*.${exts.length === 1 ? exts[0] : `{${exts.join(',')}}`}`, { cwd: root, onlyFiles: true, caseSensitiveMatch: false })
  ).sort();
  return { classes, files, ignored };
}

export function normaliseExtensions(extensions: readonly string[]): string[] {
  const out = [...new Set(extensions.map((e) => e.replace(/^\./, '').toLowerCase()))];
  if (out.length === 0 || out.some((e) => !/^[a-z0-9]+$/.test(e))) {
    throw new Error(`invalid image extensions ${JSON.stringify(extensions)}: expected names like "jpg"`);
  }
  return out.sort();
}

/** Python's sorted() order on str (code points), not locale order; no allocation per call. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order differs from code-point order only when a surrogate meets a char ≥ U+E000.
    if (x >= 0xd800 && x <= 0xdfff) return y >= 0xd800 && y <= 0xdfff ? x - y : y >= 0xe000 ? 1 : x - y;
    if (y >= 0xd800 && y <= 0xdfff) return x >= 0xe000 ? -1 : x - y;
    return x - y;
  }
  return a.length - b.length;
}
