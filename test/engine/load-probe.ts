// Loads and plans an experiment with the real stage registry, then prints which CommonJS modules
// of ajv and yaml got loaded (JSON on stdout). Used by light-imports.test.ts in a fresh process;
// inert unless given `probe <experiment.yaml>` (the test runner may load every file under test/).
import { createRequire } from 'node:module';

const [verb, file] = process.argv.slice(2);
if (verb === 'probe' && file) {
  const { createRegistry } = await import('../../engine/registry.js');
  const { STAGE_KINDS } = await import('../../stages/index.js');
  const { loadExperiment } = await import('../../engine/config/index.js');
  const { buildPlan } = await import('../../engine/plan/index.js');
  const registry = createRegistry(STAGE_KINDS);
  const plan = await buildPlan(await loadExperiment(file, { registry, env: {} }), registry);
  const req = createRequire(import.meta.url);
  const loaded = Object.keys(req.cache).filter((p) => /node_modules[\\/](ajv|ajv-formats|yaml)[\\/]/.test(p));
  process.stdout.write(JSON.stringify({ instances: plan.instances.length, loaded }) + '\n');
}
