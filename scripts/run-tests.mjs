#!/usr/bin/env node
// Runs compiled test files with Node's test runner: `node scripts/run-tests.mjs [--fast] PATH...`,
// each PATH a *.test.js file or a folder searched for them. Why not `node --test dist/test/`:
// Node 20 runs every .js file under a folder named `test` as a test file, so the helper modules
// there ran as (passing) tests and inflated the counts; and its `--test` takes no globs.
// `--fast` (`npm run test:unit`, the edit-test loop) leaves out the slow files below.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TESTS = join(ROOT, 'dist', 'test');

// Paths relative to dist/test. A folder excludes everything below it.
const SLOW = [
  'e2e/', // whole experiments through the CLI, the full quickstart, headless Chromium
  'slurm/executor.test.js', // needs the one-node cluster
  'slurm/quickstart.test.js',
  'slurm/shards.test.js', // split saliency/evaluate stages on the cluster (arrays, scancel, re-adoption)
  'slurm/accounting.test.js', // needs slurmdbd
  'stages/train-kill.test.js', // four SIGKILLed training runs
];

function testFiles(path) {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true }).flatMap((e) => {
    const p = join(path, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

const args = process.argv.slice(2);
const fast = args.includes('--fast');
const paths = args.filter((a) => a !== '--fast');
if (!paths.length) {
  console.error('usage: node scripts/run-tests.mjs [--fast] PATH...   (compiled *.test.js files or folders of them)');
  process.exit(2);
}
const isSlow = (rel) => SLOW.some((s) => (s.endsWith('/') ? rel.startsWith(s) : rel === s));
const files = paths
  .flatMap((p) => testFiles(p))
  .filter((f) => !fast || !isSlow(relative(TESTS, f).split('\\').join('/')))
  .sort();
if (!files.length) {
  console.error(`run-tests: no *.test.js files under ${paths.join(', ')} (run \`npm run build\` first)`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
