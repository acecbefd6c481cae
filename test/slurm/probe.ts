// Run by units.test.ts under a PATH without sbatch to check the skip-or-fail rule of needSlurm.
// Inert unless CA_PIPE_SLURM_PROBE=1 (the test runner loads every file under test/).
import { test } from 'node:test';
import { needSlurm } from './helpers.js';

if (process.env.CA_PIPE_SLURM_PROBE === '1') {
  test('probe: a test that needs Slurm', (t) => {
    if (!needSlurm(t)) return;
    throw new Error('probe: needSlurm should not have found sbatch');
  });
}
