// Where the reference fixtures are: shared/fixtures sits beside the repository (dev tree and CI
// clone alike); CA_PIPE_FIXTURES overrides. Not a test file: the test files import it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function fixturesDir(): string {
  if (process.env.CA_PIPE_FIXTURES) return process.env.CA_PIPE_FIXTURES;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const cand = join(dir, '..', 'shared', 'fixtures');
    if (existsSync(join(cand, 'resnet-basic-1111.weights.safetensors'))) return cand;
    dir = dirname(dir);
  }
  throw new Error('cannot find shared/fixtures beside the repository (set CA_PIPE_FIXTURES)');
}
