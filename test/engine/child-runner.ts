// A stand-in for `ca-pipe exec` whose registry holds the test-only kinds, for tests of the
// child-process executor with stage kinds the real CLI does not know. Inert unless given
// `exec <key> --store <dir>` (the test runner may load every file under test/).
import { createRegistry } from '../../engine/registry.js';
import { execStoredJob } from '../../engine/run/index.js';
import { Store } from '../../engine/store/index.js';
import { commandStage } from '../../stages/command/index.js';
import { collectKind, emitKind } from './helpers.js';

const [verb, key, flag, storeDir] = process.argv.slice(2);
if (verb === 'exec' && key && flag === '--store' && storeDir) {
  const store = await Store.openExisting(storeDir);
  try {
    await execStoredJob(store, key, createRegistry([commandStage, emitKind, collectKind]), new AbortController().signal);
  } catch {
    process.exitCode = 1;
  }
}
