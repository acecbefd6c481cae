// Where the reference fixtures are: test/fixtures/reference, inside the repository, so that a
// clone tests itself; CA_PIPE_FIXTURES overrides (e.g. to try new fixtures before committing them).
// Not a test file: the test files import it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's own copy; the path works from test/ml (tsx) and dist/test/ml (built). */
function repoFixtures(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const cand = join(dir, 'test', 'fixtures', 'reference');
    if (existsSync(cand)) return cand;
    dir = dirname(dir);
  }
  throw new Error('cannot find test/fixtures/reference in the repository (set CA_PIPE_FIXTURES)');
}

export function fixturesDir(): string {
  return process.env.CA_PIPE_FIXTURES || repoFixtures();
}
