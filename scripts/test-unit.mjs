#!/usr/bin/env node
// The fast test tier (`npm run test:unit`), for the edit-test loop: every compiled test file except
// the slow ones below. `npm test` stays the full suite. Node 20's `--test` takes no globs, hence
// the explicit list.
import { readdirSync } from 'node:fs';
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

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

const isSlow = (rel) => SLOW.some((s) => (s.endsWith('/') ? rel.startsWith(s) : rel === s));
const files = testFiles(TESTS).filter((f) => !isSlow(relative(TESTS, f).split('\\').join('/')));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
