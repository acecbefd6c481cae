// The ca-pipe version (package.json `version`), found from the sources (tsx) and from dist/.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function toolVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const f = join(dir, 'package.json');
    if (existsSync(f)) {
      try {
        const pkg = JSON.parse(readFileSync(f, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'ca-pipe' && typeof pkg.version === 'string') return (cached = pkg.version);
      } catch {
        /* keep looking upwards */
      }
    }
    dir = dirname(dir);
  }
  return (cached = 'unknown');
}
