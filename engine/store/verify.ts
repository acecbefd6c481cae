// Integrity check: rehashes every blob and every entry's files against its manifest.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Bytes, sha256File } from './hash.js';
import { listFiles, parseManifest } from './manifest.js';
import type { Store } from './store.js';

export interface VerifyProblem {
  where: 'entry' | 'object';
  /** Entry key or blob sha. */
  id: string;
  path?: string;
  message: string;
}

export interface VerifyReport {
  entries: number;
  objects: number;
  problems: VerifyProblem[];
}

export async function verifyStore(store: Store): Promise<VerifyReport> {
  const report: VerifyReport = { entries: 0, objects: 0, problems: [] };
  // Blob sha → its inode and whether its content matches its name; an entry file that is a link
  // to the blob its manifest names reuses that result instead of hashing the same bytes again.
  const checked = new Map<string, { inode: string; ok: boolean }>();
  const objRoot = join(store.root, 'objects');
  for (const prefix of await readdir(objRoot).catch(() => [] as string[])) {
    for (const name of await readdir(join(objRoot, prefix)).catch(() => [] as string[])) {
      if (name.includes('.tmp.')) continue;
      const p = join(objRoot, prefix, name);
      report.objects++;
      const st = await stat(p);
      const sha = await sha256File(p, st.size);
      const ok = sha === name;
      checked.set(name, { inode: `${st.dev}:${st.ino}`, ok });
      if (!ok) report.problems.push({ where: 'object', id: name, path: p, message: `content hashes to ${sha}` });
    }
  }
  for (const key of await store.listEntries()) {
    report.entries++;
    const dir = store.entryDir(key);
    const mf = join(dir, 'manifest.json');
    let text: string;
    try {
      text = await readFile(mf, 'utf8');
    } catch {
      report.problems.push({ where: 'entry', id: key, message: 'manifest.json missing' });
      continue;
    }
    let manifest;
    try {
      manifest = parseManifest(text, mf);
    } catch (e) {
      report.problems.push({ where: 'entry', id: key, message: (e as Error).message });
      continue;
    }
    const meta = await store.meta(key);
    if (meta && meta.digest !== sha256Bytes(text))
      report.problems.push({ where: 'entry', id: key, message: 'manifest does not match the recorded digest' });
    const listed = new Set(manifest.files.map((f) => f.path));
    for (const f of await listFiles(join(dir, 'out')).catch(() => [])) {
      if (!listed.has(f.rel)) report.problems.push({ where: 'entry', id: key, path: f.rel, message: 'file not in manifest' });
    }
    for (const f of manifest.files) {
      const p = join(dir, 'out', ...f.path.split('/'));
      let st;
      try {
        st = await stat(p);
      } catch {
        report.problems.push({ where: 'entry', id: key, path: f.path, message: 'file missing' });
        continue;
      }
      if (st.size !== f.size) {
        report.problems.push({ where: 'entry', id: key, path: f.path, message: `size ${st.size}, manifest says ${f.size}` });
        continue;
      }
      const blob = checked.get(f.sha256);
      const ok = blob && blob.inode === `${st.dev}:${st.ino}` ? blob.ok : (await sha256File(p, st.size)) === f.sha256;
      if (!ok) report.problems.push({ where: 'entry', id: key, path: f.path, message: 'content does not match its sha256' });
      if (!blob) report.problems.push({ where: 'entry', id: key, path: f.path, message: `blob ${f.sha256} missing` });
    }
  }
  return report;
}
