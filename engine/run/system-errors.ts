// Operating-system errors (ENOSPC, ENOTDIR, EACCES, …) turned into messages a user can act on:
// the path, the cause in words and the remedy. Node's own text ("ENOSPC: no space left on device,
// write") names neither the file nor what to do.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'the path is a directory, a file was expected',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  EMFILE: 'too many open files',
};

function errno(e: unknown): (NodeJS.ErrnoException & { dest?: string }) | undefined {
  const x = e as NodeJS.ErrnoException | undefined;
  return x && typeof x.code === 'string' && CAUSES[x.code] ? x : undefined;
}

/** Bytes under a directory (not following links); 0 when it cannot be read. */
export function treeBytes(dir: string): number {
  let total = 0;
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else total += st.size;
    }
  };
  walk(dir);
  return total;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * A located message for a system error met while running a stage, or undefined for any other
 * error (its own message is kept). `scratchDir`: the stage's persistent scratch, reported on a full
 * disk because it is what the stage keeps there.
 */
export function describeSystemError(e: unknown, where: { stage?: string; scratchDir?: string; outDir?: string } = {}): string | undefined {
  const x = errno(e);
  if (!x) return undefined;
  const code = x.code!;
  const path = x.path ? `${x.path}${x.dest ? ` -> ${x.dest}` : ''}` : undefined;
  // A failed write() names no file: say where the stage was writing instead.
  const place = path
    ? ` at ${path}`
    : where.outDir
      ? ` while ${where.stage ? `stage ${where.stage}` : 'the stage'} wrote its outputs (${where.outDir}) or scratch`
      : '';
  const what = `${CAUSES[code]} (${code}${x.syscall ? `, ${x.syscall}` : ''})${place}`;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    const held = where.scratchDir ? treeBytes(where.scratchDir) : 0;
    const scratch = where.scratchDir
      ? ` ${where.stage ? `Stage ${where.stage}` : 'The stage'} holds ${mb(held)} of scratch in ${where.scratchDir} (checkpoints kept to resume).`
      : '';
    return (
      `${what}.${scratch} Free space on that filesystem and run the same command again to resume` +
      (where.scratchDir ? `; \`rm -rf ${where.scratchDir}\` frees the scratch (the stage then starts over)` : '') +
      '; `ca-pipe gc --force` removes store entries, staging and scratch no run record uses'
    );
  }
  if (code === 'EMFILE') return `${what}: raise the limit (\`ulimit -n\`) or run fewer stages at once (-j)`;
  if (code === 'ENOENT') return `${what}: check that the path exists (a file removed while ca-pipe was using it, or a mistyped path)`;
  if (code === 'ENOTDIR' || code === 'EISDIR') return `${what}: check that path (a directory where a file is expected, or the reverse)`;
  return `${what}: ca-pipe must be able to write there; choose another place with --store DIR / --runs DIR, or fix the permissions`;
}
