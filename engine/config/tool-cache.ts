// A small on-disk cache for derived artefacts that are expensive to rebuild at every CLI start
// (compiled schema validators, parsed experiment files). Entries are named by a hash of what they
// derive from, so they never go stale; losing them only costs time.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const requireHere = createRequire(import.meta.url);
const versionMemo = new Map<string, string>();

/** Version of an installed dependency (part of cache keys: a new ajv or yaml rebuilds entries). */
export function installedVersion(pkg: string): string {
  let v = versionMemo.get(pkg);
  if (v === undefined) {
    try {
      v = String((JSON.parse(readFileSync(requireHere.resolve(`${pkg}/package.json`), 'utf8')) as { version?: string }).version);
    } catch {
      v = 'unknown';
    }
    versionMemo.set(pkg, v);
  }
  return v;
}

let cacheDirMemo: string | null | undefined;

/**
 * CA_PIPE_CACHE_DIR, else node_modules/.cache/ca-pipe next to the package (the usual place for
 * tool caches; cleared by a reinstall), else no disk cache. Never the user's project.
 */
export function toolCacheDir(): string | null {
  if (cacheDirMemo !== undefined) return cacheDirMemo;
  const env = process.env.CA_PIPE_CACHE_DIR;
  if (env) return (cacheDirMemo = env);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'node_modules'))) {
      return (cacheDirMemo = join(dir, 'node_modules', '.cache', 'ca-pipe'));
    }
    dir = dirname(dir);
  }
  return (cacheDirMemo = null);
}

/** Reads a cache file; undefined when absent or unreadable. */
export function readCached(sub: string, name: string): string | undefined {
  const dir = toolCacheDir();
  if (!dir) return undefined;
  try {
    return readFileSync(join(dir, sub, name), 'utf8');
  } catch {
    return undefined;
  }
}

/** Writes a cache file atomically (tmp + rename); silently does nothing where it cannot write. */
export function writeCached(sub: string, name: string, text: string): void {
  const dir = toolCacheDir();
  if (!dir) return;
  const file = join(dir, sub, name);
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
    prune(dirname(file));
  } catch {
    // A read-only install: everything still works, only slower at start-up.
  }
}

/** Entries kept per kind of artefact; experiments in temporary dirs (tests) would grow it forever. */
const MAX_ENTRIES = 256;

/** Past MAX_ENTRIES, drops the least recently written half (only on writes, i.e. cache misses). */
function prune(dir: string): void {
  const names = readdirSync(dir);
  if (names.length <= MAX_ENTRIES) return;
  const aged = names.map((n) => ({ n, t: statSync(join(dir, n), { throwIfNoEntry: false })?.mtimeMs ?? 0 })).sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, names.length - MAX_ENTRIES / 2)) {
    try {
      unlinkSync(join(dir, n));
    } catch {
      /* another process pruned it */
    }
  }
}
