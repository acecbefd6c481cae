// Symbolic links in a stage's outputs, dealt with before commit touches anything. Commit chmods,
// hard-links and renames the files it stores; done through a link, that would write outside the
// store (a user's file made read-only, replaced by a new inode). So a link whose target lies
// outside the staging output directory is refused, naming it, and a link that stays inside is
// replaced by a plain copy of what it points at (the store keeps content, never links).
import { cp, lstat, readdir, readlink, realpath, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export class OutsideLinkError extends Error {
  constructor(
    readonly link: string,
    readonly target: string,
    outDir: string,
  ) {
    super(
      `stage output ${link} is a symbolic link to ${target}, outside the stage's output directory ${outDir}: ` +
        'the store cannot keep it without touching that file. Copy the file into the output directory instead of linking it ' +
        '(e.g. `cp -L`), or leave it out of the declared outs',
    );
    this.name = 'OutsideLinkError';
  }
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}

/**
 * Replaces every symlink under `outDir` by a copy of its target; throws OutsideLinkError for a link
 * that resolves outside `outDir` (or dangles, or points at a directory containing itself).
 */
export async function materialiseLinks(outDir: string): Promise<void> {
  const root = await realpath(outDir);
  async function walk(dir: string): Promise<void> {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const abs = join(dir, e.name);
      if (e.isDirectory()) {
        await walk(abs);
        continue;
      }
      if (!e.isSymbolicLink()) continue;
      const shown = await readlink(abs);
      const target = await realpath(abs).catch(() => undefined);
      if (!target)
        throw new Error(`stage output ${abs} is a dangling symbolic link (-> ${shown}): write the file itself into the output directory`);
      if (!inside(root, target)) throw new OutsideLinkError(abs, target, outDir);
      const st = await lstat(target);
      const here = await realpath(dir);
      if (st.isDirectory() && inside(target, here)) {
        throw new Error(`stage output ${abs} is a symbolic link to ${target}, a directory that contains the link itself: remove the link`);
      }
      // The copy reads through the link and any links below it; a link below that escapes is
      // caught when the copied tree is walked in turn.
      await rm(abs);
      await cp(target, abs, { recursive: true, dereference: false, verbatimSymlinks: true });
      if (st.isDirectory()) await walk(abs);
      else if ((await lstat(abs)).isSymbolicLink()) throw new Error(`internal error: ${abs} is still a link after copying`);
    }
  }
  await walk(outDir);
}
